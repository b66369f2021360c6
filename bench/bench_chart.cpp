// bench_chart: draws benchmark summary CSVs as one SVG bar chart, no plotting
// tool needed.
//
//   bench_chart --out results.svg [--title TEXT] [--note TEXT]... SUMMARY.csv...
//
// One panel per CSV file, in the order given. A summary CSV (mad_bench --csv
// writes one) is an optional "# panel title" line, then a header naming at
// least case, metric, unit, median, min, max; optional columns: better
// ("higher"/"lower"), plot (0 leaves a row out of the chart; without the
// column every row is drawn). Inside a panel each plotted metric gets a group
// of horizontal bars, one per case: the bar is the median, the whisker min-max.
#include "bench/stats.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using oneds::bench::human;

struct row {
    std::string case_name, unit, better;
    double median = 0, min = 0, max = 0;
};

struct metric_group {
    std::string metric;
    std::vector<row> rows;
};

struct panel {
    std::string title;
    std::vector<metric_group> groups;
};

std::vector<std::string> split_csv_line(const std::string &line) {
    std::vector<std::string> fields(1);
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char ch = line[i];
        if (quoted) {
            if (ch == '"' && i + 1 < line.size() && line[i + 1] == '"') {
                fields.back() += '"';
                ++i;
            } else if (ch == '"') {
                quoted = false;
            } else {
                fields.back() += ch;
            }
        } else if (ch == '"') {
            quoted = true;
        } else if (ch == ',') {
            fields.emplace_back();
        } else if (ch != '\r') {
            fields.back() += ch;
        }
    }
    return fields;
}

panel read_panel(const std::filesystem::path &path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    panel p;
    std::map<std::string, std::size_t> column;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        if (line.front() == '#') {
            const auto start = line.find_first_not_of("# ");
            if (p.title.empty() && start != std::string::npos) p.title = line.substr(start);
            continue;
        }
        const auto fields = split_csv_line(line);
        if (column.empty()) {
            for (std::size_t i = 0; i < fields.size(); ++i) column[fields[i]] = i;
            for (const char *need : {"case", "metric", "unit", "median", "min", "max"})
                if (!column.contains(need))
                    throw std::runtime_error(path.string() + ": no column '" + need + "' in the header");
            continue;
        }
        auto get = [&](const char *name) -> std::string {
            const auto it = column.find(name);
            return it == column.end() || it->second >= fields.size() ? std::string() : fields[it->second];
        };
        if (column.contains("plot") && (get("plot") == "0" || get("plot") == "no" || get("plot") == "false")) continue;
        row r;
        r.case_name = get("case");
        r.unit = get("unit");
        r.better = get("better");
        try {
            r.median = std::stod(get("median"));
            r.min = std::stod(get("min"));
            r.max = std::stod(get("max"));
        } catch (const std::exception &) {
            throw std::runtime_error(path.string() + ": not a number in: " + line);
        }
        const auto metric = get("metric");
        auto g = std::find_if(p.groups.begin(), p.groups.end(), [&](const auto &x) { return x.metric == metric; });
        if (g == p.groups.end()) g = p.groups.insert(p.groups.end(), metric_group{metric, {}});
        g->rows.push_back(r);
    }
    if (p.title.empty()) p.title = path.stem().string();
    return p;
}

std::string esc(const std::string &s) {
    std::string out;
    for (char ch : s) {
        switch (ch) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            default: out += ch;
        }
    }
    return out;
}

// Layout, in px.
constexpr int k_width = 960;
constexpr int k_label_right = 300;  // case labels end here
constexpr int k_bar_left = 312;
constexpr int k_bar_span = 430;  // the largest max of a group reaches this far
constexpr int k_row = 24;
constexpr int k_bar = 14;
const char *const k_palette[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#76b7b2", "#b07aa1"};

std::string draw(const std::string &title, const std::vector<std::string> &notes, const std::vector<panel> &panels) {
    std::ostringstream body;
    int y = 32;
    body << "<text x=\"20\" y=\"" << y << "\" class=\"title\">" << esc(title) << "</text>\n";
    for (const auto &n : notes) {
        y += 18;
        body << "<text x=\"20\" y=\"" << y << "\" class=\"note\">" << esc(n) << "</text>\n";
    }
    y += 16;
    for (const auto &p : panels) {
        const int top = y;
        y += 26;
        body << "<text x=\"32\" y=\"" << y << "\" class=\"panel\">" << esc(p.title) << "</text>\n";
        for (std::size_t gi = 0; gi < p.groups.size(); ++gi) {
            const auto &g = p.groups[gi];
            const auto &first = g.rows.front();
            y += 24;
            std::string caption = g.metric;
            std::replace(caption.begin(), caption.end(), '_', ' ');
            caption += " (" + first.unit + ")";
            if (!first.better.empty()) caption += ", " + first.better + " is better";
            body << "<text x=\"32\" y=\"" << y << "\" class=\"metric\">" << esc(caption) << "</text>\n";
            double scale_max = 0;
            for (const auto &r : g.rows) scale_max = std::max({scale_max, r.max, r.median});
            if (scale_max <= 0) scale_max = 1;
            auto x_of = [&](double v) { return k_bar_left + std::max(0.0, v) / scale_max * k_bar_span; };
            const char *colour = k_palette[gi % std::size(k_palette)];
            const int group_top = y + 8;
            for (const auto &r : g.rows) {
                y += k_row;
                const double bar_y = y - k_bar + 3;
                const double mid = bar_y + k_bar / 2.0;
                body << "<text x=\"" << k_label_right << "\" y=\"" << y << "\" class=\"label\">" << esc(r.case_name)
                     << "</text>\n"
                     << "<rect x=\"" << k_bar_left << "\" y=\"" << bar_y << "\" width=\"" << x_of(r.median) - k_bar_left
                     << "\" height=\"" << k_bar << "\" fill=\"" << colour << "\"><title>"
                     << esc(r.case_name + ": " + human(r.median) + " " + r.unit) << "</title></rect>\n"
                     << "<path d=\"M" << x_of(r.min) << ' ' << mid << "H" << x_of(r.max) << "M" << x_of(r.min) << ' '
                     << mid - 4 << "V" << mid + 4 << "M" << x_of(r.max) << ' ' << mid - 4 << "V" << mid + 4
                     << "\" class=\"whisker\"/>\n"
                     << "<text x=\"" << std::max(x_of(r.max), x_of(r.median)) + 8 << "\" y=\"" << y
                     << "\" class=\"value\">" << esc(human(r.median) + " " + r.unit) << " <tspan class=\"range\">("
                     << esc(human(r.min) + "–" + human(r.max)) << ")</tspan></text>\n";
            }
            body << "<path d=\"M" << k_bar_left << ' ' << group_top << "V" << y + 6 << "\" class=\"axis\"/>\n";
        }
        y += 18;
        body << "<rect x=\"12\" y=\"" << top << "\" width=\"" << k_width - 24 << "\" height=\"" << y - top
             << "\" class=\"frame\"/>\n";
        y += 14;
    }
    std::ostringstream svg;
    svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << k_width << "\" height=\"" << y << "\" viewBox=\"0 0 "
        << k_width << ' ' << y << "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
        << "<style>\n"
           ".title{font-size:18px;font-weight:bold;fill:#222}\n"
           ".note{font-size:12px;fill:#555}\n"
           ".panel{font-size:15px;font-weight:bold;fill:#222}\n"
           ".metric{font-size:13px;fill:#333}\n"
           ".label{font-size:12px;fill:#222;text-anchor:end}\n"
           ".value{font-size:12px;fill:#222}\n"
           ".range{fill:#777}\n"
           ".whisker{stroke:#333;stroke-width:1.2;fill:none}\n"
           ".axis{stroke:#999;stroke-width:1;fill:none}\n"
           ".frame{fill:none;stroke:#ccc;stroke-width:1}\n"
           "</style>\n"
        << "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n"
        << body.str() << "</svg>\n";
    return svg.str();
}

}  // namespace

int main(int argc, char **argv) {
    std::string out_path;
    std::string title = "Benchmarks";
    std::vector<std::string> notes;
    std::vector<std::filesystem::path> inputs;
    const std::vector<std::string> args(argv + 1, argv + argc);
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto &a = args[i];
        const bool has_value = i + 1 < args.size();
        if (a == "--out" && has_value)
            out_path = args[++i];
        else if (a == "--title" && has_value)
            title = args[++i];
        else if (a == "--note" && has_value)
            notes.push_back(args[++i]);
        else if (a == "-h" || a == "--help") {
            std::cout << "Usage: bench_chart --out FILE.svg [--title TEXT] [--note TEXT]... SUMMARY.csv...\n";
            return 0;
        } else if (!a.empty() && a.front() == '-') {
            std::cerr << "bench_chart: unknown option or missing value: " << a << "\n";
            return 2;
        } else {
            inputs.emplace_back(a);
        }
    }
    if (out_path.empty() || inputs.empty()) {
        std::cerr << "Usage: bench_chart --out FILE.svg [--title TEXT] [--note TEXT]... SUMMARY.csv...\n";
        return 2;
    }
    try {
        std::vector<panel> panels;
        for (const auto &in : inputs) {
            auto p = read_panel(in);
            if (!p.groups.empty()) panels.push_back(std::move(p));
        }
        std::ofstream out(out_path);
        out << draw(title, notes, panels);
        if (!out) throw std::runtime_error("cannot write " + out_path);
    } catch (const std::exception &e) {
        std::cerr << "bench_chart: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
