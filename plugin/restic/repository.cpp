#include "plugin/restic/repository.hpp"

#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace oneds::restic {

namespace {

// Two `restic init` of one repository at once both succeed and leave a config
// encrypted with one master key beside a key file holding the other: the
// repository is then unreadable for half the keys ("config or key ... is
// damaged"). Backups of a job repository start together, so creation is
// serialised on the front end with an flock per repository (as the stock
// scripts' `exclusive` helper does under /var/lock/one).
class init_lock {
public:
    init_lock(const std::string &dir, const std::string &url) {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        char name[32];
        std::snprintf(name, sizeof name, "%016zx", std::hash<std::string>{}(url));
        path_ = dir + "/restic-init-" + name + ".lock";
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    }
    ~init_lock() {
        if (fd_ >= 0) ::close(fd_);  // releases the flock
    }
    init_lock(const init_lock &) = delete;
    init_lock &operator=(const init_lock &) = delete;

    bool opened() const { return fd_ >= 0; }
    const std::string &path() const { return path_; }
    // Waits for the lock up to limit; false when cancelled or timed out.
    bool acquire(runtime::request_context &ctx, std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return true;
            if (errno != EWOULDBLOCK && errno != EINTR) return false;
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (!ctx.sleep_for(std::chrono::milliseconds(100))) return false;
        }
    }

private:
    std::string path_;
    int fd_ = -1;
};

}  // namespace

ports::status ensure_repository(action_env &env, const datastore_attributes &a, const std::string &repo_path) {
    const std::string url = repository_url(a, repo_path);
    const auto failed = [&env](ports::error_kind kind, std::string text) {
        if (env.ctx.cancelled()) return ports::cancelled_error();
        return ports::error{kind, std::move(text)};
    };
    auto store = env.stores.store_for(a);
    if (!store)
        return failed(store.err().kind, "Cannot reach the backup storage for " + url + ": " + store.err().message);
    // An S3 bucket that does not exist yet holds no repository: restic init
    // makes the bucket too.
    const auto present = [&a](const ports::result<ports::file_info> &st) -> ports::result<bool> {
        if (st) return st->exists;
        if (a.backend == backend_kind::s3 && st.err().kind == ports::error_kind::not_found) return false;
        return st.err();
    };
    auto st = present((*store)->stat(repo_path + "/config", env.stop()));
    if (!st) return failed(st.err().kind, "Cannot check for repository " + url + ": " + st.err().message);
    if (*st) return ports::ok();

    init_lock lock(env.settings.lock_dir, url);
    if (!lock.opened())
        return failed(ports::error_kind::io, "Cannot open lock file " + lock.path() + ": " + std::strerror(errno));
    if (!lock.acquire(env.ctx, env.settings.lock_retry_interval * (env.settings.lock_retries + 1)))
        return failed(ports::error_kind::io, "Timed out waiting for " + lock.path() + " to create " + url);
    // Whoever held the lock may have created it meanwhile.
    st = present((*store)->stat(repo_path + "/config", env.stop()));
    if (!st) return failed(st.err().kind, "Cannot check for repository " + url + ": " + st.err().message);
    if (*st) return ports::ok();

    env.log('I', "creating restic repository " + url);
    restic_command init;
    init.site = frontend_site(env, a, repo_path);
    init.subcommand = "init";
    init.what = "init of " + url;
    auto res = env.restic(a).run(init, a, env.stop());
    if (!res) return failed(res.err().kind, "Cannot run restic init for " + url + ": " + res.err().message);
    switch (res->exit.kind) {
        case exit_kind::success:
        case exit_kind::already_exists:  // another backup of this job created it meanwhile
            return ports::ok();
        default:
            return failed(error_kind_of(res->exit.kind),
                          "Cannot create restic repository " + url + ": " + res->exit.message);
    }
}

}  // namespace oneds::restic
