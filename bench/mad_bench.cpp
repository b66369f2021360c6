// mad_bench: one_ds_host in MAD mode under load, driven as oned drives it.
//
// N MONITOR requests for DS_MAD testdrv (the test plugin answers monitor at
// once), in two cases:
//   window  the peer keeps at most W requests outstanding and sends the next
//           one when a reply arrives; the host runs with -t W;
//   burst   the peer writes all N at once (oned does not limit what it sends)
//           and the host's -t T queues them.
// Each case: K warm-up runs, then R measured runs, each with a fresh host.
// Per run: requests/s (first send to last reply), latency (send to reply)
// p50/p90/p99/max, peak RSS of the host (VmHWM) and its CPU time
// (utime+stime), both read from /proc just before FINALIZE. Every id must get
// exactly one reply, a SUCCESS with the plugin's answer, and the host must exit
// 0 after FINALIZE; otherwise mad_bench exits 1.
//
// Output: a Markdown table (median and min-max over the R runs) on stdout;
// --csv FILE a summary row per case and metric (bench_chart draws it);
// --raw-csv FILE one row per run.
#include "bench/stats.hpp"
#include "tests/peer/oned_peer.hpp"

#include "common/base64.hpp"

#include <boost/program_options.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <optional>
#include <semaphore>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <poll.h>
#include <unistd.h>

namespace {

namespace po = boost::program_options;
using oneds::bench::exact;
using oneds::bench::human;
using clock_type = std::chrono::steady_clock;

struct options {
    std::size_t requests = 10000;
    unsigned window = 15;
    unsigned threads = 15;
    unsigned repeat = 5;
    unsigned warmup = 1;
    std::string mode = "both";
    std::string host = ONEDS_BENCH_HOST_PATH;
    std::string plugin = ONEDS_BENCH_TESTDRV_PATH;
    std::string csv;
    std::string raw_csv;
    std::string title;
    unsigned timeout_s = 300;
};

struct bench_case {
    std::string name;
    bool windowed = false;
    unsigned window = 0;   // peer-side limit (windowed only)
    unsigned threads = 0;  // the host's -t
};

struct run_result {
    std::size_t requests = 0;
    double seconds = 0;
    double requests_per_s = 0;
    double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
    double peak_rss_mib = 0;
    double cpu_s = 0;
    double finalize_s = 0;
    std::size_t missing = 0, duplicate = 0, unexpected = 0, failed = 0, other_lines = 0;
    bool write_failed = false;
    bool timed_out = false;
    oneds::test::exit_report exit;

    bool ok() const {
        return missing == 0 && duplicate == 0 && unexpected == 0 && failed == 0 && !write_failed && !timed_out &&
               exit.clean();
    }
    std::string problems() const {
        std::ostringstream out;
        if (missing) out << missing << " missing; ";
        if (duplicate) out << duplicate << " duplicate; ";
        if (unexpected) out << unexpected << " unexpected; ";
        if (failed) out << failed << " failed or wrong; ";
        if (write_failed) out << "the host's stdin closed early; ";
        if (timed_out) out << "timed out; ";
        if (!exit.clean()) out << "host after FINALIZE: " << exit.describe() << "; ";
        std::string s = out.str();
        if (s.size() >= 2) s.resize(s.size() - 2);
        return s;
    }
};

// ---- Requests ------------------------------------------------------------------

// A BACKUP datastore of driver testdrv as oned writes it for MONITOR (no
// IMAGE; Datastore::to_xml with a typical template), about 1 KiB.
std::string monitor_document(std::size_t ds_id) {
    const std::string id = std::to_string(ds_id);
    return "<DS_DRIVER_ACTION_DATA><DATASTORE><ID>" + id +
           "</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
           "<NAME>bench-" +
           id +
           "</NAME><PERMISSIONS><OWNER_U>1</OWNER_U><OWNER_M>1</OWNER_M><OWNER_A>0</OWNER_A>"
           "<GROUP_U>1</GROUP_U><GROUP_M>0</GROUP_M><GROUP_A>0</GROUP_A><OTHER_U>0</OTHER_U>"
           "<OTHER_M>0</OTHER_M><OTHER_A>0</OTHER_A></PERMISSIONS>"
           "<DS_MAD><![CDATA[testdrv]]></DS_MAD><TM_MAD><![CDATA[-]]></TM_MAD>"
           "<BASE_PATH><![CDATA[/var/lib/one//datastores/" +
           id +
           "]]></BASE_PATH><TYPE>3</TYPE><DISK_TYPE>0</DISK_TYPE><STATE>0</STATE>"
           "<CLUSTERS><ID>0</ID></CLUSTERS><TOTAL_MB>10240</TOTAL_MB><FREE_MB>9216</FREE_MB>"
           "<USED_MB>1024</USED_MB><IMAGES><ID>12</ID><ID>13</ID></IMAGES><TEMPLATE>"
           "<DS_MAD><![CDATA[testdrv]]></DS_MAD><TM_MAD><![CDATA[-]]></TM_MAD>"
           "<TYPE><![CDATA[BACKUP_DS]]></TYPE><RESTIC_SFTP_SERVER><![CDATA[10.0.0.5]]></RESTIC_SFTP_SERVER>"
           "<RESTIC_SFTP_USER><![CDATA[oneadmin]]></RESTIC_SFTP_USER>"
           "<RESTIC_PASSWORD><![CDATA[not-a-secret]]></RESTIC_PASSWORD>"
           "<SAFE_DIRS><![CDATA[/var/tmp]]></SAFE_DIRS></TEMPLATE></DATASTORE></DS_DRIVER_ACTION_DATA>";
}

// "MONITOR  <id> <base64>": the status is empty, hence two spaces (as oned).
std::vector<std::string> monitor_lines(std::size_t n) {
    std::vector<std::string> lines;
    lines.reserve(n);
    for (std::size_t id = 0; id < n; ++id)
        lines.push_back("MONITOR  " + std::to_string(id) + " " + oneds::common::base64_encode(monitor_document(id)));
    return lines;
}

// ---- /proc -----------------------------------------------------------------------

std::optional<double> peak_rss_mib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) != 0) continue;
        std::istringstream fields(line.substr(6));
        double kib = 0;
        if (fields >> kib) return kib / 1024.0;
    }
    return std::nullopt;
}

// utime + stime of every thread, in seconds (fields 14 and 15 of stat(5);
// the command name may hold blanks and ')' so fields count from the last ')').
std::optional<double> cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto paren = text.rfind(')');
    if (paren == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(paren + 1));
    std::vector<std::string> f;
    for (std::string t; fields >> t;) f.push_back(t);
    if (f.size() < 13) return std::nullopt;  // f[0] is field 3 (state)
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return (std::stod(f[11]) + std::stod(f[12])) / ticks;
}

// ---- The driver's output --------------------------------------------------------

class line_reader {
public:
    explicit line_reader(int fd) : fd_(fd) {}
    // Waits up to timeout for data and appends the complete lines read.
    // False on EOF or a read error.
    bool read(std::chrono::milliseconds timeout, std::vector<std::string> &out) {
        pollfd p{fd_, POLLIN, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (rc < 0) return errno == EINTR;
        if (rc == 0) return true;
        char chunk[65536];
        const ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n < 0) return errno == EINTR || errno == EAGAIN;
        if (n == 0) return false;
        buffer_.append(chunk, static_cast<std::size_t>(n));
        std::size_t start = 0;
        for (std::size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1)
            out.emplace_back(buffer_, start, nl - start);
        buffer_.erase(0, start);
        return true;
    }

private:
    int fd_;
    std::string buffer_;
};

// ---- One run ----------------------------------------------------------------------

run_result run_once(const options &o, const bench_case &c, const std::vector<std::string> &lines,
                    const std::string &expected_info) {
    const std::size_t n = lines.size();
    run_result r;
    r.requests = n;
    // oned passes ARGUMENTS as one argv element; the host splits it. -c
    // /dev/null: the defaults, whatever /etc/one holds on this machine.
    const std::string arguments =
        "-t " + std::to_string(c.threads) + " -d testdrv --plugin testdrv=" + o.plugin + " -c /dev/null";
    // The benchmark reads the host's output itself (collect_output off).
    oneds::test::oned_peer peer({o.host, arguments, {}, false});
    if (const auto h = peer.init(); !h.ok) throw std::runtime_error("handshake with " + o.host + ": " + h.error);

    std::vector<clock_type::time_point> sent(n);
    std::vector<clock_type::time_point> replied(n);
    std::vector<std::uint32_t> replies(n, 0);
    std::counting_semaphore<> window(c.windowed ? c.window : 0);
    std::atomic<bool> abort{false};
    std::atomic<bool> write_failed{false};

    // Only this thread writes sent[]; the reader reads it after join().
    std::thread writer([&] {
        for (std::size_t i = 0; i < n; ++i) {
            if (c.windowed) window.acquire();
            if (abort) return;
            sent[i] = clock_type::now();
            if (!peer.write_line(lines[i])) {
                write_failed = true;
                return;
            }
        }
    });

    line_reader reader(peer.output_fd());
    std::vector<std::string> got;
    std::size_t answered = 0;
    const auto deadline = clock_type::now() + std::chrono::seconds(o.timeout_s);
    auto handle = [&](const std::string &line, clock_type::time_point now) {
        const auto p = oneds::test::parse_reply(std::string_view(line));
        if (!p || p->action != "MONITOR") {
            ++r.other_lines;
            if (p || !line.starts_with("LOG ")) ++r.unexpected;
            return;
        }
        if (p->id < 0 || static_cast<std::size_t>(p->id) >= n) {
            ++r.unexpected;
            return;
        }
        const auto id = static_cast<std::size_t>(p->id);
        if (replies[id]++ > 0) {
            ++r.duplicate;
            return;
        }
        replied[id] = now;
        ++answered;
        if (!p->success || p->info != expected_info) ++r.failed;
        if (c.windowed) window.release();
    };
    bool open = true;
    while (open && answered < n && !write_failed) {
        if (clock_type::now() > deadline) {
            r.timed_out = true;
            break;
        }
        got.clear();
        open = reader.read(std::chrono::milliseconds(200), got);
        const auto now = clock_type::now();
        for (const auto &line : got) handle(line, now);
    }
    // A duplicate may still be on its way: listen a little longer.
    const auto drain_until = clock_type::now() + std::chrono::milliseconds(100);
    while (open && !r.timed_out && clock_type::now() < drain_until) {
        got.clear();
        open = reader.read(std::chrono::milliseconds(20), got);
        for (const auto &line : got) handle(line, clock_type::now());
    }

    if (answered < n) {
        // Unblock the writer (semaphore, or a write() into a full pipe) and
        // stop the host before joining.
        abort = true;
        if (c.windowed) window.release(static_cast<std::ptrdiff_t>(n));
        peer.signal(SIGKILL);
        writer.join();
        r.exit = peer.kill();
        r.missing = n - answered;
        r.write_failed = write_failed;
        return r;
    }
    writer.join();
    r.write_failed = write_failed;

    r.peak_rss_mib = peak_rss_mib(peer.pid()).value_or(0);
    r.cpu_s = cpu_seconds(peer.pid()).value_or(0);
    r.exit = peer.finalize();
    r.finalize_s = std::chrono::duration<double>(r.exit.took).count();

    std::vector<double> latency_ms;
    latency_ms.reserve(n);
    auto last = sent.front();
    for (std::size_t i = 0; i < n; ++i) {
        latency_ms.push_back(std::chrono::duration<double, std::milli>(replied[i] - sent[i]).count());
        last = std::max(last, replied[i]);
    }
    std::sort(latency_ms.begin(), latency_ms.end());
    r.seconds = std::chrono::duration<double>(last - sent.front()).count();
    r.requests_per_s = r.seconds > 0 ? static_cast<double>(n) / r.seconds : 0;
    r.p50_ms = oneds::bench::percentile_sorted(latency_ms, 50);
    r.p90_ms = oneds::bench::percentile_sorted(latency_ms, 90);
    r.p99_ms = oneds::bench::percentile_sorted(latency_ms, 99);
    r.max_ms = latency_ms.back();
    return r;
}

// ---- Reporting ---------------------------------------------------------------------

struct metric {
    const char *key;   // CSV name
    const char *head;  // table heading
    const char *unit;
    const char *better;  // "higher" or "lower"
    bool plot;           // drawn by bench_chart
    double run_result::*field;
};

const metric k_metrics[] = {
    {"requests_per_s", "req/s", "req/s", "higher", true, &run_result::requests_per_s},
    {"latency_p50", "p50 ms", "ms", "lower", false, &run_result::p50_ms},
    {"latency_p90", "p90 ms", "ms", "lower", false, &run_result::p90_ms},
    {"latency_p99", "p99 ms", "ms", "lower", true, &run_result::p99_ms},
    {"latency_max", "max ms", "ms", "lower", false, &run_result::max_ms},
    {"peak_rss", "peak RSS MiB", "MiB", "lower", false, &run_result::peak_rss_mib},
    {"host_cpu", "host CPU s", "s", "lower", false, &run_result::cpu_s},
};

std::string csv_field(const std::string &s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string q = "\"";
    for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return q + "\"";
}

std::string cell(const oneds::bench::spread &s) {
    return human(s.median) + " (" + human(s.min) + "–" + human(s.max) + ")";
}

oneds::bench::spread spread_of(const std::vector<run_result> &runs, double run_result::*field) {
    std::vector<double> v;
    for (const auto &r : runs) v.push_back(r.*field);
    return oneds::bench::summarize(v);
}

void print_table(std::ostream &out, const options &o, const std::vector<bench_case> &cases,
                 const std::vector<std::vector<run_result>> &results) {
    out << "| case |";
    for (const auto &m : k_metrics) out << ' ' << m.head << " |";
    out << " replies |\n|---|";
    for (std::size_t i = 0; i < std::size(k_metrics); ++i) out << "---:|";
    out << "---|\n";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        out << "| " << cases[i].name << " |";
        for (const auto &m : k_metrics) out << ' ' << cell(spread_of(results[i], m.field)) << " |";
        std::string problems;
        for (const auto &r : results[i])
            if (!r.ok()) problems += (problems.empty() ? "" : "; ") + r.problems();
        if (problems.empty())
            out << " all " << human(static_cast<double>(o.requests)) << ", each once, every run |\n";
        else
            out << " FAILED: " << problems << " |\n";
    }
    out << "\n"
        << human(static_cast<double>(o.requests)) << " MONITOR requests (DS_MAD testdrv) per run; median (min–max) of "
        << o.repeat << (o.repeat == 1 ? " run" : " runs") << " after " << o.warmup << " warm-up run"
        << (o.warmup == 1 ? "" : "s")
        << ", a fresh host each run. Latency: request written to reply read. "
           "Peak RSS (VmHWM) and CPU (utime+stime) of one_ds_host, read just before FINALIZE.\n";
}

void write_csv(const std::string &path, const options &o, const std::vector<bench_case> &cases,
               const std::vector<std::vector<run_result>> &results) {
    std::ofstream out(path);
    if (!o.title.empty()) out << "# " << o.title << "\n";
    out << "case,metric,unit,median,min,max,runs,better,plot\n";
    for (std::size_t i = 0; i < cases.size(); ++i)
        for (const auto &m : k_metrics) {
            const auto s = spread_of(results[i], m.field);
            out << csv_field(cases[i].name) << ',' << m.key << ',' << m.unit << ',' << exact(s.median) << ','
                << exact(s.min) << ',' << exact(s.max) << ',' << results[i].size() << ',' << m.better << ','
                << (m.plot ? 1 : 0) << "\n";
        }
    if (!out) throw std::runtime_error("cannot write " + path);
}

void write_raw_csv(const std::string &path, const std::vector<bench_case> &cases,
                   const std::vector<std::vector<run_result>> &results) {
    std::ofstream out(path);
    out << "case,run,requests,seconds,requests_per_s,p50_ms,p90_ms,p99_ms,max_ms,peak_rss_mib,host_cpu_s,"
           "finalize_s,missing,duplicate,unexpected,failed\n";
    for (std::size_t i = 0; i < cases.size(); ++i)
        for (std::size_t k = 0; k < results[i].size(); ++k) {
            const auto &r = results[i][k];
            out << csv_field(cases[i].name) << ',' << k + 1 << ',' << r.requests << ',' << exact(r.seconds) << ','
                << exact(r.requests_per_s) << ',' << exact(r.p50_ms) << ',' << exact(r.p90_ms) << ',' << exact(r.p99_ms)
                << ',' << exact(r.max_ms) << ',' << exact(r.peak_rss_mib) << ',' << exact(r.cpu_s) << ','
                << exact(r.finalize_s) << ',' << r.missing << ',' << r.duplicate << ',' << r.unexpected << ','
                << r.failed << "\n";
        }
    if (!out) throw std::runtime_error("cannot write " + path);
}

std::optional<options> parse_options(int argc, char **argv) {
    options o;
    po::options_description desc("Usage: mad_bench [options]\nOptions");
    desc.add_options()("help,h", "show this help")("requests,n", po::value(&o.requests)->default_value(o.requests),
                                                   "MONITOR requests per run")(
        "window,w", po::value(&o.window)->default_value(o.window),
        "window case: requests the peer keeps outstanding (the host runs with -t W)")(
        "threads,t", po::value(&o.threads)->default_value(o.threads), "burst case: the host's -t")(
        "repeat,r", po::value(&o.repeat)->default_value(o.repeat), "measured runs per case")(
        "warmup", po::value(&o.warmup)->default_value(o.warmup), "warm-up runs per case (verified, not reported)")(
        "mode", po::value(&o.mode)->default_value(o.mode), "window, burst or both")(
        "host", po::value(&o.host)->default_value(o.host), "one_ds_host to run")(
        "plugin", po::value(&o.plugin)->default_value(o.plugin), "the test plugin (libone_ds_testdrv.so)")(
        "csv", po::value(&o.csv), "write a summary row per case and metric to FILE")("raw-csv", po::value(&o.raw_csv),
                                                                                     "write one row per run to FILE")(
        "title", po::value(&o.title), "title line of the summary CSV (the chart panel's title)")(
        "timeout", po::value(&o.timeout_s)->default_value(o.timeout_s), "seconds one run may take");
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
    if (vm.count("help") != 0U) {
        std::cout << desc;
        return std::nullopt;
    }
    if (o.requests == 0 || o.window == 0 || o.threads == 0 || o.repeat == 0)
        throw std::invalid_argument("--requests, --window, --threads and --repeat must be at least 1");
    if (o.mode != "window" && o.mode != "burst" && o.mode != "both")
        throw std::invalid_argument("--mode must be window, burst or both");
    if (o.plugin.find_first_of(" \t\n") != std::string::npos)
        throw std::invalid_argument("--plugin: oned splits ARGUMENTS on blanks; the path must have none");
    return o;
}

}  // namespace

int main(int argc, char **argv) {
    std::signal(SIGPIPE, SIG_IGN);
    options o;
    try {
        auto parsed = parse_options(argc, argv);
        if (!parsed) return 0;
        o = *parsed;
    } catch (const std::exception &e) {
        std::cerr << "mad_bench: " << e.what() << "\n";
        return 2;
    }

    std::vector<bench_case> cases;
    if (o.mode != "burst")
        cases.push_back({"window " + std::to_string(o.window) + " (host -t " + std::to_string(o.window) + ")", true,
                         o.window, o.window});
    if (o.mode != "window")
        cases.push_back({"all at once (host -t " + std::to_string(o.threads) + ")", false, 0, o.threads});

    const auto lines = monitor_lines(o.requests);
    const auto expected_info = oneds::common::base64_encode("USED_MB=1\nFREE_MB=2\nTOTAL_MB=3\n");

    std::vector<std::vector<run_result>> results(cases.size());
    bool all_ok = true;
    try {
        for (std::size_t i = 0; i < cases.size(); ++i) {
            const auto &c = cases[i];
            for (unsigned k = 0; k < o.warmup + o.repeat; ++k) {
                const bool warm = k < o.warmup;
                const auto r = run_once(o, c, lines, expected_info);
                std::cerr << "mad_bench: " << c.name << ": " << (warm ? "warm-up " : "run ")
                          << (warm ? k + 1 : k - o.warmup + 1) << "/" << (warm ? o.warmup : o.repeat) << ": "
                          << human(r.requests_per_s) << " req/s, p99 " << human(r.p99_ms) << " ms, RSS "
                          << human(r.peak_rss_mib) << " MiB, CPU " << human(r.cpu_s) << " s"
                          << (r.ok() ? "" : ": FAILED: " + r.problems()) << "\n";
                all_ok = all_ok && r.ok();
                if (!warm) results[i].push_back(r);
            }
        }
    } catch (const std::exception &e) {
        std::cerr << "mad_bench: " << e.what() << "\n";
        return 1;
    }
    print_table(std::cout, o, cases, results);
    try {
        if (!o.csv.empty()) write_csv(o.csv, o, cases, results);
        if (!o.raw_csv.empty()) write_raw_csv(o.raw_csv, cases, results);
    } catch (const std::exception &e) {
        std::cerr << "mad_bench: " << e.what() << "\n";
        return 1;
    }
    if (!all_ok) {
        std::cerr << "mad_bench: FAILED: a reply was lost, duplicated or wrong, or the host did not exit cleanly\n";
        return 1;
    }
    return 0;
}
