#include "tests/restic/restic_fixture.hpp"

#include "common/base64.hpp"
#include "common/proc.hpp"
#include "common/strings.hpp"

#include <csignal>

#include <sys/mount.h>
#include <unistd.h>

#include <pugixml.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <thread>
#include <sstream>
#include <stdexcept>

namespace oneds::test {

bool wait_for_process_with(const std::vector<std::string> &needles, std::chrono::milliseconds timeout) {
    return find_process_with(needles, timeout) > 0;
}

std::vector<pid_t> own_descendants() { return common::descendant_pids(::getpid()); }

std::vector<std::string> process_argv(pid_t pid) { return common::process_arguments(pid); }

pid_t find_process_with(const std::vector<std::string> &needles, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        // Only processes this test started (through sshd too: it is our
        // child): another test running at the same time has its own.
        for (const pid_t pid : own_descendants()) {
            const auto argv = process_argv(pid);
            bool all = true;
            for (const auto &n : needles)
                if (std::find(argv.begin(), argv.end(), n) == argv.end()) all = false;
            if (all) return pid;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
}

std::vector<pid_t> own_processes_mentioning(const std::string &text) {
    std::vector<pid_t> out;
    for (const pid_t pid : own_descendants())
        for (const auto &arg : process_argv(pid))
            if (arg.find(text) != std::string::npos) {
                out.push_back(pid);
                break;
            }
    return out;
}

bool wait_stopped(pid_t pid) {
    for (int i = 0; i < 500; ++i) {
        const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        if (stat.empty()) return false;  // gone (and reaped)
        const auto close = stat.rfind(')');
        if (close != std::string::npos && close + 2 < stat.size()) {
            if (stat[close + 2] == 'T') return true;
            if (stat[close + 2] == 'Z' || stat[close + 2] == 'X') return false;  // ended before the signal
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
}

namespace {
std::vector<pid_t> own_processes_with(const std::vector<std::string> &needles) {
    std::vector<pid_t> out;
    for (const pid_t pid : own_descendants()) {
        const auto argv = process_argv(pid);
        bool all = true;
        for (const auto &n : needles)
            if (std::find(argv.begin(), argv.end(), n) == argv.end()) all = false;
        if (all) out.push_back(pid);
    }
    return out;
}
}  // namespace

bool wait_for_retry_of(const std::vector<std::string> &needles, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    if (find_process_with(needles, timeout) < 0) return false;
    // Every process of the first attempt (restic, and a shell that started
    // it, if one shows the same arguments) until none is left: a zombie has
    // no argv, so an attempt counts as ended once restic exited.
    std::set<pid_t> first;
    for (;;) {
        const auto now = own_processes_with(needles);
        if (now.empty()) break;
        first.insert(now.begin(), now.end());
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // The next attempt: a process with those arguments that is new.
    while (std::chrono::steady_clock::now() < deadline) {
        for (const pid_t pid : own_processes_with(needles))
            if (!first.contains(pid)) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

bool lock_cleanup_reported_failure(const std::string &err) {
    return err.find("could not remove the stale lock") != std::string::npos;
}

tmpfs_mount::tmpfs_mount(const std::string &dir, const std::string &size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    ok_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
}

tmpfs_mount::~tmpfs_mount() {
    if (read_only_) ::umount2(dir_.c_str(), MNT_DETACH);
    if (ok_) ::umount2(dir_.c_str(), MNT_DETACH);
}

bool tmpfs_mount::set_read_only(bool ro) {
    if (ro == read_only_) return true;
    if (!ro) {
        read_only_ = ::umount2(dir_.c_str(), MNT_DETACH) != 0;
        return !read_only_;
    }
    if (::mount(dir_.c_str(), dir_.c_str(), nullptr, MS_BIND, nullptr) != 0) return false;
    if (::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
        ::umount2(dir_.c_str(), MNT_DETACH);
        return false;
    }
    read_only_ = true;
    return true;
}

bool tmpfs_mount::resize(const std::string &size) const {
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT, ("size=" + size).c_str()) == 0;
}

std::vector<std::string> restic_lock_files(const std::string &repo) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator(repo + "/locks", ec)) {
        auto n = e.path().filename().string();
        if (n.size() == 64 && n.find_first_not_of("0123456789abcdef") == std::string::npos) out.push_back(std::move(n));
    }
    return out;
}

bool wait_for_restic_lock(const std::string &repo, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (!restic_lock_files(repo).empty()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
}

std::unique_ptr<spawned_process> hold_exclusive_lock(const std::string &password_file, const std::string &repo) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto p =
            std::make_unique<spawned_process>(std::vector<std::string>{tool("restic"), "--password-file", password_file,
                                                                       "--repo", repo, "check", "--read-data"},
                                              "");
        // A lock counts once it has its final name (restic_lock_files).
        (void)wait_for_restic_lock(repo, std::chrono::seconds(20));
        p->send_signal(SIGSTOP);
        if (wait_stopped(p->pid()) && !restic_lock_files(repo).empty()) return p;
        p->send_signal(SIGCONT);
        p->wait(std::chrono::seconds(60));
    }
    return nullptr;
}

std::string tool(const std::string &name) {
    const char *path = std::getenv("PATH");
    for (const auto &dir : oneds::common::split(path != nullptr ? path : "/usr/bin:/bin", ':')) {
        const auto candidate = std::filesystem::path(dir) / name;
        if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
    throw std::runtime_error(name + " not found in PATH");
}

std::string base64(const std::string &data) { return common::base64_encode(data); }

namespace {
void must(const process_result &r, const std::string &what) {
    if (r.exit_code != 0) throw std::runtime_error(what + " failed: " + r.err + r.out);
}
}  // namespace

restic_fixture::restic_fixture() : sshd_(std::make_unique<sshd_fixture>()) {
    password_file_ = dir_.write("password", k_password);
    std::filesystem::create_directories(base_path());
}

void restic_fixture::set_password(const std::string &password) {
    password_ = password;
    dir_.write("password", password);
}

void restic_fixture::make_vm(int vm, const std::vector<disk_spec> &disks) {
    const auto dir = backup_dir(vm);
    std::filesystem::create_directories(dir);
    std::ostringstream vm_xml;
    vm_xml << "<VM><ID>" << vm << "</ID><NAME>vm" << vm << "</NAME><TEMPLATE>";
    for (const auto &d : disks) {
        const std::string file = dir + "/disk." + std::to_string(d.id) + ".0";
        must(run_process({tool("qemu-img"), "create", "-q", "-f", "qcow2", file, std::to_string(d.size_mib) + "M"}),
             "qemu-img create");
        if (d.data_mib > 0) {
            if (d.random) {
                const std::string raw = file + ".raw";
                must(run_process({tool("dd"), "if=/dev/urandom", "of=" + raw, "bs=1M",
                                  "count=" + std::to_string(d.data_mib), "status=none"}),
                     "dd");
                must(run_process({tool("qemu-img"), "convert", "-q", "-f", "raw", "-O", "qcow2", raw, file}),
                     "qemu-img convert");
                std::filesystem::remove(raw);
            } else {
                must(run_process(
                         {tool("qemu-io"), "-c",
                          "write -P 0x" + std::to_string(10 + vm % 80) + " 0 " + std::to_string(d.data_mib) + "M",
                          file}),
                     "qemu-io write");
            }
        }
        vm_xml << "<DISK><DISK_ID>" << d.id << "</DISK_ID><SIZE>" << d.size_mib << "</SIZE></DISK>";
    }
    vm_xml << "</TEMPLATE></VM>";
    // The stock prebackup writes vm.xml as base64 in 60-column lines.
    std::string b64 = base64(vm_xml.str()), wrapped;
    for (std::size_t i = 0; i < b64.size(); i += 60) wrapped += b64.substr(i, 60) + "\n";
    std::ofstream(dir + "/vm.xml") << wrapped;
}

std::string restic_fixture::document(const std::map<std::string, std::optional<std::string>> &tmpl,
                                     const std::string &extra) const {
    std::map<std::string, std::optional<std::string>> t = {
        {"RESTIC_PASSWORD", password_},
        {"RESTIC_SFTP_SERVER", std::string("backupserver")},
        {"RESTIC_SFTP_USER", sshd_->user()},
    };
    if (s3_)
        t = {{"RESTIC_PASSWORD", password_},
             {"RESTIC_BACKEND", std::string("S3")},
             {"RESTIC_S3_ENDPOINT", s3_->endpoint},
             {"RESTIC_S3_BUCKET", s3_->bucket},
             {"RESTIC_S3_ACCESS_KEY_ID", s3_->access_key},
             {"RESTIC_S3_SECRET_ACCESS_KEY", s3_->secret_key}};
    for (const auto &[k, v] : tmpl) t[k] = v;
    pugi::xml_document doc;
    auto root = doc.append_child("DS_DRIVER_ACTION_DATA");
    auto ds = root.append_child("DATASTORE");
    ds.append_child("ID").text().set(100);
    ds.append_child("NAME").text().set("restic");
    ds.append_child("DS_MAD").text().set("restic");
    ds.append_child("TM_MAD").text().set("-");
    ds.append_child("TYPE").text().set(3);
    ds.append_child("BASE_PATH").text().set(base_path().c_str());
    auto tm = ds.append_child("TEMPLATE");
    for (const auto &[k, v] : t)
        if (v) tm.append_child(k.c_str()).text().set(v->c_str());
    std::ostringstream out;
    doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
    std::string xml = out.str();
    const auto close = xml.rfind("</DS_DRIVER_ACTION_DATA>");
    return xml.substr(0, close) + extra + "</DS_DRIVER_ACTION_DATA>";
}

std::string restic_fixture::write_config(const std::map<std::string, std::string> &plugin) const {
    return write_config(plugin, {});
}

std::vector<std::string> restic_fixture::host_argv(const std::string &action, const std::vector<std::string> &args,
                                                   const std::map<std::string, std::string> &plugin_cfg) const {
    std::vector<std::string> argv = {ONEDS_TEST_HOST_PATH,
                                     "action",
                                     "-c",
                                     write_config(plugin_cfg),
                                     "--plugin",
                                     std::string("restic=") + ONEDS_TEST_RESTIC_PATH,
                                     "restic",
                                     action};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

process_result restic_fixture::host_action(const std::string &action, const std::vector<std::string> &args,
                                           const std::string &input,
                                           const std::map<std::string, std::string> &plugin_cfg,
                                           const std::map<std::string, std::string> &env) const {
    return run_process(host_argv(action, args, plugin_cfg), input, env, std::chrono::seconds(120));
}

void restic_fixture::use_s3(s3_bucket b) { s3_ = std::move(b); }

std::string restic_fixture::repo_url(const std::string &repo) const {
    if (!s3_) return repo;
    const std::string base = base_path() + "/";
    const std::string key = repo.rfind(base, 0) == 0 ? repo.substr(base.size()) : repo;
    return "s3:" + s3_->endpoint + "/" + s3_->bucket + "/" + key;
}

process_result restic_fixture::restic(const std::string &repo, const std::vector<std::string> &args) const {
    std::vector<std::string> argv = {tool("restic"), "--password-file", password_file_, "--repo", repo_url(repo)};
    argv.insert(argv.end(), args.begin(), args.end());
    std::map<std::string, std::string> env;
    if (s3_) env = {{"AWS_ACCESS_KEY_ID", s3_->access_key}, {"AWS_SECRET_ACCESS_KEY", s3_->secret_key}};
    return run_process(argv, {}, env, std::chrono::seconds(120));
}

std::string restic_fixture::datastore_xml(const std::map<std::string, std::optional<std::string>> &tmpl) const {
    const std::string doc = document(tmpl, "");
    const auto begin = doc.find("<DATASTORE>");
    const auto end = doc.rfind("</DATASTORE>");
    if (begin == std::string::npos || end == std::string::npos) throw std::runtime_error("no DATASTORE in " + doc);
    return doc.substr(begin, end + std::string("</DATASTORE>").size() - begin);
}

std::string restic_fixture::document_with_image(const std::string &image_xml,
                                                const std::map<std::string, std::optional<std::string>> &tmpl,
                                                const std::string &extra) const {
    const std::string open = "<DS_DRIVER_ACTION_DATA>";
    return open + image_xml + datastore_xml(tmpl) + extra + "</DS_DRIVER_ACTION_DATA>";
}

std::string restic_fixture::write_config(const std::map<std::string, std::string> &plugin,
                                         const std::map<std::string, std::string> &host) const {
    std::map<std::string, std::string> top = {{"log_level", "debug"}};
    for (const auto &[k, v] : host) top[k] = v;
    std::map<std::string, std::string> cfg = {
        {"ssh_config", sshd_->ssh_config_file().string()},
        {"datastore_conf", dir_.file("datastore.conf")},
        {"lock_dir", dir_.file("locks")},
        {"lock_retry_interval", "0.5"},
        {"progress_interval", "0"},
        {"kill_grace", "5"},
        // A private socket directory per instance: the default, OpenNebula's
        // shared one, would let tests share masters.
        {"ssh_control_dir", ""},
        // OpenNebula's remotes on the front end and their copy on the other
        // hosts: in the scratch tree, never this machine's.
        {"remotes_dir", dir_.file("remotes")},
        {"scripts_remote_dir", dir_.file("var_tmp_one")},
        // The driver's state and no metrics file: never this machine's.
        {"state_dir", dir_.file("state")},
        {"metrics_file", ""},
    };
    for (const auto &[k, v] : plugin) {
        if (v == k_unset)
            cfg.erase(k);
        else
            cfg[k] = v;
    }
    std::string text;
    for (const auto &[k, v] : top) text += k + " = " + v + "\n";
    text += "[plugin.restic]\n";
    for (const auto &[k, v] : cfg) text += k + " = " + v + "\n";
    static int n = 0;
    return dir_.write("one_ds_host.host." + std::to_string(++n) + ".conf", text);
}

std::vector<std::string> restic_fixture::host_argv(const std::string &action, const std::vector<std::string> &args,
                                                   const std::map<std::string, std::string> &plugin_cfg,
                                                   const std::map<std::string, std::string> &host_cfg) const {
    std::vector<std::string> argv = {ONEDS_TEST_HOST_PATH,
                                     "action",
                                     "-c",
                                     write_config(plugin_cfg, host_cfg),
                                     "--plugin",
                                     std::string("restic=") + ONEDS_TEST_RESTIC_PATH,
                                     "restic",
                                     action};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

process_result restic_fixture::host_action(const std::string &action, const std::vector<std::string> &args,
                                           const std::string &input,
                                           const std::map<std::string, std::string> &plugin_cfg,
                                           const std::map<std::string, std::string> &env,
                                           const std::map<std::string, std::string> &host_cfg) const {
    return run_process(host_argv(action, args, plugin_cfg, host_cfg), input, env, std::chrono::seconds(120));
}

}  // namespace oneds::test
