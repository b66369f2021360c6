#include "host/template_file.hpp"

#include <pugixml.hpp>

#include <cctype>
#include <sstream>
#include <stdexcept>

namespace oneds::host {
namespace {

class reader {
public:
    explicit reader(const std::string &t) : t_(t) {}

    std::vector<template_attribute> all() {
        std::vector<template_attribute> out;
        for (;;) {
            skip_blank_and_comments(true);
            if (eof()) return out;
            out.push_back(attribute());
        }
    }

private:
    const std::string &t_;
    std::size_t i_ = 0;
    unsigned line_ = 1;

    bool eof() const { return i_ >= t_.size(); }
    char peek() const { return eof() ? '\0' : t_[i_]; }
    char next() {
        const char c = t_[i_++];
        if (c == '\n') ++line_;
        return c;
    }
    [[noreturn]] void bad(const std::string &why, unsigned line = 0) const {
        throw std::invalid_argument("line " + std::to_string(line != 0 ? line : line_) + ": " + why);
    }
    void skip_blank_and_comments(bool newlines) {
        while (!eof()) {
            const char c = peek();
            if (c == '#') {
                while (!eof() && peek() != '\n') next();
            } else if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
                next();
            } else {
                return;
            }
        }
    }
    std::string name() {
        std::string n;
        // oned's lexer: letters, digits and '_' only.
        while (!eof() && (std::isalnum(static_cast<unsigned char>(peek())) != 0 || peek() == '_'))
            n.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(next()))));
        if (n.empty()) {
            const char c = peek();
            bad(c == '"' ? std::string("a value without an attribute name")
                         : std::string("expected an attribute name, found '") + c + "'");
        }
        if (std::isalpha(static_cast<unsigned char>(n.front())) == 0 && n.front() != '_')
            bad("attribute name '" + n + "' must start with a letter");
        return n;
    }
    void equals(const std::string &n) {
        skip_blank_and_comments(false);
        if (peek() != '=') bad("expected '=' after " + n);
        next();
        skip_blank_and_comments(false);
    }
    std::string quoted() {
        const unsigned start = line_;
        next();  // "
        std::string v;
        for (;;) {
            if (eof()) bad("the quoted value that starts here never ends", start);
            const char c = next();
            if (c == '"') return v;
            // As oned: \" is a quote; any other backslash stays as it is
            // (\\ is two backslashes), so a password reads as oned stores it.
            if (c == '\\' && !eof() && peek() == '"') {
                v.push_back(next());
                continue;
            }
            v.push_back(c);
        }
    }
    // Unquoted, as oned's lexer: up to a blank, the end of the line, '#',
    // '=', ',', '[' or ']'. A quote inside is refused; the message names the
    // place, never the value (it may be a password).
    std::string bare(bool in_vector) {
        (void)in_vector;
        std::string v;
        while (!eof() && peek() != '\n' && peek() != '#' && peek() != ' ' && peek() != '\t' && peek() != '\r' &&
               peek() != '=' && peek() != ',' && peek() != '[' && peek() != ']')
            v.push_back(next());
        if (v.find('"') != std::string::npos) bad("a quote inside an unquoted value (quote the whole value)");
        return v;
    }
    void end_of_line(const std::string &n) {
        skip_blank_and_comments(false);
        if (!eof() && peek() != '\n') bad(std::string("unexpected '") + peek() + "' after the value of " + n);
    }
    template_attribute attribute() {
        template_attribute a;
        a.name = name();
        equals(a.name);
        if (peek() == '[') {
            const unsigned start = line_;
            next();
            a.is_vector = true;
            for (;;) {
                skip_blank_and_comments(true);
                if (eof()) bad("the vector " + a.name + " that starts here never ends", start);
                if (peek() == ']') {
                    next();
                    break;
                }
                std::string item = name();
                equals(item);
                std::string v = peek() == '"' ? quoted() : bare(true);
                a.vector_items.emplace_back(std::move(item), std::move(v));
                skip_blank_and_comments(true);
                if (eof()) bad("the vector " + a.name + " that starts here never ends", start);
                if (peek() == ',')
                    next();
                else if (peek() != ']')
                    bad("expected ',' or ']' in the vector " + a.name);
            }
        } else if (peek() == '"') {
            a.value = quoted();
        } else {
            a.value = bare(false);
        }
        end_of_line(a.name);
        return a;
    }
};

}  // namespace

std::vector<template_attribute> parse_template(const std::string &text) { return reader(text).all(); }

std::string datastore_document(const std::vector<template_attribute> &attrs) {
    pugi::xml_document doc;
    auto ds = doc.append_child("DATASTORE");
    auto find = [&](const char *n) -> const template_attribute * {
        for (const auto &a : attrs)
            if (!a.is_vector && a.name == n) return &a;
        return nullptr;
    };
    const auto *id = find("ID");
    if (id != nullptr && (id->value.empty() || id->value.find_first_not_of("0123456789") != std::string::npos))
        throw std::invalid_argument("ID must be a datastore id (digits), got '" + id->value + "'");
    ds.append_child("ID").text().set(id != nullptr ? id->value.c_str() : "-1");
    for (const char *n : {"NAME", "DS_MAD", "TM_MAD", "BASE_PATH"})
        if (const auto *a = find(n)) ds.append_child(n).text().set(a->value.c_str());
    auto tmpl = ds.append_child("TEMPLATE");
    for (const auto &a : attrs) {
        if (a.name == "ID") continue;
        auto e = tmpl.append_child(a.name.c_str());
        if (!a.is_vector) {
            e.text().set(a.value.c_str());
            continue;
        }
        for (const auto &[k, v] : a.vector_items) e.append_child(k.c_str()).text().set(v.c_str());
    }
    std::ostringstream out;
    doc.save(out, "", pugi::format_raw);
    return out.str();
}

}  // namespace oneds::host
