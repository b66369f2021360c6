// oned's reply arrays to results, in the adapter's one decoding place, and
// the scrubber that keeps the session out of every message.
#define BOOST_TEST_MODULE oned_reply
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "adapters/oned/internal/reply.hpp"
#include "tests/oned/test_print.hpp"

#include <xmlrpc-c/base.hpp>

namespace bdata = boost::unit_test::data;
using oneds::adapters::oned::internal::decode_reply;
using oneds::adapters::oned::internal::kind_for_one_code;
using oneds::adapters::oned::internal::scrubber;
using oneds::ports::error_kind;

namespace {

xmlrpc_c::value reply(std::vector<xmlrpc_c::value> items) { return xmlrpc_c::value_array(items); }

xmlrpc_c::value failure(const std::string &msg, int code) {
    return reply({xmlrpc_c::value_boolean(false), xmlrpc_c::value_string(msg), xmlrpc_c::value_int(code),
                  xmlrpc_c::value_int(-1), xmlrpc_c::value_i8(0)});
}

}  // namespace

BOOST_AUTO_TEST_SUITE(reply_decoding)

BOOST_AUTO_TEST_CASE(success_bodies_keep_their_type) {
    auto ok = [](xmlrpc_c::value body) {
        return decode_reply("m", reply({xmlrpc_c::value_boolean(true), body, xmlrpc_c::value_int(0)}));
    };
    auto i = ok(xmlrpc_c::value_int(42));
    BOOST_REQUIRE(i);
    BOOST_TEST(std::get<std::int32_t>(i->body) == 42);
    auto l = ok(xmlrpc_c::value_i8(1LL << 40));
    BOOST_REQUIRE(l);
    BOOST_TEST(std::get<std::int64_t>(l->body) == (std::int64_t{1} << 40));
    auto s = ok(xmlrpc_c::value_string("<IMAGE/>"));
    BOOST_REQUIRE(s);
    BOOST_TEST(std::get<std::string>(s->body) == "<IMAGE/>");
    auto b = ok(xmlrpc_c::value_boolean(true));
    BOOST_REQUIRE(b);
    BOOST_TEST(std::get<bool>(b->body));
}

struct code_case {
    int code;
    error_kind kind;
};
std::ostream &operator<<(std::ostream &o, const code_case &c) { return o << "code " << c.code; }

const std::vector<code_case> code_kinds = {
    {0x0100, error_kind::permission}, {0x0200, error_kind::permission}, {0x0400, error_kind::not_found},
    {0x0800, error_kind::io},         {0x1000, error_kind::io},         {0x2000, error_kind::io},
    {0x4000, error_kind::io},         {0x8000, error_kind::io},         {0x10000, error_kind::io},
    {12345, error_kind::io},
};

BOOST_DATA_TEST_CASE(failures_carry_message_code_and_kind, bdata::make(code_kinds), code_kind) {
    const auto [code, kind] = code_kind;
    auto r = decode_reply("one.image.info", failure("[one.image.info] Error getting image [7].", code));
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().code == code);
    BOOST_TEST(r.err().kind == kind);
    BOOST_TEST(r.err().message ==
               "one.image.info: [one.image.info] Error getting image [7]. (code " + std::to_string(code) + ")");
    BOOST_TEST(kind_for_one_code(code) == kind);
}

BOOST_AUTO_TEST_CASE(short_failure_without_code_is_still_a_failure) {
    auto r = decode_reply("m", reply({xmlrpc_c::value_boolean(false), xmlrpc_c::value_string("nope")}));
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.err().code == 0);
    BOOST_TEST(r.err().message == "m: nope (code 0)");
}

BOOST_AUTO_TEST_CASE(malformed_replies_are_io_errors) {
    const std::vector<xmlrpc_c::value> bad = {
        xmlrpc_c::value_string("not an array"),
        reply({xmlrpc_c::value_boolean(true)}),
        reply({xmlrpc_c::value_int(1), xmlrpc_c::value_int(2)}),
        reply({xmlrpc_c::value_boolean(false), xmlrpc_c::value_int(2)}),
        reply({xmlrpc_c::value_boolean(true), xmlrpc_c::value_double(1.5)}),
        reply({xmlrpc_c::value_boolean(true), xmlrpc_c::value_nil()}),
    };
    for (const auto &v : bad) {
        auto r = decode_reply("one.x", v);
        BOOST_REQUIRE(!r);
        BOOST_TEST(r.err().kind == error_kind::io);
        BOOST_TEST(r.err().code == 0);
        BOOST_TEST(r.err().message.find("one.x: malformed reply") == 0U);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(scrubbing)

BOOST_AUTO_TEST_CASE(session_and_password_are_masked_everywhere) {
    scrubber scrub("oneadmin:s3cr3t-pw");
    BOOST_TEST(scrub("bad session oneadmin:s3cr3t-pw here, and s3cr3t-pw again") ==
               "bad session <redacted> here, and <redacted> again");
    BOOST_TEST(scrub("nothing to hide") == "nothing to hide");
}

BOOST_AUTO_TEST_CASE(xml_escaped_forms_are_masked) {
    scrubber scrub("u:a&b<c>d");
    BOOST_TEST(scrub("got u:a&amp;b&lt;c&gt;d") == "got <redacted>");
}

BOOST_AUTO_TEST_CASE(very_short_passwords_are_masked_only_inside_the_session) {
    scrubber scrub("oneadmin:ab");
    BOOST_TEST(scrub("oneadmin:ab cannot read table abc") == "<redacted> cannot read table abc");
}

BOOST_AUTO_TEST_CASE(errors_are_scrubbed_too) {
    scrubber scrub("oneadmin:s3cr3t-pw");
    auto e = scrub(oneds::ports::error{error_kind::io, "x oneadmin:s3cr3t-pw y", 7});
    BOOST_TEST(e.message == "x <redacted> y");
    BOOST_TEST(e.code == 7);
}

BOOST_AUTO_TEST_SUITE_END()
