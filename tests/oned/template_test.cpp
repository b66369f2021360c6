// The fake oned's template parser: the forms drivers and the stock restore
// send, merge semantics, rendering.
#define BOOST_TEST_MODULE oned_template
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "tests/oned/one_template.hpp"

#include <pugixml.hpp>

#include <sstream>

namespace bdata = boost::unit_test::data;
using namespace oneds::test::oned;

BOOST_AUTO_TEST_SUITE(template_parsing)

struct single_case {
    std::string text;
    std::string key;
    std::string value;
};
std::ostream &operator<<(std::ostream &o, const single_case &c) { return o << c.text; }

const std::vector<single_case> singles = {
    {R"(NAME="disk-0")", "NAME", "disk-0"},
    {"NAME=disk-0", "NAME", "disk-0"},
    {"name = disk 0  \n", "NAME", "disk 0"},
    {"  PATH=\"restic://100/3/0:abcd1234//var/lib/one/datastores/0/3/backup/disk.0.0\"", "PATH",
     "restic://100/3/0:abcd1234//var/lib/one/datastores/0/3/backup/disk.0.0"},
    {R"(DESC="a \"quoted\" word and a \\ backslash")", "DESC", R"(a "quoted" word and a \ backslash)"},
    {R"(RE="\d+ stays")", "RE", R"(\d+ stays)"},
    {"MULTI=\"line one\nline two\"", "MULTI", "line one\nline two"},
    {"# a comment\nK=\"v\" # trailing words are not a comment inside quotes\n", "K", "v"},
    {"EMPTY=\"\"", "EMPTY", ""},
    {"MY-DRV.STATUS=\"ok\"", "MY-DRV.STATUS", "ok"},
};

BOOST_DATA_TEST_CASE(single_attributes, bdata::make(singles), c) {
    auto t = parse_template(c.text);
    BOOST_TEST(t.get(c.key).value_or("<missing>") == c.value);
}

BOOST_AUTO_TEST_CASE(several_attributes_and_repeated_vectors_in_order) {
    auto t = parse_template(R"(NAME="vm-1"
CPU="1" MEMORY="128"
DISK=[ IMAGE_ID="4", DEV_PREFIX = "vd" ]
DISK=[
  IMAGE_ID=5,
  TARGET="vdb"
]
NIC=[NETWORK_ID="0"])");
    BOOST_TEST(t.attributes.size() == 6U);
    BOOST_TEST(t.get("CPU").value_or("") == "1");
    BOOST_TEST(t.get("MEMORY").value_or("") == "128");
    auto disks = t.all("DISK");
    BOOST_REQUIRE(disks.size() == 2U);
    BOOST_TEST(disks[0]->vector);
    BOOST_TEST(disks[0]->get("IMAGE_ID").value_or("") == "4");
    BOOST_TEST(disks[0]->get("DEV_PREFIX").value_or("") == "vd");
    BOOST_TEST(disks[1]->get("IMAGE_ID").value_or("") == "5");
    BOOST_TEST(disks[1]->get("TARGET").value_or("") == "vdb");
    BOOST_TEST(t.attributes.back().name == "NIC");
}

BOOST_AUTO_TEST_CASE(xml_form_is_accepted) {
    auto t = parse_template("<TEMPLATE><NAME><![CDATA[x]]></NAME><DISK><IMAGE_ID>3</IMAGE_ID></DISK></TEMPLATE>");
    BOOST_TEST(t.get("NAME").value_or("") == "x");
    BOOST_REQUIRE(t.all("DISK").size() == 1U);
    BOOST_TEST(t.all("DISK")[0]->get("IMAGE_ID").value_or("") == "3");
}

const std::vector<std::string> broken = {
    "NAME=\"unterminated",
    "=value",
    "NAME",
    "DISK=[IMAGE_ID=\"1\"",
    "DISK=[IMAGE_ID=\"1\" TARGET=\"x\"]",
    "<TEMPLATE><unclosed></TEMPLATE>",
};

BOOST_DATA_TEST_CASE(broken_templates_throw, bdata::make(broken), text) {
    BOOST_CHECK_THROW(parse_template(text), template_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(template_editing)

BOOST_AUTO_TEST_CASE(merge_replaces_named_keys_and_keeps_the_rest) {
    auto t = parse_template("A=\"1\"\nB=\"2\"\nV=[X=\"1\"]\nV=[X=\"2\"]");
    t.merge(parse_template("B=\"20\"\nV=[X=\"3\"]\nC=\"3\""));
    BOOST_TEST(t.get("A").value_or("") == "1");
    BOOST_TEST(t.get("B").value_or("") == "20");
    BOOST_TEST(t.get("C").value_or("") == "3");
    BOOST_REQUIRE(t.all("V").size() == 1U);
    BOOST_TEST(t.all("V")[0]->get("X").value_or("") == "3");
    BOOST_TEST(t.all("B").size() == 1U);
}

BOOST_AUTO_TEST_CASE(renders_cdata_even_for_awkward_values) {
    one_template t = parse_template("A=\"x]]>y <&>\"\nV=[K=\"v\"]");
    pugi::xml_document doc;
    auto root = doc.append_child("TEMPLATE");
    t.append_xml(root);
    std::ostringstream out;
    doc.save(out, "", pugi::format_raw | pugi::format_no_declaration);
    BOOST_TEST(out.str().find("<V><K><![CDATA[v]]></K></V>") != std::string::npos);

    pugi::xml_document back;
    BOOST_REQUIRE(back.load_string(out.str().c_str()));
    std::string a;  // split across CDATA sections: read them all
    for (auto part : back.child("TEMPLATE").child("A").children()) a += part.value();
    BOOST_TEST(a == "x]]>y <&>");
}

BOOST_AUTO_TEST_SUITE_END()
