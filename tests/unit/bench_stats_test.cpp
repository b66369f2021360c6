#define BOOST_TEST_MODULE bench_stats
// The benchmarks' statistics and number formats (bench/stats.hpp), which
// bench_stats prints for bench/run.sh: known inputs, and figures of the
// committed results recomputed from their samples; and the reports' text
// (bench/report.hpp): templates filled, samples selected from raw rows.
#include "bench/report.hpp"
#include "bench/stats.hpp"

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace b = oneds::bench;

BOOST_AUTO_TEST_SUITE(summary)

BOOST_AUTO_TEST_CASE(median_of_odd_and_even_counts_min_max) {
    const auto odd = b::summarize({3, 1, 2});
    BOOST_TEST(odd.median == 2);
    BOOST_TEST(odd.min == 1);
    BOOST_TEST(odd.max == 3);
    const auto even = b::summarize({4, 1, 3, 2});
    BOOST_TEST(even.median == 2.5);
    BOOST_TEST(even.min == 1);
    BOOST_TEST(even.max == 4);
    BOOST_TEST(b::summarize({7}).median == 7);
    BOOST_TEST(b::summarize({5, 5, 1, 9}).median == 5);
    BOOST_TEST(b::summarize({}).median == 0);
}

BOOST_AUTO_TEST_CASE(percentile_floor_rank_against_nearest_rank) {
    std::vector<double> thousand(1000);
    std::iota(thousand.begin(), thousand.end(), 1.0);
    BOOST_TEST(b::percentile_floor_rank(thousand, 99) == 990);  // rank floor(1000 * 0.99)
    BOOST_TEST(b::percentile_sorted(thousand, 99) == 990);      // whole: both agree
    BOOST_TEST(b::percentile_floor_rank(thousand, 100) == 1000);
    BOOST_TEST(b::percentile_floor_rank(thousand, 0) == 1);  // at least rank 1

    const std::vector<double> ten{1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    BOOST_TEST(b::percentile_floor_rank(ten, 99) == 9);  // floor(9.9)
    BOOST_TEST(b::percentile_sorted(ten, 99) == 10);     // ceil(9.9)
    const std::vector<double> five{1, 2, 3, 4, 5};
    BOOST_TEST(b::percentile_floor_rank(five, 50) == 2);  // floor(2.5)
    BOOST_TEST(b::percentile_sorted(five, 50) == 3);
    BOOST_TEST(b::percentile_floor_rank({42}, 99) == 42);  // floor(0.99) = 0 -> rank 1
    BOOST_TEST(b::percentile_floor_rank({}, 99) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(number_formats)

BOOST_AUTO_TEST_CASE(six_significant_digits_whole_numbers_in_full) {
    BOOST_TEST(b::six_significant_text(1.23456789) == "1.23457");
    BOOST_TEST(b::six_significant_text(1.0 / 3) == "0.333333");
    BOOST_TEST(b::six_significant_text(0.1 + 0.2) == "0.3");
    BOOST_TEST(b::six_significant_text(1234567) == "1234567");
    BOOST_TEST(b::six_significant_text(1234567.5) == "1.23457e+06");
    BOOST_TEST(b::six_significant_text(2147483647) == "2147483647");
    BOOST_TEST(b::six_significant_text(2147483648.0) == "2.14748e+09");
    BOOST_TEST(b::six_significant_text(-0.0) == "0");
    BOOST_TEST(b::six_significant_text(std::numeric_limits<double>::infinity()) == "inf");
    BOOST_TEST(b::six_significant(1.2345678) == 1.23457);
}

BOOST_AUTO_TEST_CASE(three_significant_digits_by_band) {
    BOOST_TEST(b::three_significant(346.019) == "346");
    BOOST_TEST(b::three_significant(1234.5678) == "1235");
    BOOST_TEST(b::three_significant(90.547) == "90.5");
    BOOST_TEST(b::three_significant(4.5141) == "4.51");
    BOOST_TEST(b::three_significant(1) == "1.00");
    BOOST_TEST(b::three_significant(0.596) == "0.596");
    BOOST_TEST(b::three_significant(0.0123456) == "0.0123");
    BOOST_TEST(b::three_significant(0.00001) == "1e-05");
    BOOST_TEST(b::three_significant(99.96) == "100.0");  // the band of the value before rounding
    BOOST_TEST(b::three_significant(std::nan("")) == "nan");
}

BOOST_AUTO_TEST_CASE(fixed_decimals_and_thousands) {
    BOOST_TEST(b::fixed(0.0005955, 6) == "0.000596");
    BOOST_TEST(b::fixed(10.29605, 4) == "10.2960");  // binary value just below the tie
    BOOST_TEST(b::fixed(16318440.0 / 1048576, 1) == "15.6");
    BOOST_TEST(b::rounded(1.2349996, 6) == 1.235);
    BOOST_TEST(b::group_thousands("10000") == "10,000");
    BOOST_TEST(b::group_thousands("500") == "500");
    BOOST_TEST(b::group_thousands("1000000") == "1,000,000");
    BOOST_TEST(b::group_thousands("-1000") == "-1,000");
    BOOST_TEST(b::group_thousands("1e4") == "1e4");
    BOOST_TEST(b::human(31245) == "31,245");
    BOOST_TEST(b::human(-1234) == "-1,234");
    BOOST_TEST(b::human(3.124) == "3.12");
}

BOOST_AUTO_TEST_CASE(parse_number_whole_text_only) {
    BOOST_TEST(*b::parse_number("0.346019") == 0.346019);
    BOOST_TEST(*b::parse_number("1e-05") == 1e-05);
    BOOST_TEST(std::isinf(*b::parse_number("inf")));
    BOOST_TEST(!b::parse_number(""));
    BOOST_TEST(!b::parse_number("1.5s"));
    BOOST_TEST(!b::parse_number("1 2"));
    BOOST_TEST(!b::parse_number("nan"));
}

BOOST_AUTO_TEST_SUITE_END()

// Figures of the committed results (bench/results/) from their samples
// (bench/results/runs/): the CSV row, the table cell and the ratio.
BOOST_AUTO_TEST_SUITE(committed_results)

BOOST_AUTO_TEST_CASE(download_wall_seconds_and_ratio) {
    const std::vector<double> ours{3.696765, 3.689978, 3.675282, 3.647836, 3.445966};
    const std::vector<double> bare{3.826805, 3.797238, 3.827590, 3.759793, 3.767814};
    BOOST_TEST(b::csv_figures(b::summarize(ours)) == "3.675282,3.445966,3.696765");
    BOOST_TEST(b::csv_figures(b::summarize(bare)) == "3.797238,3.759793,3.827590");
    BOOST_TEST(b::table_cell(b::summarize(ours)) == "3.68 (3.45–3.70)");
    std::vector<double> r;
    for (std::size_t i = 0; i < ours.size(); ++i) r.push_back(*b::parse_number(b::ratio_sample(ours[i], bare[i])));
    BOOST_TEST(b::ratio_sample(ours[0], bare[0]) == "0.966019");
    BOOST_TEST(b::csv_figures(b::summarize(r)) == "0.966019,0.914580,0.971753");
    BOOST_TEST(b::table_cell(b::summarize(r)) == "0.966 (0.915–0.972)");
}

BOOST_AUTO_TEST_CASE(monitor_latency_in_milliseconds) {
    const b::spread stock{0.346019, 0.334094, 0.374542};
    BOOST_TEST(b::table_cell_ms(stock) == "346 (334–375)");
    const b::spread warm{0.000596, 0.000586, 0.000601};
    BOOST_TEST(b::table_cell_ms(warm) == "0.596 (0.586–0.601)");
    BOOST_TEST(b::milliseconds(0.000879) == "0.879");
}

BOOST_AUTO_TEST_CASE(gnu_time_figures) {
    // One ours cell of case 6: GNU time's %M (KiB) and %U %S per run.
    const double kib[] = {15584, 15392, 15428, 15732, 15516};
    const double user[] = {0.09, 0.10, 0.10, 0.09, 0.09}, sys[] = {0.01, 0.01, 0.00, 0.00, 0.01};
    std::vector<double> rss, cpu;
    for (std::size_t i = 0; i < 5; ++i) {
        rss.push_back(*b::parse_number(b::peak_rss_mib_sample(kib[i])));
        cpu.push_back(*b::parse_number(b::cpu_seconds_sample(user[i], sys[i])));
    }
    BOOST_TEST(b::peak_rss_mib_sample(15584) == "15.2188");
    BOOST_TEST(b::cpu_seconds_sample(0.09, 0.01) == "0.1");  // not 0.09999999999999999
    BOOST_TEST(b::csv_figures(b::summarize(rss)) == "15.152300,15.031200,15.363300");
    BOOST_TEST(b::csv_figures(b::summarize(cpu)) == "0.100000,0.090000,0.110000");
    BOOST_TEST(b::table_cell(b::summarize(rss)) == "15.2 (15.0–15.4)");
}

BOOST_AUTO_TEST_SUITE_END()

// bench/cases/<case>.md filled by `bench_stats render`, and the samples `bench_stats
// select` reads from bench/results/runs/<case>.csv.
BOOST_AUTO_TEST_SUITE(report_text)

BOOST_AUTO_TEST_CASE(render_fills_every_placeholder_once) {
    const b::template_values v{{"repeat", "5"}, {"rows", "| a |\n| b |"}, {"t", "{{repeat}}"}};
    BOOST_TEST(b::render("of {{repeat}} runs, {{repeat}} again\n\n{{rows}}\n{{t}}\n", v) ==
               "of 5 runs, 5 again\n\n| a |\n| b |\n{{repeat}}\n");  // a value is not read again
    BOOST_TEST(b::render("", {}) == "");
    BOOST_TEST(b::render("no placeholder, `{` and } kept\n", {}) == "no placeholder, `{` and } kept\n");
    BOOST_TEST(b::render("{{a}}{{b_2}}", {{"a", ""}, {"b_2", "x"}}) == "x");
    BOOST_TEST(b::render("median (min–max) {{x}}", {{"x", "1"}}) == "median (min–max) 1");
}

BOOST_AUTO_TEST_CASE(render_refuses_what_does_not_fit) {
    const auto fails = [](std::string_view text, const b::template_values &v, std::string_view message) {
        try {
            (void)b::render(text, v);
        } catch (const std::runtime_error &e) {
            return std::string(e.what()) == message;
        }
        return false;
    };
    BOOST_TEST(fails("a\nb {{missing}}\n", {}, "line 2: no value for {{missing}}"));
    BOOST_TEST(fails("{{a}}\n", {{"a", "1"}, {"b", "2"}}, "no {{b}} in the template"));
    BOOST_TEST(fails("x {{ a }}", {{"a", "1"}}, "line 1: \"{{\" opens no {{name}} placeholder"));
    BOOST_TEST(fails("x {{A}}", {{"A", "1"}}, "line 1: \"{{\" opens no {{name}} placeholder"));
    BOOST_TEST(fails("\n\nx {{a", {{"a", "1"}}, "line 3: \"{{\" opens no {{name}} placeholder"));
    BOOST_TEST(fails("{{a\n}}", {{"a", "1"}}, "line 1: \"{{\" opens no {{name}} placeholder"));
    BOOST_TEST(b::is_placeholder_name("ms_stock2"));
    BOOST_TEST(!b::is_placeholder_name(""));
    BOOST_TEST(!b::is_placeholder_name("ms-stock"));
}

BOOST_AUTO_TEST_CASE(select_columns_of_matching_rows_in_order) {
    const std::string raw =
        "size_mib,data,snapshots,run,variant,seconds\n"
        "1,random,0,1,ours,1.344099\n"
        "1,random,0,1,bare,1.357335\n"
        "1,random,10,1,ours,1.300000\n"
        "\n"
        "1,random,0,2,ours,1.326216\n";
    using rows = std::vector<std::string>;
    BOOST_TEST(
        (b::select(raw, {"seconds"}, {{"snapshots", "0"}, {"variant", "ours"}}) == rows{"1.344099", "1.326216"}));
    BOOST_TEST((b::select(raw, {"size_mib", "data", "snapshots"}, {}) ==
                rows{"1,random,0", "1,random,0", "1,random,10", "1,random,0"}));
    BOOST_TEST(b::select(raw, {"seconds"}, {{"variant", "warm"}}).empty());
    BOOST_TEST(b::select("run,variant,seconds\n", {"seconds"}, {}).empty());
    BOOST_TEST((b::csv_fields("a,,b") == rows{"a", "", "b"}));
    BOOST_CHECK_THROW((void)b::select(raw, {"secs"}, {}), std::runtime_error);
    BOOST_CHECK_THROW((void)b::select(raw, {"seconds"}, {{"vms", "1"}}), std::runtime_error);
    BOOST_CHECK_THROW((void)b::select("run,seconds\n1,2,3\n", {"seconds"}, {}), std::runtime_error);
    BOOST_CHECK_THROW((void)b::select("", {"seconds"}, {}), std::runtime_error);
}

BOOST_AUTO_TEST_SUITE_END()
