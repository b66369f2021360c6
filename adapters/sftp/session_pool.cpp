#include "adapters/sftp/session_pool.hpp"

#include "adapters/sftp/internal/session.hpp"
#include "adapters/sshconfig/ssh_config.hpp"

#include <condition_variable>
#include <vector>

namespace oneds::adapters::sftp {

using internal::session;

struct session_pool::slot {
    // `busy` serialises every call on `connection`; a call waits for it with
    // its stop token (a std::mutex could not be given up on).
    std::mutex mutex;
    std::condition_variable_any released;
    bool busy = false;
    std::unique_ptr<session> connection;
};

namespace {

// Holds a slot's `busy` flag for one call.
class slot_use {
public:
    template <typename Slot>
    slot_use(Slot &s, const std::stop_token &stop) : mutex_(s.mutex), released_(s.released), busy_(s.busy) {
        std::unique_lock lock(mutex_);
        held_ = released_.wait(lock, stop, [this] { return !busy_; });
        if (held_) busy_ = true;
    }
    ~slot_use() {
        if (!held_) return;
        {
            const std::lock_guard lock(mutex_);
            busy_ = false;
        }
        released_.notify_one();
    }
    slot_use(const slot_use &) = delete;
    slot_use &operator=(const slot_use &) = delete;
    [[nodiscard]] bool held() const noexcept { return held_; }

private:
    std::mutex &mutex_;
    std::condition_variable_any &released_;
    bool &busy_;
    bool held_ = false;
};

}  // namespace

session_pool::session_pool(sshconfig::resolver &resolver, pool_options options)
    : resolver_(resolver), options_(options) {}

ports::result<sshconfig::host_settings> session_pool::settings_for(const ports::sftp_target &target,
                                                                   const std::stop_token &stop) {
    return resolver_.resolve(target.ssh_config, target.server, target.user, stop);
}

session_pool::~session_pool() { close_all(); }

std::size_t session_pool::connections_opened() const noexcept { return connections_.load(); }

std::size_t session_pool::session_count() const noexcept { return live_.load(); }

std::shared_ptr<session_pool::slot> session_pool::slot_for(const ports::sftp_target &target) {
    const std::lock_guard lock(mutex_);
    auto &found = slots_[key{target.server, target.user, target.ssh_config}];
    if (!found) found = std::make_shared<slot>();
    return found;
}

ports::status session_pool::connect(const ports::sftp_target &target, slot &s, const std::stop_token &stop) {
    // The settings are ssh's own (ssh -G), resolved once per target for the
    // resolver's life; known_hosts files are read at every connect, so a
    // fixed known_hosts line needs no restart.
    auto settings = settings_for(target, stop);
    if (!settings) return settings.err();
    auto made = session::create(*settings, options_.timeout, stop);
    if (!made) return made.err();
    s.connection = std::move(*made);
    ++connections_;
    ++live_;
    return ports::ok();
}

void session_pool::drop(slot &s, bool polite) noexcept {
    if (!s.connection) return;
    if (polite)
        s.connection->say_goodbye();
    else
        s.connection->abandon();
    s.connection.reset();
    --live_;
}

ports::status session_pool::run(const ports::sftp_target &target, const session_op &op, const std::stop_token &stop) {
    const auto s = slot_for(target);
    const slot_use use(*s, stop);
    if (!use.held())
        return ports::error{ports::error_kind::cancelled,
                            "waiting for the SFTP session to " + target.server + ": cancelled"};
    const bool reused = s->connection != nullptr;
    if (!reused) {
        if (auto connected = connect(target, *s, stop); !connected) return connected;
    }
    op(*s->connection);
    const auto health = s->connection->state();
    if (health == session::health::good) return ports::ok();
    drop(*s, false);
    if (health == session::health::lost && reused) {
        if (auto connected = connect(target, *s, stop); !connected) return connected;
        op(*s->connection);
        if (s->connection->state() != session::health::good) drop(*s, false);
    }
    return ports::ok();
}

void session_pool::close_all() noexcept {
    std::vector<std::shared_ptr<slot>> all;
    {
        const std::lock_guard lock(mutex_);
        for (const auto &[k, s] : slots_) all.push_back(s);
    }
    for (const auto &s : all) {
        const slot_use use(*s, {});
        drop(*s, true);
    }
}

void session_pool::break_connections_for_testing() noexcept {
    std::vector<std::shared_ptr<slot>> all;
    {
        const std::lock_guard lock(mutex_);
        for (const auto &[k, s] : slots_) all.push_back(s);
    }
    for (const auto &s : all) {
        const slot_use use(*s, {});
        if (s->connection) s->connection->abandon();
    }
}

}  // namespace oneds::adapters::sftp
