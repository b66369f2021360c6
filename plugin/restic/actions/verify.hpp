// Rotating verification of a datastore's repositories (docs/verification.md):
// MONITOR starts, after it has its reply, one cycle per datastore on a
// background thread of the plugin instance. A cycle takes the next repository
// of the datastore that holds no lock, reads the next n/N of its packs with
// `restic --no-lock check --read-data-subset=n/N` where the maintenance
// commands run, and writes the result to <state_dir>/<ds id>/verify.json.
#pragma once

#include "plugin/restic/actions/action_env.hpp"

#include <oneds/plugin.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace oneds::restic {

// What one `restic check` said.
struct check_verdict {
    enum class kind { ok, damaged, error };
    kind result = kind::error;
    std::string message;  // one line
};

// Classifies restic 0.14's check: exit 0 is ok (packs no index names are
// informational: a backup that runs meanwhile writes such packs); "Fatal:
// repository contains errors" is damage, and the message is what restic
// reported before it ("Pack ID does not match, want <pack>, got ..."); any
// other failure (no repository, wrong password, unreachable) is an error.
check_verdict classify_check(int exit_code, std::string_view stderr_text);

// N: how many cycles read every pack of a repository of pack_bytes at
// budget_mib MiB per cycle; at least 1.
// At most k_max_subsets: restic's own limit for n/t.
inline constexpr std::uint64_t k_max_subsets = 256;
std::uint64_t subset_count(std::uint64_t pack_bytes, std::int64_t budget_mib);

// Whether a directory name under BASE_PATH is a repository of the driver:
// "<vm id>" or "job_<backup job id>".
bool is_repository_name(std::string_view name);

// The background threads of one plugin instance: at most one cycle per
// datastore at a time. Thread-safe.
class verifier {
public:
    explicit verifier(sdk::host_link host) : host_(host) {}
    ~verifier() { shutdown(); }
    verifier(const verifier &) = delete;
    verifier &operator=(const verifier &) = delete;

    // Runs job on a thread of its own with a context of its own (its log
    // lines carry no request id), unless a job for ds_id still runs or the
    // verifier is shutting down: false then, and job is dropped.
    bool start(std::int64_t ds_id, std::function<void(runtime::request_context &)> job);
    // Cancels the running jobs (restic gets SIGINT; the cycle is redone
    // later) and waits for their threads. Idempotent.
    void shutdown();

private:
    struct running {
        std::shared_ptr<runtime::request_context> ctx;
        std::shared_ptr<std::atomic<bool>> done;
        std::thread thread;
    };
    sdk::host_link host_;
    std::mutex mutex_;
    std::map<std::int64_t, running> jobs_;
    bool stopping_ = false;
};

// Called by MONITOR once it has its reply: starts a cycle for the datastore
// when RESTIC_VERIFY_BUDGET_MB is set, the hour is in RESTIC_VERIFY_WINDOW and
// no cycle of it runs. In MAD mode on env.verify's thread; with the
// verify_foreground setting (tests) inline, before MONITOR replies. Nothing in
// action mode otherwise (the instance ends with the request).
void maybe_start_verification(action_env &env, const datastore_attributes &a);

// One cycle on env (its stop token, its log). Never throws; problems are
// logged and recorded.
void run_verification_cycle(action_env &env, const datastore_attributes &a);

}  // namespace oneds::restic
