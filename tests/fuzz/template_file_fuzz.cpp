// Datastore template files (host/template_file.hpp, `one_ds_host doctor
// FILE`): any text parses or throws std::invalid_argument (documented);
// the DATASTORE document made of a parsed template is XML that reads back
// to the same attributes, in order, and parse_datastore takes it or refuses
// it with attribute_error.
#include "host/template_file.hpp"
#include "plugin/restic/model/attributes.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include <pugixml.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace {

// pugixml drops element text that is only white space and turns "\r\n" into
// "\n"; a NUL ends the C string the document is built from.
bool compares(const std::string &v) {
    return v.find_first_of(std::string("\r\0", 2)) == std::string::npos &&
           v.find_first_not_of(" \t\n") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    using namespace oneds::host;
    const std::string text(reinterpret_cast<const char *>(data), size);
    std::vector<template_attribute> attrs;
    try {
        attrs = parse_template(text);
    } catch (const std::invalid_argument &) {
        return 0;
    }
    std::string xml;
    try {
        xml = datastore_document(attrs);
    } catch (const std::invalid_argument &) {
        return 0;  // ID that is not a datastore id
    }
    pugi::xml_document doc;
    FUZZ_CHECK(doc.load_string(xml.c_str()));
    const auto ds = doc.child("DATASTORE");
    FUZZ_CHECK(ds);
    auto e = ds.child("TEMPLATE").first_child();
    for (const auto &a : attrs) {
        FUZZ_CHECK(!a.name.empty());
        if (a.name == "ID") continue;
        FUZZ_CHECK(e && a.name == e.name());
        if (!a.is_vector && compares(a.value)) FUZZ_CHECK(a.value == e.text().as_string());
        e = e.next_sibling();
    }
    try {
        (void)oneds::restic::parse_datastore(ds);
    } catch (const oneds::restic::attribute_error &) {}
    return 0;
}
