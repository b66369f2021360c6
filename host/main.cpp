// one_ds_host: the generic datastore driver host. See README.md.
//   MAD mode:    one_ds_host [-t N] [-d NAME,...] [-c CONFIG] [--plugin NAME=PATH]... [--fallback COMMAND]
//   action mode: one_ds_host action [-c CONFIG] [--plugin NAME=PATH]... DRIVER ACTION [ARGS...]
#include "host/action_mode.hpp"
#include "host/config.hpp"
#include "host/mad_server.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>

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

std::shared_ptr<spdlog::logger> make_logger(const oneds::host::settings &s, bool action_mode) {
    spdlog::sink_ptr sink;
    if (!s.log_file.empty())
        sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(s.log_file);
    else if (action_mode)
        sink = std::make_shared<spdlog::sinks::null_sink_mt>();  // stderr is the action's error channel
    else
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto log = std::make_shared<spdlog::logger>("one_ds_host", sink);
    log->set_pattern(action_mode ? "%Y-%m-%d %H:%M:%S.%e [%P] [%l] action: %v" : "%Y-%m-%d %H:%M:%S.%e [%P] [%l] %v");
    log->set_level(spdlog::level::from_str(s.log_level == "warning" ? "warn" : s.log_level));
    log->flush_on(spdlog::level::info);
    return log;
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
    std::shared_ptr<spdlog::logger> log;
    try {
        log = make_logger(parsed.values, parsed.action_mode);
    } catch (const std::exception &e) {
        std::cerr << "one_ds_host: cannot open log file '" << parsed.values.log_file << "': " << e.what() << "\n";
        return 2;
    }
    if (parsed.action_mode) return oneds::host::run_action(parsed.values, log, 0, 1, 2);
    oneds::host::mad_server server(parsed.values, log, 0, 1);
    return server.run();
}
