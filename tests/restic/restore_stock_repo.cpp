#include "tests/restic/restore_stock_repo.hpp"

#include "common/base64.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace oneds::test::stock {

namespace fs = std::filesystem;

std::string must(const std::vector<std::string> &argv, const std::string &what, const std::string &input) {
    const auto r = run_process(argv, input, {}, std::chrono::seconds(300));
    if (r.exit_code != 0) {
        std::string cmd;
        for (const auto &a : argv) cmd += (cmd.empty() ? "" : " ") + a;
        throw std::runtime_error("set-up step '" + what + "' failed (exit " + std::to_string(r.exit_code) +
                                 "): " + cmd + "\nstdout: " + r.out.substr(0, 2000) + "\nstderr: " + r.err);
    }
    return r.out;
}

namespace {

std::string qemu_img() { return tool("qemu-img"); }

void write_binary(const std::string &path, const std::string &data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::string wrapped_base64(const std::string &text) {
    // The stock prebackup writes vm.xml as base64 in 60-column lines.
    const std::string b64 = base64(text);
    std::string out;
    for (std::size_t i = 0; i < b64.size(); i += 60) out += b64.substr(i, 60) + "\n";
    return out;
}

std::string hex2(unsigned v) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", v & 0xffu);
    return buf;
}

std::string basename_of(const std::string &p) { return fs::path(p).filename().string(); }

// "2024-01-03T10:07:00Z" (or with a numeric offset) -> epoch seconds.
long long epoch_of(const std::string &t) {
    std::tm tm{};
    if (t.size() < 19 || ::strptime(t.substr(0, 19).c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
    return static_cast<long long>(::timegm(&tm));
}

}  // namespace

std::vector<snapshot_info> snapshots(const restic_fixture &f, const std::string &repo,
                                     const std::vector<std::string> &ids) {
    std::vector<std::string> args = {"snapshots", "--json", "--no-lock"};
    args.insert(args.end(), ids.begin(), ids.end());
    const auto r = f.restic(repo, args);
    if (r.exit_code != 0)
        throw std::runtime_error("restic snapshots on " + repo + " failed (exit " + std::to_string(r.exit_code) +
                                 "): " + r.err);
    std::vector<snapshot_info> out;
    const boost::json::value parsed = boost::json::parse(r.out.empty() ? std::string("[]") : r.out);
    if (!parsed.is_array()) return out;
    for (const auto &v : parsed.as_array()) {
        const auto &o = v.as_object();
        snapshot_info s;
        s.id = std::string(o.at("id").as_string());
        s.short_id = o.contains("short_id") ? std::string(o.at("short_id").as_string()) : s.id.substr(0, 8);
        s.time = std::string(o.at("time").as_string());
        if (o.contains("paths"))
            for (const auto &p : o.at("paths").as_array()) s.paths.emplace_back(p.as_string());
        if (o.contains("tags") && o.at("tags").is_array())
            for (const auto &t : o.at("tags").as_array()) s.tags.emplace_back(t.as_string());
        out.push_back(std::move(s));
    }
    return out;
}

std::uint64_t pack_bytes(const std::string &repo) {
    std::uint64_t total = 0;
    std::error_code ec;
    if (!fs::exists(repo + "/data", ec)) return 0;
    for (const auto &e : fs::recursive_directory_iterator(repo + "/data"))
        if (e.is_regular_file()) total += e.file_size();
    return total;
}

std::string check_repository(const restic_fixture &f, const std::string &repo) {
    const auto r = f.restic(repo, {"check"});
    if (r.exit_code == 0) return {};
    return "restic check exit " + std::to_string(r.exit_code) + ": " + r.out + r.err;
}

std::string vm_document(int vm, const std::vector<disk> &disks, bool tpm,
                        const std::vector<std::pair<int, std::uint64_t>> &size_overrides) {
    const std::string v = std::to_string(vm);
    std::ostringstream x;
    x << "<VM><ID>" << v << "</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME><NAME>vm" << v
      << "</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><TEMPLATE>"
      << "<CONTEXT><DISK_ID>9</DISK_ID><ETH0_IP>10.0.0." << vm % 250 << "</ETH0_IP><ETH0_MAC>02:00:0a:00:00:0"
      << vm % 10 << "</ETH0_MAC><NETWORK>YES</NETWORK><TARGET>hda</TARGET></CONTEXT><CPU>1</CPU>";
    for (const auto &d : disks) {
        std::uint64_t size = d.size_mib;
        for (const auto &[id, s] : size_overrides)
            if (id == d.id) size = s;
        x << "<DISK><ALLOW_ORPHANS>NO</ALLOW_ORPHANS><CLONE>YES</CLONE><DATASTORE>default</DATASTORE>"
          << "<DATASTORE_ID>1</DATASTORE_ID><DEV_PREFIX>vd</DEV_PREFIX><DISK_ID>" << d.id
          << "</DISK_ID><DRIVER>qcow2</DRIVER><FORMAT>qcow2</FORMAT><IMAGE>vm" << v << "-disk-" << d.id
          << "</IMAGE><IMAGE_ID>" << 30 + d.id << "</IMAGE_ID><SIZE>" << size << "</SIZE><TARGET>vd"
          << static_cast<char>('a' + d.id % 26) << "</TARGET><TM_MAD>ssh</TM_MAD><TYPE>FILE</TYPE></DISK>";
    }
    x << "<GRAPHICS><LISTEN>0.0.0.0</LISTEN><PORT>59" << vm % 100 << "</PORT><TYPE>VNC</TYPE></GRAPHICS>"
      << "<MEMORY>128</MEMORY>"
      << "<NIC><AR_ID>0</AR_ID><BRIDGE>br0</BRIDGE><IP>10.0.0." << vm % 250 << "</IP><MAC>02:00:0a:00:00:0" << vm % 10
      << "</MAC><NETWORK>net0</NETWORK><NETWORK_ID>0</NETWORK_ID><NIC_ID>0</NIC_ID><TARGET>one-" << v
      << "-0</TARGET><VN_MAD>bridge</VN_MAD></NIC>"
      << "<OS><ARCH>x86_64</ARCH><UUID>6b1f4c4e-0000-4000-8000-0000000000" << vm % 100 << "</UUID></OS>";
    if (tpm) x << "<TPM><MODEL>tpm-crb</MODEL></TPM>";
    x << "<VMID>" << v << "</VMID></TEMPLATE>"
      << "<USER_TEMPLATE><DESCRIPTION>stock test VM " << v << "</DESCRIPTION></USER_TEMPLATE>"
      << "<BACKUPS><BACKUP_CONFIG><BACKUP_VOLATILE>NO</BACKUP_VOLATILE><FS_FREEZE>NONE</FS_FREEZE>"
      << "<KEEP_LAST>2</KEEP_LAST><MODE>INCREMENT</MODE></BACKUP_CONFIG><BACKUP_IDS/></BACKUPS></VM>";
    return x.str();
}

chain::chain(const restic_fixture &f, int vm, std::vector<disk> disks, std::optional<int> job)
    : f_(f), vm_(vm), disks_(std::move(disks)), job_(job) {
    std::sort(disks_.begin(), disks_.end(), [](const disk &a, const disk &b) { return a.id < b.id; });
    // Several chains may belong to one VM (several backup images): each
    // keeps its own work files.
    static int n = 0;
    const std::string mine = f_.dir().file("stock/vm" + std::to_string(vm) + "." + std::to_string(++n));
    work_ = mine + "/work";
    expected_ = mine + "/expected";
    fs::create_directories(work_);
    fs::create_directories(expected_);
    vm_xml_ = vm_document(vm, disks_);
    if (f_.s3()) {
        // In a bucket: init unless the repository is there already.
        if (f_.restic(repo(), {"cat", "config"}).exit_code != 0) {
            const auto r = f_.restic(repo(), {"init"});
            if (r.exit_code != 0) throw std::runtime_error("restic init " + f_.repo_url(repo()) + " failed: " + r.err);
        }
    } else if (!fs::exists(repo() + "/config")) {
        fs::create_directories(f_.base_path());
        const auto r = f_.restic(repo(), {"init"});
        if (r.exit_code != 0) throw std::runtime_error("restic init " + repo() + " failed: " + r.err);
    }
}

std::string chain::repo() const {
    return f_.base_path() + "/" + (job_ ? "job_" + std::to_string(*job_) : std::to_string(vm_));
}

std::string chain::disk_path(int d, int k) const {
    return backup_dir() + "/disk." + std::to_string(d) + "." + std::to_string(k);
}

std::string chain::expected_image(int d, int k) const {
    return expected_ + "/disk." + std::to_string(d) + "." + std::to_string(k) + ".raw";
}

std::string chain::source_image(int d, int k) const {
    return work_ + "/disk." + std::to_string(d) + "." + std::to_string(k);
}

void chain::backup(int n) {
    for (int i = 0; i < n; ++i) backup();
}

const increment &chain::backup() {
    const int k = static_cast<int>(incs_.size());
    const std::string k_text = std::to_string(k);
    // prebackup: a fresh folder holding only this increment's files.
    fs::remove_all(backup_dir());
    fs::create_directories(backup_dir());
    std::vector<std::string> files;

    for (const auto &d : disks_) {
        const std::string name = "disk." + std::to_string(d.id) + "." + k_text;
        const std::string w = work_ + "/" + name;
        const std::string size = std::to_string(d.size_mib) + "M";
        if (k == 0) {
            if (d.random && d.base_mib > 0) {
                const std::string raw = w + ".raw";
                fs::remove(raw);
                must({tool("truncate"), "-s", size, raw}, "truncate");
                must({tool("dd"), "if=/dev/urandom", "of=" + raw, "bs=1M", "count=" + std::to_string(d.base_mib),
                      "conv=notrunc", "status=none"},
                     "dd random base");
                must({qemu_img(), "convert", "-q", "-f", "raw", "-O", "qcow2", raw, w}, "qemu-img convert base");
                fs::remove(raw);
            } else {
                must({qemu_img(), "create", "-q", "-f", "qcow2", w, size}, "qemu-img create base");
                if (d.base_mib > 0)
                    must({tool("qemu-io"), "-f", "qcow2", "-c",
                          "write -P " + hex2(0x10 + static_cast<unsigned>(d.id)) + " 0 " + std::to_string(d.base_mib) +
                              "M",
                          w},
                         "qemu-io write base");
            }
        } else {
            // Blocks of its own, past the base data, and the block every
            // increment overwrites (so the order of the chain matters).
            const std::uint64_t own = (d.base_mib + static_cast<std::uint64_t>(k) - 1) * 1048576 + 131072;
            if (own + 262144 > d.size_mib * 1048576)
                throw std::runtime_error("disk " + std::to_string(d.id) + " of " + size + " too small for increment " +
                                         k_text);
            must({qemu_img(), "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                  "disk." + std::to_string(d.id) + "." + std::to_string(k - 1), w},
                 "qemu-img create overlay");
            must({tool("qemu-io"), "-f", "qcow2", "-c",
                  "write -P " + hex2(0x20 + 8 * static_cast<unsigned>(k) + static_cast<unsigned>(d.id)) + " " +
                      std::to_string(own) + " 256k",
                  "-c", "write -P " + hex2(0x80 + static_cast<unsigned>(k)) + " 64k 64k", w},
                 "qemu-io write increment");
        }
        must({qemu_img(), "convert", "-q", "-O", "raw", w, expected_image(d.id, k)}, "qemu-img convert expected");
        const std::string in_folder = backup_dir() + "/" + name;
        fs::copy_file(w, in_folder, fs::copy_options::overwrite_existing);
        if (k > 0) must({qemu_img(), "rebase", "-q", "-u", "-b", "", in_folder}, "qemu-img rebase -u -b ''");
        const auto i = info(in_folder);
        if (i.format != "qcow2" || !i.backing.empty())
            throw std::runtime_error(in_folder + " is not a detached qcow2: format " + i.format + ", backing '" +
                                     i.backing + "'");
        files.push_back(in_folder);
    }

    increment inc;
    inc.id = k;
    if (tpm_) {
        const std::string src = work_ + "/tpm" + k_text;
        fs::create_directories(src + "/tpm");
        std::ofstream(src + "/tpm/tpm2-00.permall") << "tpm state of VM " << vm_ << " at increment " << k << "\n";
        must({tool("tar"), "czf", backup_dir() + "/disk.tpm.0", "-C", src, "tpm"}, "tar czf disk.tpm.0");
        inc.tpm = read_file(backup_dir() + "/disk.tpm.0");
        files.push_back(backup_dir() + "/disk.tpm.0");
    }
    std::ofstream(backup_dir() + "/vm.xml") << wrapped_base64(vm_xml_);
    inc.vm_xml = vm_xml_;
    std::sort(files.begin(), files.end());  // the order of the stock glob disk.*
    files.push_back(backup_dir() + "/vm.xml");

    char when[32];
    std::snprintf(when, sizeof when, "2024-01-%02d 10:%02d:00", k + 1, vm_ % 60);
    std::vector<std::string> args = {"backup", "--json", "--force", "--tag=one-" + std::to_string(vm_), "--time", when};
    args.insert(args.end(), files.begin(), files.end());
    const auto r = f_.restic(repo(), args);
    if (r.exit_code != 0) throw std::runtime_error("restic backup of increment " + k_text + " failed: " + r.err);
    std::string snap;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("\"summary\"") == std::string::npos) continue;
        const auto o = boost::json::parse(line).as_object();
        snap = std::string(o.at("snapshot_id").as_string());
        inc.size_mb = static_cast<std::uint64_t>(o.at("total_bytes_processed").to_number<double>()) / 1048576;
    }
    if (snap.empty()) throw std::runtime_error("restic backup printed no summary: " + r.out);

    // Verify what was stored: the stock layout, read back with restic.
    const auto s = snapshots(f_, repo(), {snap});
    if (s.size() != 1) throw std::runtime_error("snapshot " + snap + " not listed by restic snapshots");
    inc.long_id = s[0].id;
    inc.short_id = s[0].short_id;
    inc.time = s[0].time;
    inc.paths = s[0].paths;
    std::sort(inc.paths.begin(), inc.paths.end());
    auto want = files;
    std::sort(want.begin(), want.end());
    if (inc.short_id.size() != 8 || inc.long_id.rfind(inc.short_id, 0) != 0 || snap.rfind(inc.short_id, 0) != 0)
        throw std::runtime_error("unexpected ids: summary " + snap + ", snapshots " + inc.long_id + "/" + inc.short_id);
    if (inc.paths != want)
        throw std::runtime_error("snapshot " + snap + " does not hold exactly the increment's files");
    if (s[0].tags != std::vector<std::string>{"one-" + std::to_string(vm_)})
        throw std::runtime_error("snapshot " + snap + " is not tagged one-" + std::to_string(vm_) + " only");
    if (inc.time.substr(0, 19) != std::string(when).replace(10, 1, "T"))
        throw std::runtime_error("snapshot " + snap + " time " + inc.time + ", expected " + when);

    // postbackup: the folder goes away.
    fs::remove_all(backup_dir());
    incs_.push_back(std::move(inc));
    return incs_.back();
}

std::string chain::chain_text(int up_to) const {
    std::string out;
    for (const auto &i : incs_) {
        if (up_to >= 0 && i.id > up_to) continue;
        out += (out.empty() ? "" : ",") + std::to_string(i.id) + ":" + i.short_id;
    }
    return out;
}

std::string chain::url(const std::string &path, int up_to, const std::string &scheme) const {
    return scheme + "://100/" + (job_ ? std::to_string(*job_) : std::string()) + "/" + chain_text(up_to) + path;
}

namespace {

std::string image_head(int image_id, int vm, const std::string &name, const std::string &source,
                       const std::string &format, std::uint64_t size, long long regtime) {
    std::ostringstream x;
    x << "<IMAGE><ID>" << image_id << "</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
      << "<NAME>" << name << "</NAME>"
      << "<PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A><GROUP_U>0</GROUP_U>"
      << "<GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U><OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A>"
      << "</PERMISSIONS><TYPE>6</TYPE><DISK_TYPE>0</DISK_TYPE><PERSISTENT>0</PERSISTENT><REGTIME>" << regtime
      << "</REGTIME><MODTIME>0</MODTIME><SOURCE>" << source << "</SOURCE><PATH></PATH><FORMAT>" << format
      << "</FORMAT><FS></FS><SIZE>" << size << "</SIZE><STATE>1</STATE><PREV_STATE>1</PREV_STATE>"
      << "<RUNNING_VMS>0</RUNNING_VMS><CLONING_OPS>0</CLONING_OPS><CLONING_ID>-1</CLONING_ID>"
      << "<TARGET_SNAPSHOT>-1</TARGET_SNAPSHOT><DATASTORE_ID>100</DATASTORE_ID><DATASTORE>restic</DATASTORE>"
      << "<VMS><ID>" << vm << "</ID></VMS><CLONES></CLONES><APP_CLONES></APP_CLONES>";
    return x.str();
}

std::string image_template(std::optional<int> job) {
    std::string t = "<TEMPLATE>";
    if (job) t += "<BACKUP_JOB_ID><![CDATA[" + std::to_string(*job) + "]]></BACKUP_JOB_ID>";
    return t +
           "</TEMPLATE><SNAPSHOTS><ALLOW_ORPHANS>NO</ALLOW_ORPHANS><CURRENT_BASE>-1</CURRENT_BASE>"
           "<NEXT_SNAPSHOT>0</NEXT_SNAPSHOT></SNAPSHOTS>";
}

}  // namespace

std::string chain::image_xml(const image_options &o) const {
    if (incs_.empty()) throw std::runtime_error("image_xml of a chain without backups");
    std::uint64_t size = 0;
    for (const auto &i : incs_) size += i.size_mb;
    std::ostringstream x;
    const auto &first = incs_.front();
    const auto &last = incs_.back();
    x << image_head(o.id, vm_, std::to_string(vm_) + " 01-Jan 10.00.00", o.incremental ? first.short_id : last.short_id,
                    o.format, o.incremental ? size : last.size_mb, epoch_of(first.time))
      << image_template(job_);
    if (o.incremental) {
        std::vector<int> order = o.order;
        if (order.empty())
            for (const auto &i : incs_) order.push_back(i.id);
        x << "<BACKUP_INCREMENTS>";
        for (const int id : order) {
            const auto &i = at(id);
            x << "<INCREMENT><DATE>" << epoch_of(i.time) << "</DATE><ID>" << i.id << "</ID><PARENT_ID>" << i.id - 1
              << "</PARENT_ID><SIZE>" << i.size_mb << "</SIZE><SOURCE>" << i.short_id << "</SOURCE><TYPE>"
              << (i.id == 0 ? "FULL" : "INCREMENT") << "</TYPE></INCREMENT>";
        }
        x << "</BACKUP_INCREMENTS>";
    } else {
        x << "<BACKUP_INCREMENTS></BACKUP_INCREMENTS>";
    }
    x << "<BACKUP_DISK_IDS>";
    for (const auto &d : disks_) x << "<ID>" << d.id << "</ID>";
    x << "</BACKUP_DISK_IDS></IMAGE>";
    return x.str();
}

std::string full_image_xml(int image_id, int vm, const std::string &source, std::optional<int> job,
                           const std::string &format) {
    return image_head(image_id, vm, std::to_string(vm) + " 01-Jan 10.00.00", source, format, 16, 1704103200) +
           image_template(job) +
           "<BACKUP_INCREMENTS></BACKUP_INCREMENTS><BACKUP_DISK_IDS><ID>0</ID></BACKUP_DISK_IDS></IMAGE>";
}

image_info info(const std::string &file) {
    const auto out = must({qemu_img(), "info", "--output", "json", file}, "qemu-img info " + file);
    const auto o = boost::json::parse(out).as_object();
    image_info i;
    i.format = std::string(o.at("format").as_string());
    if (o.contains("backing-filename")) i.backing = std::string(o.at("backing-filename").as_string());
    i.virtual_size = static_cast<std::uint64_t>(o.at("virtual-size").to_number<double>());
    if (o.contains("actual-size")) i.actual_size = static_cast<std::uint64_t>(o.at("actual-size").to_number<double>());
    return i;
}

std::string compare_images(const std::string &expected_raw, const std::string &got, bool require_qcow2,
                           bool standalone) {
    if (!fs::exists(got)) return got + " does not exist";
    image_info i;
    try {
        i = info(got);
    } catch (const std::exception &e) {
        return std::string("not an image qemu-img can read: ") + e.what();
    }
    if (require_qcow2 && i.format != "qcow2") return "expected a qcow2 image, got format " + i.format;
    if (standalone && !i.backing.empty()) return "expected a standalone image, got one backed by " + i.backing;
    const auto want_size = fs::file_size(expected_raw);
    if (i.virtual_size != want_size)
        return "expected virtual size " + std::to_string(want_size) + ", got " + std::to_string(i.virtual_size);
    const auto r = run_process({qemu_img(), "compare", "-f", "raw", "-F", i.format, expected_raw, got}, {}, {},
                               std::chrono::seconds(120));
    if (r.exit_code == 0) return {};
    return "qemu-img compare " + expected_raw + " " + got + " (exit " + std::to_string(r.exit_code) + "): " + r.out +
           r.err;
}

std::string rebuild(const restic_fixture &f, const std::string &repo,
                    const std::vector<std::pair<int, std::string>> &snaps, int d, const std::string &dir) {
    fs::create_directories(dir);
    const std::regex disk_name("^disk\\." + std::to_string(d) + "\\.");
    std::vector<std::string> files, ids;
    for (const auto &s : snaps) ids.push_back(s.second);
    const auto listed = snapshots(f, repo, ids);  // one restic run: each costs a key derivation
    for (const auto &[inc, snap] : snaps) {
        const auto s = std::find_if(listed.begin(), listed.end(),
                                    [&](const snapshot_info &i) { return i.id.rfind(snap, 0) == 0; });
        if (s == listed.end())
            throw std::runtime_error("snapshot " + snap + " (increment " + std::to_string(inc) + ") is not in " + repo);
        std::vector<std::string> matching;
        for (const auto &p : s->paths)
            if (std::regex_search(basename_of(p), disk_name)) matching.push_back(p);
        if (matching.size() != 1)
            throw std::runtime_error("snapshot " + snap + " holds " + std::to_string(matching.size()) +
                                     " files of disk " + std::to_string(d) + ", expected 1");
        const auto dump = f.restic(repo, {"dump", "--quiet", snap, matching[0]});
        if (dump.exit_code != 0) throw std::runtime_error("restic dump " + snap + " " + matching[0] + ": " + dump.err);
        const std::string out = dir + "/" + std::to_string(files.size()) + "." + basename_of(matching[0]);
        write_binary(out, dump.out);
        const auto i = info(out);
        if (i.format != "qcow2" || !i.backing.empty())
            throw std::runtime_error(matching[0] + " of snapshot " + snap + " is not a detached qcow2 (format " +
                                     i.format + ", backing '" + i.backing + "')");
        files.push_back(out);
    }
    if (files.empty()) throw std::runtime_error("rebuild of an empty chain");
    for (std::size_t i = 1; i < files.size(); ++i)
        must({qemu_img(), "rebase", "-q", "-u", "-F", "qcow2", "-b", files[i - 1], files[i]}, "qemu-img rebase -u");
    return files.back();
}

std::vector<std::string> files_under(const std::string &dir) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!fs::exists(dir, ec)) return out;
    for (const auto &e : fs::recursive_directory_iterator(dir, ec))
        if (e.is_regular_file() || e.is_symlink()) out.push_back(e.path().string());
    return out;
}

}  // namespace oneds::test::stock
