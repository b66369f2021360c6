// The datastore attribute validators (plugin/restic/model/attributes.hpp,
// names.hpp). The input is "NAME=value" lines: every value goes through each
// word check, whose acceptance must imply the grammar it promises (no
// leading '-', no blank, quote or shell character ...); then the lines become
// a DATASTORE's TEMPLATE (ID and BASE_PATH beside it), and parse_datastore
// either refuses it with attribute_error (the documented exception) or gives
// attributes whose every command-line word passes its check.
#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/model/names.hpp"

#include "tests/fuzz/fuzz_check.hpp"

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace oneds::restic;

bool alias(std::string_view h) { return h.starts_with("alias"); }

bool any_of(std::string_view s, std::string_view chars) { return s.find_first_of(chars) != std::string_view::npos; }

constexpr std::string_view shell_chars = " \t\r\n\v\f;|&$`'\"\\<>(){}*?!~#%=,";

void check_words(const std::string &v) {
    if (host_name_problem(v, alias).empty()) {
        FUZZ_CHECK(!v.empty() && v.front() != '-' && !any_of(v, shell_chars));
        for (const char c : v) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f);
        const auto bare = bare_host(v);
        FUZZ_CHECK(!bare.empty() && bare.front() != '-');
    }
    if (user_name_problem(v).empty()) {
        FUZZ_CHECK(!v.empty() && v.size() <= 32 && v.front() != '-' && !any_of(v, shell_chars));
        FUZZ_CHECK(!(v.front() >= '0' && v.front() <= '9'));
    }
    if (absolute_path_problem(v).empty()) {
        FUZZ_CHECK(!v.empty() && v.front() == '/');
        for (const char c : v) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
        const auto clean = clean_path(v);
        FUZZ_CHECK(clean.front() == '/' && clean_path(clean) == clean);
        FUZZ_CHECK(clean.find("/../") == std::string::npos && !clean.ends_with("/..") && !clean.ends_with("/."));
    }
    if (split_safe_word_problem(v).empty())
        FUZZ_CHECK(!v.empty() && v.front() != '-' && !any_of(v, " \t\r\n\v\f'\"\\"));
    if (is_decimal_id(v)) FUZZ_CHECK(v.size() <= 10 && v.find_first_not_of("0123456789") == std::string::npos);
    std::string host, dir;
    if (split_host_dir(v, host, dir)) FUZZ_CHECK(!host.empty() && v == host + ":" + dir);
    verify_window w;
    if (parse_verify_window(v, w).empty()) {
        FUZZ_CHECK(w.start >= 0 && w.start <= 23 && w.end >= 1 && w.end <= 24 && w.start != w.end);
        int hours = 0;
        for (int h = 0; h < 24; ++h) hours += in_window(w, h) ? 1 : 0;
        FUZZ_CHECK(hours >= 1 && hours <= 24);
    }
    (void)clean_path(v);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char *>(data), size);
    pugi::xml_document doc;
    auto ds = doc.append_child("DATASTORE");
    auto tmpl = ds.append_child("TEMPLATE");
    for (const auto &line : oneds::common::split(in, '\n')) {
        const auto eq = line.find('=');
        const std::string name = eq == std::string::npos ? line : line.substr(0, eq);
        const std::string value = eq == std::string::npos ? std::string() : line.substr(eq + 1);
        check_words(value);
        if (name.empty()) continue;
        auto parent = (name == "ID" || name == "BASE_PATH") ? ds : tmpl;
        parent.append_child(name.c_str()).text().set(value.c_str());
    }

    datastore_attributes a;
    try {
        a = parse_datastore(ds, alias);
    } catch (const attribute_error &) {
        return 0;
    }
    FUZZ_CHECK(!a.password.empty());
    FUZZ_CHECK(absolute_path_problem(a.base_path).empty() && clean_path(a.base_path) == a.base_path);
    FUZZ_CHECK(absolute_path_problem(a.tmp_dir).empty());
    FUZZ_CHECK(user_name_problem(a.sftp_user).empty());
    if (a.backend == backend_kind::sftp) FUZZ_CHECK(host_name_problem(a.sftp_server, alias).empty());
    if (!a.sftp_server.empty()) FUZZ_CHECK(host_name_problem(a.sftp_server, alias).empty());
    if (a.backend == backend_kind::s3 && !a.s3_cacert.empty()) FUZZ_CHECK(absolute_path_problem(a.s3_cacert).empty());
    FUZZ_CHECK(a.nice == -1 || (a.nice >= -20 && a.nice <= 19));
    FUZZ_CHECK(a.ionice == -1 || (a.ionice >= 0 && a.ionice <= 7));
    FUZZ_CHECK(a.connections >= 1 && a.connections <= 1024);
    FUZZ_CHECK(!a.bwlimit || *a.bwlimit == -1 || (*a.bwlimit >= 0 && *a.bwlimit <= (std::int64_t{1} << 30)));
    FUZZ_CHECK(a.slice_confined() ==
               (a.max_riops != -1 || a.max_wiops != -1 || a.cpu_quota != -1 || a.memory_max_mb != -1));
    const auto url = repository_url(a, a.base_path + "/42");
    FUZZ_CHECK(!url.empty() && url.find('\n') == std::string::npos);
    const auto argv = confined_argv(a, {"restic", "backup"});
    FUZZ_CHECK(argv.size() >= 2 && argv.back() == "backup");
    return 0;
}
