#define BOOST_TEST_MODULE mad_protocol
// oned's line protocol and the driver router, as pure functions
// (host/mad_protocol.hpp, host/driver_router.hpp): no process, no pipe.
#include "host/driver_router.hpp"
#include "host/mad_protocol.hpp"

#include "common/base64.hpp"
#include "common/fd_io.hpp"

#include <boost/test/unit_test.hpp>

using namespace oneds::host;
using kind = mad::parsed_line::kind;

BOOST_AUTO_TEST_SUITE(mad_lines)

BOOST_AUTO_TEST_CASE(requests_with_two_spaces_init_finalize_and_broken_lines) {
    auto r = mad::parse_line("MONITOR  100 PERT");
    BOOST_TEST((r.what == kind::request));
    BOOST_TEST(r.action == "MONITOR");
    BOOST_TEST(r.id == 100);
    BOOST_TEST(r.payload == "PERT");
    BOOST_TEST((mad::parse_line("INIT").what == kind::init));
    BOOST_TEST((mad::parse_line("  FINALIZE ").what == kind::finalize));
    BOOST_TEST((mad::parse_line("").what == kind::empty));
    BOOST_TEST((mad::parse_line("RM 7").what == kind::missing_payload));
    BOOST_TEST(mad::parse_line("RM 7").id == 7);
    BOOST_TEST((mad::parse_line("RM seven PERT").what == kind::malformed));
    BOOST_TEST((mad::parse_line("RM").what == kind::malformed));
    BOOST_TEST((mad::parse_line("RM 99999999999999999999999 P").what == kind::malformed));
}

BOOST_AUTO_TEST_CASE(monitor_info_is_base64_on_success_and_failure_the_rest_is_one_line) {
    BOOST_TEST(mad::reply_line("MONITOR", 3, true, "USED_MB=1\nTOTAL_MB=2\n") ==
               "MONITOR SUCCESS 3 " + oneds::common::base64_encode("USED_MB=1\nTOTAL_MB=2\n"));
    BOOST_TEST(mad::reply_line("MONITOR", 3, false, "no way") ==
               "MONITOR FAILURE 3 " + oneds::common::base64_encode("no way"));
    BOOST_TEST(mad::reply_line("RM", 4, false, "line 1\nline 2\n") == "RM FAILURE 4 line 1 line 2");
    BOOST_TEST(mad::reply_line("RM", 4, true, "") == "RM SUCCESS 4 -");
    BOOST_TEST(mad::reply_line("MONITOR", 4, true, "") == "MONITOR SUCCESS 4 -");
}

BOOST_AUTO_TEST_CASE(log_lines_have_one_level_letter_and_one_line) {
    BOOST_TEST(mad::log_line('W', 5, "careful\nnow") == "LOG W 5 careful now");
    BOOST_TEST(mad::log_line('x', -1, "hi") == "LOG I -1 hi");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(routing)

std::string payload(const std::string &ds) {
    return oneds::common::base64_encode("<DS_DRIVER_ACTION_DATA>" + ds + "</DS_DRIVER_ACTION_DATA>");
}

BOOST_AUTO_TEST_CASE(ds_mad_or_tm_mad_of_a_system_datastore) {
    auto r = route_payload(payload("<DATASTORE><TYPE>3</TYPE><DS_MAD>restic</DS_MAD><TM_MAD>-</TM_MAD></DATASTORE>"));
    BOOST_TEST_REQUIRE(std::holds_alternative<routed_request>(r));
    BOOST_TEST(std::get<routed_request>(r).driver == "restic");
    BOOST_TEST(!std::get<routed_request>(r).system_datastore);
    r = route_payload(payload("<DATASTORE><TYPE>1</TYPE><DS_MAD>-</DS_MAD><TM_MAD>ssh</TM_MAD></DATASTORE>"));
    BOOST_TEST(std::get<routed_request>(r).driver == "ssh");
    BOOST_TEST(std::get<routed_request>(r).system_datastore);
}

BOOST_AUTO_TEST_CASE(bad_payloads_give_the_failure_text) {
    auto r = route_payload("not base64 !!!");
    BOOST_TEST_REQUIRE(std::holds_alternative<std::string>(r));
    BOOST_TEST(std::get<std::string>(r) == "Cannot decode driver action data: not base64");
    r = route_payload(oneds::common::base64_encode("<unclosed"));
    BOOST_TEST(std::get<std::string>(r) == "Cannot parse driver action data: not XML");
}

// A document type declaration is refused (MAD and action mode alike); the
// same characters as text in CDATA or a comment are not one.
BOOST_AUTO_TEST_CASE(a_document_type_declaration_is_refused_and_only_a_real_one) {
    const std::string ds = "<DATASTORE><TYPE>3</TYPE><DS_MAD>restic</DS_MAD></DATASTORE>";
    for (const std::string dtd : {"<!DOCTYPE DS_DRIVER_ACTION_DATA>", "<!DOCTYPE x [<!ENTITY a \"b\">]>",
                                  "<!DOCTYPE x SYSTEM \"http://127.0.0.1:1/x.dtd\">"}) {
        const std::string xml =
            "<?xml version=\"1.0\"?>" + dtd + "<DS_DRIVER_ACTION_DATA>" + ds + "</DS_DRIVER_ACTION_DATA>";
        BOOST_TEST(!doctype_problem(xml).empty(), dtd);
        const auto r = route_payload(oneds::common::base64_encode(xml));
        BOOST_TEST_REQUIRE(std::holds_alternative<std::string>(r));
        BOOST_TEST(std::get<std::string>(r).find("Cannot parse driver action data: XML with a document type") == 0u);
    }
    for (const std::string text : {"<D><![CDATA[<!DOCTYPE html><p>x</p>]]></D>", "<D><!-- <!DOCTYPE x> --></D>",
                                   "<D>&lt;!DOCTYPE x&gt;</D>", "<D/>"})
        BOOST_TEST(doctype_problem(text).empty(), text);
}

BOOST_AUTO_TEST_SUITE_END()

// The splitter that frames oned's lines (common/fd_io.hpp).
BOOST_AUTO_TEST_SUITE(line_framing)

BOOST_AUTO_TEST_CASE(lines_across_chunks_with_crlf_and_a_rest) {
    oneds::common::line_splitter lines;
    lines.append("MONITOR 1 AA");
    BOOST_TEST(!lines.next().has_value());
    lines.append("AA\r\nRM 2 B\nIN");
    BOOST_TEST(lines.next().value() == "MONITOR 1 AAAA");
    BOOST_TEST(lines.dropped() == 0U);
    BOOST_TEST(lines.next().value() == "RM 2 B");
    BOOST_TEST(!lines.next().has_value());
    lines.append("IT\n\n");
    BOOST_TEST(lines.next().value() == "INIT");
    BOOST_TEST(lines.next().value() == "");
    lines.append("FINAL");
    BOOST_TEST(lines.take_rest() == "FINAL");
    BOOST_TEST(!lines.next().has_value());
}

BOOST_AUTO_TEST_CASE(a_line_over_the_limit_keeps_its_head_and_counts_the_rest) {
    oneds::common::line_splitter lines(100, 10);
    lines.append("BACKUP 42 ");
    for (int i = 0; i < 50; ++i) lines.append(std::string(1000, 'A'));  // in pieces, as read() gives it
    lines.append("\r\nRM 7 B\n");
    const auto big = lines.next();
    BOOST_REQUIRE(big.has_value());
    BOOST_TEST(*big == "BACKUP 42 ");
    // 10 + 50000 bytes and the \r, whose line was never whole.
    BOOST_TEST(big->size() + lines.dropped() == 10U + 50000U + 1U);
    const auto next = lines.next();
    BOOST_TEST(next.value() == "RM 7 B");
    BOOST_TEST(lines.dropped() == 0U);
    // Exactly at the limit is whole.
    lines.append(std::string(100, 'x') + "\n");
    BOOST_TEST(lines.next().value().size() == 100U);
    BOOST_TEST(lines.dropped() == 0U);
    lines.append(std::string(101, 'x') + "\n");
    BOOST_TEST(lines.next().value().size() == 10U);
    BOOST_TEST(lines.dropped() == 91U);
}

BOOST_AUTO_TEST_CASE(the_oversized_reply_names_the_size_and_the_limit) {
    const auto text = mad::oversized_reply_text(40000000);
    BOOST_TEST(text.find("40000000 bytes") != std::string::npos, text);
    BOOST_TEST(text.find(std::to_string(mad::k_max_request_line)) != std::string::npos, text);
}

BOOST_AUTO_TEST_SUITE_END()
