// The text side of the benchmark reports, in one place, for bench_stats: a
// case's section of RESULTS.md is its template bench/cases/<case>.md with the
// placeholders filled (render), from samples that are columns of the raw rows
// in bench/results/runs/ (select). tests/unit/bench_stats_test.cpp checks both.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace oneds::bench {

// A placeholder's name: one or more of a-z, 0-9 and '_'.
inline bool is_placeholder_name(std::string_view name) {
    if (name.empty()) return false;
    for (const char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

using template_values = std::map<std::string, std::string, std::less<>>;

// The template text with every "{{name}}" replaced by values[name], in one pass
// (what a value holds is never read for placeholders); the rest of the text as
// it is, the last newline included. Throws std::runtime_error, naming the
// template's line, for a "{{" that opens no "{{name}}", for a placeholder
// without a value, and for a value no placeholder asks for (a template and the
// script that fills it drifted apart).
inline std::string render(std::string_view text, const template_values &values) {
    std::string out;
    std::set<std::string, std::less<>> used;
    std::size_t line = 1;
    const auto where = [&line] { return "line " + std::to_string(line) + ": "; };
    for (std::size_t pos = 0; pos < text.size();) {
        const auto open = text.find("{{", pos);
        const auto plain = text.substr(pos, open == std::string_view::npos ? std::string_view::npos : open - pos);
        out.append(plain);
        for (const char c : plain) line += c == '\n' ? 1 : 0;
        if (open == std::string_view::npos) break;
        const auto close = text.find("}}", open + 2);
        const auto name =
            close == std::string_view::npos ? std::string_view{} : text.substr(open + 2, close - open - 2);
        if (!is_placeholder_name(name)) throw std::runtime_error(where() + "\"{{\" opens no {{name}} placeholder");
        const auto value = values.find(name);
        if (value == values.end()) throw std::runtime_error(where() + "no value for {{" + std::string(name) + "}}");
        out += value->second;
        used.insert(value->first);
        pos = close + 2;
    }
    for (const auto &[name, value] : values)
        if (!used.contains(name)) throw std::runtime_error("no {{" + name + "}} in the template");
    return out;
}

// The fields of one line of a raw CSV: split at every ',' (the raw rows quote
// nothing, so no field holds one).
inline std::vector<std::string> csv_fields(std::string_view line) {
    std::vector<std::string> fields;
    for (std::size_t pos = 0;;) {
        const auto comma = line.find(',', pos);
        fields.emplace_back(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
        if (comma == std::string_view::npos) return fields;
        pos = comma + 1;
    }
}

// Of a raw CSV (a header line naming the columns, then one row a line; empty
// lines skipped), the rows whose columns named in `match` hold exactly the
// values given, in the file's order: of each, the `columns` fields joined by
// ',', as written (a sample is the text the run wrote). Throws
// std::runtime_error for a column the header does not name and for a row with
// another number of fields than the header.
inline std::vector<std::string> select(std::string_view csv, const std::vector<std::string> &columns,
                                       const std::vector<std::pair<std::string, std::string>> &match) {
    std::vector<std::string> header, out;
    std::vector<std::size_t> picked;
    std::vector<std::pair<std::size_t, std::string>> tests;
    const auto index = [&header](const std::string &name) {
        for (std::size_t i = 0; i < header.size(); ++i)
            if (header[i] == name) return i;
        throw std::runtime_error("no column " + name);
    };
    std::size_t n = 0;
    for (std::size_t pos = 0; pos < csv.size();) {
        const auto end = csv.find('\n', pos);
        const auto line = csv.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
        pos = end == std::string_view::npos ? csv.size() : end + 1;
        ++n;
        if (line.empty()) continue;
        auto fields = csv_fields(line);
        if (header.empty()) {
            header = std::move(fields);
            for (const auto &c : columns) picked.push_back(index(c));
            for (const auto &[name, value] : match) tests.emplace_back(index(name), value);
            continue;
        }
        if (fields.size() != header.size())
            throw std::runtime_error("line " + std::to_string(n) + ": " + std::to_string(fields.size()) +
                                     " fields, the header names " + std::to_string(header.size()));
        bool matches = true;
        for (const auto &[i, value] : tests) matches = matches && fields[i] == value;
        if (!matches) continue;
        std::string row;
        for (std::size_t k = 0; k < picked.size(); ++k) row += (k == 0 ? "" : ",") + fields[picked[k]];
        out.push_back(std::move(row));
    }
    if (header.empty()) throw std::runtime_error("no header line");
    return out;
}

}  // namespace oneds::bench
