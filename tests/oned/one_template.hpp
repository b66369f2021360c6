// OpenNebula template text for the fake oned: parse, merge, render as XML.
//
// Accepted (a subset of oned's template grammar, enough for what drivers and
// the stock restore send):
//   KEY="value"            value may span lines; \" and \\ are escapes, any
//                          other backslash is kept as it is
//   KEY=value              unquoted, up to the end of the line, trimmed
//   KEY=[A="1", B=2]       vector; pairs separated by ',', newlines allowed;
//                          an unquoted pair value ends at ',' or ']'
//   # comment              to the end of the line, where a key may start
//   <TEMPLATE>..</TEMPLATE> the XML form: a child element with element
//                          children is a vector, any other is single
// Attributes are separated by white space; names are [A-Za-z0-9_-.]+ and
// are upper-cased, as oned does. Keys may repeat (DISK=[..] DISK=[..]).
// Not supported: oned's $VARIABLE substitution, nested vectors, and the
// single-quoted or `KEY = value` with a line break before the value forms.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pugi {
class xml_node;
}

namespace oneds::test::oned {

struct template_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct template_attribute {
    std::string name;
    std::string value;                                       // single attributes
    std::vector<std::pair<std::string, std::string>> pairs;  // vector attributes
    bool vector = false;

    // The value of a pair of a vector attribute.
    std::optional<std::string> get(std::string_view key) const;
};

class one_template {
public:
    std::vector<template_attribute> attributes;

    // The first single attribute named `name` (upper case).
    std::optional<std::string> get(std::string_view name) const;
    // Every attribute named `name`, single or vector.
    std::vector<const template_attribute *> all(std::string_view name) const;
    bool contains(std::string_view name) const { return !all(name).empty(); }
    void set(const std::string &name, const std::string &value);  // replaces every `name`
    void erase(std::string_view name);
    // oned's update type 1: each name in `other` replaces every attribute of
    // that name here; others stay.
    void merge(const one_template &other);
    // Appends <NAME><![CDATA[value]]></NAME> (vectors with one child per
    // pair) for every attribute, in order, as oned renders a TEMPLATE.
    void append_xml(pugi::xml_node &parent) const;
};

// Throws template_error with the offset of the problem.
one_template parse_template(std::string_view text);

}  // namespace oneds::test::oned
