#include "restic_plugin.hpp"

#include <set>
#include <stdexcept>
#include <string>

namespace oneds::restic {
namespace {

std::size_t threads_from(const sdk::config_map &config) {
    auto it = config.find("host.threads");
    if (it == config.end()) return 16;
    try {
        const auto n = std::stoul(it->second);
        if (n == 0 || n > 1024) throw std::out_of_range("threads");
        return n + 1;  // one spare for cancellation bookkeeping
    } catch (const std::exception &) {
        throw std::invalid_argument("host.threads must be an integer from 1 to 1024, got '" +
                                    it->second + "'");
    }
}

bool unsupported_action(const std::string &action) {
    static const std::set<std::string, std::less<>> k_unsupported = {
        "cp", "clone", "mkfs", "snap_delete", "snap_revert", "snap_flatten"};
    return k_unsupported.contains(action);
}

}  // namespace

plugin_instance::plugin_instance(sdk::host_link host, const sdk::config_map &config)
    : dispatcher_(host, threads_from(config)) {}

plugin_instance::~plugin_instance() { dispatcher_.shutdown(); }

std::int32_t plugin_instance::submit(sdk::request req) {
    if (unsupported_action(req.action)) {
        // As the stock stubs: the payload is ignored and the error is the
        // script's name followed by "Operation not supported".
        return dispatcher_.start(std::move(req), [](runtime::request_context &ctx) {
            return runtime::outcome::fail(ctx.req().action + ": Operation not supported",
                                          ONEDS_ERR_UNSUPPORTED);
        });
    }
    return ONEDS_ERR_UNSUPPORTED;
}

std::int32_t plugin_instance::cancel(std::uint64_t id) { return dispatcher_.cancel(id); }

}  // namespace oneds::restic
