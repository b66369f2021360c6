// Datastore template files, as given to `onedatastore create`, read for
// `one_ds_host doctor`: OpenNebula's template syntax, one attribute a line,
//
//   NAME = "value"           quoted: \" is a quote (any other backslash stays), may span lines
//   NAME = value             unquoted: up to a blank, '#', '=', ',', '[' or ']'
//   NAME = [ A = "x", B = y ]  a vector attribute, may span lines
//   # comment                also after a value
//
// Names are upper-cased, as oned does.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace oneds::host {

struct template_attribute {
    std::string name;
    std::string value;                                              // "" for a vector
    std::vector<std::pair<std::string, std::string>> vector_items;  // a vector attribute's
    bool is_vector = false;
};

// Throws std::invalid_argument("line N: ...") naming the bad line.
std::vector<template_attribute> parse_template(const std::string &text);

// The DATASTORE document oned would give for that template: ID (the file's
// ID, else -1), NAME, DS_MAD, TM_MAD and BASE_PATH beside TEMPLATE, which
// holds every attribute.
std::string datastore_document(const std::vector<template_attribute> &attrs);

}  // namespace oneds::host
