#define BOOST_TEST_MODULE template_file
// Datastore template files for `one_ds_host doctor` (host/template_file.hpp):
// OpenNebula's template syntax and the DATASTORE document made of it.
#include "host/config.hpp"
#include "host/template_file.hpp"

#include <boost/test/unit_test.hpp>

#include <pugixml.hpp>

#include <stdexcept>

using oneds::host::datastore_document;
using oneds::host::parse_template;

namespace {

std::string error_of(const std::string &text) {
    try {
        parse_template(text);
    } catch (const std::invalid_argument &e) {
        return e.what();
    }
    return "(no error)";
}

}  // namespace

BOOST_AUTO_TEST_CASE(quoted_unquoted_comments_and_case) {
    const auto a = parse_template(
        "# a restic datastore\n"
        "NAME = \"restic ds\"\n"
        "ds_mad=restic   # lower case name, unquoted value, comment after it\n"
        "\n"
        "  TM_MAD = \"-\"\n"
        "RESTIC_PASSWORD = \"a \\\"quoted\\\" # not a comment \\\\ end\"\n");
    BOOST_REQUIRE_EQUAL(a.size(), 4U);
    BOOST_TEST(a[0].name == "NAME");
    BOOST_TEST(a[0].value == "restic ds");
    BOOST_TEST(a[1].name == "DS_MAD");
    BOOST_TEST(a[1].value == "restic");
    BOOST_TEST(a[2].value == "-");
    // As oned's lexer: \" is a quote, a backslash before anything else stays
    // (so \\ is two backslashes, as oned stores such a password).
    BOOST_TEST(a[3].value == "a \"quoted\" # not a comment \\\\ end");
}

BOOST_AUTO_TEST_CASE(unquoted_values_end_at_a_blank_and_names_are_oneds) {
    BOOST_TEST(parse_template("A = one\n").at(0).value == "one");
    BOOST_TEST(error_of("A = one two\n") == "line 1: unexpected 't' after the value of A");
    BOOST_TEST(error_of("A-B = 1\n") == "line 1: expected '=' after A");
    // A quote in an unquoted value is refused without showing the value.
    const auto e = error_of("RESTIC_PASSWORD = se\"cret\n");
    BOOST_TEST(e.find("quote") != std::string::npos, e);
    BOOST_TEST(e.find("cret") == std::string::npos, e);
}

BOOST_AUTO_TEST_CASE(multi_line_values_and_vectors) {
    const auto a = parse_template(
        "DESCRIPTION = \"line one\nline two\"\n"
        "LIMITS = [ CPU = \"2\",\n  MEM = 4 ]\n"
        "AFTER = x\n");
    BOOST_REQUIRE_EQUAL(a.size(), 3U);
    BOOST_TEST(a[0].value == "line one\nline two");
    BOOST_TEST(a[1].is_vector);
    BOOST_REQUIRE_EQUAL(a[1].vector_items.size(), 2U);
    BOOST_TEST(a[1].vector_items[1].first == "MEM");
    BOOST_TEST(a[1].vector_items[1].second == "4");
    BOOST_TEST(a[2].value == "x");
}

BOOST_AUTO_TEST_CASE(bad_lines_are_named) {
    BOOST_TEST(error_of("NAME = ok\nBROKEN LINE\n") == "line 2: expected '=' after BROKEN");
    BOOST_TEST(error_of("A = \"x\" junk\n") == "line 1: unexpected 'j' after the value of A");
    BOOST_TEST(error_of("A = 1\n\nB = \"never\nends\n") == "line 3: the quoted value that starts here never ends");
    BOOST_TEST(error_of("= \"v\"\n") == "line 1: expected an attribute name, found '='");
    BOOST_TEST(error_of("A = 1\n1A = 2\n") == "line 2: attribute name '1A' must start with a letter");
    BOOST_TEST(error_of("V = [ X = 1\n") == "line 1: the vector V that starts here never ends");
}

BOOST_AUTO_TEST_CASE(document_as_oned_gives_it) {
    const auto xml = datastore_document(parse_template(
        "ID = 104\nNAME = r\nDS_MAD = restic\nTM_MAD = \"-\"\nBASE_PATH = /b\nRESTIC_PASSWORD = \"<&>\"\n"));
    pugi::xml_document d;
    BOOST_REQUIRE(d.load_string(xml.c_str()));
    const auto ds = d.child("DATASTORE");
    BOOST_TEST(std::string(ds.child_value("ID")) == "104");
    BOOST_TEST(std::string(ds.child_value("DS_MAD")) == "restic");
    BOOST_TEST(std::string(ds.child_value("BASE_PATH")) == "/b");
    BOOST_TEST(std::string(ds.child("TEMPLATE").child_value("RESTIC_PASSWORD")) == "<&>");
    BOOST_TEST(!ds.child("TEMPLATE").child("ID"));
    // No ID line: -1, as for a datastore oned has not made yet.
    const auto none = datastore_document(parse_template("DS_MAD = restic\n"));
    BOOST_TEST(none.find("<ID>-1</ID>") != std::string::npos);
    BOOST_CHECK_THROW(datastore_document(parse_template("ID = x1\n")), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(doctor_command_line) {
    const auto r = oneds::host::load_settings(
        {"doctor", "--hypervisor", "kvm1", "--json", "/tmp/ds.tmpl", "--hypervisor=kvm2", "--driver", "restic"});
    BOOST_TEST(r.doctor_mode);
    BOOST_TEST(r.action_mode);
    BOOST_TEST(r.values.doctor_subject == "/tmp/ds.tmpl");
    BOOST_TEST(r.values.doctor_json);
    BOOST_TEST(r.values.doctor_driver == "restic");
    BOOST_REQUIRE_EQUAL(r.values.doctor_hypervisors.size(), 2U);
    BOOST_TEST(r.values.doctor_hypervisors[1] == "kvm2");
    BOOST_CHECK_THROW(oneds::host::load_settings({"doctor"}), std::invalid_argument);
    BOOST_CHECK_THROW(oneds::host::load_settings({"doctor", "1", "2"}), std::invalid_argument);
    const auto help = oneds::host::load_settings({"--help"});
    BOOST_TEST(help.help_text.find("one_ds_host doctor") != std::string::npos);
}
