#include "sftp/session_pool.hpp"

#include "sftp/internal/session.hpp"
#include "sshconfig/ssh_config.hpp"

#include <vector>

namespace oneds::adapters::sftp {

using internal::session;

struct session_pool::slot {
    std::mutex mutex;  // serialises every call on `connection`
    std::unique_ptr<session> connection;
};

session_pool::session_pool(pool_options options) : options_(options) {}

session_pool::~session_pool() {
    close_all();
}

std::size_t session_pool::connections_opened() const noexcept {
    return connections_.load();
}

std::size_t session_pool::session_count() const noexcept {
    return live_.load();
}

std::shared_ptr<session_pool::slot> session_pool::slot_for(const ports::sftp_target &target) {
    const std::lock_guard lock(mutex_);
    auto &found = slots_[key{target.server, target.user, target.ssh_config}];
    if (!found)
        found = std::make_shared<slot>();
    return found;
}

ports::status session_pool::connect(const ports::sftp_target &target, slot &s) {
    // The config is read at every connect, not once: an admin who fixes a
    // Host entry or a known_hosts line needs no restart of oned.
    auto settings = sshconfig::resolve_host(target.ssh_config, target.server, target.user);
    if (!settings)
        return settings.err();
    auto made = session::create(*settings, options_.timeout);
    if (!made)
        return made.err();
    s.connection = std::move(*made);
    ++connections_;
    ++live_;
    return ports::ok();
}

void session_pool::drop(slot &s, bool polite) noexcept {
    if (!s.connection)
        return;
    if (polite)
        s.connection->say_goodbye();
    else
        s.connection->abandon();
    s.connection.reset();
    --live_;
}

ports::status session_pool::run(const ports::sftp_target &target, const session_op &op) {
    const auto s = slot_for(target);
    const std::lock_guard lock(s->mutex);
    const bool reused = s->connection != nullptr;
    if (!reused) {
        if (auto connected = connect(target, *s); !connected)
            return connected;
    }
    op(*s->connection);
    const auto health = s->connection->state();
    if (health == session::health::good)
        return ports::ok();
    drop(*s, false);
    if (health == session::health::lost && reused) {
        if (auto connected = connect(target, *s); !connected)
            return connected;
        op(*s->connection);
        if (s->connection->state() != session::health::good)
            drop(*s, false);
    }
    return ports::ok();
}

void session_pool::close_all() noexcept {
    std::vector<std::shared_ptr<slot>> all;
    {
        const std::lock_guard lock(mutex_);
        for (const auto &[k, s] : slots_)
            all.push_back(s);
    }
    for (const auto &s : all) {
        const std::lock_guard lock(s->mutex);
        drop(*s, true);
    }
}

void session_pool::break_connections_for_testing() noexcept {
    std::vector<std::shared_ptr<slot>> all;
    {
        const std::lock_guard lock(mutex_);
        for (const auto &[k, s] : slots_)
            all.push_back(s);
    }
    for (const auto &s : all) {
        const std::lock_guard lock(s->mutex);
        if (s->connection)
            s->connection->abandon();
    }
}

}  // namespace oneds::adapters::sftp
