#define BOOST_TEST_MODULE restic_doctor
// `one_ds_host doctor` (docs/doctor.md) with the real restic 0.14 and the real
// sshd ("backupserver" and "hypervisor" reach this machine), the fake oned
// for the oned check and for reading a datastore by id, and the systemd
// stand-in for the slice check. Every check has a passing and a failing case.
#include "tests/oned/fake_oned.hpp"
#include "tests/restic/restic_fixture.hpp"
#include "tests/support/ceph_fixture.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include <sys/mount.h>

using namespace oneds::test;
namespace fs = std::filesystem;

namespace {

// The test setup: the fixture, a fake oned holding the datastore as id 100,
// and a repository made by the real restic under BASE_PATH.
struct scene {
    restic_fixture f;
    oned::fake_oned server;
    std::string auth_file;

    scene() {
        oned::datastore_record ds;
        ds.id = 100;
        ds.name = "restic";
        ds.type = "BACKUP_DS";
        for (const auto &[k, v] : base_template()) ds.attributes.set(k, v);
        server.add_datastore(ds);
        server.start();
        auth_file = f.dir().write("one_auth", server.oneadmin_session() + "\n");
        fs::create_directories(f.base_path());
        const auto init = f.restic(f.base_path() + "/7", {"init"});
        BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    }

    std::map<std::string, std::string> base_template() {
        return {{"DS_MAD", "restic"},
                {"TM_MAD", "-"},
                {"BASE_PATH", f.base_path()},
                {"RESTIC_PASSWORD", k_password},
                {"RESTIC_SFTP_SERVER", "backupserver"},
                {"RESTIC_SFTP_USER", f.sshd().user()}};
    }

    // A template file as given to onedatastore create: quoted values with \" escapes.
    std::string template_file(const std::map<std::string, std::optional<std::string>> &changes = {}) {
        std::map<std::string, std::string> t = base_template();
        for (const auto &[k, v] : changes) {
            if (v)
                t[k] = *v;
            else
                t.erase(k);
        }
        std::string text = "# restic backup datastore\nNAME = \"doctor test\"\n";
        for (const auto &[k, v] : t) {
            std::string q;
            for (const char c : v) {
                if (c == '"' || c == '\\') q.push_back('\\');
                q.push_back(c);
            }
            text += k + " = \"" + q + "\"\n";
        }
        static int n = 0;
        return f.dir().write("ds." + std::to_string(++n) + ".tmpl", text);
    }

    std::map<std::string, std::string> host_cfg() const {
        return {{"oned_endpoint", server.endpoint()}, {"oned_auth_file", auth_file}};
    }

    process_result doctor(const std::vector<std::string> &args, const std::map<std::string, std::string> &plugin = {},
                          std::map<std::string, std::string> host = {},
                          const std::map<std::string, std::string> &env = {}) {
        auto h = host_cfg();
        for (const auto &[k, v] : host) h[k] = v;
        std::vector<std::string> argv = {
            ONEDS_TEST_HOST_PATH,      "doctor",   "-c",
            f.write_config(plugin, h), "--plugin", std::string("restic=") + ONEDS_TEST_RESTIC_PATH};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_process(argv, "", env, std::chrono::seconds(120));
    }
};

struct row {
    std::string check, target, status, detail, fix;
};

std::vector<row> parse_json(const std::string &text) {
    std::vector<row> out;
    const boost::json::value doc = boost::json::parse(text);
    for (const auto &v : doc.as_array()) {
        const auto &o = v.as_object();
        out.push_back({std::string(o.at("check").as_string()), std::string(o.at("target").as_string()),
                       std::string(o.at("status").as_string()), std::string(o.at("detail").as_string()),
                       std::string(o.at("fix").as_string())});
    }
    return out;
}

const row *find(const std::vector<row> &rows, const std::string &check, const std::string &target_part = {}) {
    for (const auto &r : rows)
        if (r.check == check && r.target.find(target_part) != std::string::npos) return &r;
    return nullptr;
}

std::string status_of(const std::vector<row> &rows, const std::string &check, const std::string &target_part = {}) {
    const auto *r = find(rows, check, target_part);
    return r == nullptr ? "(absent)" : r->status;
}

std::string dump(const process_result &r) { return "exit " + std::to_string(r.exit_code) + "\n" + r.out + r.err; }

// A directory of links to every program of /usr/bin and /bin except the
// ones named, for a PATH without them.
std::string path_without(const restic_fixture &f, const std::set<std::string> &missing) {
    const std::string dir = f.dir().file("bin-without-" + *missing.begin());
    fs::create_directories(dir);
    for (const char *src : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
        std::error_code ec;
        for (const auto &e : fs::directory_iterator(src, ec)) {
            const auto name = e.path().filename().string();
            if (missing.contains(name) || fs::exists(dir + "/" + name)) continue;
            fs::create_symlink(e.path(), dir + "/" + name, ec);
        }
    }
    return dir;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_check_passes_on_the_test_setup) {
    scene s;
    const auto tmpl = s.template_file({{"RESTIC_NICE", "5"}, {"RESTIC_IONICE", "3"}});
    const auto table = s.doctor({"--hypervisor", "hypervisor", tmpl});
    BOOST_TEST_MESSAGE("doctor's table on the test setup:\n" << table.out);
    BOOST_TEST(table.exit_code == 0, dump(table));
    BOOST_TEST(table.out.find("CHECK") == 0U);
    BOOST_TEST(table.out.find("FAIL") == std::string::npos);
    BOOST_TEST(table.out.find(" 0 failed") != std::string::npos);

    const auto json = s.doctor({"--json", "--hypervisor", "hypervisor", tmpl});
    BOOST_TEST(json.exit_code == 0, dump(json));
    const auto rows = parse_json(json.out);
    BOOST_TEST(status_of(rows, "oned") == "PASS");
    BOOST_TEST(status_of(rows, "datastore") == "PASS");
    BOOST_TEST(status_of(rows, "restic", "front end") == "PASS");
    BOOST_TEST(status_of(rows, "ssh", "hypervisor") == "PASS");
    BOOST_TEST(status_of(rows, "restic", "hypervisor") == "PASS");
    BOOST_TEST(status_of(rows, "ssh", "backupserver") == "PASS");
    BOOST_TEST(status_of(rows, "restic", "backupserver") == "PASS");
    BOOST_TEST(status_of(rows, "storage") == "PASS");
    BOOST_TEST(status_of(rows, "free space") == "PASS");
    BOOST_TEST(status_of(rows, "password") == "PASS");
    BOOST_TEST(status_of(rows, "nice/ionice", "hypervisor") == "PASS");
    BOOST_TEST(find(rows, "restic", "front end")->detail.find("restic 0.14") != std::string::npos);
    for (const auto &r : rows) BOOST_TEST(r.fix.empty(), r.check << " " << r.target);
    // Nothing secret in what it printed.
    BOOST_TEST(json.out.find(k_password) == std::string::npos);
    BOOST_TEST(table.out.find(k_password) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(datastore_by_id_from_oned_and_unknown_id) {
    scene s;
    const auto ok = s.doctor({"--json", "100"});
    BOOST_TEST(ok.exit_code == 0, dump(ok));
    const auto rows = parse_json(ok.out);
    BOOST_TEST(status_of(rows, "datastore", "datastore 100") == "PASS");
    BOOST_TEST(status_of(rows, "password") == "PASS");
    // Limits not set: the confinement check has nothing to do.
    BOOST_TEST(status_of(rows, "confinement") == "SKIP");
    BOOST_TEST(s.server.call_count("one.datastore.info") >= 1U);

    const auto missing = s.doctor({"--json", "555"});
    BOOST_TEST(missing.exit_code == 1, dump(missing));
    const auto bad = parse_json(missing.out);
    BOOST_TEST(status_of(bad, "datastore") == "FAIL");
    BOOST_TEST(find(bad, "datastore")->fix == "give the id of an existing datastore");
    BOOST_TEST(missing.err.find("checks failed") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(oned_wrong_credentials_and_unreachable) {
    scene s;
    const auto wrong_auth = s.f.dir().write("bad_auth", "oneadmin:not-the-password\n");
    const auto r = s.doctor({"--json", s.template_file()}, {}, {{"oned_auth_file", wrong_auth}});
    BOOST_TEST(r.exit_code == 1, dump(r));
    auto rows = parse_json(r.out);
    BOOST_TEST(status_of(rows, "oned") == "FAIL");
    BOOST_TEST(find(rows, "oned")->detail.find("credentials refused") != std::string::npos);
    BOOST_TEST(find(rows, "oned")->fix.find("oned_auth_file") != std::string::npos);
    BOOST_TEST(r.out.find("not-the-password") == std::string::npos);
    // The rest still passes: one FAIL only.
    BOOST_TEST(r.err.find("doctor: 1 of") != std::string::npos, r.err);

    // A port nothing listens on (the fake's own, after it stopped).
    oned::fake_oned gone;
    gone.start();
    const std::string endpoint = gone.endpoint();
    gone.stop();
    const auto u = s.doctor({"--json", s.template_file()}, {}, {{"oned_endpoint", endpoint}});
    BOOST_TEST(u.exit_code == 1, dump(u));
    rows = parse_json(u.out);
    BOOST_TEST(find(rows, "oned")->detail.find("unreachable") != std::string::npos, find(rows, "oned")->detail);
    BOOST_TEST(find(rows, "oned")->fix.find("oned_endpoint") != std::string::npos);

    // No credentials at all: no client, and a datastore id cannot be read.
    const auto none = s.doctor({"--json", "100"}, {}, {{"oned_auth_file", s.f.dir().file("no-such-auth")}});
    BOOST_TEST(none.exit_code == 1, dump(none));
    rows = parse_json(none.out);
    BOOST_TEST(status_of(rows, "oned") == "FAIL");
    BOOST_TEST(find(rows, "oned")->detail.find("no-such-auth") != std::string::npos, find(rows, "oned")->detail);
    BOOST_TEST(find(rows, "oned")->fix.find("oned_auth_file") != std::string::npos);
    BOOST_TEST(status_of(rows, "datastore", "datastore 100") == "FAIL");
}

BOOST_AUTO_TEST_CASE(hypervisor_with_unknown_host_key) {
    scene s;
    // A third alias of the same sshd whose known_hosts file is empty.
    const auto empty_known = s.f.dir().write("known_hosts.empty", "");
    std::ofstream(s.f.sshd().ssh_config_file(), std::ios::app)
        << "Host stranger\n    HostName 127.0.0.1\n    Port " << s.f.sshd().port() << "\n    User " << s.f.sshd().user()
        << "\n    IdentityFile " << s.f.sshd().identity_file().string() << "\n    UserKnownHostsFile " << empty_known
        << "\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking yes\n    BatchMode yes\n";
    const auto r = s.doctor({"--json", "--hypervisor", "stranger", "--hypervisor", "hypervisor", s.template_file()});
    BOOST_TEST(r.exit_code == 1, dump(r));
    const auto rows = parse_json(r.out);
    const auto *ssh = find(rows, "ssh", "stranger");
    BOOST_REQUIRE(ssh != nullptr);
    BOOST_TEST(ssh->status == "FAIL");
    BOOST_TEST(ssh->detail.find("host key") != std::string::npos, ssh->detail);
    BOOST_TEST(ssh->fix.find("ssh-keyscan -p " + std::to_string(s.f.sshd().port()) + " 127.0.0.1 >> " + empty_known) !=
                   std::string::npos,
               ssh->fix);
    BOOST_TEST(status_of(rows, "restic", "stranger") == "SKIP");
    BOOST_TEST(status_of(rows, "ssh", "hypervisor") == "PASS");
}

BOOST_AUTO_TEST_CASE(restic_missing_on_front_end_and_hypervisor) {
    scene s;
    const auto r =
        s.doctor({"--json", "--hypervisor", "hypervisor", s.template_file()},
                 {{"restic_bin", s.f.dir().file("no-restic")}, {"remote_restic_bin", "/nonexistent/restic"}});
    BOOST_TEST(r.exit_code == 1, dump(r));
    const auto rows = parse_json(r.out);
    BOOST_TEST_MESSAGE("restic missing:\n" << r.out);
    BOOST_TEST(status_of(rows, "restic", "front end") == "FAIL");
    BOOST_TEST(find(rows, "restic", "front end")->fix.find("restic_bin") != std::string::npos);
    BOOST_TEST(status_of(rows, "restic", "hypervisor") == "FAIL");
    BOOST_TEST(find(rows, "restic", "hypervisor")->fix.find("onehost sync") != std::string::npos);
    BOOST_TEST(status_of(rows, "restic", "backupserver") == "FAIL");
    BOOST_TEST(find(rows, "restic", "backupserver")->fix.find("MONITOR copies") != std::string::npos);
    BOOST_TEST(status_of(rows, "ssh", "hypervisor") == "PASS");
}

BOOST_AUTO_TEST_CASE(base_path_read_only_and_full) {
    scene s;
    const std::string base = s.f.dir().file("small");
    fs::create_directories(base);
    BOOST_REQUIRE_MESSAGE(::mount("tmpfs", base.c_str(), "tmpfs", MS_RDONLY, "size=1m") == 0,
                          "mounting a tmpfs needs root");
    const auto r = s.doctor({"--json", s.template_file({{"BASE_PATH", base}})});
    ::umount2(base.c_str(), MNT_DETACH);
    BOOST_TEST(r.exit_code == 1, dump(r));
    const auto rows = parse_json(r.out);
    BOOST_TEST(status_of(rows, "storage") == "FAIL");
    BOOST_TEST(find(rows, "storage")->detail.find("not writable") != std::string::npos, find(rows, "storage")->detail);
    BOOST_TEST(status_of(rows, "free space") == "FAIL");
    BOOST_TEST(find(rows, "free space")->detail.find("below 1 GiB") != std::string::npos);
    // No repository there: the password cannot be tried, which is no failure.
    BOOST_TEST(status_of(rows, "password") == "SKIP");
}

BOOST_AUTO_TEST_CASE(wrong_password) {
    scene s;
    const auto r = s.doctor({"--json", s.template_file({{"RESTIC_PASSWORD", "not the password"}})});
    BOOST_TEST(r.exit_code == 1, dump(r));
    const auto rows = parse_json(r.out);
    BOOST_TEST(status_of(rows, "password") == "FAIL");
    BOOST_TEST(find(rows, "password")->detail == "the password does not open " + s.f.base_path() + "/7");
    BOOST_TEST(r.out.find("not the password") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(nice_missing_on_the_hypervisor) {
    scene s;
    // "localhost" is a local host (local_hosts): its commands run with the
    // host's own PATH, here one without nice.
    const auto path = path_without(s.f, {"nice"});
    const auto tmpl = s.template_file({{"RESTIC_NICE", "5"}});
    const auto r = s.doctor({"--json", "--hypervisor", "localhost", tmpl}, {}, {}, {{"PATH", path}});
    BOOST_TEST(r.exit_code == 1, dump(r));
    const auto rows = parse_json(r.out);
    BOOST_TEST(status_of(rows, "nice/ionice", "localhost") == "FAIL");
    BOOST_TEST(find(rows, "nice/ionice", "localhost")->fix.find("coreutils") != std::string::npos);
    // And with nice there, it passes.
    const auto ok = s.doctor({"--json", "--hypervisor", "localhost", tmpl});
    BOOST_TEST(status_of(parse_json(ok.out), "nice/ionice", "localhost") == "PASS", dump(ok));
}

BOOST_AUTO_TEST_CASE(systemd_slice_delegation) {
    scene s;
    // The stand-ins for systemd-run and systemctl --user (slice_test.cpp).
    const std::string state = s.f.dir().file("systemd-state");
    const std::string units = s.f.dir().file("units");
    const std::string cgroup = s.f.dir().file("user@.service");
    fs::create_directories(state);
    fs::create_directories(cgroup);
    for (const auto &[name, mode] : {std::pair{"systemd-run", "run"}, std::pair{"systemctl", "ctl"}}) {
        const std::string p = state + "/" + name;
        std::ofstream(p) << "#!/bin/sh\nexec '" << FAKE_SYSTEMD_PATH << "' " << mode << " '" << state << "' \"$@\"\n";
        fs::permissions(p, fs::perms::owner_all);
    }
    const std::map<std::string, std::string> cfg = {{"systemd_run", state + "/systemd-run"},
                                                    {"systemctl", state + "/systemctl"},
                                                    {"systemd_unit_dir", units},
                                                    {"systemd_user_cgroup", cgroup}};
    const auto tmpl = s.template_file({{"ID", "100"}, {"RESTIC_CPU_QUOTA", "50"}, {"RESTIC_MEMORY_MAX_MB", "512"}});

    std::ofstream(cgroup + "/cgroup.controllers") << "cpuset cpu io memory pids\n";
    const auto ok = s.doctor({"--json", "--hypervisor", "hypervisor", tmpl}, cfg);
    BOOST_TEST(ok.exit_code == 0, dump(ok));
    BOOST_TEST(status_of(parse_json(ok.out), "systemd slice", "hypervisor") == "PASS");
    BOOST_TEST(fs::exists(units + "/backup.100.slice"));

    std::ofstream(cgroup + "/cgroup.controllers") << "cpuset io pids\n";
    const auto bad = s.doctor({"--json", "--hypervisor", "hypervisor", tmpl}, cfg);
    BOOST_TEST(bad.exit_code == 1, dump(bad));
    const auto rows = parse_json(bad.out);
    BOOST_TEST_MESSAGE("slice failure: " << find(rows, "systemd slice", "hypervisor")->detail);
    BOOST_TEST(status_of(rows, "systemd slice", "hypervisor") == "FAIL");
    BOOST_TEST(find(rows, "systemd slice", "hypervisor")->detail.find("cpu memory") != std::string::npos,
               find(rows, "systemd slice", "hypervisor")->detail);
}

BOOST_AUTO_TEST_CASE(template_file_errors) {
    scene s;
    const auto bad = s.f.dir().write("bad.tmpl", "DS_MAD = restic\nBASE_PATH \"/x\"\n");
    const auto r = s.doctor({bad});
    BOOST_TEST(r.exit_code == 2, dump(r));
    BOOST_TEST(r.err == "doctor: " + bad + ": line 2: expected '=' after BASE_PATH\n");
    BOOST_TEST(r.out.empty());

    const auto missing = s.doctor({s.f.dir().file("no-such.tmpl")});
    BOOST_TEST(missing.exit_code == 2, dump(missing));
    BOOST_TEST(missing.err.find("cannot read the template file") != std::string::npos);

    // Neither BASE_PATH nor ID: the datastore check says so.
    const auto no_base = s.doctor({"--json", s.template_file({{"BASE_PATH", std::nullopt}})});
    BOOST_TEST(no_base.exit_code == 1, dump(no_base));
    const auto rows = parse_json(no_base.out);
    BOOST_TEST(status_of(rows, "datastore") == "FAIL");
    BOOST_TEST(find(rows, "datastore")->detail.find("BASE_PATH missing and datastore ID unknown") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(s3_bucket_reachable_with_the_keys_or_not) {
    scene s;
    ceph_fixture &ceph = ceph_fixture::shared();
    const std::string bucket = "oneds-doctor-" + std::to_string(::getpid());
    s.f.use_s3({ceph.s3_endpoint(), bucket, ceph.access_key(), ceph.secret_key()});
    const auto init = s.f.restic(s.f.base_path() + "/7", {"init"});  // makes the bucket
    BOOST_REQUIRE_MESSAGE(init.exit_code == 0, init.err);
    const std::map<std::string, std::optional<std::string>> s3 = {{"RESTIC_SFTP_SERVER", std::nullopt},
                                                                  {"RESTIC_SFTP_USER", std::nullopt},
                                                                  {"RESTIC_BACKEND", "S3"},
                                                                  {"RESTIC_S3_ENDPOINT", ceph.s3_endpoint()},
                                                                  {"RESTIC_S3_BUCKET", bucket},
                                                                  {"RESTIC_S3_ACCESS_KEY_ID", ceph.access_key()},
                                                                  {"RESTIC_S3_SECRET_ACCESS_KEY", ceph.secret_key()}};
    const auto ok = s.doctor({"--json", s.template_file(s3)});
    BOOST_TEST(ok.exit_code == 0, dump(ok));
    auto rows = parse_json(ok.out);
    BOOST_TEST(status_of(rows, "storage", bucket) == "PASS");
    BOOST_TEST(find(rows, "ssh", "backupserver") == nullptr);  // no backup server with S3

    auto wrong_key = s3;
    wrong_key["RESTIC_S3_SECRET_ACCESS_KEY"] = "not-the-secret-key";
    const auto bad = s.doctor({"--json", s.template_file(wrong_key)});
    BOOST_TEST(bad.exit_code == 1, dump(bad));
    rows = parse_json(bad.out);
    BOOST_TEST(status_of(rows, "storage", bucket) == "FAIL");
    BOOST_TEST(find(rows, "storage", bucket)->fix.find("RESTIC_S3_SECRET_ACCESS_KEY") != std::string::npos);
    BOOST_TEST(bad.out.find("not-the-secret-key") == std::string::npos);
    BOOST_TEST(ok.out.find(ceph.secret_key()) == std::string::npos);

    auto gone = s3;
    gone["RESTIC_S3_BUCKET"] = bucket + "-gone";
    const auto missing = s.doctor({"--json", s.template_file(gone)});
    BOOST_TEST(missing.exit_code == 1, dump(missing));
    rows = parse_json(missing.out);
    BOOST_TEST(find(rows, "storage", "-gone")->fix == "create the bucket " + bucket + "-gone");
}

BOOST_AUTO_TEST_CASE(table_puts_the_fix_under_each_failure) {
    scene s;
    const auto empty_known = s.f.dir().write("known_hosts.empty", "");
    std::ofstream(s.f.sshd().ssh_config_file(), std::ios::app)
        << "Host stranger\n    HostName 127.0.0.1\n    Port " << s.f.sshd().port() << "\n    User " << s.f.sshd().user()
        << "\n    IdentityFile " << s.f.sshd().identity_file().string() << "\n    UserKnownHostsFile " << empty_known
        << "\n    GlobalKnownHostsFile /dev/null\n    StrictHostKeyChecking yes\n    BatchMode yes\n";
    // stranger first: it is the same sshd as hypervisor, whose multiplexed
    // connection (ControlPath by host name, port and user) it would reuse.
    const auto r = s.doctor({"--hypervisor", "stranger", "--hypervisor", "hypervisor",
                             s.template_file({{"RESTIC_PASSWORD", "not the password"}, {"RESTIC_NICE", "10"}})});
    BOOST_TEST_MESSAGE("doctor's table with failures:\n" << r.out << r.err);
    BOOST_TEST(r.exit_code == 1, dump(r));
    BOOST_TEST(r.err.ends_with("\ndoctor: 2 of 14 checks failed\n"), r.err);
    const auto lines = oneds::common::split(r.out, '\n');
    std::size_t fails = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].find("  FAIL  ") == std::string::npos) continue;
        ++fails;
        BOOST_REQUIRE(i + 1 < lines.size());
        BOOST_TEST(oneds::common::trim(lines[i + 1]).starts_with("fix: "), lines[i + 1]);
    }
    BOOST_TEST(fails == 2U);
    BOOST_TEST(r.out.find("14 checks, 2 failed") != std::string::npos);
}
