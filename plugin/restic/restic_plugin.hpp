#pragma once

#include "dispatcher.hpp"

#include <oneds/plugin.hpp>

namespace oneds::restic {

class plugin_instance final : public sdk::instance {
public:
    plugin_instance(sdk::host_link host, const sdk::config_map &config);
    ~plugin_instance() override;

    std::int32_t submit(sdk::request req) override;
    std::int32_t cancel(std::uint64_t id) override;

private:
    runtime::dispatcher dispatcher_;
};

}  // namespace oneds::restic
