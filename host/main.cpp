// one_ds_host: the generic datastore driver host. See README.md.
//   MAD mode:    one_ds_host [-t N] [-d NAME,...] [-c CONFIG] [--plugin NAME=PATH]... [--fallback COMMAND]
//   action mode: one_ds_host action [-c CONFIG] [--plugin NAME=PATH]... DRIVER ACTION [ARGS...]
//   doctor:      one_ds_host doctor [-c CONFIG] [--plugin NAME=PATH]... [--hypervisor HOST]... [--json]
//                (DATASTORE_ID | TEMPLATE_FILE)
#include "host/action_mode.hpp"
#include "host/config.hpp"
#include "host/mad_logging.hpp"
#include "host/mad_server.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace {

// oned closes fd 2 before exec; the first file we open would become stderr.
void ensure_std_fds() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1) continue;
        const int n = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n >= 0 && n != fd) {
            ::dup2(n, fd);
            ::close(n);
        }
    }
}

std::shared_ptr<spdlog::logger> make_logger(const oneds::host::settings &s, bool action_mode, spdlog::sink_ptr sink) {
    auto log = std::make_shared<spdlog::logger>("one_ds_host", std::move(sink));
    log->set_pattern(action_mode ? "%Y-%m-%d %H:%M:%S.%e [%P] [%l] action: %v" : "%Y-%m-%d %H:%M:%S.%e [%P] [%l] %v");
    log->set_level(spdlog::level::from_str(s.log_level == "warning" ? "warn" : s.log_level));
    log->flush_on(spdlog::level::info);
    return log;
}

// Where the host's own log goes. Action mode: the log file when one is given,
// else nowhere (stderr is the action's error channel). MAD mode: the log file
// given ("-" or empty: stderr), else OpenNebula's place for a MAD's log. A log
// file given that cannot be opened is a startup error (exit 2: oned reports
// that the driver did not start); OpenNebula's place that cannot be opened
// (no /var/log/one, not writable) falls back to stderr with a warning, so that
// the default never keeps the driver from starting.
spdlog::sink_ptr make_sink(oneds::host::settings &s, bool action_mode, const char *argv0,
                           std::vector<std::string> &warnings) {
    // "-" is MAD mode's stderr; in action mode stderr is the action's, so no log.
    if (action_mode && (s.log_file.empty() || s.log_file == "-"))
        return std::make_shared<spdlog::sinks::null_sink_mt>();
    if (!action_mode && s.log_file_given && (s.log_file.empty() || s.log_file == "-"))
        return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    if (action_mode || s.log_file_given) return std::make_shared<spdlog::sinks::basic_file_sink_mt>(s.log_file);
    s.log_file = oneds::host::default_mad_log_file(argv0);
    // The directory is OpenNebula's to create (packages make /var/log/one);
    // the file sink would create it, which the stock launcher never does.
    if (std::error_code ec; !std::filesystem::is_directory(std::filesystem::path(s.log_file).parent_path(), ec)) {
        warnings.push_back("no directory for the log file '" + s.log_file + "'; logging to stderr");
        return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
    try {
        return std::make_shared<spdlog::sinks::basic_file_sink_mt>(s.log_file);
    } catch (const std::exception &e) {
        warnings.push_back("cannot open the log file '" + s.log_file + "' (" + e.what() + "); logging to stderr");
        return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
}

// MAD mode, before any thread starts (niceness is per thread on Linux and
// inherited by the threads created later): PRIORITY from defaultrc, as
// madcommon.sh's `nice -n $PRIORITY`, and ONE_MAD_DEBUG. A missing defaultrc
// or one without PRIORITY changes nothing; a bad value is a warning.
// Deviation: madcommon.sh falls back to PRIORITY=19 when neither defaultrc nor
// the environment sets it; the packaged defaultrc sets it, and a host started
// without one keeps the niceness it was given.
void apply_mad_conventions(oneds::host::settings &s, std::vector<std::string> &notes,
                           std::vector<std::string> &warnings) {
    const auto rc = oneds::host::default_defaultrc();
    if (const auto priority = oneds::host::read_defaultrc_priority(rc)) {
        const auto r = oneds::host::apply_priority(*priority);
        if (!r.warning.empty())
            warnings.push_back(rc + ": " + r.warning);
        else if (r.changed)
            notes.push_back("niceness " + std::to_string(r.niceness) + " (PRIORITY " + *priority + " in " + rc + ")");
    }
    if (oneds::host::one_mad_debug(rc) && !s.log_level_given) {
        s.log_level = "debug";
        notes.push_back("ONE_MAD_DEBUG is set (in " + rc + " or the environment): log level debug");
    }
}

}  // namespace

int main(int argc, char **argv) {
    ensure_std_fds();
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    oneds::host::parse_result parsed;
    try {
        parsed = oneds::host::load_settings(args);
    } catch (const std::exception &e) {
        std::cerr << "one_ds_host: " << e.what() << "\n";
        return 2;
    }
    if (parsed.show_help) {
        std::cout << parsed.help_text;
        return 0;
    }
    if (parsed.show_version) {
        std::cout << "one_ds_host " << ONEDS_VERSION << " (plugin ABI " << ONEDS_ABI_MAJOR << "." << ONEDS_ABI_MINOR
                  << ")\n";
        return 0;
    }
    std::vector<std::string> notes, warnings;
    if (!parsed.action_mode) apply_mad_conventions(parsed.values, notes, warnings);
    std::shared_ptr<spdlog::logger> log;
    try {
        log = make_logger(parsed.values, parsed.action_mode,
                          make_sink(parsed.values, parsed.action_mode, argv[0], warnings));
    } catch (const std::exception &e) {
        std::cerr << "one_ds_host: cannot open log file '" << parsed.values.log_file << "': " << e.what() << "\n";
        return 2;
    }
    // Warnings (MAD mode only) go to the log and, when the log is a file, to
    // stderr as well, where a person starting the host by hand sees them.
    const bool logs_to_stderr =
        std::dynamic_pointer_cast<spdlog::sinks::stderr_sink_mt>(log->sinks().front()) != nullptr;
    for (const auto &w : warnings) {
        log->warn("{}", w);
        if (!logs_to_stderr) std::cerr << "one_ds_host: warning: " << w << "\n";
    }
    for (const auto &n : notes) log->info("{}", n);
    if (parsed.doctor_mode) return oneds::host::run_doctor(parsed.values, log, 1, 2);
    if (parsed.action_mode) return oneds::host::run_action(parsed.values, log, 0, 1, 2);
    oneds::host::mad_server server(parsed.values, log, 0, 1);
    return server.run();
}
