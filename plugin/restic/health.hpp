// Datastore health written back to oned (docs/health.md) and the metrics file
// (docs/metrics.md).
//
// After each MONITOR, monitor.cpp calls after_monitor() with the reply it
// computed; that call only copies what the health needs into a job and hands
// it to the plugin instance's health_reporter, which works on a thread of its
// own after the reply has gone: it looks at the repositories' lock files
// through the storage port, asks the backup server's restic for its version
// (cached), reads the state store, records the MONITOR's figures and health
// there, rewrites the metrics file and, when a RESTIC_HEALTH_* value differs
// from the one in the request's DATASTORE/TEMPLATE, sends only those keys to
// oned (one.datastore.update, merge). oned being absent, slow or failing costs
// a log line, never the MONITOR reply.
#pragma once

#include "plugin/restic/cli/version_cache.hpp"
#include "plugin/restic/model/attributes.hpp"
#include "plugin/restic/model/ds_state.hpp"
#include "plugin/restic/model/plugin_settings.hpp"
#include "plugin/runtime/dispatcher.hpp"

#include "plugin/ports/one_api.hpp"
#include "plugin/ports/process.hpp"
#include "plugin/ports/repo_store.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace oneds::restic {

struct action_env;
struct request_doc;
class store_provider;

// The attribute names (docs/health.md), in the order they are written.
inline constexpr const char *k_health_keys[] = {
    "RESTIC_HEALTH_STATE",       "RESTIC_HEALTH_REASON",        "RESTIC_HEALTH_RESTIC_VERSION",
    "RESTIC_HEALTH_STORAGE",     "RESTIC_HEALTH_STALE_LOCKS",   "RESTIC_HEALTH_LAST_BACKUP",
    "RESTIC_HEALTH_LAST_VERIFY", "RESTIC_HEALTH_VERIFY_RESULT",
};

// restic's rule: a lock older than 30 minutes is stale.
inline constexpr std::int64_t k_stale_lock_seconds = 30 * 60;

// What one MONITOR leaves for the health reporter.
struct health_job {
    datastore_attributes attrs;
    std::map<std::string, std::string> current;  // RESTIC_HEALTH_* of the request's template
    std::int64_t time = 0;                       // epoch s of the reply
    bool monitor_ok = false;
    std::string monitor_error;  // one line
    std::uint64_t used_mb = 0, total_mb = 0, free_mb = 0;
    // Where restic runs against the repositories (the backup server for
    // SFTP; "" = here) and the words that start it there.
    std::string server_host;
    std::vector<std::string> server_restic;
    ports::one_api *oned = nullptr;
};

// What the health is made of (pure input of health_attributes()).
struct health_facts {
    bool storage_ok = false;
    std::string storage_problem;
    std::optional<restic_version> server_restic, frontend_restic;
    bool compare_versions = false;  // restic runs on another host than the front end's
    std::int64_t stale_locks = -1;  // -1: not known (the storage cannot list)
    std::string stale_lock_detail;  // "repository 7, 2 h old, owner uid 1000"
    std::map<std::string, ds_state::backup_record> backups;
    std::map<std::string, ds_state::verify_record> verifications;
};

// The RESTIC_HEALTH_* values (every key of k_health_keys).
std::map<std::string, std::string> health_attributes(const health_facts &f);

// The keys of wanted whose value differs from current (absent = ""), as
// template text for a merge update: KEY="value" lines. "" when none differ.
std::string changed_template(const std::map<std::string, std::string> &current,
                             const std::map<std::string, std::string> &wanted);

// 2026-11-30T18:00:00Z; "" for 0.
std::string iso_utc(std::int64_t epoch_seconds);

// monitor.cpp's one hook: hands the health of d's datastore, given the
// reply out, to env.health (nothing when there is none).
void after_monitor(action_env &env, const request_doc &d, const runtime::outcome &out);

// backup.cpp: records a finished backup in the state store and rewrites the
// metrics file; failures are logged (W), never the backup's.
void record_backup(action_env &env, std::int64_t ds_id, const std::string &vm_id, const ds_state::backup_record &r);

// Rewrites the metrics file from the state store (docs/metrics.md).
ports::status write_metrics(const plugin_settings &s);
// The text of the metrics file for the state under state_dir.
std::string render_metrics(const std::string &state_dir);

// The background worker of a plugin instance: one job at a time, a newer
// job of a datastore replacing its queued older one.
class health_reporter {
public:
    using log_fn = std::function<void(char, const std::string &)>;
    health_reporter(const plugin_settings &settings, ports::process_runner &runner, version_cache &versions,
                    store_provider &stores, log_fn log);
    // Waits at most settings.health_flush_timeout for queued and running
    // jobs, then stops the running one.
    ~health_reporter();
    health_reporter(const health_reporter &) = delete;
    health_reporter &operator=(const health_reporter &) = delete;

    void submit(health_job job);

private:
    void loop(std::stop_token stop);
    void run(health_job &job, const std::stop_token &stop);
    // one.datastore.update (merge) of text, unless empty; failures logged.
    void send_update(const health_job &job, const std::string &text, const std::stop_token &stop);

    const plugin_settings &settings_;
    ports::process_runner &runner_;
    version_cache &versions_;
    store_provider &stores_;
    log_fn log_;
    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::map<std::int64_t, health_job> queued_;
    bool busy_ = false;
    bool warned_no_oned_ = false;
    std::jthread worker_;  // last: started when everything else is ready
};

}  // namespace oneds::restic
