// The fake oned's <IMAGE> and <DATASTORE> documents are valid against
// OpenNebula's XSDs (share/doc/xsd of OpenNebula's source, given with
// -DONEDS_ONE_XSD_DIR), checked with xmllint when both are there.
#define BOOST_TEST_MODULE oned_schema
#include <boost/test/unit_test.hpp>

#include "tests/oned/oned_fixture.hpp"

#include "common/child.hpp"
#include "common/unique_fd.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace oneds::test::oned;
using oneds::ports::rpc_value;
namespace fs = std::filesystem;

namespace {

struct scratch {
    fs::path dir;
    scratch() {
        std::string tmpl = (fs::temp_directory_path() / "oned-schema-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp");
        dir = tmpl;
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
};

// The XSDs put every element in OpenNebula's namespace; oned's documents
// carry none. Declare it on the root so the schema applies.
std::string with_namespace(std::string xml, const std::string &root) {
    const std::string open = "<" + root + ">";
    BOOST_TEST_REQUIRE(xml.starts_with(open), xml.substr(0, 80));
    xml.replace(0, open.size(), "<" + root + " xmlns=\"http://opennebula.org/XMLSchema\">");
    return xml;
}

// xmllint --noout --schema <xsd> <file>; returns its exit status and output.
std::pair<int, std::string> xmllint(const fs::path &xsd, const fs::path &file, const fs::path &log) {
    oneds::common::child_spec spec;
    spec.argv = {ONEDS_XMLLINT, "--noout", "--schema", xsd.string(), file.string()};
    const oneds::common::unique_fd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    BOOST_TEST_REQUIRE(static_cast<bool>(out));
    spec.out = oneds::common::child_stream::use(out.get());
    spec.err = oneds::common::child_stream::use(out.get());
    const int status = oneds::common::spawn(spec).wait().exit_code();
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return {status, text.str()};
}

bool have_tools() {
    const std::string lint = ONEDS_XMLLINT;
    if (lint.empty() || lint.ends_with("NOTFOUND")) {
        BOOST_TEST_MESSAGE("xmllint not installed (apt-get install libxml2-utils): schema check skipped");
        return false;
    }
    if (!fs::exists(fs::path(ONEDS_XSD_DIR) / "image.xsd")) {
        BOOST_TEST_MESSAGE("no XSDs in " ONEDS_XSD_DIR ": schema check skipped");
        return false;
    }
    return true;
}

void validate(const std::string &xml, const std::string &root, const std::string &xsd_name) {
    scratch s;
    const auto file = s.dir / (xsd_name + ".xml");
    std::ofstream(file) << with_namespace(xml, root);
    auto [status, output] = xmllint(fs::path(ONEDS_XSD_DIR) / xsd_name, file, s.dir / "xmllint.log");
    BOOST_TEST(status == 0, output);
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(schemas, oned_fixture)

BOOST_AUTO_TEST_CASE(datastore_reply_validates) {
    if (!have_tools()) return;
    BOOST_TEST(api->call("one.image.allocate", std::vector<rpc_value>{std::string("NAME=a\nPATH=/x"), image_ds, false},
                         std::stop_token{})
                   .has_value());
    for (int id : {backup_ds, image_ds}) {
        auto r = api->call("one.datastore.info", std::vector<rpc_value>{id}, std::stop_token{});
        BOOST_TEST_REQUIRE(r.has_value());
        validate(std::get<std::string>(r->body), "DATASTORE", "datastore.xsd");
    }
}

BOOST_AUTO_TEST_CASE(image_reply_validates) {
    if (!have_tools()) return;
    auto id = api->call("one.image.allocate",
                        std::vector<rpc_value>{std::string("NAME=\"restored-disk-0\"\nTYPE=\"DATABLOCK\"\n"
                                                           "PATH=\"restic://100/3/0:abcd1234//d/disk.0.0\"\n"
                                                           "SIZE=\"12\"\nV=[A=\"1\",B=\"2\"]"),
                                               image_ds, false},
                        std::stop_token{});
    BOOST_TEST_REQUIRE(id.has_value());
    auto r = api->call("one.image.info", std::vector<rpc_value>{std::get<std::int32_t>(id->body)}, std::stop_token{});
    BOOST_TEST_REQUIRE(r.has_value());
    validate(std::get<std::string>(r->body), "IMAGE", "image.xsd");
}

BOOST_AUTO_TEST_CASE(an_invalid_document_is_caught) {
    // The check itself must be able to fail.
    if (!have_tools()) return;
    scratch s;
    const auto file = s.dir / "bad.xml";
    std::ofstream(file) << with_namespace("<IMAGE><ID>x</ID></IMAGE>", "IMAGE");
    auto [status, output] = xmllint(fs::path(ONEDS_XSD_DIR) / "image.xsd", file, s.dir / "log");
    BOOST_TEST(status != 0);
}

BOOST_AUTO_TEST_SUITE_END()
