#include "host/action_mode.hpp"

#include "host/driver_router.hpp"
#include "host/loaded_plugin.hpp"
#include "host/template_file.hpp"

#include "common/base64.hpp"
#include "common/fd_io.hpp"
#include "common/strings.hpp"

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <csignal>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace oneds::host {
namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
    const int saved = errno;
    const unsigned char b = static_cast<unsigned char>(sig);
    [[maybe_unused]] const auto n = ::write(g_signal_pipe[1], &b, 1);
    errno = saved;
}

// SIGTERM, SIGINT and SIGHUP turned into bytes on a pipe for the whole of
// run_action: installed first, so that a signal while stdin is read or the
// plugin loads is a cancel (exit 255) rather than the end of the process; the
// default dispositions come back on the way out. A self-pipe rather than a
// blocked signal mask, because children inherit the mask and restic must
// still see the SIGINT we send it.
class signal_pipe {
public:
    signal_pipe() {
        if (::pipe2(g_signal_pipe, O_CLOEXEC) != 0) throw std::runtime_error("cannot create the signal pipe");
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    }
    ~signal_pipe() {
        for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::signal(sig, SIG_DFL);
        for (int &fd : g_signal_pipe) {
            ::close(fd);
            fd = -1;
        }
    }
    signal_pipe(const signal_pipe &) = delete;
    signal_pipe &operator=(const signal_pipe &) = delete;
    int read_fd() const { return g_signal_pipe[0]; }
    int write_fd() const { return g_signal_pipe[1]; }
    // The number of a signal that arrived and was not read yet, or 0.
    int take_pending() const {
        pollfd p{g_signal_pipe[0], POLLIN, 0};
        unsigned char sig = 0;
        if (::poll(&p, 1, 0) > 0 && ::read(g_signal_pipe[0], &sig, 1) == 1) return sig;
        return 0;
    }
};

// stdin, at most k_max_action_input bytes: more is refused without reading
// it (bounded memory; the largest document oned sends, a VM with its
// history, is far below).
std::string read_all(int fd) {
    std::string out;
    if (::isatty(fd) == 1) return out;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > k_max_action_input)
            throw std::invalid_argument("standard input is larger than " + std::to_string(k_max_action_input >> 20) +
                                        " MiB");
    }
    return out;
}

}  // namespace

// The words OpenNebula's driver (DriverExecHelper) recognises at the start of
// an action's stderr line: ERROR, INFO, WARN, DEBUG. "WARNING" would not match
// and the line would become part of the error message.
const char *action_level_word(std::int32_t level) noexcept {
    switch (level) {
        case ONEDS_LOG_ERROR: return "ERROR";
        case ONEDS_LOG_WARNING: return "WARN";
        case ONEDS_LOG_DEBUG: return "DEBUG";
        default: return "INFO";
    }
}

bool level_enabled(std::int32_t level, const std::string &log_level) noexcept {
    const auto rank = [](std::int32_t l) {
        switch (l) {
            case ONEDS_LOG_ERROR: return 1;
            case ONEDS_LOG_WARNING: return 2;
            case ONEDS_LOG_DEBUG: return 4;
            default: return 3;
        }
    };
    int threshold = 3;
    if (log_level == "off") threshold = 0;
    if (log_level == "error") threshold = 1;
    if (log_level == "warning") threshold = 2;
    if (log_level == "debug" || log_level == "trace") threshold = 4;
    return rank(level) <= threshold;
}

std::string action_log_line(std::int32_t level, std::int64_t object_id, const std::string &action,
                            std::string_view text) {
    std::string line = std::string(action_level_word(level)) + ": ";
    // With an object id, "<LEVEL>: <id> <text>": OpenNebula sends the line to
    // that object's log (a VM's log for backup and backup_cancel). Without one,
    // the action's name comes first, so that a text starting with a digit is
    // never read as an id.
    if (object_id >= 0)
        line += std::to_string(object_id) + " ";
    else
        line += action + ": ";
    return line + common::one_line(text) + "\n";
}

namespace {

struct completion {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::int32_t status = ONEDS_OK;
    std::string info, error;
};

}  // namespace

std::string decode_action_input(const std::string &raw) {
    const auto t = common::trim(raw);
    if (t.empty()) return {};
    std::string xml;
    if (t.front() == '<') {
        xml = t;
    } else {
        auto decoded = common::base64_decode(t);
        if (!decoded || common::trim(*decoded).empty() || common::trim(*decoded).front() != '<')
            throw std::invalid_argument("standard input is neither XML nor base64-encoded XML");
        xml = std::move(*decoded);
    }
    if (auto p = doctype_problem(xml); !p.empty()) throw std::invalid_argument("standard input: " + p);
    return xml;
}

namespace {

// Exit codes: action mode as the stock scripts (0, 1 unsupported, 255);
// doctor mode 0 (no check failed), 1 (a check failed), 2 (anything else).
struct exit_codes {
    int unsupported = 1, failed = 255, other = 255;
};

// One request to driver's plugin, the document given, the signals watched;
// stdout gets the result, stderr the error.
int run_request(const settings &s, const std::shared_ptr<spdlog::logger> &log, const std::string &driver,
                const std::string &action, const std::vector<std::string> &args, const std::string &document,
                signal_pipe *signals, int out_fd, int err_fd, exit_codes codes) {
    const auto cancelled_early = [&](int sig) {
        log->info("signal {} received before {} started", sig, action);
        common::write_all(err_fd, action + ": cancelled (signal " + std::to_string(sig) + ") before it started\n");
        return codes.other;
    };
    const auto &s_action_args = args;
    if (const int sig = signals->take_pending(); sig != 0) return cancelled_early(sig);

    const auto it = s.plugins.find(driver);
    const std::string path = it != s.plugins.end() ? it->second : default_plugin_path(driver);

    completion done;
    const int err_copy = err_fd;
    plugin_sink sink{
        [&done](std::uint64_t, std::int32_t status, const char *info, const char *error) {
            std::lock_guard lock(done.mutex);
            done.done = true;
            done.status = status;
            done.info = info;
            done.error = error;
            done.cv.notify_all();
        },
        [err_copy, &action, &s](std::uint64_t, std::int32_t level, std::int64_t object_id, const char *text) {
            if (!level_enabled(level, s.log_level)) return;
            common::write_all(err_copy, action_log_line(level, object_id, action, text));
        },
        [out_fd](std::uint64_t, const void *data, std::size_t size) -> std::int32_t {
            return common::write_all(out_fd, std::string_view(static_cast<const char *>(data), size))
                       ? ONEDS_OK
                       : ONEDS_ERR_FAILED;
        }};

    std::unique_ptr<loaded_plugin> plugin;
    try {
        plugin = loaded_plugin::load(path, driver, plugin_config(s, driver, true), std::move(sink));
    } catch (const std::exception &e) {
        log->error("{}", e.what());
        common::write_all(err_fd, std::string("Datastore driver '") + driver + "' not available: " + e.what() + "\n");
        return codes.other;
    }
    if (!plugin->supports(action)) {
        common::write_all(err_fd, action + ": Operation not supported\n");
        return codes.unsupported;
    }

    if (const int sig = signals->take_pending(); sig != 0) return cancelled_early(sig);

    // From here a signal is a cancel of the one request.
    // A signal may arrive before submit(), when cancel() finds nothing to
    // cancel: the flag makes the main thread cancel right after submitting.
    std::atomic<bool> cancel_requested{false};
    // Byte 0 on the pipe (no signal has number 0) ends the watch at once.
    std::thread signal_watch([&] {
        for (;;) {
            pollfd p{signals->read_fd(), POLLIN, 0};
            if (::poll(&p, 1, -1) <= 0) continue;  // EINTR
            unsigned char sig = 0;
            if (::read(signals->read_fd(), &sig, 1) != 1) continue;
            if (sig == 0) break;
            log->info("signal {} received; cancelling {}", static_cast<int>(sig), action);
            cancel_requested = true;
            plugin->cancel(1);
        }
    });

    std::vector<const char *> argv;
    for (const auto &a : s_action_args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    oneds_request req{};
    req.struct_size = sizeof req;
    req.id = 1;
    req.action = action.c_str();
    req.argc = static_cast<std::int32_t>(s_action_args.size());
    req.argv = argv.data();
    req.document = document.c_str();
    req.document_size = document.size();
    req.origin = ONEDS_ORIGIN_ACTION;
    req.oned_id = -1;

    const std::int32_t rc = plugin->submit(req);
    if (rc == ONEDS_OK) {
        if (cancel_requested) plugin->cancel(1);
        std::unique_lock lock(done.mutex);
        done.cv.wait(lock, [&] { return done.done; });
    } else {
        done.status = rc;
        done.error = rc == ONEDS_ERR_UNSUPPORTED ? action + ": Operation not supported"
                                                 : action + ": request refused (status " + std::to_string(rc) + ")";
    }
    const unsigned char stop = 0;
    while (::write(signals->write_fd(), &stop, 1) < 0 && errno == EINTR) {}
    signal_watch.join();
    // A reply goes out before the plugin is destroyed: an instance may still
    // finish work that follows a reply (the health update after MONITOR,
    // bounded), and a caller reading stdout must not wait for it. Errors go
    // after, so that they stay the last lines on stderr.
    if (done.status == ONEDS_OK) {
        std::string out = done.info;
        if (!out.empty() && out.back() != '\n') out.push_back('\n');
        common::write_all(out_fd, out);
        plugin.reset();
        return 0;
    }
    plugin.reset();
    std::string err = done.error.empty() ? action + " failed" : done.error;
    if (err.back() != '\n') err.push_back('\n');
    common::write_all(err_fd, err);
    if (done.status == ONEDS_ERR_UNSUPPORTED) return codes.unsupported;
    return done.status == ONEDS_ERR_FAILED ? codes.failed : codes.other;
}

}  // namespace

int run_action(const settings &s, const std::shared_ptr<spdlog::logger> &log, int in_fd, int out_fd, int err_fd) {
    const std::string &action = s.action_name;
    std::unique_ptr<signal_pipe> signals;
    try {
        signals = std::make_unique<signal_pipe>();
    } catch (const std::exception &e) {
        common::write_all(err_fd, action + ": " + e.what() + "\n");
        return 255;
    }
    std::string document;
    try {
        document = decode_action_input(read_all(in_fd));
    } catch (const std::exception &e) {
        common::write_all(err_fd, action + ": " + e.what() + "\n");
        return 255;
    }
    return run_request(s, log, s.action_driver, action, s.action_args, document, signals.get(), out_fd, err_fd, {});
}

namespace {

// The driver doctor asks when --driver is not given: the template's DS_MAD,
// else the one plugin configured, else the one libone_ds_<name>.so beside
// the host.
std::string doctor_driver(const settings &s, const std::string &ds_mad, std::string &why_not) {
    if (!s.doctor_driver.empty()) return s.doctor_driver;
    if (!ds_mad.empty()) return ds_mad;
    if (s.plugins.size() == 1) return s.plugins.begin()->first;
    std::vector<std::string> found;
    const auto dir = std::filesystem::path(default_plugin_path("x")).parent_path();
    std::error_code ec;
    for (const auto &e : std::filesystem::directory_iterator(dir, ec)) {
        const auto name = e.path().filename().string();
        if (name.starts_with("libone_ds_") && name.ends_with(".so")) found.push_back(name.substr(10, name.size() - 13));
    }
    if (found.size() == 1) return found.front();
    why_not = found.empty() ? "no plugin found beside one_ds_host" : "several plugins installed";
    return {};
}

}  // namespace

int run_doctor(const settings &s, const std::shared_ptr<spdlog::logger> &log, int out_fd, int err_fd) {
    std::unique_ptr<signal_pipe> signals;
    try {
        signals = std::make_unique<signal_pipe>();
    } catch (const std::exception &e) {
        common::write_all(err_fd, std::string("doctor: ") + e.what() + "\n");
        return 2;
    }
    const std::string &subject = s.doctor_subject;
    std::vector<std::string> args;
    if (s.doctor_json) args.emplace_back("--json");
    for (const auto &h : s.doctor_hypervisors) args.insert(args.end(), {"--hypervisor", h});
    std::string document, ds_mad;
    const bool is_id = !subject.empty() && subject.find_first_not_of("0123456789") == std::string::npos;
    if (is_id) {
        // The plugin reads the datastore from oned with its own client (as the
        // downloader does): the host has no oned client of its own.
        args.push_back(subject);
    } else {
        std::ifstream in(subject);
        if (!in) {
            common::write_all(
                err_fd, "doctor: cannot read the template file '" + subject + "' (and it is not a datastore id)\n");
            return 2;
        }
        std::stringstream text;
        text << in.rdbuf();
        try {
            const auto attrs = parse_template(text.str());
            for (const auto &a : attrs)
                if (a.name == "DS_MAD" && !a.is_vector) ds_mad = a.value;
            document = datastore_document(attrs);
        } catch (const std::exception &e) {
            common::write_all(err_fd, "doctor: " + subject + ": " + e.what() + "\n");
            return 2;
        }
    }
    std::string why_not;
    const std::string driver = doctor_driver(s, ds_mad, why_not);
    if (driver.empty()) {
        common::write_all(err_fd, "doctor: which driver? " + why_not + "; name it with --driver NAME (the DS_MAD)\n");
        return 2;
    }
    return run_request(s, log, driver, "doctor", args, document, signals.get(), out_fd, err_fd, {2, 1, 2});
}

}  // namespace oneds::host
