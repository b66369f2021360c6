// MAD mode: oned's DATASTORE_MAD line protocol on stdin/stdout
// (docs/oned-protocol.md), put together from its parts:
//   mad_protocol    what a line says, and the reply and LOG lines (pure);
//   driver_router   which driver a request is for (pure);
//   request_queue   plugin requests: -t in flight, -w deadlines, one reply each;
//   fallback_relay  the stock driver for every other DS_MAD.
// This class reads lines, hands each to the right part, and stops the whole
// within oned's 10 s after FINALIZE (or EOF on stdin).
#pragma once

#include "host/config.hpp"
#include "host/fallback_relay.hpp"
#include "host/line_writer.hpp"
#include "host/loaded_plugin.hpp"
#include "host/mad_protocol.hpp"
#include "host/request_queue.hpp"

#include <spdlog/logger.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace oneds::host {

// oned SIGKILLs its driver this long after FINALIZE (ImageManager's
// drivers_timeout). Everything below is counted from FINALIZE.
inline constexpr auto oned_kill_after = std::chrono::seconds(10);
// The stock fallback driver is told to end by then...
inline constexpr auto fallback_finalize_by = oned_kill_after - std::chrono::milliseconds(1500);
// ...and what still runs is answered and killed then (mad_server::cut_short).
inline constexpr auto cut_short_at = oned_kill_after - std::chrono::seconds(1);

// SIGKILL to every descendant of this process (its children, theirs, ...),
// found by their parent pids; returns how many were signalled.
std::size_t kill_descendants();

class mad_server {
public:
    mad_server(settings s, std::shared_ptr<spdlog::logger> log, int in_fd, int out_fd);
    ~mad_server();
    mad_server(const mad_server &) = delete;
    mad_server &operator=(const mad_server &) = delete;

    // Serves until FINALIZE or EOF on in_fd; returns the process exit code.
    int run();

private:
    void load_plugins();
    // A request line over mad::k_max_request_line: FAILURE naming its size.
    void refuse_oversized(const std::string &head, std::uint64_t line_bytes);
    void handle(const mad::parsed_line &line, const std::string &raw);
    void reply(const std::string &action, std::int64_t oned_id, bool success, const std::string &text);
    void shut_down();
    // The last resort before oned's SIGKILL: every request still without a
    // reply (running, or forwarded to the fallback) gets FAILURE, every
    // process this host started (its descendants) gets SIGKILL, and the
    // process exits. Never returns.
    [[noreturn]] void cut_short();

    settings settings_;
    std::shared_ptr<spdlog::logger> log_;
    int in_fd_;
    line_writer out_;
    request_queue queue_;  // before the plugins, whose callbacks reach it
    std::map<std::string, std::unique_ptr<loaded_plugin>> plugins_;
    std::map<std::string, std::string> plugin_errors_;  // name -> why it is not loaded
    std::unique_ptr<fallback_relay> fallback_;
};

}  // namespace oneds::host
