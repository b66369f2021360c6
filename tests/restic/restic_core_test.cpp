#define BOOST_TEST_MODULE restic_core
// Unit tests of the restic driver's pure logic: attributes, command lines,
// restic's output, exit classification.
#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/cli/restic_command.hpp"
#include "plugin/restic/cli/restic_output.hpp"
#include "plugin/restic/cli/restic_runner.hpp"
#include "plugin/restic/cli/systemd_slice.hpp"
#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/verify.hpp"
#include "plugin/restic/model/datastore_conf.hpp"
#include "plugin/restic/repo_ops.hpp"
#include "tests/integration/action_process.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <algorithm>
#include <regex>
#include <cstdio>
#include <ostream>
#include <fstream>

using namespace oneds::restic;

namespace oneds::restic {
std::ostream &operator<<(std::ostream &os, exit_kind k) { return os << static_cast<int>(k); }
}  // namespace oneds::restic
namespace bdata = boost::unit_test::data;

namespace {

datastore_attributes parse(const std::string &template_xml, const std::string &extra = "<ID>100</ID>") {
    pugi::xml_document doc;
    const std::string xml = "<DATASTORE>" + extra + "<TEMPLATE>" + template_xml + "</TEMPLATE></DATASTORE>";
    BOOST_REQUIRE(doc.load_string(xml.c_str()));
    return parse_datastore(doc.child("DATASTORE"));
}

std::string parse_error(const std::string &template_xml) {
    try {
        parse(template_xml);
    } catch (const attribute_error &e) {
        return e.what();
    }
    return "no error";
}

const std::string k_min = "<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>srv</RESTIC_SFTP_SERVER>";
const std::string k_s3 =
    "<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>s3</RESTIC_BACKEND>"
    "<RESTIC_S3_ACCESS_KEY_ID>AKIDEXAMPLE</RESTIC_S3_ACCESS_KEY_ID>"
    "<RESTIC_S3_SECRET_ACCESS_KEY>wJalr-s3cr3t</RESTIC_S3_SECRET_ACCESS_KEY><RESTIC_S3_BUCKET>one-bk</"
    "RESTIC_S3_BUCKET>";

}  // namespace

BOOST_AUTO_TEST_SUITE(attributes)

BOOST_AUTO_TEST_CASE(defaults_follow_the_stock_driver) {
    auto a = parse(k_min);
    BOOST_TEST(a.base_path == "/var/lib/one/datastores/100");
    BOOST_TEST(a.sftp_user == "oneadmin");
    BOOST_TEST(a.connections == 5);
    BOOST_TEST(a.compression == "auto");
    BOOST_TEST(!a.bwlimit.has_value());
    BOOST_TEST(a.maxproc == -1);
    BOOST_TEST(a.tmp_dir == "/var/tmp");
    BOOST_TEST((a.backend == backend_kind::sftp));
}

BOOST_DATA_TEST_CASE(one_pair_of_surrounding_quotes_is_stripped,
                     bdata::make({"pw", "\"pw\"", "'pw'", "\"'pw'\"", "p\"w", "\"pw", "'p w $x`'"}) ^
                         bdata::make({"pw", "pw", "pw", "'pw'", "p\"w", "\"pw", "p w $x`"}),
                     raw, expected) {
    pugi::xml_document doc;
    auto ds = doc.append_child("DATASTORE");
    ds.append_child("ID").text().set(1);
    auto t = ds.append_child("TEMPLATE");
    t.append_child("RESTIC_PASSWORD").text().set(raw);
    t.append_child("RESTIC_SFTP_SERVER").text().set("srv");
    BOOST_TEST(parse_datastore(ds).password == expected);
}

BOOST_DATA_TEST_CASE(
    bad_values_name_the_attribute,
    bdata::make(std::vector<std::string>{
        "<RESTIC_PASSWORD>x</RESTIC_PASSWORD>", "<RESTIC_SFTP_SERVER>s</RESTIC_SFTP_SERVER>",
        k_min + "<RESTIC_COMPRESSION>MAX</RESTIC_COMPRESSION>", k_min + "<RESTIC_CONNECTIONS>five</RESTIC_CONNECTIONS>",
        k_min + "<RESTIC_CONNECTIONS>0</RESTIC_CONNECTIONS>", k_min + "<RESTIC_BWLIMIT>10M</RESTIC_BWLIMIT>",
        k_min + "<RESTIC_MAXPROC>1.5</RESTIC_MAXPROC>", k_min + "<RESTIC_BACKEND>NFS</RESTIC_BACKEND>",
        k_min + "<RESTIC_NICE>20</RESTIC_NICE>", k_min + "<RESTIC_IONICE>low</RESTIC_IONICE>",
        k_min + "<RESTIC_CPU_QUOTA>half</RESTIC_CPU_QUOTA>"}) ^
        bdata::make({"RESTIC_SFTP_SERVER is required", "RESTIC_PASSWORD is required",
                     "RESTIC_COMPRESSION must be auto, off or max, got 'MAX'",
                     "RESTIC_CONNECTIONS must be an integer from 1 to 1024, got 'five'",
                     "RESTIC_CONNECTIONS must be an integer from 1 to 1024, got '0'",
                     "RESTIC_BWLIMIT must be an integer from 0 to 1073741824 (-1 for none), got '10M'",
                     "RESTIC_MAXPROC must be", "Unknown RESTIC_BACKEND: NFS",
                     "RESTIC_NICE must be an integer from -20 to 19 (-1 for none), got '20'",
                     "RESTIC_IONICE must be an integer from 0 to 7 (-1 for none), got 'low'",
                     "RESTIC_CPU_QUOTA must be an integer from 1 to 100000 (-1 for none), got 'half'"}),
    xml, expected) {
    const auto err = parse_error(xml);
    BOOST_TEST(err.find(expected) != std::string::npos, "'" << err << "' should contain '" << expected << "'");
}

BOOST_AUTO_TEST_CASE(confinement_is_nice_then_ionice_and_off_at_minus_one) {
    const std::vector<std::string> restic = {"restic", "backup"};
    BOOST_TEST(confined_argv(parse(k_min), restic) == restic, boost::test_tools::per_element());
    BOOST_TEST(confined_argv(parse(k_min + "<RESTIC_NICE>-1</RESTIC_NICE><RESTIC_IONICE>-1</RESTIC_IONICE>"), restic) ==
                   restic,
               boost::test_tools::per_element());
    BOOST_TEST(confined_argv(parse(k_min + "<RESTIC_IONICE>7</RESTIC_IONICE><RESTIC_NICE>-5</RESTIC_NICE>"), restic) ==
                   (std::vector<std::string>{"nice", "-n", "-5", "ionice", "-c2", "-n7", "restic", "backup"}),
               boost::test_tools::per_element());
    BOOST_TEST(confined_argv(parse(k_min + "<RESTIC_IONICE>0</RESTIC_IONICE>"), restic) ==
                   (std::vector<std::string>{"ionice", "-c2", "-n0", "restic", "backup"}),
               boost::test_tools::per_element());
    const auto a = parse(k_min +
                         "<RESTIC_MAX_RIOPS>100</RESTIC_MAX_RIOPS><RESTIC_CPU_QUOTA>-1</RESTIC_CPU_QUOTA>"
                         "<RESTIC_MEMORY_MAX_MB>512</RESTIC_MEMORY_MAX_MB>");
    BOOST_TEST(a.slice_limits_set == (std::vector<std::string>{"RESTIC_MAX_RIOPS", "RESTIC_MEMORY_MAX_MB"}),
               boost::test_tools::per_element());
}

// docs/confinement.md: the slice file exactly as stock writes it (an echo of
// a here-document: a blank line at the end), unset limits as empty
// assignments; -1 and an empty value are unset.
BOOST_AUTO_TEST_CASE(slice_file_is_the_stock_one_with_unset_keys_empty) {
    const std::string dir = "/var/lib/one/datastores/0/7/backup";
    const auto all = parse(k_min +
                           "<RESTIC_MAX_RIOPS>100</RESTIC_MAX_RIOPS><RESTIC_MAX_WIOPS>200</RESTIC_MAX_WIOPS>"
                           "<RESTIC_CPU_QUOTA>150</RESTIC_CPU_QUOTA><RESTIC_MEMORY_MAX_MB>512</RESTIC_MEMORY_MAX_MB>");
    BOOST_TEST(all.slice_confined());
    BOOST_TEST(slice_name(all) == "backup.100.slice");
    BOOST_TEST(slice_file_content(all, dir) == "[Slice]\nCPUQuota=150%\nMemoryMax=512M\nIOReadIOPSMax=" + dir +
                                                   " 100\nIOWriteIOPSMax=" + dir + " 200\n\n");
    BOOST_TEST(needed_controllers(all) == "cpu memory io");
    const auto some = parse(k_min +
                            "<RESTIC_MAX_RIOPS>-1</RESTIC_MAX_RIOPS><RESTIC_MAX_WIOPS></RESTIC_MAX_WIOPS>"
                            "<RESTIC_CPU_QUOTA> 50 </RESTIC_CPU_QUOTA>");
    BOOST_TEST(some.slice_limits_set == std::vector<std::string>{"RESTIC_CPU_QUOTA"}, boost::test_tools::per_element());
    BOOST_TEST(slice_file_content(some, dir) ==
               "[Slice]\nCPUQuota=50%\nMemoryMax=\nIOReadIOPSMax=\nIOWriteIOPSMax=\n\n");
    BOOST_TEST(needed_controllers(some) == "cpu");
    const auto none = parse(k_min + "<RESTIC_MEMORY_MAX_MB></RESTIC_MEMORY_MAX_MB><RESTIC_NICE>5</RESTIC_NICE>");
    BOOST_TEST(!none.slice_confined());
    // A folder that a unit file would split is refused while an IOPS limit names it.
    BOOST_CHECK_EXCEPTION(slice_file_content(all, "/a b/backup"), attribute_error, [](const attribute_error &e) {
        return std::string(e.what()).starts_with("RESTIC_MAX_RIOPS is set but the backup folder /a b/backup holds ' '");
    });
    BOOST_TEST(slice_file_content(some, "/a b%/backup").starts_with("[Slice]\nCPUQuota=50%"));
}

BOOST_DATA_TEST_CASE(
    slice_limits_out_of_range_or_not_integers_name_the_attribute,
    bdata::make(std::vector<std::string>{
        "<RESTIC_CPU_QUOTA>0</RESTIC_CPU_QUOTA>", "<RESTIC_CPU_QUOTA>100001</RESTIC_CPU_QUOTA>",
        "<RESTIC_MEMORY_MAX_MB>0x10</RESTIC_MEMORY_MAX_MB>", "<RESTIC_MEMORY_MAX_MB>-2</RESTIC_MEMORY_MAX_MB>",
        "<RESTIC_MAX_RIOPS>1e3</RESTIC_MAX_RIOPS>", "<RESTIC_MAX_WIOPS>1000000001</RESTIC_MAX_WIOPS>",
        "<RESTIC_MAX_WIOPS>1_000</RESTIC_MAX_WIOPS>"}) ^
        bdata::make({"RESTIC_CPU_QUOTA must be an integer from 1 to 100000 (-1 for none), got '0'",
                     "RESTIC_CPU_QUOTA must be an integer from 1 to 100000 (-1 for none), got '100001'",
                     "RESTIC_MEMORY_MAX_MB must be an integer from 1 to 1073741824 (-1 for none), got '0x10'",
                     "RESTIC_MEMORY_MAX_MB must be an integer from 1 to 1073741824 (-1 for none), got '-2'",
                     "RESTIC_MAX_RIOPS must be an integer from 1 to 1000000000 (-1 for none), got '1e3'",
                     "RESTIC_MAX_WIOPS must be an integer from 1 to 1000000000 (-1 for none), got "
                     "'1000000001'",
                     "RESTIC_MAX_WIOPS must be an integer from 1 to 1000000000 (-1 for none), got '1_000'"}),
    xml, expected) {
    BOOST_TEST(parse_error(k_min + xml) == expected);
}

// The slice wins over nice and ionice: the launcher, no nice, no ionice; the
// environment as --setenv, the password on stdin here too, nothing secret in
// the environment.
BOOST_AUTO_TEST_CASE(slice_wins_over_nice_and_the_password_goes_on_stdin) {
    const auto a =
        parse(k_min +
              "<RESTIC_NICE>10</RESTIC_NICE><RESTIC_IONICE>5</RESTIC_IONICE><RESTIC_MAXPROC>2</RESTIC_MAXPROC>"
              "<RESTIC_MAX_WIOPS>300</RESTIC_MAX_WIOPS>");
    restic_command c;
    c.site = {"", "restic", "/repo", "", "/repo", false, "", ""};
    c.subcommand = "backup";
    c.confined = true;
    c.confine_path = "/d/backup";
    c.systemd = {"/t/systemd-run", "/t/systemctl", "/t/units", "/t/cg"};
    const auto cmd = process_command(c, a);
    BOOST_TEST_REQUIRE(cmd.argv.size() > 13U);
    const std::vector<std::string> head(cmd.argv.begin(), cmd.argv.begin() + 2);
    BOOST_TEST(head == (std::vector<std::string>{"sh", "-c"}), boost::test_tools::per_element());
    const std::vector<std::string> rest(cmd.argv.begin() + 3, cmd.argv.end());
    const std::vector<std::string> expected = {
        "oneds-slice",
        "/t/systemd-run",
        "/t/systemctl",
        "/t/units",
        "/t/cg",
        "backup.100.slice",
        "[Slice]\nCPUQuota=\nMemoryMax=\nIOReadIOPSMax=\nIOWriteIOPSMax=/d/backup 300\n\n",
        "io",
        "--setenv=GOMAXPROCS=2",
        "--setenv=RESTIC_PROGRESS_FPS=1",
        "restic",
        "--repo=/repo",
        "backup"};
    BOOST_TEST(rest == expected, boost::test_tools::per_element());
    BOOST_TEST(cmd.env.empty());
    BOOST_TEST(cmd.secret_env.empty());
    BOOST_TEST(cmd.stdin_data == "pw\n");
    // Not confined (every other restic): the usual environment.
    c.confined = false;
    const auto plain = process_command(c, a);
    BOOST_TEST(plain.argv.front() == "restic");
    BOOST_TEST(plain.env.at("RESTIC_PASSWORD") == "pw");
}

// An S3 backup in a slice: the keys go on stdin before the password and are
// read inside the unit; only the region is a --setenv.
BOOST_AUTO_TEST_CASE(s3_keys_in_a_slice_go_on_stdin_never_as_setenv) {
    const auto a = parse(k_s3 + "<RESTIC_CPU_QUOTA>50</RESTIC_CPU_QUOTA>");
    restic_command c;
    c.site = {"node1", "restic", "s3:s3.amazonaws.com/one-bk/7", "", a.base_path + "/7", false, "", ""};
    c.subcommand = "backup";
    c.confined = true;
    c.confine_path = "/d/backup";
    c.systemd = {"/t/systemd-run", "/t/systemctl", "/t/units", "/t/cg"};
    const auto cmd = process_command(c, a);
    BOOST_TEST(cmd.stdin_data == "AKIDEXAMPLE\nwJalr-s3cr3t\npw\n");
    BOOST_TEST(cmd.env.empty());
    const auto unit = std::find(cmd.argv.begin(), cmd.argv.end(), "--setenv=RESTIC_PROGRESS_FPS=1");
    BOOST_TEST_REQUIRE((unit != cmd.argv.end()));
    BOOST_TEST((std::find(cmd.argv.begin(), cmd.argv.end(), "--setenv=AWS_REGION=us-east-1") != cmd.argv.end()));
    // What the unit runs: the key reader, then restic.
    const std::vector<std::string> in_unit(unit + 1, unit + 6);
    BOOST_TEST(in_unit[0] == "sh");
    BOOST_TEST(in_unit[3] == "oneds-s3");
    BOOST_TEST(in_unit[4] == "restic");
    for (const auto &w : cmd.argv) {
        BOOST_TEST(w.find("s3cr3t") == std::string::npos);
        BOOST_TEST(w.find("AKIDEXAMPLE") == std::string::npos);
    }
}

// The error when the launcher found the user manager unusable names the
// attributes set, the user, the host and the fix.
BOOST_AUTO_TEST_CASE(slice_failures_name_the_attribute_and_the_fix) {
    const auto a = parse(k_min + "<RESTIC_CPU_QUOTA>50</RESTIC_CPU_QUOTA><RESTIC_MAX_RIOPS>9</RESTIC_MAX_RIOPS>");
    BOOST_TEST(!parse_slice_line("ONEDS_DISK=/x"));
    auto f = parse_slice_line("ONEDS_SLICE_ERROR=manager:oneadmin:Failed to connect to bus: No medium found ");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(
        slice_failure_message(*f, a, "node1") ==
        "RESTIC_MAX_RIOPS and RESTIC_CPU_QUOTA are set but the systemd user manager of oneadmin on node1 is not "
        "reachable (systemctl --user daemon-reload: Failed to connect to bus: No medium found); enable lingering "
        "(loginctl enable-linger oneadmin) and delegate the controllers: "
        "/etc/systemd/system/user@.service.d/delegate.conf with Delegate=cpu cpuset io");
    f = parse_slice_line("ONEDS_SLICE_ERROR=controllers:oneadmin:io");
    BOOST_TEST_REQUIRE(f.has_value());
    BOOST_TEST(slice_failure_message(*f, a, "") ==
               "RESTIC_MAX_RIOPS is set but the systemd user manager of oneadmin on this host has no io controller "
               "delegated to it; delegate the controllers: /etc/systemd/system/user@.service.d/delegate.conf with "
               "Delegate=cpu cpuset io, then run systemctl daemon-reload and log oneadmin in again");
}

BOOST_AUTO_TEST_CASE(local_backend_needs_no_server_and_uses_the_path_as_url) {
    auto a = parse("<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>local</RESTIC_BACKEND>",
                   "<ID>7</ID><BASE_PATH>/srv//backups/./7/</BASE_PATH>");
    BOOST_TEST((a.backend == backend_kind::local));
    BOOST_TEST(a.base_path == "/srv/backups/7");
    BOOST_TEST(repository_url(a, a.base_path + "/job_3") == "/srv/backups/7/job_3");
}

BOOST_AUTO_TEST_CASE(sftp_url_has_the_stock_form) {
    auto a = parse(k_min + "<RESTIC_SFTP_USER>bk</RESTIC_SFTP_USER>");
    BOOST_TEST(repository_url(a, "/var/lib/one/datastores/100//54") == "sftp:bk@srv:/var/lib/one/datastores/100/54");
}

BOOST_AUTO_TEST_CASE(s3_defaults_and_url_have_the_stock_form) {
    auto a = parse(k_s3);
    BOOST_TEST((a.backend == backend_kind::s3));
    BOOST_TEST(a.s3_region == "us-east-1");
    BOOST_TEST(a.s3_endpoint == "s3.amazonaws.com");
    BOOST_TEST(!a.s3_path_style);
    BOOST_TEST(!a.s3_insecure_tls);
    BOOST_TEST(a.total_mb == 1048576);
    BOOST_TEST(repository_url(a, a.base_path + "/54") == "s3:s3.amazonaws.com/one-bk/54");
    BOOST_TEST(repository_url(a, a.base_path + "/job_3") == "s3:s3.amazonaws.com/one-bk/job_3");
    BOOST_TEST(repository_url(a, a.base_path) == "s3:s3.amazonaws.com/one-bk");
    // Trailing '/' dropped, "s3:" not doubled (stock).
    auto b = parse(k_s3 + "<RESTIC_S3_ENDPOINT>s3:http://minio:8080/</RESTIC_S3_ENDPOINT><TOTAL_MB>2048</TOTAL_MB>");
    BOOST_TEST(repository_url(b, b.base_path + "/job_3") == "s3:http://minio:8080/one-bk/job_3");
    BOOST_TEST(b.total_mb == 2048);
    auto c = parse(k_s3 + "<RESTIC_S3_ENDPOINT>https://[::1]:7480</RESTIC_S3_ENDPOINT>");
    BOOST_TEST(repository_url(c, c.base_path + "/7") == "s3:https://[::1]:7480/one-bk/7");
}

BOOST_DATA_TEST_CASE(
    bad_s3_values_name_the_attribute_and_never_show_a_key,
    bdata::make(std::vector<std::string>{
        "<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND>",
        std::regex_replace(k_s3, std::regex("AKIDEXAMPLE"), ""),
        "<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND><RESTIC_S3_ACCESS_KEY_ID>AKIDEXAMPLE"
        "</RESTIC_S3_ACCESS_KEY_ID><RESTIC_S3_SECRET_ACCESS_KEY>wJalr\ns3cr3t</RESTIC_S3_SECRET_ACCESS_KEY>"
        "<RESTIC_S3_BUCKET>one-bk</RESTIC_S3_BUCKET>",
        k_s3 + "<RESTIC_S3_ENDPOINT>ftp://host</RESTIC_S3_ENDPOINT>",
        k_s3 + "<RESTIC_S3_ENDPOINT>http://host:99999</RESTIC_S3_ENDPOINT>",
        k_s3 + "<RESTIC_S3_ENDPOINT>http://host/path</RESTIC_S3_ENDPOINT>",
        k_s3 + "<RESTIC_S3_ENDPOINT>-oProxy</RESTIC_S3_ENDPOINT>",
        k_s3 + "<RESTIC_S3_FORCE_PATH_STYLE>true</RESTIC_S3_FORCE_PATH_STYLE>",
        k_s3 + "<RESTIC_S3_INSECURE_TLS>1</RESTIC_S3_INSECURE_TLS>",
        k_s3 + "<RESTIC_S3_CACERT>ca.pem</RESTIC_S3_CACERT>", k_s3 + "<RESTIC_S3_REGION>us east</RESTIC_S3_REGION>",
        k_s3 + "<TOTAL_MB>-5</TOTAL_MB>"}) ^
        bdata::make({"Missing RESTIC_S3_ACCESS_KEY_ID", "Missing RESTIC_S3_ACCESS_KEY_ID",
                     "RESTIC_S3_SECRET_ACCESS_KEY must not contain control characters or line breaks",
                     "RESTIC_S3_ENDPOINT must start with http:// or https://",
                     "RESTIC_S3_ENDPOINT has a port that is not a number from 1 to 65535",
                     "RESTIC_S3_ENDPOINT must be [http[s]://]host[:port] without a path",
                     "RESTIC_S3_ENDPOINT has a host", "RESTIC_S3_FORCE_PATH_STYLE must be yes or no, got 'true'",
                     "RESTIC_S3_INSECURE_TLS must be yes or no, got '1'", "RESTIC_S3_CACERT ",
                     "RESTIC_S3_REGION must be letters", "TOTAL_MB must be an integer from 1"}),
    xml, expected) {
    const auto err = parse_error(xml);
    BOOST_TEST(err.find(expected) != std::string::npos, "'" << err << "' should contain '" << expected << "'");
    BOOST_TEST(err.find("s3cr3t") == std::string::npos);
    BOOST_TEST(err.find("AKIDEXAMPLE") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(s3_bucket_and_missing_secret_are_named) {
    BOOST_TEST(parse_error("<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND>"
                           "<RESTIC_S3_ACCESS_KEY_ID>AKIDEXAMPLE</RESTIC_S3_ACCESS_KEY_ID>"
                           "<RESTIC_S3_BUCKET>one-bk</RESTIC_S3_BUCKET>")
                   .find("Missing RESTIC_S3_SECRET_ACCESS_KEY") != std::string::npos);
    BOOST_TEST(parse_error("<RESTIC_PASSWORD>pw</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND>"
                           "<RESTIC_S3_ACCESS_KEY_ID>AKIDEXAMPLE</RESTIC_S3_ACCESS_KEY_ID>"
                           "<RESTIC_S3_SECRET_ACCESS_KEY>x</RESTIC_S3_SECRET_ACCESS_KEY>")
                   .find("Missing RESTIC_S3_BUCKET") != std::string::npos);
    BOOST_TEST(parse_error(std::regex_replace(k_s3, std::regex("one-bk"), "a/b")).find("RESTIC_S3_BUCKET must be") !=
               std::string::npos);
    // No RESTIC_SFTP_SERVER needed for S3.
    BOOST_TEST(parse_error(k_s3) == "no error");
}

BOOST_DATA_TEST_CASE(clean_path_normalises_like_cleanpath,
                     bdata::make({"/a//b/./c/", "/a/b/../c", "/../a", "a/./b", "/"}) ^
                         bdata::make({"/a/b/c", "/a/c", "/a", "a/b", "/"}),
                     in, out) {
    BOOST_TEST(clean_path(in) == out);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(command_lines)

restic_command command_at(std::string host, std::string repo, std::string subcommand) {
    restic_command c;
    c.site.host = std::move(host);
    c.site.restic_bin = "/usr/bin/restic";
    c.site.repo = std::move(repo);
    c.subcommand = std::move(subcommand);
    return c;
}

BOOST_AUTO_TEST_CASE(options_come_in_stock_order) {
    auto a = parse(k_min +
                   "<RESTIC_BWLIMIT>500</RESTIC_BWLIMIT><RESTIC_CONNECTIONS>8</RESTIC_CONNECTIONS>"
                   "<RESTIC_COMPRESSION>max</RESTIC_COMPRESSION>");
    auto c = command_at("node1", "sftp:oneadmin@srv:/r", "backup");
    c.options = {"--force", "--json", "--tag=one-7"};
    c.args = {"/d/disk.0.0", "/d/vm.xml"};
    const std::vector<std::string> want{"/usr/bin/restic",
                                        "--force",
                                        "--json",
                                        "--tag=one-7",
                                        "--limit-upload=500",
                                        "--limit-download=500",
                                        "--option=sftp.connections=8",
                                        "--compression=max",
                                        "--repo=sftp:oneadmin@srv:/r",
                                        "backup",
                                        "/d/disk.0.0",
                                        "/d/vm.xml"};
    BOOST_TEST(process_command(c, a).argv == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(connections_and_compression_only_for_data_commands) {
    auto a = parse(k_min + "<RESTIC_CONNECTIONS>8</RESTIC_CONNECTIONS><RESTIC_COMPRESSION>off</RESTIC_COMPRESSION>");
    const auto c = command_at("", "r", "init");
    const std::vector<std::string> want{"/usr/bin/restic", "--repo=r", "init"};
    BOOST_TEST(process_command(c, a).argv == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ssh_config_reaches_restic_as_sftp_command_for_sftp_urls_only) {
    auto a = parse(k_min + "<RESTIC_SFTP_USER>root</RESTIC_SFTP_USER>");
    auto c = command_at("", "sftp:root@srv:/r", "snapshots");
    c.site.ssh_config = "/etc/one/ssh_config";
    const auto argv = process_command(c, a).argv;
    BOOST_TEST(argv.at(1) == "--option=sftp.command=ssh -F /etc/one/ssh_config -o BatchMode=yes -l root srv -s sftp");
    c.site.repo = "/var/lib/one/datastores/100/7";  // the path on the backup server: restic speaks no SFTP
    for (const auto &w : process_command(c, a).argv) BOOST_TEST(w.find("sftp.command") == std::string::npos);
    c.site.repo = "sftp:root@srv:/r";
    c.site.ssh_config = "/path with blank";
    BOOST_CHECK_THROW(process_command(c, a), attribute_error);
}

BOOST_AUTO_TEST_CASE(the_password_goes_to_the_environment_here_and_to_stdin_elsewhere_never_to_argv) {
    auto a = parse(
        "<RESTIC_PASSWORD>s3cr3t-pw</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>srv</RESTIC_SFTP_SERVER>"
        "<RESTIC_MAXPROC>2</RESTIC_MAXPROC>");
    auto here = process_command(command_at("", repository_url(a, "/r"), "backup"), a);
    for (const auto &w : here.argv) BOOST_TEST(w.find("s3cr3t") == std::string::npos);
    BOOST_TEST(here.env.at("RESTIC_PASSWORD") == "s3cr3t-pw");
    BOOST_TEST(here.secret_env == std::vector<std::string>{"RESTIC_PASSWORD"}, boost::test_tools::per_element());
    BOOST_TEST(here.stdin_data.empty());
    BOOST_TEST(here.env.at("GOMAXPROCS") == "2");
    BOOST_TEST(here.env.at("RESTIC_PROGRESS_FPS") == "1");
    auto there = process_command(command_at("node1", repository_url(a, "/r"), "backup"), a);
    for (const auto &w : there.argv) BOOST_TEST(w.find("s3cr3t") == std::string::npos);
    BOOST_TEST(!there.env.contains("RESTIC_PASSWORD"));
    BOOST_TEST(there.stdin_data == "s3cr3t-pw\n");
    // A remote restic reads one line: a password with a line break cannot go.
    auto b = parse("<RESTIC_PASSWORD>two\nlines</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>srv</RESTIC_SFTP_SERVER>");
    BOOST_CHECK_THROW(process_command(command_at("node1", "r", "snapshots"), b), attribute_error);
    BOOST_TEST(process_command(command_at("", "r", "snapshots"), b).env.at("RESTIC_PASSWORD") == "two\nlines");
}

BOOST_AUTO_TEST_CASE(s3_pulls_run_one_at_a_time_before_restic_0_17) {
    const auto s3 = parse(k_s3);
    const auto sftp = parse(k_min);
    BOOST_TEST(parallel_pulls(s3, restic_version{0, 14, 0}) == 1U);
    BOOST_TEST(parallel_pulls(s3, std::nullopt) == 1U);
    BOOST_TEST(parallel_pulls(s3, restic_version{0, 18, 1}) == 4U);
    BOOST_TEST(parallel_pulls(sftp, restic_version{0, 14, 0}) == 4U);
    BOOST_TEST(parallel_pulls(sftp, std::nullopt) == 4U);
}

BOOST_AUTO_TEST_CASE(s3_options_go_on_every_command_in_stock_order) {
    auto a = parse(k_s3 +
                   "<RESTIC_S3_FORCE_PATH_STYLE>YES</RESTIC_S3_FORCE_PATH_STYLE><RESTIC_S3_CACERT>/etc/ca.pem"
                   "</RESTIC_S3_CACERT><RESTIC_S3_INSECURE_TLS>yes</RESTIC_S3_INSECURE_TLS>"
                   "<RESTIC_BWLIMIT>100</RESTIC_BWLIMIT><RESTIC_CONNECTIONS>8</RESTIC_CONNECTIONS>"
                   "<RESTIC_COMPRESSION>max</RESTIC_COMPRESSION>");
    for (const char *sub : {"init", "snapshots", "forget", "backup"}) {
        auto c = command_at("", repository_url(a, a.base_path + "/7"), sub);
        c.options = {"--json"};
        std::vector<std::string> want{"/usr/bin/restic",
                                      "--json",
                                      "--limit-upload=100",
                                      "--limit-download=100",
                                      "--option=s3.bucket-lookup=path",
                                      "--cacert=/etc/ca.pem",
                                      "--insecure-tls"};
        // sftp.connections never for S3; compression only for data commands.
        if (std::string(sub) == "backup") want.push_back("--compression=max");
        want.insert(want.end(), {"--repo=s3:s3.amazonaws.com/one-bk/7", sub});
        BOOST_TEST(process_command(c, a).argv == want, boost::test_tools::per_element());
    }
}

BOOST_AUTO_TEST_CASE(s3_keys_go_to_the_environment_here_and_to_stdin_elsewhere_never_to_argv) {
    auto a = parse(k_s3 + "<RESTIC_S3_REGION>eu-1</RESTIC_S3_REGION>");
    auto here = process_command(command_at("", repository_url(a, a.base_path + "/7"), "snapshots"), a);
    BOOST_TEST(here.env.at("AWS_ACCESS_KEY_ID") == "AKIDEXAMPLE");
    BOOST_TEST(here.env.at("AWS_SECRET_ACCESS_KEY") == "wJalr-s3cr3t");
    BOOST_TEST(here.env.at("AWS_DEFAULT_REGION") == "eu-1");
    BOOST_TEST(here.env.at("AWS_REGION") == "eu-1");
    for (const char *secret : {"RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
        BOOST_TEST(std::count(here.secret_env.begin(), here.secret_env.end(), secret) == 1);
    BOOST_TEST(here.stdin_data.empty());
    BOOST_TEST(here.argv.front() == "/usr/bin/restic");

    // A hypervisor: the keys travel as the first two stdin lines, before the
    // password, read by a constant script that then execs restic.
    auto there = process_command(command_at("node1", repository_url(a, a.base_path + "/7"), "backup"), a);
    BOOST_TEST(there.stdin_data == "AKIDEXAMPLE\nwJalr-s3cr3t\npw\n");
    BOOST_TEST(!there.env.contains("AWS_ACCESS_KEY_ID"));
    BOOST_TEST(!there.env.contains("AWS_SECRET_ACCESS_KEY"));
    BOOST_TEST(there.env.at("AWS_REGION") == "eu-1");
    BOOST_TEST_REQUIRE(there.argv.size() > 5U);
    BOOST_TEST(there.argv[0] == "sh");
    BOOST_TEST(there.argv[3] == "oneds-s3");
    BOOST_TEST(there.argv[4] == "/usr/bin/restic");
    for (const auto &w : there.argv) {
        BOOST_TEST(w.find("s3cr3t") == std::string::npos);
        BOOST_TEST(w.find("AKIDEXAMPLE") == std::string::npos);
    }
}

BOOST_AUTO_TEST_CASE(the_s3_key_script_hands_the_keys_to_the_program_and_leaves_the_password_on_stdin) {
    // Runs the real sh with the script process_command builds: the program it
    // execs must see both keys in its environment and read the password line.
    auto a = parse(k_s3);
    auto c = command_at("node1", "r", "snapshots");
    auto cmd = process_command(c, a);
    std::vector<std::string> argv(cmd.argv.begin(), cmd.argv.begin() + 4);
    argv.insert(argv.end(),
                {"/bin/sh", "-c", "printf '%s|%s|' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\"; cat"});
    argv[0] = "/bin/sh";  // run_process does not search PATH
    const auto r = oneds::test::run_process(argv, cmd.stdin_data);
    BOOST_TEST(r.exit_code == 0);
    const std::string out = r.out;
    BOOST_TEST(out == "AKIDEXAMPLE|wJalr-s3cr3t|pw\n");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(restic_output)

BOOST_DATA_TEST_CASE(version_lines_of_every_release_parse,
                     bdata::make({"restic 0.14.0 compiled with go1.19.8 on linux/amd64",
                                  "restic 0.18.1 compiled with go1.24.1 on linux/arm64",
                                  "{\"message_type\":\"version\",\"version\":\"0.17.3\",\"go_version\":\"go1.23\"}"}) ^
                         bdata::make({"0.14.0", "0.18.1", "0.17.3"}),
                     line, expected) {
    auto v = parse_version(line);
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST(v->str() == expected);
}

BOOST_AUTO_TEST_CASE(version_comparison) {
    restic_version v{0, 17, 1};
    BOOST_TEST(v.at_least(0, 17));
    BOOST_TEST(v.at_least(0, 16, 9));
    BOOST_TEST(!v.at_least(0, 17, 2));
    BOOST_TEST(!v.at_least(1, 0));
    BOOST_TEST(!parse_version("not restic").has_value());
}

BOOST_AUTO_TEST_CASE(summary_line_of_0_14_and_0_18) {
    auto s = parse_backup_line(
        R"({"message_type":"summary","files_new":2,"data_added":1234,"total_files_processed":3,"total_bytes_processed":5242880,"total_duration":0.5,"snapshot_id":"a47997ab"})");
    BOOST_REQUIRE(std::holds_alternative<backup_summary>(s));
    BOOST_TEST(std::get<backup_summary>(s).snapshot_id == "a47997ab");
    BOOST_TEST(std::get<backup_summary>(s).total_bytes_processed == 5242880u);
    BOOST_TEST(std::get<backup_summary>(s).data_added == 1234u);
    auto full = parse_backup_line(
        R"({"message_type":"summary","total_bytes_processed":1,"snapshot_id":"6ca565cd0123456789abcdef0123456789abcdef0123456789abcdef01234567","backup_start":"2026-01-01T00:00:00Z"})");
    BOOST_TEST(std::get<backup_summary>(full).snapshot_id.substr(0, 8) == "6ca565cd");
}

BOOST_AUTO_TEST_CASE(status_and_noise_lines) {
    auto st = parse_backup_line(
        R"({"message_type":"status","percent_done":0.5,"total_bytes":100,"bytes_done":50,"seconds_elapsed":2})");
    BOOST_REQUIRE(std::holds_alternative<backup_status>(st));
    BOOST_TEST(std::get<backup_status>(st).bytes_done == 50u);
    BOOST_TEST(std::holds_alternative<std::monostate>(parse_backup_line("created new cache in /root/.cache/restic")));
    BOOST_TEST(std::holds_alternative<std::monostate>(parse_backup_line("{not json")));
    BOOST_TEST(std::holds_alternative<std::monostate>(parse_backup_line(R"({"message_type":"verbose_status"})")));
}

const char *const k_lock_text =
    "repo already locked, waiting up to 0s for the lock\n"
    "unable to create lock in backend: repository is already locked exclusively by PID 4711 on node3 by oneadmin "
    "(UID 9869, GID 9869)\nlock was created at 2025-01-02 03:04:05 (12m3.2s ago)\nstorage ID 1a2b3c4d\n"
    "the `unlock` command can be used to remove stale locks\n";

BOOST_AUTO_TEST_CASE(lock_text_names_the_holder) {
    auto h = parse_lock_conflict(k_lock_text);
    BOOST_REQUIRE(h.has_value());
    BOOST_TEST(h->exclusive);
    BOOST_TEST(h->pid == "4711");
    BOOST_TEST(h->host == "node3");
    BOOST_TEST(h->user == "oneadmin");
    BOOST_TEST(h->created_at == "2025-01-02 03:04:05");
    BOOST_TEST(h->age == "12m3.2s");
    BOOST_TEST(h->describe() == "PID 4711 on node3 by oneadmin, created 2025-01-02 03:04:05 (12m3.2s ago)");
}

// The lock file is the repository's, not ours: what it names reaches LOG
// lines and errors only as printable text.
BOOST_AUTO_TEST_CASE(a_lock_holder_with_control_characters_is_shown_printable) {
    const std::string text =
        "unable to create lock in backend: repository is already locked by PID 7 on "
        "node\x1b[2Jx by evil\x07user\x1b]0;t\x07 (UID 1, GID 1)\n"
        "lock was created at 2025-01-02 03:04:05 (1m\x1b[1m ago)\n";
    auto h = parse_lock_conflict(text);
    BOOST_REQUIRE(h.has_value());
    const std::string d = h->describe();
    BOOST_TEST(d.find('\x1b') == std::string::npos, d);
    BOOST_TEST(d.find('\x07') == std::string::npos, d);
    BOOST_TEST(d.find("node\\x1b[2Jx") != std::string::npos, d);
}

BOOST_DATA_TEST_CASE(exits_are_classified_on_every_version,
                     bdata::make({0, 3, 1, 11, 1, 12, 1, 10, 1, 130, 1}) ^
                         bdata::make({"", "", k_lock_text, "", "Fatal: wrong password or no key found\n", "",
                                      "Fatal: unable to open config file: stat /r/config: no such file or directory\n"
                                      "Is there a repository at the following location?\n",
                                      "", "Fatal: create repository at /r failed: config file already exists\n", "",
                                      "Fatal: something else\n"}) ^
                         bdata::make({exit_kind::success, exit_kind::partial, exit_kind::locked, exit_kind::locked,
                                      exit_kind::wrong_password, exit_kind::wrong_password, exit_kind::repo_missing,
                                      exit_kind::repo_missing, exit_kind::already_exists, exit_kind::interrupted,
                                      exit_kind::failed}),
                     code, text, kind) {
    BOOST_TEST((classify_exit(code, text).kind == kind));
}

BOOST_AUTO_TEST_CASE(error_text_is_restics_own_words_in_one_line) {
    BOOST_TEST(restic_error_text("reading repository password from stdin\nFatal: wrong password or no key found\n") ==
               "wrong password or no key found");
    BOOST_TEST(restic_error_text(R"({"message_type":"exit_error","code":12,"message":"Fatal: wrong password"})"
                                 "\n") == "Fatal: wrong password");
    BOOST_TEST(
        restic_error_text(
            R"({"message_type":"error","error":{"message":"permission denied"},"during":"archival","item":"/d/disk.0.0"})") ==
        "/d/disk.0.0: permission denied");
}

BOOST_AUTO_TEST_CASE(redaction_removes_every_occurrence) {
    BOOST_TEST(redact("a pw b pw", "pw") == "a [REDACTED] b [REDACTED]");
    BOOST_TEST(redact("nothing", "") == "nothing");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(datastore_conf)

BOOST_AUTO_TEST_CASE(export_lines_comments_and_quotes) {
    const std::string path = "/tmp/oneds_ds_conf_test_" + std::to_string(::getpid());
    {
        std::ofstream f(path);
        f << "# comment\nexport BACKUP_BASE_PATH=\"/var/backups\"\nOTHER='x y'\nBAD LINE\nBACKUP_BASE_PATH=/later\n";
    }
    auto vars = read_shell_vars(path);
    std::remove(path.c_str());
    BOOST_TEST(vars["BACKUP_BASE_PATH"] == "/var/backups");
    BOOST_TEST(vars["OTHER"] == "x y");
    BOOST_TEST(read_shell_vars("/nonexistent/datastore.conf").empty());
}

BOOST_AUTO_TEST_SUITE_END()

#include "plugin/restic/cli/version_cache.hpp"

BOOST_AUTO_TEST_SUITE(restic_versions)

namespace {
// A process runner that answers `restic version` and counts the calls.
class version_runner final : public oneds::ports::process_runner {
public:
    explicit version_runner(std::string out, int code = 0) : out_(std::move(out)), code_(code) {}
    oneds::ports::result<oneds::ports::command_result> run(const std::string &host, const oneds::ports::command &cmd,
                                                           const oneds::ports::run_options &) override {
        ++calls;
        last_host = host;
        last_argv = cmd.argv;
        oneds::ports::command_result r;
        r.exit_code = code_;
        r.stdout_text = out_;
        return r;
    }
    int calls = 0;
    std::string last_host;
    std::vector<std::string> last_argv;

private:
    std::string out_;
    int code_;
};
}  // namespace

BOOST_AUTO_TEST_CASE(version_is_detected_once_per_binary_and_host) {
    version_runner runner("restic 0.16.2 compiled with go1.21.3 on linux/amd64\n");
    version_cache cache;
    const std::stop_token never;
    auto v = cache.get(runner, "host1", "/opt/restic", never);
    BOOST_REQUIRE(v.has_value());
    BOOST_TEST(v->str() == "0.16.2");
    BOOST_TEST(runner.last_host == "host1");
    BOOST_TEST((runner.last_argv == std::vector<std::string>{"/opt/restic", "version"}));
    cache.get(runner, "host1", "/opt/restic", never);
    BOOST_TEST(runner.calls == 1);
    cache.get(runner, "host2", "/opt/restic", never);
    cache.get(runner, "host1", "restic", never);
    BOOST_TEST(runner.calls == 3);
}

BOOST_AUTO_TEST_CASE(an_unreachable_host_is_asked_again) {
    version_runner down("", 255);
    version_cache cache;
    const std::stop_token never;
    BOOST_TEST(!cache.get(down, "h", "restic", never).has_value());
    BOOST_TEST(!cache.get(down, "h", "restic", never).has_value());
    BOOST_TEST(down.calls == 2);
}

BOOST_AUTO_TEST_CASE(restores_are_sparse_from_0_15) {
    const std::vector<std::string> base = {"abcd1234", "--target", "/t", "--include", "/a/disk.0.1"};
    BOOST_TEST(restore_args("abcd1234", "/t", {"/a/disk.0.1"}, restic_version{0, 14, 0}) == base,
               boost::test_tools::per_element());
    BOOST_TEST(restore_args("abcd1234", "/t", {"/a/disk.0.1"}, std::nullopt) == base, boost::test_tools::per_element());
    auto sparse = base;
    sparse.push_back("--sparse");
    BOOST_TEST(restore_args("abcd1234", "/t", {"/a/disk.0.1"}, restic_version{0, 15, 0}) == sparse,
               boost::test_tools::per_element());
    BOOST_TEST(restore_args("abcd1234", "/t", {"/a/disk.0.1"}, restic_version{0, 18, 1}) == sparse,
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

#include <filesystem>

#include <stdlib.h>
#include <unistd.h>

// docs/restic-binary.md and conf/one_ds_host.conf: the defaults that fit an
// OpenNebula front end.
BOOST_AUTO_TEST_SUITE(settings_defaults)

namespace fs = std::filesystem;

struct scratch {
    fs::path path;
    scratch() {
        std::string pattern = (fs::temp_directory_path() / "oneds-settings-XXXXXX").string();
        BOOST_TEST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string executable(const std::string &name) const {
        const auto p = path / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p) << "#!/bin/sh\n";
        fs::permissions(p, fs::perms::owner_all);
        return p.string();
    }
};

BOOST_AUTO_TEST_CASE(defaults_are_opennebulas_places_an_hour_of_lock_waits_and_its_socket_directory) {
    ::unsetenv("ONE_LOCATION");
    auto s = parse_plugin_settings({});
    BOOST_TEST(s.lock_retries == 720U);
    BOOST_TEST(s.lock_retry_interval.count() == 5000);
    BOOST_TEST(s.ssh_multiplex);
    BOOST_TEST(s.ssh_control_dir == "/run/one/ssh-socks");
    BOOST_TEST(!s.ssh_control_dir_set);
    BOOST_TEST(s.restic_bin == "/var/lib/one/remotes/datastore/restic/restic");
    BOOST_TEST(s.remote_restic_bin == "/var/tmp/one/datastore/restic/restic");
    BOOST_TEST(s.datastore_conf == "/var/lib/one/remotes/etc/datastore/datastore.conf");
    ::setenv("ONE_LOCATION", "/opt/one", 1);
    s = parse_plugin_settings({});
    ::unsetenv("ONE_LOCATION");
    BOOST_TEST(s.restic_bin == "/opt/one/var/remotes/datastore/restic/restic");
    s = parse_plugin_settings({{"scripts_remote_dir", "/srv/one"}, {"remotes_dir", "/x/remotes"}});
    BOOST_TEST(s.remote_restic_bin == "/srv/one/datastore/restic/restic");
    BOOST_TEST(s.restic_bin == "/x/remotes/datastore/restic/restic");
    BOOST_TEST(!s.remote_restic_bin_set);
    s = parse_plugin_settings({{"remote_restic_bin", "restic"}, {"ssh_control_dir", ""}});
    BOOST_TEST(s.remote_restic_bin == "restic");
    BOOST_TEST(s.remote_restic_bin_set);
    BOOST_TEST(s.ssh_control_dir.empty());
    BOOST_TEST(s.ssh_control_dir_set);
}

// ssh binds <dir>/<40 hex digits>.<16 random characters> first: 107 bytes at most.
BOOST_AUTO_TEST_CASE(ssh_control_dir_leaves_room_for_sshs_temporary_socket_name) {
    const std::string ok = "/" + std::string(48, 'd');
    BOOST_TEST(parse_plugin_settings({{"ssh_control_dir", ok}}).ssh_control_dir == ok);
    BOOST_TEST((ok + "/" + std::string(40, 'c') + "." + std::string(16, 'r')).size() == 107U);
    BOOST_CHECK_EXCEPTION(parse_plugin_settings({{"ssh_control_dir", ok + "d"}}), std::invalid_argument,
                          [](const std::invalid_argument &e) {
                              return std::string(e.what()).find("at most 49 characters") != std::string::npos;
                          });
}

// The oned adapter's keys may sit in [plugin.restic]: the plugin passes them
// on and does not call them unknown; a real unknown key still is.
BOOST_AUTO_TEST_CASE(the_oned_adapters_keys_are_accepted_and_unknown_keys_refused) {
    BOOST_CHECK_NO_THROW(parse_plugin_settings({{"oned_timeout", "30"}, {"oned_max_response_bytes", "1048576"}}));
    BOOST_CHECK_EXCEPTION(parse_plugin_settings({{"oned_max_response_byte", "1"}}), std::invalid_argument,
                          [](const std::invalid_argument &e) {
                              return std::string(e.what()).find("unknown key 'oned_max_response_byte'") !=
                                     std::string::npos;
                          });
}

BOOST_AUTO_TEST_CASE(front_end_restic_is_opennebulas_copy_else_path_with_a_warning_else_an_error) {
    const scratch remotes, bin1, bin2;
    const std::string path = "relative:" + bin1.path.string() + ":" + bin2.path.string();
    const std::string ours = (remotes.path / "datastore/restic/restic").string();

    // Neither: an error naming the place and the setting, no warning.
    auto s = parse_plugin_settings({{"remotes_dir", remotes.path.string()}});
    BOOST_TEST(resolve_frontend_restic(s, path).empty());
    BOOST_TEST(s.restic_bin_missing.find(ours + " (OpenNebula's copy) is not an executable file and restic is not "
                                                "on PATH") != std::string::npos,
               s.restic_bin_missing);
    BOOST_TEST(s.restic_bin_missing.find("restic_bin") != std::string::npos);

    // On PATH only: the first one there, with a warning naming both.
    const std::string on_path = bin2.executable("restic");
    s = parse_plugin_settings({{"remotes_dir", remotes.path.string()}});
    const auto warning = resolve_frontend_restic(s, path);
    BOOST_TEST(s.restic_bin == on_path);
    BOOST_TEST(s.restic_bin_missing.empty());
    BOOST_TEST(warning.find(ours) != std::string::npos, warning);
    BOOST_TEST(warning.find("using " + on_path + " from PATH") != std::string::npos, warning);

    // OpenNebula's copy: used, silently.
    remotes.executable("datastore/restic/restic");
    s = parse_plugin_settings({{"remotes_dir", remotes.path.string()}});
    BOOST_TEST(resolve_frontend_restic(s, path).empty());
    BOOST_TEST(s.restic_bin == ours);

    // An explicit setting wins, even one that is not there, and says nothing.
    s = parse_plugin_settings({{"remotes_dir", remotes.path.string()}, {"restic_bin", "/no/such/restic"}});
    BOOST_TEST(resolve_frontend_restic(s, path).empty());
    BOOST_TEST(s.restic_bin == "/no/such/restic");
    BOOST_TEST(s.restic_bin_missing.empty());
}

BOOST_AUTO_TEST_SUITE_END()

// Rotating verification (docs/verification.md): its attributes, pacing and
// what counts as damage in restic 0.14's check output.
BOOST_AUTO_TEST_SUITE(verification)

BOOST_AUTO_TEST_CASE(budget_and_window_are_parsed_and_off_by_default) {
    auto a = parse(k_min);
    BOOST_TEST(a.verify_budget_mib == 0);
    BOOST_TEST(!a.verify_hours.has_value());
    a = parse(k_min +
              "<RESTIC_VERIFY_BUDGET_MB>512</RESTIC_VERIFY_BUDGET_MB>"
              "<RESTIC_VERIFY_WINDOW> 01-05 </RESTIC_VERIFY_WINDOW>");
    BOOST_TEST(a.verify_budget_mib == 512);
    BOOST_REQUIRE(a.verify_hours.has_value());
    BOOST_TEST(a.verify_hours->start == 1);
    BOOST_TEST(a.verify_hours->end == 5);
    for (int h : {1, 2, 4}) BOOST_TEST(in_window(*a.verify_hours, h), h);
    for (int h : {0, 5, 12, 23}) BOOST_TEST(!in_window(*a.verify_hours, h), h);
    // Past midnight.
    a = parse(k_min + "<RESTIC_VERIFY_WINDOW>22-03</RESTIC_VERIFY_WINDOW>");
    for (int h : {22, 23, 0, 2}) BOOST_TEST(in_window(*a.verify_hours, h), h);
    for (int h : {3, 12, 21}) BOOST_TEST(!in_window(*a.verify_hours, h), h);
    // The whole day.
    a = parse(k_min + "<RESTIC_VERIFY_WINDOW>00-24</RESTIC_VERIFY_WINDOW>");
    for (int h = 0; h < 24; ++h) BOOST_TEST(in_window(*a.verify_hours, h), h);
    a = parse(k_min + "<RESTIC_VERIFY_WINDOW>18-00</RESTIC_VERIFY_WINDOW>");
    BOOST_TEST(in_window(*a.verify_hours, 23));
    BOOST_TEST(!in_window(*a.verify_hours, 0));
}

BOOST_DATA_TEST_CASE(bad_verification_values_name_the_attribute,
                     bdata::make(std::vector<std::string>{"<RESTIC_VERIFY_BUDGET_MB>lots</RESTIC_VERIFY_BUDGET_MB>",
                                                          "<RESTIC_VERIFY_BUDGET_MB>-1</RESTIC_VERIFY_BUDGET_MB>",
                                                          "<RESTIC_VERIFY_WINDOW>1-5</RESTIC_VERIFY_WINDOW>",
                                                          "<RESTIC_VERIFY_WINDOW>01-25</RESTIC_VERIFY_WINDOW>",
                                                          "<RESTIC_VERIFY_WINDOW>01:05</RESTIC_VERIFY_WINDOW>",
                                                          "<RESTIC_VERIFY_WINDOW>05-05</RESTIC_VERIFY_WINDOW>"}) ^
                         bdata::make({"RESTIC_VERIFY_BUDGET_MB must be an integer from 0 to 1099511627776, got 'lots'",
                                      "RESTIC_VERIFY_BUDGET_MB must be an integer from 0 to 1099511627776, got '-1'",
                                      "RESTIC_VERIFY_WINDOW must be HH-HH, local hours from 00 to 24 (e.g. 01-05), "
                                      "got '1-5'",
                                      "RESTIC_VERIFY_WINDOW must be HH-HH", "RESTIC_VERIFY_WINDOW must be HH-HH",
                                      "RESTIC_VERIFY_WINDOW must name two different hours"}),
                     xml, expected) {
    const auto err = parse_error(k_min + xml);
    BOOST_TEST(err.find(expected) != std::string::npos, "'" << err << "' should contain '" << expected << "'");
}

BOOST_AUTO_TEST_CASE(n_is_the_pack_bytes_over_the_budget_rounded_up) {
    const std::uint64_t mib = 1048576;
    BOOST_TEST(subset_count(0, 1) == 1u);
    BOOST_TEST(subset_count(mib, 1) == 1u);
    BOOST_TEST(subset_count(mib + 1, 1) == 2u);
    BOOST_TEST(subset_count(10 * mib, 3) == 4u);
    BOOST_TEST(subset_count(10 * mib, 0) == 1u);
    // restic accepts n/t only up to t = 256.
    BOOST_TEST(subset_count(300 * mib, 1) == 256u);
    BOOST_TEST(subset_count(256 * mib, 1) == 256u);
}

BOOST_AUTO_TEST_CASE(repositories_are_vm_ids_and_backup_jobs) {
    for (const char *ok : {"7", "123", "job_5"}) BOOST_TEST(is_repository_name(ok), ok);
    for (const char *no : {"", "job_", "x7", "7a", ".snapshots", "lost+found", "job_x", "-1"})
        BOOST_TEST(!is_repository_name(no), no);
}

// restic 0.14.0's own words (stdout holds the progress; stderr below).
BOOST_AUTO_TEST_CASE(only_restics_verdict_of_errors_is_damage) {
    const std::string pack_id = "a12e4a1a3b6f7bc407412481235d1deb116ace3ac4fae2e1176a6050efb7bbce";
    auto v = classify_check(1, "Pack ID does not match, want " + pack_id +
                                   ", got 275291e826027295f7a4068247f109e126b71f10a06601670ed15ad8c4514c2d\n"
                                   "Fatal: repository contains errors\n");
    BOOST_TEST((v.result == check_verdict::kind::damaged));
    BOOST_TEST(v.message.find("Pack ID does not match, want " + pack_id) != std::string::npos, v.message);
    BOOST_TEST(v.message.find("Fatal") == std::string::npos, v.message);
    BOOST_TEST(v.message.find('\n') == std::string::npos);

    v = classify_check(1,
                       "pack 2dbc4dbd: does not exist\npack 769d8d36: does not exist\n"
                       "Fatal: repository contains errors\n");
    BOOST_TEST((v.result == check_verdict::kind::damaged));
    BOOST_TEST(v.message == "pack 2dbc4dbd: does not exist; pack 769d8d36: does not exist");

    // Packs no index names (a backup in flight) are reported on stdout and
    // the check succeeds: ok.
    v = classify_check(0, "");
    BOOST_TEST((v.result == check_verdict::kind::ok));

    // No repository, wrong password, a network failure: errors, not damage.
    v = classify_check(1,
                       "Fatal: unable to open config file: Stat: stat /x/config: no such file or directory\n"
                       "Is there a repository at the following location?\n");
    BOOST_TEST((v.result == check_verdict::kind::error));
    BOOST_TEST(v.message.find("unable to open config file") != std::string::npos, v.message);
    v = classify_check(1, "Fatal: wrong password or no key found\n");
    BOOST_TEST((v.result == check_verdict::kind::error));
    v = classify_check(130, "");
    BOOST_TEST((v.result == check_verdict::kind::error));
    BOOST_TEST(!v.message.empty());
}

BOOST_AUTO_TEST_CASE(state_dir_and_verify_foreground_settings) {
    auto s = parse_plugin_settings({});
    BOOST_TEST(s.state_dir == "/var/lib/one/one_ds_host");
    BOOST_TEST(!s.verify_foreground);
    s = parse_plugin_settings({{"state_dir", "/srv/state"}, {"verify_foreground", "yes"}});
    BOOST_TEST(s.state_dir == "/srv/state");
    BOOST_TEST(s.verify_foreground);
    BOOST_CHECK_THROW(parse_plugin_settings({{"state_dir", "rel"}}), std::invalid_argument);
    BOOST_CHECK_THROW(parse_plugin_settings({{"verify_foreground", "maybe"}}), std::invalid_argument);
}

BOOST_AUTO_TEST_SUITE_END()

// restic's retries of what cannot get better are recognised at the first
// retry line (restic 0.14 wording, local, SFTP and S3), and nothing else is.
BOOST_AUTO_TEST_CASE(hopeless_retries_are_recognised_at_the_first_line) {
    using oneds::restic::exit_kind;
    using oneds::restic::permanent_retry_failure;
    const auto kind_of = [](const std::string &line) {
        const auto f = permanent_retry_failure(line);
        return f ? static_cast<int>(f->kind) : -1;
    };
    BOOST_TEST(kind_of("Load(<data/33477976d2>, 3108547, 54250) returned error, retrying after 552ms: open "
                       "/r/data/33/3347: no such file or directory") == static_cast<int>(exit_kind::damaged));
    BOOST_TEST(kind_of("Load(<data/24d532ec75>, 6293468, 0) returned error, retrying after 552ms: The specified key "
                       "does not exist.") == static_cast<int>(exit_kind::damaged));
    BOOST_TEST(kind_of("Save(<lock/169f03bbee>) returned error, retrying after 552ms: open /r/locks/x: read-only file "
                       "system") == static_cast<int>(exit_kind::read_only));
    BOOST_TEST(kind_of("Save(<lock/ef6bd0ddc7>) returned error, retrying after 1s: OpenFile: permission denied") ==
               static_cast<int>(exit_kind::permission));
    BOOST_TEST(kind_of("Save(<data/05be529154>) returned error, retrying after 1s: Write: sftp: \"Failure\" "
                       "(SSH_FX_FAILURE)") == static_cast<int>(exit_kind::failed));
    // Transient or unrelated: left to restic's own retries.
    BOOST_TEST(kind_of("Load(<data/33477976d2>, 0, 0) returned error, retrying after 1s: connection reset by peer") ==
               -1);
    BOOST_TEST(kind_of("Load(<lock/33477976d2>, 0, 0) returned error, retrying after 1s: no such file or directory") ==
               -1);
    BOOST_TEST(kind_of("open /r/data/33/3347: no such file or directory") == -1);
    const auto f = permanent_retry_failure(
        "Load(<data/33477976d2>, 1, 2) returned error, retrying after 552ms: open /r/x: no such file or directory");
    BOOST_REQUIRE(f);
    BOOST_TEST(f->message == "Load(<data/33477976d2>, 1, 2): open /r/x: no such file or directory");
    // The whole run classified: a damaged repository is named.
    BOOST_TEST(static_cast<int>(
                   oneds::restic::classify_exit(1, "Fatal: load <index/9fc6c0fd35>: invalid data returned").kind) ==
               static_cast<int>(exit_kind::damaged));
    // verify: an index that does not match its id is damage, not a check that could not run.
    const auto v = oneds::restic::classify_check(
        1,
        "load indexes\nerror: error loading index 9fc6: load <index/9fc6c0fd35>: invalid data returned\nFatal: "
        "LoadIndex returned errors\n");
    BOOST_TEST(static_cast<int>(v.result) == static_cast<int>(oneds::restic::check_verdict::kind::damaged));
    BOOST_TEST(v.message.find("invalid data returned") != std::string::npos, v.message);
}
