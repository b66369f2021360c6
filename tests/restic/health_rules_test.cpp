#define BOOST_TEST_MODULE restic_health_rules
// The health rules (docs/health.md) and the state store's files, without
// restic or oned: health_attributes(), changed_template() and ds_state.
#include "plugin/restic/health.hpp"
#include "plugin/restic/model/ds_state.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <sys/stat.h>

using namespace oneds::restic;
namespace fs = std::filesystem;

namespace {

health_facts healthy() {
    health_facts f;
    f.storage_ok = true;
    f.stale_locks = 0;
    f.server_restic = restic_version{0, 14, 0};
    f.frontend_restic = restic_version{0, 14, 0};
    f.compare_versions = true;
    return f;
}

struct scratch {
    std::string dir;
    scratch() {
        std::string t = (fs::temp_directory_path() / "oneds-health-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(t.data()) != nullptr);
        dir = t;
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_healthy_datastore_is_ok_with_none_verified) {
    const auto a = health_attributes(healthy());
    BOOST_TEST(a.at("RESTIC_HEALTH_STATE") == "OK");
    BOOST_TEST(a.at("RESTIC_HEALTH_REASON") == "");
    BOOST_TEST(a.at("RESTIC_HEALTH_STORAGE") == "OK");
    BOOST_TEST(a.at("RESTIC_HEALTH_RESTIC_VERSION") == "0.14.0");
    BOOST_TEST(a.at("RESTIC_HEALTH_STALE_LOCKS") == "0");
    BOOST_TEST(a.at("RESTIC_HEALTH_LAST_BACKUP") == "");
    BOOST_TEST(a.at("RESTIC_HEALTH_VERIFY_RESULT") == "NONE");
    BOOST_TEST(a.size() == std::size(k_health_keys));
}

BOOST_AUTO_TEST_CASE(errors_win_over_warnings_and_the_reason_is_the_worst_finding) {
    auto f = healthy();
    f.server_restic = restic_version{0, 13, 1};
    BOOST_TEST(health_attributes(f).at("RESTIC_HEALTH_STATE") == "WARNING");
    BOOST_TEST(health_attributes(f).at("RESTIC_HEALTH_REASON").find("older than the front end's 0.14.0") !=
               std::string::npos);
    f.verifications["7"] = {1764525600, "1/8", "damaged", "pack 1a2b\nmissing", "7"};
    const auto a = health_attributes(f);
    BOOST_TEST(a.at("RESTIC_HEALTH_STATE") == "ERROR");
    BOOST_TEST(a.at("RESTIC_HEALTH_REASON").rfind("verification found damage in VM 7: pack 1a2b missing", 0) == 0u);
    BOOST_TEST(a.at("RESTIC_HEALTH_VERIFY_RESULT").rfind("DAMAGED: 7: pack 1a2b", 0) == 0u);
    BOOST_TEST(a.at("RESTIC_HEALTH_VERIFY_RESULT").find('\n') == std::string::npos);
    BOOST_TEST(a.at("RESTIC_HEALTH_LAST_VERIFY") == "2025-11-30T18:00:00Z");
    f = healthy();
    f.storage_ok = false;
    f.storage_problem = "sftp://oneadmin@backup: connection refused";
    BOOST_TEST(health_attributes(f).at("RESTIC_HEALTH_STATE") == "ERROR");
    BOOST_TEST(health_attributes(f).at("RESTIC_HEALTH_STORAGE") == "sftp://oneadmin@backup: connection refused");
}

BOOST_AUTO_TEST_CASE(last_backup_is_the_last_success_and_a_failure_warns) {
    auto f = healthy();
    ds_state::backup_record ok{1764525600, 12.5, 1000, true, "", "7", 1764525600};
    ds_state::backup_record failed{1764529200, 3, 0, false, "cancelled", "8", 1764440000};
    f.backups = {{"7", ok}, {"8", failed}};
    const auto a = health_attributes(f);
    BOOST_TEST(a.at("RESTIC_HEALTH_LAST_BACKUP") == "2025-11-30T18:00:00Z");
    BOOST_TEST(a.at("RESTIC_HEALTH_STATE") == "WARNING");
    BOOST_TEST(a.at("RESTIC_HEALTH_REASON") == "the last backup of VM 8 failed: cancelled");
}

BOOST_AUTO_TEST_CASE(only_changed_keys_are_sent_quoted_for_oned) {
    std::map<std::string, std::string> wanted{
        {"RESTIC_HEALTH_STATE", "WARNING"}, {"RESTIC_HEALTH_REASON", "say \"hi\""}, {"RESTIC_HEALTH_LAST_BACKUP", ""}};
    std::map<std::string, std::string> current{{"RESTIC_HEALTH_STATE", "OK"}};
    BOOST_TEST(changed_template(current, wanted) ==
               "RESTIC_HEALTH_STATE=\"WARNING\"\nRESTIC_HEALTH_REASON=\"say \\\"hi\\\"\"\n");
    current = {{"RESTIC_HEALTH_STATE", "WARNING"}, {"RESTIC_HEALTH_REASON", "say \"hi\""}};
    BOOST_TEST(changed_template(current, wanted) == "");
    // A trailing backslash cannot be written in oned's syntax ("x\" would
    // not end): it is dropped, and what oned then holds is not changed again.
    wanted = {{"RESTIC_HEALTH_REASON", "path C:\\"}};
    BOOST_TEST(changed_template({}, wanted) == "RESTIC_HEALTH_REASON=\"path C:\"\n");
    BOOST_TEST(changed_template({{"RESTIC_HEALTH_REASON", "path C:"}}, wanted) == "");
}

BOOST_AUTO_TEST_CASE(the_state_store_keeps_the_last_success_across_a_failure) {
    scratch s;
    const ds_state::store st(s.dir + "/state", 100);
    BOOST_REQUIRE(st.record_backup("7", {1000, 1, 42, true, "", "7", 0}));
    BOOST_REQUIRE(st.record_backup("7", {2000, 1, 0, false, "Error: boom\nmore", "7", 0}));
    const auto b = st.backups();
    BOOST_REQUIRE(b);
    BOOST_TEST(b->at("7").ok == false);
    BOOST_TEST(b->at("7").message == "Error: boom more");
    BOOST_TEST(b->at("7").last_ok_time == 1000);
    struct stat info {};
    BOOST_REQUIRE(::stat((s.dir + "/state/100").c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 0777) == 0700u);
    BOOST_REQUIRE(::stat((s.dir + "/state/100/backups.json").c_str(), &info) == 0);
    BOOST_TEST((info.st_mode & 0777) == 0600u);
    // verify.json as the verification writes it; a broken one is an error naming it.
    std::ofstream(s.dir + "/state/100/verify.json")
        << R"({"repositories": {"job_3": {"time": 5, "subset": "2/8", "result": "ok", "message": "", "vm": ""}}})";
    const auto v = st.verifications();
    BOOST_REQUIRE(v);
    BOOST_TEST(v->at("job_3").subset == "2/8");
    std::ofstream(s.dir + "/state/100/verify.json") << "{nope";
    const auto broken = st.verifications();
    BOOST_REQUIRE(!broken);
    BOOST_TEST(broken.err().message.find("verify.json") != std::string::npos);
    BOOST_TEST(ds_state::datastores(s.dir + "/state") == std::vector<std::int64_t>{100});
}
