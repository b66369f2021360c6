// The real adapter against the fake oned: every method's success and error
// shape, oned's codes in the error, the halfway-refusal knob, and the
// session kept out of every message.
#define BOOST_TEST_MODULE oned_adapter
#include <boost/test/unit_test.hpp>

#include "tests/oned/oned_fixture.hpp"

#include <pugixml.hpp>

using namespace oneds::test::oned;
using oneds::ports::error_kind;
using oneds::ports::rpc_value;

namespace {

using params = std::vector<rpc_value>;

template <typename T>
T body_as(const oneds::ports::result<oneds::ports::rpc_result> &r) {
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.err().message));
    BOOST_TEST_REQUIRE(std::holds_alternative<T>(r->body));
    return std::get<T>(r->body);
}

pugi::xml_document xml_of(const oneds::ports::result<oneds::ports::rpc_result> &r) {
    pugi::xml_document doc;
    const auto text = body_as<std::string>(r);
    BOOST_TEST_REQUIRE(static_cast<bool>(doc.load_string(text.c_str())), text);
    return doc;
}

std::string text(const pugi::xml_document &doc, const char *xpath) {
    return doc.select_node(xpath).node().text().get();
}

void require_error(const oneds::ports::result<oneds::ports::rpc_result> &r, error_kind kind, std::int32_t code,
                   const std::string &fragment) {
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.err().kind == kind);
    BOOST_TEST(r.err().code == code);
    BOOST_TEST(r.err().message.find(fragment) != std::string::npos, r.err().message);
    BOOST_TEST(r.err().message.find("(code " + std::to_string(code) + ")") != std::string::npos, r.err().message);
}

const std::string image_tmpl = R"(NAME="42-7-disk-0"
TYPE="OS"
PATH="restic://100/7/0:abcd1234//var/lib/one/datastores/0/42/backup/disk.0.0"
FROM_BACKUP_DS="100"
BACKUP_JOB_ID="7")";

}  // namespace

BOOST_FIXTURE_TEST_SUITE(methods, oned_fixture)

BOOST_AUTO_TEST_CASE(system_version_returns_a_string) {
    BOOST_TEST(body_as<std::string>(api->call("one.system.version", {}, std::stop_token{})) == "6.10.0");
    BOOST_TEST(oned.call_count("one.system.version") == 1U);
}

BOOST_AUTO_TEST_CASE(user_info_self_and_pool) {
    auto me = xml_of(api->call("one.user.info", params{-1}, std::stop_token{}));
    BOOST_TEST(text(me, "/USER/ID") == "0");
    BOOST_TEST(text(me, "/USER/NAME") == "oneadmin");
    BOOST_TEST(text(me, "/USER/GID") == "0");
    const int uid = oned.add_user("alice", "alice-password");
    auto pool = xml_of(api->call("one.userpool.info", {}, std::stop_token{}));
    BOOST_TEST(pool.select_nodes("/USER_POOL/USER").size() == 3U);  // oneadmin, serveradmin, alice
    BOOST_TEST(text(pool, "/USER_POOL/USER[ID=1]/AUTH_DRIVER") == "server_cipher");
    BOOST_TEST(text(pool, ("/USER_POOL/USER[ID=" + std::to_string(uid) + "]/NAME").c_str()) == "alice");
    require_error(api->call("one.user.info", params{77}, std::stop_token{}), error_kind::not_found, 0x400,
                  "Error getting user [77]");
}

BOOST_AUTO_TEST_CASE(datastore_info_has_capacity_and_template) {
    auto ds = xml_of(api->call("one.datastore.info", params{backup_ds, true}, std::stop_token{}));
    BOOST_TEST(text(ds, "/DATASTORE/ID") == "100");
    BOOST_TEST(text(ds, "/DATASTORE/NAME") == "restic-backups");
    BOOST_TEST(text(ds, "/DATASTORE/DS_MAD") == "restic");
    BOOST_TEST(text(ds, "/DATASTORE/TYPE") == "3");
    BOOST_TEST(text(ds, "/DATASTORE/TOTAL_MB") == "2000");
    BOOST_TEST(text(ds, "/DATASTORE/FREE_MB") == "1500");
    BOOST_TEST(text(ds, "/DATASTORE/USED_MB") == "500");
    BOOST_TEST(text(ds, "/DATASTORE/TEMPLATE/RESTIC_SFTP_SERVER") == "backupserver");
    require_error(api->call("one.datastore.info", params{555}, std::stop_token{}), error_kind::not_found, 0x400,
                  "[one.datastore.info] Error getting datastore [555].");
}

BOOST_AUTO_TEST_CASE(datastore_update_merges_or_replaces) {
    BOOST_TEST(body_as<std::int32_t>(api->call(
                   "one.datastore.update",
                   params{backup_ds, std::string("RESTIC_STATUS=\"OK\"\nRESTIC_LAST_CHECK=\"1767225600\""), 1},
                   std::stop_token{})) == backup_ds);
    auto ds = oned.datastore(backup_ds);
    BOOST_REQUIRE(ds);
    BOOST_TEST(ds->attributes.get("RESTIC_STATUS").value_or("") == "OK");
    BOOST_TEST(ds->attributes.get("RESTIC_SFTP_SERVER").value_or("") == "backupserver");  // kept
    auto info = xml_of(api->call("one.datastore.info", params{backup_ds}, std::stop_token{}));
    BOOST_TEST(text(info, "/DATASTORE/TEMPLATE/RESTIC_LAST_CHECK") == "1767225600");

    BOOST_TEST(body_as<std::int32_t>(api->call("one.datastore.update",
                                               params{image_ds, std::string("ONLY=\"this\""), 0}, std::stop_token{})) ==
               image_ds);
    ds = oned.datastore(image_ds);
    BOOST_TEST(!ds->attributes.get("DS_MAD").has_value());
    BOOST_TEST(ds->attributes.get("ONLY").value_or("") == "this");

    require_error(api->call("one.datastore.update", params{backup_ds, std::string("A=\"1\""), 7}, std::stop_token{}),
                  error_kind::io, 0x1000, "Wrong update type");
    require_error(api->call("one.datastore.update", params{999, std::string("A=\"1\""), 1}, std::stop_token{}),
                  error_kind::not_found, 0x400, "Error getting datastore [999]");
}

BOOST_AUTO_TEST_CASE(datastorepool_lists_every_datastore) {
    auto pool = xml_of(api->call("one.datastorepool.info", {}, std::stop_token{}));
    BOOST_TEST(pool.select_nodes("/DATASTORE_POOL/DATASTORE").size() == 3U);
}

BOOST_AUTO_TEST_CASE(image_allocate_info_chown_and_pool) {
    const int id =
        body_as<std::int32_t>(api->call("one.image.allocate", params{image_tmpl, image_ds, false}, std::stop_token{}));
    auto img = oned.image(id);
    BOOST_REQUIRE(img);
    BOOST_TEST(img->name == "42-7-disk-0");
    BOOST_TEST(img->datastore_id == image_ds);
    BOOST_TEST(img->uid == 0);
    BOOST_TEST(img->attributes.get("FROM_BACKUP_DS").value_or("") == "100");
    BOOST_TEST(img->allocate_template == image_tmpl);

    auto info = xml_of(api->call("one.image.info", params{id}, std::stop_token{}));
    BOOST_TEST(text(info, "/IMAGE/NAME") == "42-7-disk-0");
    BOOST_TEST(text(info, "/IMAGE/DATASTORE_ID") == std::to_string(image_ds));
    BOOST_TEST(text(info, "/IMAGE/DATASTORE") == "default");
    BOOST_TEST(text(info, "/IMAGE/TYPE") == "0");
    BOOST_TEST(text(info, "/IMAGE/PATH").starts_with("restic://100/7/0:abcd1234/"));
    BOOST_TEST(text(info, "/IMAGE/TEMPLATE/BACKUP_JOB_ID") == "7");

    const int uid = oned.add_user("bob", "bob-password");
    BOOST_TEST(body_as<std::int32_t>(api->call("one.image.chown", params{id, uid, -1}, std::stop_token{})) == id);
    BOOST_TEST(oned.image(id)->uid == uid);
    BOOST_TEST(oned.image(id)->gid == 0);  // -1 keeps
    BOOST_TEST(body_as<std::int32_t>(api->call("one.image.chown", params{id, -1, 1}, std::stop_token{})) == id);
    BOOST_TEST(oned.image(id)->uid == uid);
    BOOST_TEST(oned.image(id)->gid == 1);
    require_error(api->call("one.image.chown", params{id, 999, -1}, std::stop_token{}), error_kind::not_found, 0x400,
                  "Error getting user [999]");

    const int second = body_as<std::int32_t>(
        api->call("one.image.allocate", params{std::string("NAME=second\nTYPE=DATABLOCK\nSIZE=10"), image_ds, false},
                  std::stop_token{}));
    auto all = xml_of(api->call("one.imagepool.info", params{-2, -1, -1}, std::stop_token{}));
    BOOST_TEST(all.select_nodes("/IMAGE_POOL/IMAGE").size() == 2U);
    auto mine = xml_of(api->call("one.imagepool.info", params{-3, -1, -1}, std::stop_token{}));
    BOOST_TEST(mine.select_nodes("/IMAGE_POOL/IMAGE").size() == 1U);
    BOOST_TEST(text(mine, "/IMAGE_POOL/IMAGE/ID") == std::to_string(second));
    auto range = xml_of(api->call("one.imagepool.info", params{-2, second, second}, std::stop_token{}));
    BOOST_TEST(range.select_nodes("/IMAGE_POOL/IMAGE").size() == 1U);
    auto of_bob = xml_of(api->call("one.imagepool.info", params{uid, -1, -1}, std::stop_token{}));
    BOOST_TEST(text(of_bob, "/IMAGE_POOL/IMAGE/ID") == std::to_string(id));
}

BOOST_AUTO_TEST_CASE(image_allocate_errors) {
    require_error(api->call("one.image.allocate", params{image_tmpl, 404, false}, std::stop_token{}),
                  error_kind::not_found, 0x400, "[one.image.allocate] Error getting datastore [404].");
    require_error(api->call("one.image.allocate", params{image_tmpl, system_ds, false}, std::stop_token{}),
                  error_kind::io, 0x4000, "system datastore");
    require_error(api->call("one.image.allocate", params{std::string("TYPE=OS"), image_ds, false}, std::stop_token{}),
                  error_kind::io, 0x4000, "No NAME");
    require_error(api->call("one.image.allocate", params{std::string("NAME=\"x"), image_ds, false}, std::stop_token{}),
                  error_kind::io, 0x2000, "Parse error");
    require_error(
        api->call("one.image.allocate", params{std::string("NAME=big\nSIZE=5000"), image_ds, false}, std::stop_token{}),
        error_kind::io, 0x4000, "Not enough space");
    // The capacity check can be skipped, as restores of unknown size do.
    BOOST_TEST(
        api->call("one.image.allocate", params{std::string("NAME=big\nSIZE=5000"), image_ds, true}, std::stop_token{})
            .has_value());
    require_error(api->call("one.image.allocate", params{std::string("NAME=big"), image_ds, true}, std::stop_token{}),
                  error_kind::io, 0x4000, "NAME is already taken");
    require_error(api->call("one.image.info", params{321}, std::stop_token{}), error_kind::not_found, 0x400,
                  "[one.image.info] Error getting image [321].");
}

BOOST_AUTO_TEST_CASE(template_allocate_info_and_chown) {
    const std::string body = R"(NAME="42-7"
CPU="1"
MEMORY="256"
DISK=[IMAGE_ID="0"]
DISK=[IMAGE_ID="1", TARGET="vdb"]
TPM_STATE="YWJj")";
    const int id = body_as<std::int32_t>(api->call("one.template.allocate", params{body}, std::stop_token{}));
    auto t = oned.vm_template(id);
    BOOST_REQUIRE(t);
    BOOST_TEST(t->name == "42-7");
    BOOST_TEST(t->attributes.all("DISK").size() == 2U);
    BOOST_TEST(t->body == body);

    auto info = xml_of(api->call("one.template.info", params{id, false, true}, std::stop_token{}));
    BOOST_TEST(text(info, "/VMTEMPLATE/NAME") == "42-7");
    BOOST_TEST(info.select_nodes("/VMTEMPLATE/TEMPLATE/DISK").size() == 2U);
    BOOST_TEST(text(info, "/VMTEMPLATE/TEMPLATE/DISK[2]/TARGET") == "vdb");

    const int uid = oned.add_user("carol", "carol-password");
    BOOST_TEST(body_as<std::int32_t>(api->call("one.template.chown", params{id, uid, 1}, std::stop_token{})) == id);
    BOOST_TEST(oned.vm_template(id)->uid == uid);
    BOOST_TEST(oned.vm_template(id)->gid == 1);

    require_error(api->call("one.template.info", params{99}, std::stop_token{}), error_kind::not_found, 0x400,
                  "Error getting template [99]");
    require_error(api->call("one.template.chown", params{99, 0, 0}, std::stop_token{}), error_kind::not_found, 0x400,
                  "Error getting template [99]");
    require_error(api->call("one.template.allocate", params{std::string("CPU=1")}, std::stop_token{}), error_kind::io,
                  0x4000, "No NAME");
}

BOOST_AUTO_TEST_CASE(vm_info_returns_what_the_test_set) {
    oned.set_vm(42, "<VM><ID>42</ID><NAME>web</NAME></VM>");
    BOOST_TEST(body_as<std::string>(api->call("one.vm.info", params{42}, std::stop_token{})) ==
               "<VM><ID>42</ID><NAME>web</NAME></VM>");
    require_error(api->call("one.vm.info", params{43}, std::stop_token{}), error_kind::not_found, 0x400,
                  "Error getting virtual machine [43]");
}

BOOST_AUTO_TEST_CASE(i8_and_bool_parameters_travel_as_such) {
    // one.system.version takes none: the fake faults on extra parameters,
    // as oned's signatures do, and records what it got.
    auto r = api->call("one.system.version", params{std::int64_t{1} << 40, true}, std::stop_token{});
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::io);
    BOOST_TEST(r.err().message.find("XML-RPC fault") != std::string::npos, r.err().message);
    const auto calls = oned.calls();
    BOOST_REQUIRE(!calls.empty());
    BOOST_TEST(calls.back().params == (std::vector<std::string>{"<session>", "1099511627776", "true"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(unknown_method_is_a_fault) {
    auto r = api->call("one.nosuch.method", {}, std::stop_token{});
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().kind == error_kind::io);
    BOOST_TEST(r.err().message.find("one.nosuch.method") == 0U);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(authentication_and_authorisation, oned_fixture)

BOOST_AUTO_TEST_CASE(bad_password_is_permission_with_oned_code_and_no_secret) {
    auto wrong = make_client(options_for(oned, "oneadmin:wrong-password-xyz"));
    auto r = wrong->call("one.system.version", {}, std::stop_token{});
    require_error(r, error_kind::permission, 0x100, "User couldn't be authenticated, aborting call.");
    BOOST_TEST(r.err().message.find("wrong-password-xyz") == std::string::npos);
    // Every call is authenticated, pool calls included.
    require_error(wrong->call("one.imagepool.info", params{-2, -1, -1}, std::stop_token{}), error_kind::permission,
                  0x100, "authenticated");
}

BOOST_AUTO_TEST_CASE(plain_users_own_what_they_allocate_and_see_only_that) {
    oned.add_user("dave", "dave-password");
    auto dave = make_client(options_for(oned, "dave:dave-password"));
    const int mine =
        body_as<std::int32_t>(dave->call("one.image.allocate", params{image_tmpl, image_ds, false}, std::stop_token{}));
    BOOST_TEST(oned.image(mine)->uid != 0);
    const int theirs =
        body_as<std::int32_t>(api->call("one.image.allocate", params{image_tmpl, image_ds, false}, std::stop_token{}));

    BOOST_TEST(dave->call("one.image.info", params{mine}, std::stop_token{}).has_value());
    require_error(dave->call("one.image.info", params{theirs}, std::stop_token{}), error_kind::permission, 0x200,
                  "Not authorized");
    require_error(dave->call("one.image.chown", params{mine, 0, 0}, std::stop_token{}), error_kind::permission, 0x200,
                  "Not authorized");
    require_error(dave->call("one.datastore.update", params{backup_ds, std::string("A=1"), 1}, std::stop_token{}),
                  error_kind::permission, 0x200, "Not authorized");
    require_error(dave->call("one.user.info", params{0}, std::stop_token{}), error_kind::permission, 0x200,
                  "Not authorized");
    auto pool = xml_of(dave->call("one.imagepool.info", params{-2, -1, -1}, std::stop_token{}));
    BOOST_TEST(pool.select_nodes("/IMAGE_POOL/IMAGE").size() == 1U);
    // Datastores are usable by everyone.
    BOOST_TEST(dave->call("one.datastore.info", params{backup_ds}, std::stop_token{}).has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(knobs, oned_fixture)

BOOST_AUTO_TEST_CASE(oned_refusing_halfway_through_image_allocations) {
    oned.refuse_image_allocation_from(3);
    std::vector<int> ids;
    for (int i = 0; i < 2; ++i)
        ids.push_back(body_as<std::int32_t>(api->call(
            "one.image.allocate", params{"NAME=\"d" + std::to_string(i) + "\"", image_ds, false}, std::stop_token{})));
    auto third =
        api->call("one.image.allocate", params{std::string("NAME=\"d2\""), image_ds, false}, std::stop_token{});
    require_error(third, error_kind::io, 0x4000, "one.image.allocate: [one.image.allocate] Not enough free space");
    BOOST_TEST(third.err().message == "one.image.allocate: [one.image.allocate] Not enough free space (code 16384)");
    BOOST_TEST(oned.images().size() == 2U);
    BOOST_TEST(oned.call_count("one.image.allocate") == 3U);
}

BOOST_AUTO_TEST_CASE(oned_refusing_the_template_after_the_images) {
    oned.refuse_template_allocation_from(1);
    BOOST_TEST(api->call("one.image.allocate", params{image_tmpl, image_ds, false}, std::stop_token{}).has_value());
    require_error(api->call("one.template.allocate", params{std::string("NAME=t")}, std::stop_token{}), error_kind::io,
                  0x4000, "Not enough free space");
    BOOST_TEST(oned.vm_templates().empty());
}

BOOST_AUTO_TEST_CASE(one_shot_failure_with_any_code) {
    oned.fail_call("one.datastore.info", 2, "[one.datastore.info] oned cluster in election mode", 0x2000, true);
    BOOST_TEST(api->call("one.datastore.info", params{backup_ds}, std::stop_token{}).has_value());
    require_error(api->call("one.datastore.info", params{backup_ds}, std::stop_token{}), error_kind::io, 0x2000,
                  "election mode");
    BOOST_TEST(api->call("one.datastore.info", params{backup_ds}, std::stop_token{}).has_value());
}

BOOST_AUTO_TEST_CASE(calls_are_recorded_with_the_session_redacted) {
    oned.clear_calls();
    BOOST_TEST(api->call("one.datastore.info", params{backup_ds, true}, std::stop_token{}).has_value());
    auto calls = oned.calls();
    BOOST_REQUIRE(calls.size() == 1U);
    BOOST_TEST(calls[0].method == "one.datastore.info");
    BOOST_TEST(calls[0].params == (std::vector<std::string>{"<session>", "100", "true"}),
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(secrets)

// Forces every kind of error with a session whose password is distinctive,
// including servers that quote it back, and checks no message contains it.
BOOST_AUTO_TEST_CASE(session_is_in_no_message) {
    const std::string password = "Zq9-very-secret-pw";
    fake_oned oned;
    const int uid = oned.add_user("eve", password, 0);
    (void)uid;
    oned.start();
    const std::string session = "eve:" + password;
    auto api = make_client(options_for(oned, session));

    std::vector<std::string> messages;
    auto collect = [&](const oneds::ports::result<oneds::ports::rpc_result> &r) {
        BOOST_TEST_REQUIRE(!r.has_value());
        messages.push_back(r.err().message);
    };
    oned.fail_call("one.image.info", 1, "[one.image.info] session was " + session, 0x2000, true);
    collect(api->call("one.image.info", params{0}, std::stop_token{}));
    oned.fault_next_call("one.datastore.info", "parse error near " + session + " and " + password);
    collect(api->call("one.datastore.info", params{0}, std::stop_token{}));
    collect(api->call("one.datastore.info", params{12}, std::stop_token{}));
    collect(api->call("one.nosuch", {}, std::stop_token{}));

    auto wrong = make_client(options_for(oned, "eve:" + password + "-typo"));
    collect(wrong->call("one.system.version", {}, std::stop_token{}));

    // Transport failures: a port nobody listens on, and an HTTP error.
    auto unreachable_opts = options_for(oned, session);
    unreachable_opts.endpoint = "http://127.0.0.1:1/RPC2";
    collect(make_client(unreachable_opts)->call("one.system.version", {}, std::stop_token{}));
    auto wrong_path = options_for(oned, session);
    wrong_path.endpoint = "http://127.0.0.1:" + std::to_string(oned.port()) + "/not-rpc2";
    collect(make_client(wrong_path)->call("one.system.version", {}, std::stop_token{}));
    // Credentials in the endpoint URL are not shown either.
    auto url_creds = options_for(oned, session);
    url_creds.endpoint = "http://eve:" + password + "@127.0.0.1:1/RPC2";
    collect(make_client(url_creds)->call("one.system.version", {}, std::stop_token{}));

    BOOST_TEST(messages.size() == 8U);
    for (const auto &m : messages) {
        BOOST_TEST(m.find(password) == std::string::npos, m);
        BOOST_TEST(m.find(session) == std::string::npos, m);
    }
    BOOST_TEST(messages[0].find("<redacted>") != std::string::npos, messages[0]);
    BOOST_TEST(messages[1].find("<redacted>") != std::string::npos, messages[1]);
}

BOOST_AUTO_TEST_SUITE_END()
