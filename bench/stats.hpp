// Small statistics and number formatting shared by the benchmark programs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace oneds::bench {

// Nearest-rank percentile (p in [0, 100]) of sorted values; 0 for none.
inline double percentile_sorted(const std::vector<double> &sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// Median and spread of one metric over the repeated runs.
struct spread {
    double median = 0;
    double min = 0;
    double max = 0;
};

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

// About three significant digits, thousands separated by ',' from 1,000 up:
// 0.0312, 0.312, 3.12, 31.2, 312, 3,124, 31,245.
inline std::string human(double v) {
    char buf[64];
    const double a = std::fabs(v);
    if (a >= 1000 || a == 0 || std::nearbyint(v) == v) {
        std::snprintf(buf, sizeof buf, "%.0f", a);
        const std::string digits = buf;
        std::string out = v < 0 ? "-" : "";
        for (std::size_t i = 0; i < digits.size(); ++i) {
            if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
            out.push_back(digits[i]);
        }
        return out;
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

}  // namespace oneds::bench
