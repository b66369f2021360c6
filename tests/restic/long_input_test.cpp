#define BOOST_TEST_MODULE long_input
// Inputs the fuzzers (tests/fuzz) found crashing the parsers: values long
// enough to overflow the stack in libstdc++'s recursive std::regex, and a
// restic version that does not fit an int, JSON numbers outside the range of
// the fields they fill. Each must now parse or be refused.
#include "plugin/restic/cli/restic_output.hpp"
#include "plugin/restic/model/backup_image.hpp"
#include "plugin/restic/repo_ops.hpp"

#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <variant>

using namespace oneds::restic;

namespace {

const std::size_t k_long = std::size_t{1} << 20;

}  // namespace

BOOST_AUTO_TEST_CASE(a_restic_url_with_a_long_file_name_parses) {
    const auto u = parse_restic_url("restic://100//0:a47997ab/var/lib/one/datastores/0/54/backup/disk.0." +
                                    std::string(k_long, '1'));
    BOOST_TEST(u.vm_id == "54");
    BOOST_TEST(u.disk_index == "0");
    BOOST_CHECK_THROW(parse_restic_url("restic://100//0:a47997ab/x/backup/" + std::string(k_long, 'd')),
                      std::runtime_error);
}

BOOST_AUTO_TEST_CASE(the_vm_of_a_long_image_path_is_found) {
    pugi::xml_document doc;
    const std::string xml = "<DS_DRIVER_ACTION_DATA><IMAGE><SOURCE>a47997ab</SOURCE><PATH>/a/54/backup/" +
                            std::string(k_long, 'f') + "</PATH></IMAGE></DS_DRIVER_ACTION_DATA>";
    BOOST_TEST_REQUIRE(doc.load_string(xml.c_str()));
    BOOST_TEST(parse_backup_image(doc).repo_id() == "54");
}

BOOST_AUTO_TEST_CASE(snapshot_paths_with_long_disk_names_are_sorted) {
    snapshot_info s;
    s.paths = {"/b/disk." + std::string(k_long, '7'), "/b/disk.tpm.0", "/b/vm.xml"};
    BOOST_TEST(s.disk_paths().size() == 1u);
    BOOST_TEST(s.other_paths().size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_long_lock_holder_and_a_huge_version_do_not_crash) {
    const auto lock = parse_lock_conflict("repository is already locked by PID 1 on h by " + std::string(k_long, 'u') +
                                          " (UID 1, GID 1)\n");
    BOOST_TEST_REQUIRE(lock.has_value());
    BOOST_TEST(lock->describe() == "a holder restic did not name");
    BOOST_TEST(parse_lock_conflict("already locked by PID 7 on h by u (UID 1, GID 1)")->pid == "7");
    BOOST_TEST(!parse_version("restic 99999999999.1.2").has_value());
    BOOST_TEST(!parse_version("restic " + std::string(k_long, '1') + ".1.2").has_value());
    BOOST_TEST(parse_version("restic 0.14.0 compiled with go1.19.8 on linux/amd64")->str() == "0.14.0");
}

BOOST_AUTO_TEST_CASE(a_long_prune_max_unused_is_checked) {
    for (const auto &[value, ok] :
         {std::pair{std::string(k_long, '9'), true}, std::pair{std::string("10%"), true},
          std::pair{std::string(k_long, '9') + "x", false}, std::pair{std::string("%"), false}}) {
        request_doc d;
        const std::string xml = "<DS_DRIVER_ACTION_DATA><DATASTORE><TEMPLATE><RESTIC_PRUNE_MAX_UNUSED>" + value +
                                "</RESTIC_PRUNE_MAX_UNUSED></TEMPLATE></DATASTORE></DS_DRIVER_ACTION_DATA>";
        BOOST_TEST_REQUIRE(d.doc.load_string(xml.c_str()));
        BOOST_TEST(prune_max_unused(d).has_value() == ok, value.substr(0, 12));
    }
}

BOOST_AUTO_TEST_CASE(json_byte_counts_outside_uint64_are_clamped) {
    const auto line = parse_backup_line(R"({"message_type":"status","bytes_done":1e300,"total_bytes":-5.5})");
    const auto *s = std::get_if<backup_status>(&line);
    BOOST_TEST_REQUIRE(s != nullptr);
    BOOST_TEST(s->bytes_done == std::numeric_limits<std::uint64_t>::max());
    BOOST_TEST(s->total_bytes == 0u);
}

BOOST_AUTO_TEST_CASE(disk_ids_and_backup_vms_of_long_names) {
    // restore, stat and increment_flatten read these from snapshot paths and
    // image PATHs of any length.
    BOOST_TEST(disk_id_of("disk.2.rbd2") == "2");
    BOOST_TEST(disk_id_of("disk.tpm.0") == "");
    BOOST_TEST(disk_id_of("x.disk.tpm.disk.13") == "13");
    BOOST_TEST(disk_id_of("disk." + std::string(k_long, '7')) == std::string(k_long, '7'));
    BOOST_TEST(disk_id_of(std::string(k_long, 'd') + "disk.") == "");
    BOOST_TEST(vm_of_backup_path("/var/lib/one/datastores/0/54/backup/disk.0.0") == "54");
    BOOST_TEST(vm_of_backup_path("/a/5x/backup/disk.0") == "");
    BOOST_TEST(vm_of_backup_path("/" + std::string(k_long, '9') + "/backup/f") == std::string(k_long, '9'));
}
