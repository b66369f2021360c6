// Statistics and number formats of the benchmarks, in one place: mad_bench and
// bench_chart use them directly, bench/run.sh through bench_stats (the script
// only runs the cases and collects the samples). tests/unit/bench_stats_test.cpp
// checks them against known inputs.
#pragma once

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace oneds::bench {

// Nearest-rank percentile (p in [0, 100]) of sorted values: the value at rank
// ceil(n * p / 100), at least rank 1; 0 for none. mad_bench's latencies.
inline double percentile_sorted(const std::vector<double> &sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// The percentile of bench/run.sh (p in [0, 100]) of sorted values: the value at
// rank floor(n * (p / 100)), at least rank 1 (rank 1 is the smallest); 0 for
// none. For 1,000 samples p99 is the 990th, for 10 the 9th. It agrees with
// percentile_sorted whenever n * p / 100 is whole; the restic cases have always
// used this one, so their p99 stays comparable.
inline double percentile_floor_rank(const std::vector<double> &sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::floor(static_cast<double>(sorted.size()) * (p / 100.0)));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// Median and spread of one metric over the repeated runs.
struct spread {
    double median = 0;
    double min = 0;
    double max = 0;
};

// The median of an even count is the mean of the two middle values; no values
// give zeros.
inline spread summarize(std::vector<double> values) {
    spread s;
    if (values.empty()) return s;
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    s.median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
    s.min = values.front();
    s.max = values.back();
    return s;
}

// "1234567" -> "1,234,567"; a leading '-' is kept. Digits only (else as given).
inline std::string group_thousands(std::string_view number) {
    const bool negative = !number.empty() && number.front() == '-';
    const std::string_view digits = negative ? number.substr(1) : number;
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::string(number);
    std::string out = negative ? "-" : "";
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
        out.push_back(digits[i]);
    }
    return out;
}

// About three significant digits, thousands separated by ',' from 1,000 up:
// 0.0312, 0.312, 3.12, 31.2, 312, 3,124, 31,245.
inline std::string human(double v) {
    char buf[64];
    const double a = std::fabs(v);
    if (a >= 1000 || a == 0 || std::nearbyint(v) == v) {
        std::snprintf(buf, sizeof buf, "%.0f", a);
        return (v < 0 ? "-" : "") + group_thousands(buf);
    }
    const int decimals = a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : a >= 0.1 ? 3 : 4;
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// Full precision for CSV.
inline std::string exact(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

// ---- The figures of bench/run.sh ---------------------------------------------------
//
// bench_stats prints these. They keep, digit for digit, the figures the
// restic cases have always written (results/*.csv and the tables of
// RESULTS.md), so a new run compares with the committed ones. That includes
// two roundings on the way, named below: six_significant (per-run ratios,
// milliseconds, MiB, CPU seconds are kept to 6 significant digits before they
// are summarised or formatted) and the CSV's 6 decimals, from which the tables
// are formatted.

// A number as text: whole numbers within +-(2^31 - 1) in full (-0 as 0), others
// with 6 significant digits ("%.6g": 0.333333, 1.23457e+06).
inline std::string six_significant_text(double v) {
    char buf[64];
    if (v >= -INT_MAX && v <= INT_MAX && std::trunc(v) == v)
        std::snprintf(buf, sizeof buf, "%ld", static_cast<long>(v));
    else
        std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

// v as six_significant_text writes it, read back.
inline double six_significant(double v) { return std::strtod(six_significant_text(v).c_str(), nullptr); }

// v with `decimals` decimals ("%.*f"; nan and inf as printf writes them).
inline std::string fixed(double v, int decimals) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

// v as fixed(v, decimals) writes it, read back.
inline double rounded(double v, int decimals) { return std::strtod(fixed(v, decimals).c_str(), nullptr); }

// The tables' 3 significant digits, by band of the value: from 100 no decimal,
// from 10 one, from 1 two, below 1 "%.3g" (0.0123, 1e-05). The band is chosen
// before rounding, so 99.96 shows as "100.0".
inline std::string three_significant(double v) {
    char buf[512];
    if (v >= 100)
        std::snprintf(buf, sizeof buf, "%.0f", v);
    else if (v >= 10)
        std::snprintf(buf, sizeof buf, "%.1f", v);
    else if (v >= 1)
        std::snprintf(buf, sizeof buf, "%.2f", v);
    else
        std::snprintf(buf, sizeof buf, "%.3g", v);
    return buf;
}

// A summary row's figures: "median,min,max", 6 decimals each.
inline std::string csv_figures(const spread &s) {
    return fixed(s.median, 6) + "," + fixed(s.min, 6) + "," + fixed(s.max, 6);
}

// A table cell from the CSV's figures: "median (min–max)", 3 significant digits.
inline std::string table_cell(const spread &s) {
    const auto f = [](double v) { return three_significant(rounded(v, 6)); };
    return f(s.median) + " (" + f(s.min) + "–" + f(s.max) + ")";
}

// Seconds shown as milliseconds: the CSV's figure times 1000, to 6
// significant digits, then 3 significant digits.
inline std::string milliseconds(double seconds) {
    return three_significant(six_significant(rounded(seconds, 6) * 1000));
}

inline std::string table_cell_ms(const spread &s) {
    return milliseconds(s.median) + " (" + milliseconds(s.min) + "–" + milliseconds(s.max) + ")";
}

// Samples derived from measured ones, as text (the SAMPLES files of
// bench_stats), each to 6 significant digits: one run's ratio a / b (x / 0 is
// inf), and GNU time's figures of one run: peak RSS (%M, KiB) in MiB, CPU
// (%U + %S) in seconds.
inline std::string ratio_sample(double a, double b) { return six_significant_text(a / b); }
inline std::string peak_rss_mib_sample(double kib) { return six_significant_text(kib / 1024); }
inline std::string cpu_seconds_sample(double user, double sys) { return six_significant_text(user + sys); }

// One number, the whole text: strtod's forms (decimal, exponent, inf), no NaN.
inline std::optional<double> parse_number(std::string_view text) {
    const std::string s(text);
    if (s.empty() || s.find_first_of(" \t") != std::string::npos) return std::nullopt;
    char *end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || std::isnan(v)) return std::nullopt;
    return v;
}

}  // namespace oneds::bench
