#include "tests/oned/one_template.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <cctype>

namespace oneds::test::oned {
namespace {

bool is_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

std::string upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
}

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(" \t\r\n");
    return std::string(s.substr(b, e - b + 1));
}

class text_parser {
public:
    explicit text_parser(std::string_view text) : s_(text) {}

    one_template parse() {
        one_template t;
        for (;;) {
            skip_space_and_comments();
            if (at_end()) break;
            template_attribute a;
            a.name = name();
            skip_blanks();
            expect('=');
            skip_blanks();
            if (peek() == '[') {
                ++pos_;
                a.vector = true;
                a.pairs = vector_body();
            } else if (peek() == '"') {
                a.value = quoted();
            } else {
                a.value = bare("\n");
            }
            t.attributes.push_back(std::move(a));
        }
        return t;
    }

private:
    bool at_end() const { return pos_ >= s_.size(); }
    char peek() const { return at_end() ? '\0' : s_[pos_]; }

    [[noreturn]] void fail(const std::string &what) const {
        throw template_error(what + " at offset " + std::to_string(pos_));
    }
    void expect(char c) {
        if (peek() != c) fail(std::string("expected '") + c + "'");
        ++pos_;
    }
    void skip_blanks() {
        while (peek() == ' ' || peek() == '\t') ++pos_;
    }
    void skip_space() {
        while (!at_end() && std::isspace(static_cast<unsigned char>(peek())) != 0) ++pos_;
    }
    void skip_space_and_comments() {
        for (;;) {
            skip_space();
            if (peek() != '#') return;
            while (!at_end() && peek() != '\n') ++pos_;
        }
    }

    std::string name() {
        auto start = pos_;
        while (!at_end() && is_name_char(peek())) ++pos_;
        if (pos_ == start) fail("expected an attribute name");
        return upper(std::string(s_.substr(start, pos_ - start)));
    }

    std::string quoted() {
        expect('"');
        std::string out;
        for (;;) {
            if (at_end()) fail("unterminated quoted value");
            char c = s_[pos_++];
            if (c == '"') return out;
            if (c == '\\' && (peek() == '"' || peek() == '\\')) c = s_[pos_++];
            out += c;
        }
    }

    std::string bare(std::string_view stops) {
        auto start = pos_;
        while (!at_end() && stops.find(peek()) == std::string_view::npos) ++pos_;
        return trim(s_.substr(start, pos_ - start));
    }

    std::vector<std::pair<std::string, std::string>> vector_body() {
        std::vector<std::pair<std::string, std::string>> pairs;
        for (;;) {
            skip_space();
            if (peek() == ']') {
                ++pos_;
                return pairs;
            }
            if (at_end()) fail("unterminated vector attribute");
            std::string key = name();
            skip_space();
            expect('=');
            skip_space();
            std::string value = peek() == '"' ? quoted() : bare(",]\n");
            pairs.emplace_back(std::move(key), std::move(value));
            skip_space();
            if (peek() == ',')
                ++pos_;
            else if (peek() != ']')
                fail("expected ',' or ']' in vector attribute");
        }
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

one_template parse_xml(std::string_view text) {
    pugi::xml_document doc;
    // No entity expansion beyond XML's own, no DOCTYPE processing: pugixml's
    // defaults.
    auto r = doc.load_buffer(text.data(), text.size(), pugi::parse_default);
    if (!r)
        throw template_error(std::string("XML template: ") + r.description() + " at offset " +
                             std::to_string(r.offset));
    auto root = doc.document_element();
    one_template t;
    for (auto child : root.children()) {
        if (child.type() != pugi::node_element) continue;
        template_attribute a;
        a.name = upper(child.name());
        if (child.find_child([](pugi::xml_node n) { return n.type() == pugi::node_element; })) {
            a.vector = true;
            for (auto pair : child.children())
                if (pair.type() == pugi::node_element) a.pairs.emplace_back(upper(pair.name()), pair.text().get());
        } else {
            a.value = child.text().get();
        }
        t.attributes.push_back(std::move(a));
    }
    return t;
}

void append_cdata(pugi::xml_node &node, const std::string &value) {
    // "]]>" cannot appear inside one CDATA section; split it across two.
    std::string::size_type start = 0;
    for (auto pos = value.find("]]>"); pos != std::string::npos; pos = value.find("]]>", start)) {
        node.append_child(pugi::node_cdata).set_value(value.substr(start, pos + 2 - start).c_str());
        start = pos + 2;
    }
    node.append_child(pugi::node_cdata).set_value(value.substr(start).c_str());
}

}  // namespace

std::optional<std::string> template_attribute::get(std::string_view key) const {
    for (const auto &[k, v] : pairs)
        if (k == key) return v;
    return std::nullopt;
}

std::optional<std::string> one_template::get(std::string_view name) const {
    for (const auto &a : attributes)
        if (!a.vector && a.name == name) return a.value;
    return std::nullopt;
}

std::vector<const template_attribute *> one_template::all(std::string_view name) const {
    std::vector<const template_attribute *> out;
    for (const auto &a : attributes)
        if (a.name == name) out.push_back(&a);
    return out;
}

void one_template::set(const std::string &name, const std::string &value) {
    erase(name);
    attributes.push_back({name, value, {}, false});
}

void one_template::erase(std::string_view name) {
    std::erase_if(attributes, [&](const template_attribute &a) { return a.name == name; });
}

void one_template::merge(const one_template &other) {
    for (const auto &a : other.attributes) erase(a.name);
    attributes.insert(attributes.end(), other.attributes.begin(), other.attributes.end());
}

void one_template::append_xml(pugi::xml_node &parent) const {
    for (const auto &a : attributes) {
        auto node = parent.append_child(a.name.c_str());
        if (!a.vector) {
            append_cdata(node, a.value);
            continue;
        }
        for (const auto &[k, v] : a.pairs) {
            auto child = node.append_child(k.c_str());
            append_cdata(child, v);
        }
    }
}

one_template parse_template(std::string_view text) {
    auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && text[first] == '<') return parse_xml(text);
    return text_parser(text).parse();
}

}  // namespace oneds::test::oned
