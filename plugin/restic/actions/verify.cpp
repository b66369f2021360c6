// Rotating verification: see verify.hpp and docs/verification.md. Ours: the
// stock driver never verifies a repository.
#include "plugin/restic/actions/verify.hpp"

#include "plugin/restic/model/ds_state.hpp"

#include "plugin/restic/repo_ops.hpp"

#include "common/strings.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace oneds::restic {

namespace json = boost::json;

check_verdict classify_check(int exit_code, std::string_view stderr_text) {
    check_verdict v;
    if (exit_code == 0) {
        v.result = check_verdict::kind::ok;
        v.message = "no errors were found";
        return v;
    }
    const std::string text = common::strip_terminal_controls(stderr_text);
    // restic 0.14 stops before its checks when an index file does not match
    // its id ("load <index/...>: invalid data returned", then "Fatal:
    // LoadIndex returned errors"): that is damage too, not a check that could
    // not run.
    const bool index_damaged = text.find("Fatal: LoadIndex returned errors") != std::string::npos &&
                               (text.find("invalid data returned") != std::string::npos ||
                                text.find("ciphertext verification failed") != std::string::npos);
    if (text.find("Fatal: repository contains errors") == std::string::npos && !index_damaged) {
        v.result = check_verdict::kind::error;
        v.message = common::one_line(text);
        if (v.message.empty()) v.message = "restic check: " + exit_status_text(exit_code);
        return v;
    }
    v.result = check_verdict::kind::damaged;
    // What restic reported before its verdict, one finding per line.
    std::vector<std::string> found;
    for (const auto &raw : common::split(text, '\n')) {
        const std::string line(common::trim(raw));
        if (line.empty() || line.starts_with("Fatal: repository contains errors") ||
            line.starts_with("Fatal: LoadIndex returned errors") || line.starts_with("create exclusive lock") ||
            line.starts_with("load indexes") || line.starts_with("using temporary cache") || line.starts_with("["))
            continue;
        found.push_back(line);
    }
    std::string msg;
    for (std::size_t i = 0; i < found.size() && i < 4; ++i) msg += (i > 0 ? "; " : "") + found[i];
    if (found.size() > 4) msg += "; and " + std::to_string(found.size() - 4) + " more";
    if (msg.empty()) msg = "repository contains errors";
    if (msg.size() > 600) msg = msg.substr(0, 597) + "...";
    v.message = common::one_line(msg);
    return v;
}

std::uint64_t subset_count(std::uint64_t pack_bytes, std::int64_t budget_mib) {
    if (budget_mib <= 0) return 1;
    const std::uint64_t budget = static_cast<std::uint64_t>(budget_mib) * 1048576;
    // restic refuses --read-data-subset=n/t with t above 256: a repository
    // over 256 budgets reads more than the budget per cycle instead of never
    // being verified.
    return std::clamp<std::uint64_t>((pack_bytes + budget - 1) / budget, 1, k_max_subsets);
}

bool is_repository_name(std::string_view name) {
    if (name.starts_with("job_")) name.remove_prefix(4);
    if (name.empty() || name.size() > 18) return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ---- The background threads ---------------------------------------------------

bool verifier::start(std::int64_t ds_id, std::function<void(runtime::request_context &)> job) {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (auto it = jobs_.find(ds_id); it != jobs_.end()) {
        if (!it->second.done->load()) return false;  // one cycle per datastore at a time
        it->second.thread.join();
        jobs_.erase(it);
    }
    sdk::request req;
    req.action = "verify";
    req.origin = ONEDS_ORIGIN_MAD;
    running r;
    r.ctx = std::make_shared<runtime::request_context>(std::move(req), host_);
    r.done = std::make_shared<std::atomic<bool>>(false);
    r.thread = std::thread([ctx = r.ctx, done = r.done, job = std::move(job)] {
        try {
            job(*ctx);
        } catch (const std::exception &e) {
            ctx->log('E', std::string("verification: ") + e.what());
        } catch (...) {}
        done->store(true);
    });
    jobs_.emplace(ds_id, std::move(r));
    return true;
}

void verifier::shutdown() {
    std::map<std::int64_t, running> all;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        all.swap(jobs_);
    }
    for (auto &[id, r] : all) r.ctx->request_cancel();
    for (auto &[id, r] : all)
        if (r.thread.joinable()) r.thread.join();
}

// ---- The state file --------------------------------------------------------------

namespace {

// The datastore's state directory (<state_dir>, <state_dir>/<ds id>: 0700,
// ds_state.hpp); "" or what failed.
std::string make_state_dir(const std::string &state_dir, const std::string &dir) {
    for (const auto &d : {state_dir, dir})
        if (auto made = ds_state::make_dir(d); !made) return made.err().message;
    return {};
}

json::object read_state(const std::string &file) {
    std::ifstream in(file);
    if (!in) return {};
    std::stringstream text;
    text << in.rdbuf();
    boost::system::error_code ec;
    auto v = json::parse(text.str(), ec);
    if (ec || !v.is_object()) return {};
    return v.as_object();
}

// Replaces file with doc whole (ds_state::write_atomically, 0600); "" or
// what failed. Called under the directory's ds_state::dir_lock, which every
// writer of the state files holds.
std::string write_state(const std::string &file, const json::object &doc) {
    if (auto written = ds_state::write_atomically(file, json::serialize(doc) + "\n", 0600); !written)
        return written.err().message;
    return {};
}

json::object &object_at(json::object &doc, std::string_view key) {
    auto &v = doc[key];
    if (!v.is_object()) v = json::object();
    return v.as_object();
}

// VM ids in numeric order, then job repositories in numeric order.
bool repository_before(const std::string &x, const std::string &y) {
    const bool jx = x.starts_with("job_"), jy = y.starts_with("job_");
    if (jx != jy) return !jx;
    if (x.size() != y.size()) return x.size() < y.size();
    return x < y;
}

// The names of path's entries; none when it is absent (S3 has no empty
// directories: a repository without locks has no locks/ prefix).
ports::result<std::set<std::string>> names_in(ports::repo_store &store, const std::string &path,
                                              const std::stop_token &stop) {
    auto listed = store.list_directory(path, stop);
    if (!listed) return listed.err();
    std::set<std::string> out;
    if (*listed)
        for (const auto &e : **listed) out.insert(e.name);
    return out;
}

// The bytes of <repo>/data/??/*, through the store; unsupported when it cannot list.
ports::result<std::uint64_t> pack_bytes_from_store(ports::repo_store &store, const std::string &repo,
                                                   const std::stop_token &stop) {
    auto dirs = store.list_directory(repo + "/data", stop);
    if (!dirs) return dirs.err();
    std::uint64_t sum = 0;
    if (!*dirs) return sum;
    for (const auto &d : **dirs) {
        if (!d.is_directory) {
            sum += d.size;
            continue;
        }
        auto files = store.list_directory(repo + "/data/" + d.name, stop);
        if (!files) return files.err();
        if (*files)
            for (const auto &f : **files) sum += f.size;
    }
    return sum;
}

// `restic --no-lock stats --mode raw-data --json`: total_size (the blobs'
// bytes, close to the packs' own). Slower: restic reads every index.
ports::result<std::uint64_t> pack_bytes_from_restic(action_env &env, const datastore_attributes &a,
                                                    const repo_site &site) {
    std::string text;
    auto r = run_restic(env, a, site, {"--no-lock", "--json"}, "stats", {"--mode", "raw-data"},
                        "stats of " + site.describe(), [&text](std::string_view line) {
                            text += line;
                            text += '\n';
                        });
    if (!r) return r.err();
    boost::system::error_code ec;
    auto v = json::parse(text, ec);
    if (ec || !v.is_object() || !v.as_object().contains("total_size"))
        return ports::error{ports::error_kind::io, "restic stats printed no total_size"};
    return v.as_object().at("total_size").to_number<std::uint64_t>();
}

struct repo_look {
    std::set<std::string> locks, index, snapshots;
    bool operator==(const repo_look &) const = default;
};

ports::result<repo_look> look_at(ports::repo_store &store, const std::string &repo, const std::stop_token &stop) {
    repo_look l;
    auto config = store.stat(repo + "/config", stop);
    if (!config) return config.err();
    if (!config->exists) return ports::error{ports::error_kind::not_found, "no repository (no config file)"};
    auto locks = names_in(store, repo + "/locks", stop);
    if (!locks) return locks.err();
    l.locks = std::move(*locks);
    auto index = names_in(store, repo + "/index", stop);
    if (!index) return index.err();
    l.index = std::move(*index);
    auto snaps = names_in(store, repo + "/snapshots", stop);
    if (!snaps) return snaps.err();
    l.snapshots = std::move(*snaps);
    return l;
}

const char *result_word(check_verdict::kind k) {
    switch (k) {
        case check_verdict::kind::ok: return "ok";
        case check_verdict::kind::damaged: return "damaged";
        case check_verdict::kind::error: break;
    }
    return "error";
}

}  // namespace

// ---- One cycle ---------------------------------------------------------------------

void run_verification_cycle(action_env &env, const datastore_attributes &a) {
    if (a.verify_budget_mib <= 0) return;
    const std::string ds = std::to_string(a.ds_id);
    const std::string who = "verification of datastore " + ds + ": ";
    // Its results live in the state store; without one (state_dir = ""),
    // nothing could rotate or be reported.
    if (env.settings.state_dir.empty())
        return env.log('W', who + "RESTIC_VERIFY_BUDGET_MB is set but state_dir is empty: no verification");
    auto store_r = env.stores.store_for(a);
    if (!store_r) return env.log('W', who + store_r.err().message);
    ports::repo_store &store = **store_r;
    const auto stop = env.stop();

    auto listed = store.list_directory(a.base_path, stop);
    if (!listed) {
        if (listed.err().kind != ports::error_kind::cancelled)
            env.log('W', who + "cannot list the repositories: " + listed.err().message);
        return;
    }
    if (!*listed) return env.log('D', who + "no repository yet under " + a.base_path);
    std::vector<std::string> repos;
    for (const auto &e : **listed)
        if (e.is_directory && is_repository_name(e.name)) repos.push_back(e.name);
    if (repos.empty()) return env.log('D', who + "no repository yet");
    std::sort(repos.begin(), repos.end(), repository_before);

    const std::string dir = env.settings.state_dir + "/" + ds;
    const std::string file = dir + "/verify.json";
    if (auto problem = make_state_dir(env.settings.state_dir, dir); !problem.empty())
        return env.log('W', who + problem);
    json::object before;
    {
        ds_state::dir_lock lock(dir);
        if (lock.problem()) return env.log('W', who + lock.problem()->message);
        before = read_state(file);
    }
    std::string cursor;
    if (auto it = before.find("cursor"); it != before.end() && it->value().is_string())
        cursor = std::string(it->value().as_string());

    // The rotation: the repositories after the one checked last, then the rest.
    const auto start = std::upper_bound(repos.begin(), repos.end(), cursor, repository_before);
    std::rotate(repos.begin(), cursor.empty() ? repos.begin() : start, repos.end());

    std::string chosen;
    repo_look seen;
    for (const auto &name : repos) {
        const std::string path = a.base_path + "/" + name;
        auto look = look_at(store, path, stop);
        if (!look) {
            if (look.err().kind == ports::error_kind::cancelled) return;
            // No config file: not (yet) a repository.
            env.log('D', who + "skipping " + path + ": " + look.err().message);
            continue;
        }
        if (!look->locks.empty()) {
            // A backup, prune or restore works on it: a check without a lock
            // could take its packs in flight for damage. Next cycle.
            env.log('I', who + "skipping " + path + " this cycle: it holds " + std::to_string(look->locks.size()) +
                             " lock(s) of a running restic");
            continue;
        }
        chosen = name;
        seen = std::move(*look);
        break;
    }
    if (chosen.empty()) return;
    const std::string path = a.base_path + "/" + chosen;
    const repo_site site = maintenance_site(env, a, path);
    if (!site.unavailable.empty()) return env.log('W', who + site.unavailable);

    auto bytes = pack_bytes_from_store(store, path, stop);
    if (!bytes && bytes.err().kind == ports::error_kind::unsupported) bytes = pack_bytes_from_restic(env, a, site);
    if (!bytes) {
        if (bytes.err().kind != ports::error_kind::cancelled)
            env.log('W', who + "cannot tell the size of " + path + ": " + bytes.err().message);
        return;
    }
    const std::uint64_t total = subset_count(*bytes, a.verify_budget_mib);
    std::uint64_t n = 1;
    if (auto it = before.find("next"); it != before.end() && it->value().is_object())
        if (auto *v = it->value().as_object().if_contains(chosen); v != nullptr && v->is_int64())
            n = static_cast<std::uint64_t>(std::max<std::int64_t>(1, v->as_int64()));
    if (n > total) n = 1;  // the repository shrank: start over
    const std::string subset = std::to_string(n) + "/" + std::to_string(total);
    const std::string vm = chosen.starts_with("job_") ? std::string() : chosen;
    const std::string about = "repository " + path + (vm.empty() ? std::string() : " (VM " + vm + ")");

    restic_command check;
    check.site = site;
    check.subcommand = "check";
    check.options = {"--no-lock"};
    check.args = {"--read-data-subset=" + subset};
    check.what = "check of " + site.describe();
    check.retry_on_lock = false;  // it takes none
    env.log('D',
            who + "checking packs " + subset + " of " + about + " (" + std::to_string(*bytes) + " bytes of packs)");
    auto ran = env.restic(a).run(check, a, stop);
    if (!ran) {
        if (ran.err().kind != ports::error_kind::cancelled)
            env.log('W', who + "cannot run restic check for " + about + ": " + ran.err().message);
        return;
    }
    if (ran->cancelled || env.ctx.cancelled()) return;  // redone by a later cycle
    check_verdict verdict;
    if (ran->exit.kind == exit_kind::success || ran->raw.exit_code == 0) {
        verdict = classify_check(0, ran->raw.stderr_text);
    } else {
        verdict = classify_check(ran->raw.exit_code, ran->raw.stderr_text);
        // A check stopped at restic's first retry of a missing or corrupt
        // pack or index (restic_runner) never got to say "repository
        // contains errors": the runner's verdict is the damage.
        if (verdict.result == check_verdict::kind::error && ran->exit.kind == exit_kind::damaged)
            verdict = {check_verdict::kind::damaged, ran->exit.message};
        else if (verdict.result == check_verdict::kind::error)
            verdict.message = failure_text(*ran);
    }
    if (verdict.result != check_verdict::kind::ok) {
        // Only damage (or a failure) that stays: a restic that started
        // meanwhile (a lock), a prune, or a new index or snapshot, may
        // explain what check saw.
        auto after = look_at(store, path, stop);
        if (!after || *after != seen) {
            env.log('I', who + about + " changed while it was checked; subset " + subset +
                             " is checked again in a later cycle");
            verdict.result = check_verdict::kind::error;
            verdict.message = "the repository changed during the check: " + verdict.message;
            // Not recorded as a result: the next cycle of this repository
            // reads the same subset.
            std::string problem;
            {
                ds_state::dir_lock lock(dir);
                json::object doc = read_state(file);
                doc["cursor"] = chosen;
                problem = write_state(file, doc);
            }
            if (!problem.empty()) env.log('W', who + problem);
            return;
        }
    }

    std::string problem;
    bool damage_kept = false;
    {
        ds_state::dir_lock lock(dir);
        json::object doc = read_state(file);
        // Damage found before in another subset stays reported (and the
        // health ERROR with it) until that subset is read again: a later
        // clean subset says nothing about the damaged packs.
        json::object &results = object_at(doc, "repositories");
        if (const auto *prev = results.if_contains(chosen); prev != nullptr && prev->is_object()) {
            const auto &p = prev->as_object();
            const auto *result = p.if_contains("result");
            const auto *prev_subset = p.if_contains("subset");
            damage_kept = verdict.result != check_verdict::kind::damaged && result != nullptr && result->is_string() &&
                          result->as_string() == "damaged" && prev_subset != nullptr && prev_subset->is_string() &&
                          prev_subset->as_string() != subset;
        }
        json::object entry;
        entry["time"] = static_cast<std::int64_t>(std::time(nullptr));
        entry["subset"] = subset;
        entry["result"] = result_word(verdict.result);
        entry["message"] = verdict.message;
        entry["vm"] = vm;
        if (!damage_kept) results[chosen] = std::move(entry);
        // An error (unreachable, wrong password) reads the same subset again.
        object_at(doc, "next")[chosen] =
            static_cast<std::int64_t>(verdict.result == check_verdict::kind::error ? n : n % total + 1);
        doc["cursor"] = chosen;
        problem = write_state(file, doc);
    }
    if (!problem.empty()) env.log('W', who + problem);
    if (damage_kept)
        env.log('W', who + about + ": the damage found before stays reported until its packs are read again");
    switch (verdict.result) {
        case check_verdict::kind::ok: env.log('I', who + about + ": packs " + subset + " ok"); break;
        case check_verdict::kind::damaged:
            env.log('E', who + about + " is damaged (packs " + subset + "): " + verdict.message);
            break;
        case check_verdict::kind::error:
            env.log('W', who + "check of " + about + " failed (packs " + subset + "): " + verdict.message);
            break;
    }
}

void maybe_start_verification(action_env &env, const datastore_attributes &a) {
    if (a.verify_budget_mib <= 0) return;
    if (a.verify_hours) {
        const std::time_t now = std::time(nullptr);
        std::tm local{};
        ::localtime_r(&now, &local);
        if (!in_window(*a.verify_hours, local.tm_hour)) {
            env.log('D', "verification of datastore " + std::to_string(a.ds_id) +
                             ": outside RESTIC_VERIFY_WINDOW, nothing started");
            return;
        }
    }
    if (env.settings.verify_foreground) return run_verification_cycle(env, a);
    if (env.verify == nullptr || env.settings.action_mode) return;
    // The background cycle gets its own context and env: the request's end
    // with the reply. What they refer to (settings, runner, stores, version
    // cache) belongs to the plugin instance, which joins this thread first.
    const plugin_settings &settings = env.settings;
    ports::process_runner &runner = env.runner;
    store_provider &stores = env.stores;
    version_cache *versions = env.versions;
    auto alias = env.is_ssh_alias;
    const bool started = env.verify->start(
        a.ds_id, [&settings, &runner, &stores, versions, alias, attrs = a](runtime::request_context &ctx) {
            action_env bg{settings, runner, stores, ctx, nullptr, versions, alias};
            run_verification_cycle(bg, attrs);
        });
    if (!started)
        env.log('D', "verification of datastore " + std::to_string(a.ds_id) + ": a cycle still runs, none started");
}

}  // namespace oneds::restic
