#define BOOST_TEST_MODULE local_store_test
#include <boost/test/unit_test.hpp>

#include "adapters/local/local_store.hpp"
#include "tests/support/capacity_check.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using oneds::adapters::local::local_store;
using oneds::ports::error_kind;

namespace {

struct scratch {
    scratch() {
        std::string pattern = (fs::temp_directory_path() / "oneds-local-XXXXXX").string();
        BOOST_REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        dir = pattern;
    }
    ~scratch() {
        std::error_code ignored;
        fs::permissions(dir / "locked", fs::perms::owner_all, ignored);
        fs::remove_all(dir, ignored);
    }
    scratch(const scratch &) = delete;
    scratch &operator=(const scratch &) = delete;
    scratch(scratch &&) = delete;
    scratch &operator=(scratch &&) = delete;

    fs::path dir;
    local_store store;
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(local_store_suite, scratch)

BOOST_AUTO_TEST_CASE(list_directory_gives_names_kinds_and_sizes) {
    fs::create_directories(dir / "data" / "ab");
    std::ofstream(dir / "config") << "12345";
    auto listed = store.list_directory(dir.string(), {});
    BOOST_REQUIRE(listed.has_value());
    BOOST_REQUIRE(listed->has_value());
    BOOST_TEST((*listed)->size() == 2u);
    for (const auto &e : **listed) {
        if (e.name == "config") {
            BOOST_TEST(!e.is_directory);
            BOOST_TEST(e.size == 5u);
        } else {
            BOOST_TEST(e.name == "data");
            BOOST_TEST(e.is_directory);
        }
    }
    auto missing = store.list_directory((dir / "nope").string(), {});
    BOOST_REQUIRE(missing.has_value());
    BOOST_TEST(!missing->has_value(), "an absent directory lists as nullopt");
}

BOOST_AUTO_TEST_CASE(stat_reports_a_file_with_its_size) {
    std::ofstream(dir / "config") << "0123456789";
    auto info = store.stat((dir / "config").string(), {});
    BOOST_REQUIRE(info.has_value());
    BOOST_TEST(info->exists);
    BOOST_TEST(!info->is_directory);
    BOOST_TEST(info->size == 10U);
}

BOOST_AUTO_TEST_CASE(stat_reports_a_directory) {
    auto info = store.stat(dir.string(), {});
    BOOST_REQUIRE(info.has_value());
    BOOST_TEST(info->exists);
    BOOST_TEST(info->is_directory);
}

BOOST_AUTO_TEST_CASE(stat_of_a_missing_path_is_not_an_error) {
    auto info = store.stat((dir / "missing" / "config").string(), {});
    BOOST_REQUIRE(info.has_value());
    BOOST_TEST(!info->exists);
    // Below a file (ENOTDIR) the path is just as absent.
    std::ofstream(dir / "file") << "x";
    auto below_file = store.stat((dir / "file" / "config").string(), {});
    BOOST_REQUIRE(below_file.has_value());
    BOOST_TEST(!below_file->exists);
}

BOOST_AUTO_TEST_CASE(stat_follows_symlinks) {
    fs::create_directory(dir / "real");
    fs::create_directory_symlink(dir / "real", dir / "link");
    auto info = store.stat((dir / "link").string(), {});
    BOOST_REQUIRE(info.has_value());
    BOOST_TEST(info->is_directory);
}

BOOST_AUTO_TEST_CASE(make_directories_creates_nested_directories_and_is_idempotent) {
    const fs::path nested = dir / "a" / "b" / "c";
    BOOST_REQUIRE(store.make_directories(nested.string(), {}).has_value());
    BOOST_TEST(fs::is_directory(nested));
    BOOST_TEST(store.make_directories(nested.string(), {}).has_value());
    BOOST_TEST(store.make_directories((dir / "a").string(), {}).has_value());
    BOOST_TEST(fs::is_directory(nested));
}

BOOST_AUTO_TEST_CASE(make_directories_refuses_a_file_in_the_way_naming_the_path) {
    std::ofstream(dir / "file") << "x";
    const std::string path = (dir / "file" / "sub").string();
    auto made = store.make_directories(path, {});
    BOOST_REQUIRE(!made.has_value());
    BOOST_TEST((made.err().kind == error_kind::invalid));
    BOOST_TEST(made.err().message.find(path) != std::string::npos, made.err().message);
}

BOOST_AUTO_TEST_CASE(permission_errors_name_the_path) {
    if (::geteuid() == 0) return;  // root ignores directory modes; nothing to observe
    fs::create_directory(dir / "locked");
    fs::permissions(dir / "locked", fs::perms::none);
    const std::string path = (dir / "locked" / "sub").string();
    auto made = store.make_directories(path, {});
    BOOST_REQUIRE(!made.has_value());
    BOOST_TEST((made.err().kind == error_kind::permission));
    BOOST_TEST(made.err().message.find(path) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_paths_are_invalid) {
    BOOST_TEST((store.stat("", {}).err().kind == error_kind::invalid));
    BOOST_TEST((store.make_directories("", {}).err().kind == error_kind::invalid));
    BOOST_TEST((store.capacity("", {}).err().kind == error_kind::invalid));
}

BOOST_AUTO_TEST_CASE(capacity_equals_statvfs_of_the_path) {
    // Other processes write to the same filesystem; compare when two statvfs
    // calls around the store's call agree.
    oneds::test::check_capacity_equals_statvfs(dir, [&] {
        auto capacity = store.capacity(dir.string(), {});
        BOOST_REQUIRE(capacity.has_value());
        return capacity;
    });
}

BOOST_AUTO_TEST_CASE(capacity_of_a_missing_path_is_not_found_naming_it) {
    const std::string path = (dir / "missing").string();
    auto capacity = store.capacity(path, {});
    BOOST_REQUIRE(!capacity.has_value());
    BOOST_TEST((capacity.err().kind == error_kind::not_found));
    BOOST_TEST(capacity.err().message.find(path) != std::string::npos);
}

BOOST_AUTO_TEST_CASE(describes_itself_as_local) { BOOST_TEST(store.describe() == "local"); }

BOOST_AUTO_TEST_SUITE_END()
