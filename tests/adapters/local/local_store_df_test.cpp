#define BOOST_TEST_MODULE local_store_df_test
#include <boost/test/unit_test.hpp>

#include "adapters/local/local_store.hpp"
#include "tests/support/capacity_check.hpp"
#include "tests/support/sshd_fixture.hpp"

#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using oneds::adapters::local::local_store;

namespace {

struct df_numbers {
    std::uint64_t total = 0;
    std::uint64_t used = 0;
    std::uint64_t available = 0;
    bool operator==(const df_numbers &) const = default;
};

// `df -PB1 path`: a header, then "Filesystem 1-blocks Used Available Capacity Mounted-on".
df_numbers df_of(const fs::path &path) {
    std::string out;
    std::string err;
    const int status = oneds::test::run_argv({"df", "-PB1", path.string()}, &out, &err);
    BOOST_REQUIRE_MESSAGE(status == 0, "df failed: " + err);
    std::istringstream lines(out);
    std::string header;
    std::string row;
    std::getline(lines, header);
    std::getline(lines, row);
    std::istringstream fields(row);
    std::string filesystem;
    df_numbers n;
    BOOST_REQUIRE(fields >> filesystem >> n.total >> n.used >> n.available);
    return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(capacity_equals_df_columns_of_the_same_path) {
    const fs::path dir = fs::temp_directory_path();
    local_store store;
    const auto store_capacity = [&] {
        auto capacity = store.capacity(dir.string(), {});
        BOOST_REQUIRE(capacity.has_value());
        return capacity;
    };
    const auto equals_df = [](const auto &capacity, const df_numbers &df_says) {
        BOOST_TEST(capacity->total_bytes == df_says.total);
        BOOST_TEST(capacity->used_bytes == df_says.used);
        BOOST_TEST(capacity->free_bytes == df_says.available);
    };
    const bool compared = oneds::test::check_while_still([&] { return df_of(dir); }, store_capacity, equals_df);
    BOOST_TEST(compared, "the filesystem never held still for two df runs");
}
