// bench_stats: every figure bench/run.sh writes, computed by bench/stats.hpp,
// and the text of its reports (bench/report.hpp), so that the script itself
// only runs the cases and collects samples. A SAMPLES file holds one number a
// line (empty lines are skipped); T0 and T1 are $EPOCHREALTIME stamps (seconds,
// '.' or ',' before the microseconds).
//
//   elapsed T0 T1          seconds from T0 to T1, 6 decimals (one run's sample)
//   rate AMOUNT T0 T1      AMOUNT per second from T0 to T1, 4 decimals
//   ratios A B             the per-run ratios A[i] / B[i], one a line (a SAMPLES file)
//   cost rss|cpu FILE CELL SNAPSHOTS
//                          of FILE's lines "CELL SNAPSHOTS PEAK_KIB USER_S SYS_S ..."
//                          (GNU time per run) for that cell: peak RSS MiB or CPU s
//   csv SAMPLES            "median,min,max" of a summary row, 6 decimals each
//   cell SAMPLES           "median (min–max)" of a table, 3 significant digits
//   cell-ms SAMPLES        the same, seconds shown as milliseconds
//   median SAMPLES         6 decimals
//   percentile P SAMPLES   6 decimals; rank floor(n * P / 100), at least 1
//   ms SECONDS             a table's milliseconds, 3 significant digits
//   thousands N            10000 -> 10,000
//   mebi N                 N / 1048576, 1 decimal (bytes in MiB, KiB in GiB)
//   select RAW COLUMN[,COLUMN...] [NAME=VALUE]...
//                          of the raw CSV's rows whose column NAME holds VALUE
//                          (every one given), in order: those columns, ','-joined
//                          (one column: a SAMPLES file)
//   render TEMPLATE [NAME=TEXT | NAME@FILE]...
//                          TEMPLATE with each {{NAME}} replaced by TEXT, or by
//                          FILE's text without its final newlines (as $(cat FILE))
//
// No samples give "nan" figures (a percentile 0). Exit 2: usage; 1: a file
// that cannot be read or holds something else than numbers, a raw CSV without
// a column asked for, a template with a placeholder no argument fills or an
// argument no placeholder asks for.
#include "bench/report.hpp"
#include "bench/stats.hpp"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace b = oneds::bench;

constexpr const char *k_usage =
    "Usage: bench_stats elapsed T0 T1 | rate AMOUNT T0 T1 | ratios A B | cost rss|cpu FILE CELL SNAPSHOTS\n"
    "       | csv SAMPLES | cell SAMPLES | cell-ms SAMPLES | median SAMPLES | percentile P SAMPLES\n"
    "       | ms SECONDS | thousands N | mebi N | select RAW COLUMN[,COLUMN...] [NAME=VALUE]...\n"
    "       | render TEMPLATE [NAME=TEXT | NAME@FILE]...\n";

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

double number(const std::string &text, const std::string &what) {
    const auto v = b::parse_number(text);
    if (!v) throw std::runtime_error(what + ": not a number: '" + text + "'");
    return *v;
}

// An $EPOCHREALTIME stamp; a locale may write ',' before the microseconds.
double stamp(std::string text) {
    std::replace(text.begin(), text.end(), ',', '.');
    return number(text, "time stamp");
}

std::string trimmed(const std::string &s) {
    const auto first = s.find_first_not_of(" \t\r");
    if (first == std::string::npos) return "";
    return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

std::string read_text(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::runtime_error("cannot read " + path);
    return text;
}

std::vector<double> read_samples(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<double> v;
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        line = trimmed(line);
        if (!line.empty()) v.push_back(number(line, path + ":" + std::to_string(n)));
    }
    return v;
}

b::spread summary(const std::vector<double> &v) {
    if (v.empty()) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        return {nan, nan, nan};
    }
    return b::summarize(v);
}

std::vector<std::string> words(const std::string &line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    return w;
}

void cost(const std::string &which, const std::string &path, const std::string &cell, const std::string &snapshots) {
    if (which != "rss" && which != "cpu") throw usage_error("cost: rss or cpu, not " + which);
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::string line;
    for (std::size_t n = 1; std::getline(in, line); ++n) {
        const auto w = words(line);
        if (w.size() < 5 || w[0] != cell || w[1] != snapshots) continue;
        const std::string where = path + ":" + std::to_string(n);
        std::cout << (which == "rss" ? b::peak_rss_mib_sample(number(w[2], where))
                                     : b::cpu_seconds_sample(number(w[3], where), number(w[4], where)))
                  << '\n';
    }
}

// An argument "NAME=TEXT" (or "NAME@FILE"), NAME a placeholder's or a
// column's name.
struct named_arg {
    std::string name;
    char separator = '=';
    std::string rest;
};

std::optional<named_arg> named(const std::string &arg, std::string_view separators) {
    const auto at = arg.find_first_of(separators);
    if (at == std::string::npos || !b::is_placeholder_name(std::string_view(arg).substr(0, at))) return std::nullopt;
    return named_arg{arg.substr(0, at), arg[at], arg.substr(at + 1)};
}

void select_command(const std::vector<std::string> &a) {
    if (a.size() < 3) throw usage_error("select: RAW COLUMN[,COLUMN...] [NAME=VALUE]...");
    std::vector<std::pair<std::string, std::string>> match;
    for (std::size_t i = 3; i < a.size(); ++i) {
        auto m = named(a[i], "=");
        if (!m) throw usage_error("select: not NAME=VALUE: '" + a[i] + "'");
        match.emplace_back(std::move(m->name), std::move(m->rest));
    }
    try {
        for (const auto &row : b::select(read_text(a[1]), b::csv_fields(a[2]), match)) std::cout << row << '\n';
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(a[1] + ": " + e.what());
    }
}

void render_command(const std::vector<std::string> &a) {
    if (a.size() < 2) throw usage_error("render: TEMPLATE [NAME=TEXT | NAME@FILE]...");
    b::template_values values;
    for (std::size_t i = 2; i < a.size(); ++i) {
        auto m = named(a[i], "=@");
        if (!m) throw usage_error("render: not NAME=TEXT or NAME@FILE: '" + a[i] + "'");
        if (m->separator == '@') {
            m->rest = read_text(m->rest);
            m->rest.erase(m->rest.find_last_not_of('\n') + 1);
        }
        if (!values.emplace(std::move(m->name), std::move(m->rest)).second)
            throw usage_error("render: a value twice: '" + a[i] + "'");
    }
    try {
        std::cout << b::render(read_text(a[1]), values);
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(a[1] + ": " + e.what());
    }
}

void run(const std::vector<std::string> &a) {
    const auto need = [&](std::size_t n) {
        if (a.size() != n + 1) throw usage_error(a[0] + ": " + std::to_string(n) + " argument(s)");
    };
    const std::string &cmd = a[0];
    if (cmd == "elapsed") {
        need(2);
        std::cout << b::fixed(stamp(a[2]) - stamp(a[1]), 6) << '\n';
    } else if (cmd == "rate") {
        need(3);
        std::cout << b::fixed(number(a[1], "amount") / (stamp(a[3]) - stamp(a[2])), 4) << '\n';
    } else if (cmd == "ratios") {
        need(2);
        const auto x = read_samples(a[1]), y = read_samples(a[2]);
        if (x.size() != y.size())
            throw std::runtime_error("ratios: " + a[1] + " has " + std::to_string(x.size()) + " runs, " + a[2] + " " +
                                     std::to_string(y.size()));
        for (std::size_t i = 0; i < x.size(); ++i) std::cout << b::ratio_sample(x[i], y[i]) << '\n';
    } else if (cmd == "cost") {
        need(4);
        cost(a[1], a[2], a[3], a[4]);
    } else if (cmd == "csv") {
        need(1);
        std::cout << b::csv_figures(summary(read_samples(a[1]))) << '\n';
    } else if (cmd == "cell") {
        need(1);
        std::cout << b::table_cell(summary(read_samples(a[1]))) << '\n';
    } else if (cmd == "cell-ms") {
        need(1);
        std::cout << b::table_cell_ms(summary(read_samples(a[1]))) << '\n';
    } else if (cmd == "median") {
        need(1);
        std::cout << b::fixed(summary(read_samples(a[1])).median, 6) << '\n';
    } else if (cmd == "percentile") {
        need(2);
        const double p = number(a[1], "percentile");
        if (p < 0 || p > 100) throw usage_error("percentile: P in [0, 100]");
        auto v = read_samples(a[2]);
        std::sort(v.begin(), v.end());
        std::cout << b::fixed(b::percentile_floor_rank(v, p), 6) << '\n';
    } else if (cmd == "ms") {
        need(1);
        std::cout << b::milliseconds(number(a[1], "seconds")) << '\n';
    } else if (cmd == "thousands") {
        need(1);
        const std::string_view digits = std::string_view(a[1]).substr(a[1].starts_with('-') ? 1 : 0);
        if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos)
            throw std::runtime_error("thousands: not a whole number: '" + a[1] + "'");
        std::cout << b::group_thousands(a[1]) << '\n';
    } else if (cmd == "mebi") {
        need(1);
        std::cout << b::fixed(number(a[1], "mebi") / 1048576, 1) << '\n';
    } else if (cmd == "select") {
        select_command(a);
    } else if (cmd == "render") {
        render_command(a);
    } else {
        throw usage_error("unknown command: " + cmd);
    }
}

}  // namespace

int main(int argc, char **argv) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "-h" || args[0] == "--help") {
        (args.empty() ? std::cerr : std::cout) << k_usage;
        return args.empty() ? 2 : 0;
    }
    try {
        run(args);
    } catch (const usage_error &e) {
        std::cerr << "bench_stats: " << e.what() << "\n" << k_usage;
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "bench_stats: " << e.what() << "\n";
        return 1;
    }
    std::cout.flush();
    return std::cout ? 0 : 1;
}
