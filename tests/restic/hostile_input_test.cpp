#define BOOST_TEST_MODULE restic_hostile_input
// Hostile and broken input, unit level: every value that becomes a word of a
// command line is checked by what it is (names.hpp); numbers stay in range;
// restic's failures are told apart by kind; error text is one clean line;
// backup_cancel matches exact arguments only.
#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/actions/backup_cancel.hpp"
#include "plugin/restic/model/backup_image.hpp"
#include "plugin/restic/model/names.hpp"
#include "plugin/restic/cli/restic_command.hpp"
#include "plugin/restic/cli/restic_output.hpp"
#include "plugin/restic/cli/restic_runner.hpp"

#include "common/strings.hpp"
#include "tests/support/utf8.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <ostream>
#include <string>
#include <vector>

using namespace oneds::restic;
namespace bdata = boost::unit_test::data;

namespace oneds::restic {
std::ostream &operator<<(std::ostream &os, exit_kind k) { return os << static_cast<int>(k); }
}  // namespace oneds::restic

namespace {

using oneds::test::utf8;

// Every character Go's unicode.IsSpace knows (restic splits sftp.command on
// them), every C0 and C1 control, DEL, and the invisible separators that are
// not "space" but can still hide a second word.
// (As unsigned: Boost.Test prints the case's value.)
std::vector<unsigned> separators() {
    std::vector<unsigned> v;
    for (unsigned c = 0x01; c < 0x20; ++c) v.push_back(c);
    v.push_back(0x20);
    v.push_back(0x7f);
    for (unsigned c = 0x80; c <= 0x9f; ++c) v.push_back(c);  // C1, including U+0085 NEL
    for (unsigned c : {0xa0u,   0x1680u, 0x2000u, 0x2001u, 0x2002u, 0x2003u, 0x2004u, 0x2005u, 0x2006u, 0x2007u,
                       0x2008u, 0x2009u, 0x200au, 0x200bu, 0x2028u, 0x2029u, 0x202fu, 0x205fu, 0x3000u, 0xfeffu})
        v.push_back(c);
    return v;
}

datastore_attributes parse_with(const std::string &name, const std::string &value) {
    pugi::xml_document doc;
    auto ds = doc.append_child("DATASTORE");
    ds.append_child("ID").text().set(100);
    auto t = ds.append_child("TEMPLATE");
    t.append_child("RESTIC_PASSWORD").text().set("pw");
    if (name != "RESTIC_SFTP_SERVER") t.append_child("RESTIC_SFTP_SERVER").text().set("backup.example.com");
    t.append_child(name.c_str()).text().set(value.c_str());
    return parse_datastore(ds);
}

std::string refusal(const std::string &name, const std::string &value) {
    try {
        parse_with(name, value);
    } catch (const attribute_error &e) {
        return e.what();
    }
    return {};
}

const std::vector<std::string> k_option_words = {
    "-oProxyCommand=touch /tmp/x", "-oProxyCommand=x", "--", "-", "-F/etc/passwd", "--help", "-lroot", "-s"};

}  // namespace

BOOST_AUTO_TEST_SUITE(names_on_command_lines)

BOOST_DATA_TEST_CASE(every_separator_in_the_server_or_user_is_refused, bdata::make(separators()), c) {
    const std::string sep = utf8(static_cast<char32_t>(c));
    for (const std::string attr : {"RESTIC_SFTP_SERVER", "RESTIC_SFTP_USER"}) {
        const std::string base = attr == "RESTIC_SFTP_SERVER" ? "srv" : "bob";
        // Inside the value, a separator would make a second word; at either
        // end, ASCII blanks are trimmed (harmless), anything else is refused.
        for (const std::string &v : {base + sep + "-oProxyCommand=touch/tmp/pwned", sep + base, base + sep}) {
            const auto trimmed = std::string(oneds::common::trim(v));
            if (trimmed == base) continue;  // an ASCII blank at an end, trimmed away
            const auto err = refusal(attr, v);
            BOOST_TEST(err.find(attr + " ") == 0u,
                       "U+" << std::hex << c << " in " << attr << " not refused: '" << err << "'");
            // The message shows the value without the raw control character.
            for (const char ch : err) BOOST_TEST((static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f));
        }
    }
}

BOOST_DATA_TEST_CASE(option_looking_servers_and_users_are_refused, bdata::make(k_option_words), word) {
    BOOST_TEST(refusal("RESTIC_SFTP_SERVER", word).find("RESTIC_SFTP_SERVER ") == 0u, word);
    BOOST_TEST(refusal("RESTIC_SFTP_USER", word).find("RESTIC_SFTP_USER ") == 0u, word);
}

BOOST_DATA_TEST_CASE(host_names_and_addresses_are_accepted,
                     bdata::make({"backup", "backup.example.com", "backup.example.com.", "bk_server-2", "10.0.0.1",
                                  "[2001:db8::1]", "[::1]", "[::ffff:10.0.0.1]", "xn--bcher-kva.example"}),
                     host) {
    BOOST_TEST(host_name_problem(host).empty(), host << ": " << host_name_problem(host));
    BOOST_TEST(parse_with("RESTIC_SFTP_SERVER", host).sftp_server == host);
}

BOOST_DATA_TEST_CASE(malformed_hosts_are_refused,
                     bdata::make({"",          "a..b",    ".a",   "-a",   "a-.b",           "a b",
                                  "user@host", "host:22", "[::1", "::1",  "[fe80::1%eth0]", "[not-ipv6]",
                                  "h/x",       "h'x",     "h\"x", "h\\x", "h$(id)",         "h;id",
                                  "h`id`",     "a*b"}),
                     host) {
    BOOST_TEST(!host_name_problem(host).empty(), "'" << host << "' accepted");
}

// Found by the attributes fuzzer (tests/fuzz): inet_pton reads a C string,
// so an address literal followed by a NUL and anything else was accepted.
BOOST_AUTO_TEST_CASE(address_literals_with_a_nul_byte_are_refused) {
    using namespace std::string_literals;
    for (const std::string &bad : {"[::\0\0ff:10.0.0.1]"s, "[::1\0x]"s, "10.0.0.1\0x"s, "1.2.3.4\0"s}) {
        BOOST_TEST(!host_name_problem(bad).empty(), oneds::common::printable(bad) << " accepted");
        BOOST_TEST(!is_ipv6_literal(bad), oneds::common::printable(bad));
    }
}

BOOST_AUTO_TEST_CASE(an_ssh_config_alias_outside_the_grammar_is_asked_about_and_must_be_one_word) {
    int asked = 0;
    const auto alias = [&asked](std::string_view h) {
        ++asked;
        return h == "backup+1";
    };
    BOOST_TEST(host_name_problem("backup+1", alias).empty());
    BOOST_TEST(!host_name_problem("backup+2", alias).empty());
    BOOST_TEST(asked == 2);
    // Never asked about what could not be one safe word.
    for (const std::string bad : {"-oProxyCommand=x", "a b",
                                  "a\xe2\x80\xa8"
                                  "b",
                                  "a'b", "u@h", "h:1", "a;id", "a|b", "a&b", "$(id)", "a`id`", "a*", "a?b", "a!b",
                                  "~root", "a<b", "a>b", "a(b)", "a%h"})
        BOOST_TEST(!host_name_problem(bad, alias).empty(), bad);
    BOOST_TEST(asked == 2);
}

BOOST_AUTO_TEST_CASE(user_names_are_portable_names) {
    for (const std::string &good :
         std::vector<std::string>{"oneadmin", "_backup", "a.b-c_d", "x", std::string(32, 'u')})
        BOOST_TEST(user_name_problem(good).empty(), good);
    for (const std::string &bad :
         std::vector<std::string>{"9lives", ".x", "a b", "a:b", "a/b", "a@b", "-x", std::string(33, 'u')})
        BOOST_TEST(!user_name_problem(bad).empty(), bad);
}

BOOST_AUTO_TEST_CASE(paths_must_be_absolute_and_free_of_controls) {
    BOOST_TEST(absolute_path_problem("/var/lib/one/datastores/0/7").empty());
    BOOST_TEST(absolute_path_problem("/with blank/and 'quote'").empty());
    BOOST_TEST(!absolute_path_problem("relative/x").empty());
    BOOST_TEST(!absolute_path_problem("-rf").empty());
    BOOST_TEST(!absolute_path_problem("/a\nb").empty());
    BOOST_TEST(!absolute_path_problem("/a\x1b[2Jb").empty());
    BOOST_TEST(!absolute_path_problem("/a\xc2\x85"
                                      "b")
                    .empty());
    BOOST_TEST(refusal("RESTIC_TMP_DIR", "-rf").find("RESTIC_TMP_DIR must be an absolute path") == 0u);
    BOOST_TEST(refusal("BASE_PATH", "x").find("BASE_PATH must be an absolute path") == 0u);
}

BOOST_AUTO_TEST_CASE(an_ipv6_server_gets_restics_url_form_and_a_bare_address_for_ssh) {
    auto a = parse_with("RESTIC_SFTP_SERVER", "[2001:db8::5]");
    BOOST_TEST(repository_url(a, "/srv/b/7") == "sftp://oneadmin@[2001:db8::5]//srv/b/7");
    BOOST_TEST(sftp_command(a, "/etc/one/ssh_config") ==
               "ssh -F /etc/one/ssh_config -o BatchMode=yes -l oneadmin 2001:db8::5 -s sftp");
    std::string host, dir;
    BOOST_TEST(split_host_dir("[2001:db8::5]:/var/lib/one/0/7", host, dir));
    BOOST_TEST(host == "[2001:db8::5]");
    BOOST_TEST(dir == "/var/lib/one/0/7");
    BOOST_TEST(split_host_dir("node3:/a:b", host, dir));
    BOOST_TEST(host == "node3");
    BOOST_TEST(dir == "/a:b");
    BOOST_TEST(!split_host_dir(":/a", host, dir));
}

BOOST_AUTO_TEST_CASE(the_ssh_config_path_in_sftp_command_must_be_one_word) {
    auto a = parse_with("RESTIC_SFTP_USER", "bob");
    for (const std::string bad : {"/etc/one/ssh config",
                                  "/etc/one/ssh\xc2\xa0"
                                  "config",
                                  "/x\xe2\x80\xa8-oProxyCommand=y"})
        BOOST_CHECK_THROW(sftp_command(a, bad), attribute_error);
}

BOOST_DATA_TEST_CASE(image_ids_that_name_a_repository_folder_are_numbers,
                     bdata::make({"<VMS><ID>../../x</ID></VMS>",
                                  "<VMS><ID>7 </ID></VMS><TEMPLATE><BACKUP_JOB_ID>../1"
                                  "</BACKUP_JOB_ID></TEMPLATE>",
                                  "<VMS><ID>-1</ID></VMS>", "<BACKUP_JOB_ID>1/..</BACKUP_JOB_ID>"}),
                     xml) {
    pugi::xml_document doc;
    const std::string text = "<DS_DRIVER_ACTION_DATA><IMAGE><SOURCE>0123abcd</SOURCE>" + std::string(xml) +
                             "</IMAGE></DS_DRIVER_ACTION_DATA>";
    BOOST_TEST_REQUIRE(doc.load_string(text.c_str()));
    BOOST_CHECK_THROW(parse_backup_image(doc), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(numbers_in_range)

BOOST_DATA_TEST_CASE(out_of_range_and_overflowing_values_name_the_attribute,
                     bdata::make({"RESTIC_BWLIMIT", "RESTIC_BWLIMIT", "RESTIC_BWLIMIT", "RESTIC_LOCK_RETRIES",
                                  "RESTIC_LOCK_RETRIES", "RESTIC_CONNECTIONS", "RESTIC_MAXPROC", "RESTIC_MAXPROC",
                                  "RESTIC_NICE", "RESTIC_MAX_RIOPS", "RESTIC_MEMORY_MAX_MB", "RESTIC_CPU_QUOTA"}) ^
                         bdata::make({"9007199254740992", "-2", "99999999999999999999999", "4294967297", "-1", "100000",
                                      "0", "70000", "-21", "0", "9223372036854775807", "1e3"}),
                     name, value) {
    const auto err = refusal(name, value);
    BOOST_TEST(err.find(std::string(name) + " must be an integer from ") == 0u, name << "=" << value << ": " << err);
    BOOST_TEST(err.find(value) != std::string::npos, err);
}

BOOST_AUTO_TEST_CASE(limits_inside_the_range_are_kept) {
    BOOST_TEST(*parse_with("RESTIC_BWLIMIT", "1073741824").bwlimit == 1073741824);
    BOOST_TEST(*parse_with("RESTIC_BWLIMIT", "-1").bwlimit == -1);
    BOOST_TEST(*parse_with("RESTIC_LOCK_RETRIES", "100000").lock_retries == 100000);
    BOOST_TEST(parse_with("RESTIC_MAXPROC", "-1").maxproc == -1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(restic_failures_by_kind)

const char *const k_lock_conflict =
    "unable to create lock in backend: repository is already locked exclusively by PID 4711 on node3 by oneadmin "
    "(UID 9869, GID 9869)\nlock was created at 2025-01-02 03:04:05 (12m3.2s ago)\nstorage ID 1a2b3c4d\n";

// What restic 0.14 prints when it cannot write its lock file (a Go stack
// trace, the cause, then "unable to create lock in backend").
std::string lock_write_failure(const std::string &cause) {
    return "Save(<lock/b2edbb329d>) returned error, retrying after 552.330144ms: open /r/locks/b2-tmp-1: " + cause +
           "\nopen /r/locks/b2-tmp-2: " + cause +
           "\ngithub.com/restic/restic/internal/backend/local.(*Local).Save\n"
           "\tgithub.com/restic/restic/internal/backend/local/local.go:153\nmain.main\n"
           "\tgithub.com/restic/restic/cmd/restic/main.go:98\nruntime.main\n\truntime/proc.go:250\n"
           "runtime.goexit\n\truntime/asm_amd64.s:1594\nunable to create lock in backend\n";
}

BOOST_DATA_TEST_CASE(only_a_conflict_with_another_restic_is_a_lock,
                     bdata::make({1, 1, 1, 11, 1, 11, 1, 1, 137, 255}) ^
                         bdata::make({std::string(k_lock_conflict), lock_write_failure("read-only file system"),
                                      lock_write_failure("no space left on device"),
                                      lock_write_failure("permission denied"), lock_write_failure("permission denied"),
                                      std::string(),
                                      std::string("Fatal: unable to open repository at sftp:u@h:/r: unable to start "
                                                  "the sftp session, error: read |0: file already closed\n"),
                                      std::string("subprocess ssh: Connection closed by 127.0.0.1 port 22\n"),
                                      std::string(), std::string()}) ^
                         bdata::make({exit_kind::locked, exit_kind::read_only, exit_kind::no_space,
                                      exit_kind::permission, exit_kind::permission, exit_kind::locked,
                                      exit_kind::network, exit_kind::network, exit_kind::killed, exit_kind::failed}),
                     code, text, kind) {
    const auto info = classify_exit(code, text);
    BOOST_TEST((info.kind == kind), code << " / " << text);
    if (kind != exit_kind::locked) BOOST_TEST(!info.message.empty());
    if (kind == exit_kind::locked)
        BOOST_TEST(info.lock.has_value());
    else
        BOOST_TEST(!info.lock.has_value());
}

BOOST_AUTO_TEST_CASE(the_reason_names_the_cause_without_stack_traces_or_retry_notes) {
    const auto info = classify_exit(1, lock_write_failure("read-only file system"));
    restic_outcome o;
    o.exit = info;
    o.raw.exit_code = 1;
    const auto text = failure_text(o);
    BOOST_TEST(text.find("the repository's storage is read-only: ") == 0u, text);
    BOOST_TEST(text.find("unable to create lock in backend") != std::string::npos, text);
    BOOST_TEST(text.find("github.com") == std::string::npos, text);
    BOOST_TEST(text.find("runtime.") == std::string::npos, text);
    BOOST_TEST(text.find("retrying after") == std::string::npos, text);
    BOOST_TEST(text.find("locked by PID  on") == std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_killed_restic_is_never_an_empty_reason) {
    const auto info = classify_exit(137, "");
    BOOST_TEST(info.message.find("restic was killed by signal 9") == 0u, info.message);
    BOOST_TEST(!classify_exit(2, "").message.empty());
    restic_outcome o;
    o.exit = classify_exit(11, "");
    o.attempts = 3;
    BOOST_TEST(failure_text(o) == "repository still locked by a holder restic did not name after 3 attempts");
}

BOOST_AUTO_TEST_CASE(terminal_escapes_and_ssh_usage_never_reach_the_message) {
    // CSI, OSC, a carriage return, an 8-bit CSI (lone byte) and a C1 CSI.
    const std::string esc =
        "\x1b[2K\x1b[1A\x1b]0;title\x07"
        "Fatal: boom\x1b[0m\r\n\x9b"
        "\xc2\x9b"
        "1m";
    BOOST_TEST(restic_error_text(esc) == "boom 1m");
    const std::string usage =
        "subprocess ssh: usage: ssh [-46AaCfGgKkMNnqsTtVvXxYy] [-B bind_interface]\n"
        "subprocess ssh:            [-b bind_address] [-c cipher_spec] [-D [bind_address:]port]\n"
        "subprocess ssh:            destination [command [argument ...]]\n"
        "Fatal: unable to open repository at sftp:u@h:/r: unable to start the sftp session, error: EOF\n";
    const auto text = restic_error_text(usage);
    BOOST_TEST(text.find("ssh refused the options it was given") == 0u, text);
    BOOST_TEST(text.find("bind_address") == std::string::npos, text);
    BOOST_TEST(text.find("unable to open repository") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(printable_shows_what_was_wrong_without_acting_on_a_terminal) {
    BOOST_TEST(oneds::common::printable("a\x1b[2Jb\n\xe2\x80\xa8") == "a\\x1b[2Jb\\x0a\\xe2\\x80\\xa8");
    BOOST_TEST(oneds::common::printable(std::string(300, 'x')).size() == 203u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(backup_cancel_matching)

BOOST_AUTO_TEST_CASE(only_the_exact_backup_of_this_vm_matches) {
    const std::string dir4 = "node1:/var/lib/one/datastores/0/4";
    const std::vector<std::string> ours = {
        "/usr/lib/one/mads/one_ds_host", "action", "restic", "backup", dir4, "0:1", "one-4", "-", "4", "0"};
    const std::vector<std::string> stock = {
        "ruby", "/var/lib/one/remotes/datastore/restic/backup", dir4, "0", "one-4", "-", "4", "0"};
    const std::vector<std::string> prebackup = {
        "/bin/bash", "/var/lib/one/remotes/tm/qcow2/prebackup_live", dir4, "0", "one-4", "-", "4", "0"};
    for (const auto &argv : {ours, stock, prebackup}) BOOST_TEST(is_backup_process_of(argv, dir4, "one-4"));

    // VM 40 and VM 43 on the same host: their folders and deploy ids hold 4's.
    const std::vector<std::string> vm40 = {
        "one_ds_host", "action", "restic", "backup", "node1:/var/lib/one/datastores/0/40",
        "0",           "one-40", "-",      "40",     "0"};
    BOOST_TEST(!is_backup_process_of(vm40, dir4, "one-4"));
    BOOST_TEST(!is_backup_process_of(vm40, "node1:/var/lib/one/datastores/0/40", "one-4"));
    // A deploy id that equals another argument of another backup ("0" is
    // every backup's system datastore id) matches only at its own place.
    BOOST_TEST(!is_backup_process_of(ours, dir4, "0"));
    BOOST_TEST(!is_backup_process_of(ours, dir4, "4"));
    // restic itself ("backup" is its subcommand) is not a backup action.
    const std::vector<std::string> restic = {"restic", "--json", "--repo=/r", "backup", "/x/disk.0.0", "/x/vm.xml"};
    BOOST_TEST(!is_backup_process_of(restic, "/x/disk.0.0", "/x/vm.xml"));
    // Too short to hold the deploy id.
    BOOST_TEST(!is_backup_process_of({"backup", dir4, "0"}, dir4, "0"));
}

BOOST_AUTO_TEST_CASE(grep_listing_gives_pids_only) {
    BOOST_TEST(
        pids_from_grep_listing("/proc/12/cmdline\n/proc/345/cmdline\n/proc/x/cmdline\n/etc/passwd\n/proc//cmdline\n") ==
            (std::vector<std::string>{"12", "345"}),
        boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
