#include "plugin/restic/health.hpp"

#include "plugin/restic/actions/action_env.hpp"
#include "plugin/restic/actions/verify.hpp"
#include "plugin/restic/model/vm_template.hpp"
#include "plugin/restic/repo_ops.hpp"

#include "plugin/ports/stop.hpp"

#include "common/strings.hpp"

#include <pugixml.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <set>
#include <ctime>
#include <sstream>

namespace oneds::restic {
namespace {

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string age_text(std::int64_t s) {
    if (s >= 7200) return std::to_string(s / 3600) + " h";
    return std::to_string(s / 60) + " min";
}

// "USED_MB=1\nTOTAL_MB=2\nFREE_MB=3\n" -> the three figures.
void parse_figures(const std::string &reply, health_job &job) {
    std::istringstream in(reply);
    for (std::string line; std::getline(in, line);) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        const std::string key = line.substr(0, eq);
        std::uint64_t v = 0;
        try {
            v = std::stoull(line.substr(eq + 1));
        } catch (const std::exception &) {
            continue;
        }
        if (key == "USED_MB") job.used_mb = v;
        if (key == "TOTAL_MB") job.total_mb = v;
        if (key == "FREE_MB") job.free_mb = v;
    }
}

}  // namespace

std::string iso_utc(std::int64_t t) {
    if (t <= 0) return {};
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::map<std::string, std::string> health_attributes(const health_facts &f) {
    std::vector<std::string> errors, warnings;
    if (!f.storage_ok) errors.push_back("storage: " + f.storage_problem);

    std::int64_t last_backup = 0;
    for (const auto &[vm, b] : f.backups) {
        last_backup = std::max(last_backup, b.last_ok_time);
        if (!b.ok)
            warnings.push_back("the last backup of VM " + vm + " failed" +
                               (b.message.empty() ? std::string() : ": " + b.message));
    }
    std::int64_t last_verify = 0;
    std::string verify_result = f.verifications.empty() ? "NONE" : "OK";
    for (const auto &[repo, v] : f.verifications) {
        last_verify = std::max(last_verify, v.time);
        const std::string what = v.vm.empty() ? "repository " + repo : "VM " + v.vm;
        if (v.result == "damaged") {
            if (verify_result == "OK")
                verify_result = "DAMAGED: " + (v.vm.empty() ? repo : v.vm) + ": " + common::one_line(v.message);
            errors.push_back("verification found damage in " + what + ": " + v.message);
        } else if (v.result == "error") {
            warnings.push_back("the verification of " + what + " could not run: " + v.message);
        }
    }
    if (f.stale_locks > 0)
        warnings.push_back(std::to_string(f.stale_locks) + " stale restic lock" + (f.stale_locks > 1 ? "s" : "") +
                           " (" + f.stale_lock_detail + "); restic unlock removes them");
    if (f.compare_versions && f.server_restic && f.frontend_restic &&
        !f.server_restic->at_least(f.frontend_restic->major, f.frontend_restic->minor, f.frontend_restic->patch))
        warnings.push_back("restic " + f.server_restic->str() + " on the backup server is older than the front end's " +
                           f.frontend_restic->str());

    std::map<std::string, std::string> a;
    const auto &worst = !errors.empty() ? errors : warnings;
    a["RESTIC_HEALTH_STATE"] = !errors.empty() ? "ERROR" : !warnings.empty() ? "WARNING" : "OK";
    std::string reason = worst.empty() ? std::string() : worst.front();
    if (worst.size() > 1) reason += " (and " + std::to_string(worst.size() - 1) + " more)";
    a["RESTIC_HEALTH_REASON"] = common::one_line(reason);
    a["RESTIC_HEALTH_RESTIC_VERSION"] = f.server_restic ? f.server_restic->str() : std::string();
    a["RESTIC_HEALTH_STORAGE"] = f.storage_ok ? "OK" : common::one_line(f.storage_problem);
    a["RESTIC_HEALTH_STALE_LOCKS"] = f.stale_locks >= 0 ? std::to_string(f.stale_locks) : std::string();
    a["RESTIC_HEALTH_LAST_BACKUP"] = iso_utc(last_backup);
    a["RESTIC_HEALTH_LAST_VERIFY"] = iso_utc(last_verify);
    a["RESTIC_HEALTH_VERIFY_RESULT"] = verify_result;
    return a;
}

std::string changed_template(const std::map<std::string, std::string> &current,
                             const std::map<std::string, std::string> &wanted) {
    std::string text;
    for (const char *key : k_health_keys) {
        const auto w = wanted.find(key);
        if (w == wanted.end()) continue;
        const auto c = current.find(key);
        const std::string &have = c == current.end() ? std::string() : c->second;
        // oned's template parser takes one line per value: no newline can go
        // in, nor a trailing backslash (template_value drops it: compare
        // what oned will hold).
        std::string value = common::one_line(w->second);
        while (!value.empty() && value.back() == '\\') value.pop_back();
        if (have == value) continue;
        text += std::string(key) + "=" + template_value(value) + "\n";
    }
    return text;
}

void after_monitor(action_env &env, const request_doc &d, const runtime::outcome &out) {
    if (env.health == nullptr || out.status == ONEDS_ERR_CANCELLED || d.attrs.ds_id < 0) return;
    try {
        health_job job;
        job.attrs = d.attrs;
        const auto tmpl = d.doc.select_node("/DS_DRIVER_ACTION_DATA/DATASTORE/TEMPLATE").node();
        for (const char *key : k_health_keys)
            if (auto n = tmpl.child(key)) job.current[key] = n.text().as_string();
        job.time = now_s();
        job.monitor_ok = out.status == ONEDS_OK;
        job.monitor_error = common::one_line(out.error);
        if (job.monitor_ok) parse_figures(out.info, job);
        const repo_site site = maintenance_site(env, d.attrs, d.attrs.base_path);
        job.server_host = site.host;
        if (site.unavailable.empty()) job.server_restic = restic_words(site);
        job.oned = env.oned;
        env.health->submit(std::move(job));
    } catch (const std::exception &e) {
        env.log('W', std::string("health: ") + e.what());
    }
}

void record_backup(action_env &env, std::int64_t ds_id, const std::string &vm_id, const ds_state::backup_record &r) {
    if (env.settings.state_dir.empty() || ds_id < 0) return;
    if (auto saved = ds_state::store(env.settings.state_dir, ds_id).record_backup(vm_id, r); !saved) {
        env.log('W', "cannot record the backup in the state store: " + saved.err().message);
        return;
    }
    if (auto written = write_metrics(env.settings); !written)
        env.log('W', "cannot write the metrics file: " + written.err().message);
}

health_reporter::health_reporter(const plugin_settings &settings, ports::process_runner &runner,
                                 version_cache &versions, store_provider &stores, log_fn log)
    : settings_(settings),
      runner_(runner),
      versions_(versions),
      stores_(stores),
      log_(std::move(log)),
      worker_([this](std::stop_token stop) { loop(stop); }) {}

health_reporter::~health_reporter() {
    {
        std::unique_lock lock(mutex_);
        const auto until = std::chrono::steady_clock::now() + settings_.health_flush_timeout;
        while ((busy_ || !queued_.empty()) && std::chrono::steady_clock::now() < until) wake_.wait_until(lock, until);
    }
    worker_.request_stop();
    wake_.notify_all();
}

void health_reporter::submit(health_job job) {
    {
        std::lock_guard lock(mutex_);
        const auto id = job.attrs.ds_id;
        queued_.insert_or_assign(id, std::move(job));  // a newer job replaces a queued older one
    }
    wake_.notify_all();
}

void health_reporter::loop(std::stop_token stop) {
    std::unique_lock lock(mutex_);
    while (!stop.stop_requested()) {
        if (!wake_.wait(lock, stop, [this] { return !queued_.empty(); })) return;
        health_job job = std::move(queued_.begin()->second);
        queued_.erase(queued_.begin());
        busy_ = true;
        lock.unlock();
        try {
            run(job, stop);
        } catch (const std::exception &e) {
            log_('W', "health of datastore " + std::to_string(job.attrs.ds_id) + ": " + e.what());
        }
        lock.lock();
        busy_ = false;
        wake_.notify_all();
    }
}

void health_reporter::run(health_job &job, const std::stop_token &stop) {
    const std::string ds = std::to_string(job.attrs.ds_id);
    health_facts f;
    f.storage_ok = job.monitor_ok;
    f.storage_problem = job.monitor_error;
    ds_state::monitor_record m;
    m.time = job.time;
    m.ok = job.monitor_ok;
    m.error = job.monitor_error;
    m.used_mb = job.used_mb;
    m.total_mb = job.total_mb;
    m.free_mb = job.free_mb;
    std::optional<ds_state::store> state;
    if (!settings_.state_dir.empty()) {
        state.emplace(settings_.state_dir, job.attrs.ds_id);
        if (auto b = state->backups(); b)
            f.backups = std::move(*b);
        else
            log_('W', "health of datastore " + ds + ": " + b.err().message);
        if (auto v = state->verifications(); v)
            f.verifications = std::move(*v);
        else
            log_('W', "health of datastore " + ds + ": " + v.err().message);
        if (auto last = state->last_monitor(); last && *last) {
            m.repository_bytes = (*last)->repository_bytes;
            m.repository_bytes_time = (*last)->repository_bytes_time;
        }
    }

    // A failed last backup of a VM that is gone (oned does not know it, or
    // it is DONE) would keep the health at WARNING for good: the driver is
    // not told when a VM is deleted. Asked for failed backups only, one
    // one.vm.info each, bounded by the stop.
    if (job.oned != nullptr && state) {
        std::set<std::string> gone;
        for (const auto &[vm, b] : f.backups) {
            if (b.ok || stop.stop_requested()) continue;
            std::int32_t id = 0;
            const auto [end, ec] = std::from_chars(vm.data(), vm.data() + vm.size(), id);
            if (ec != std::errc{} || end != vm.data() + vm.size()) continue;
            auto info = job.oned->call("one.vm.info", {id}, stop);
            if (!info) {
                if (info.err().kind == ports::error_kind::not_found) gone.insert(vm);
                continue;
            }
            const auto *xml = std::get_if<std::string>(&info->body);
            pugi::xml_document doc;
            if (xml != nullptr && doc.load_string(xml->c_str()) &&
                doc.child("VM").child("STATE").text().as_int(-1) == 6)
                gone.insert(vm);  // DONE
        }
        if (!gone.empty()) {
            for (const auto &vm : gone) f.backups.erase(vm);
            if (auto forgot = state->forget_backups(gone); !forgot)
                log_('W', "health of datastore " + ds + ": " + forgot.err().message);
        }
    }

    std::shared_ptr<ports::repo_store> storage;
    std::vector<std::string> repositories;
    bool listed = false;  // the storage listed BASE_PATH
    if (job.monitor_ok) {
        // restic's version where it runs against the repositories (cached per
        // instance: one `restic version` per host and binary).
        f.frontend_restic = versions_.get(runner_, "", settings_.restic_bin, stop);
        f.compare_versions = !job.server_host.empty();
        f.server_restic = job.server_host.empty() || job.server_restic.empty()
                              ? f.frontend_restic
                              : versions_.get(runner_, job.server_host, job.server_restic, stop);

        // Lock files: their age is their mtime on the storage (restic's lock
        // files are encrypted: without the password only the storage's own
        // metadata can be read, i.e. the age and the owning uid).
        auto store = stores_.store_for(job.attrs);
        const std::int64_t now = now_s();
        if (store) {
            storage = *store;
            auto repos = storage->list_directory(job.attrs.base_path, stop);
            if (repos && *repos) {
                f.stale_locks = 0;
                std::int64_t oldest = 0;
                std::string oldest_text;
                for (const auto &r : **repos) {
                    if (!r.is_directory || !is_repository_name(r.name) || stop.stop_requested()) continue;
                    repositories.push_back(r.name);
                    const std::string repo = job.attrs.base_path + "/" + r.name;
                    if (auto locks = storage->list_directory(repo + "/locks", stop); locks && *locks)
                        for (const auto &l : **locks) {
                            const std::int64_t age = now - l.mtime;
                            if (l.is_directory || age <= k_stale_lock_seconds) continue;
                            ++f.stale_locks;
                            if (age > oldest) {
                                oldest = age;
                                // No age in the reason: it would change every
                                // cycle, and every change is an update to oned.
                                f.stale_lock_detail = "oldest in repository " + r.name +
                                                      (l.uid >= 0 ? ", file owner uid " + std::to_string(l.uid) : "");
                                oldest_text = age_text(age);
                            }
                        }
                }
                listed = true;
                if (f.stale_locks > 0)
                    log_('W', "health of datastore " + ds + ": " + std::to_string(f.stale_locks) +
                                  " stale restic lock(s), the oldest " + oldest_text + " old (" + f.stale_lock_detail +
                                  ")");
            } else if (!repos && repos.err().kind != ports::error_kind::unsupported) {
                log_('W', "health of datastore " + ds + ": cannot list the repositories: " + repos.err().message);
            }
        }
    }

    // A verification of a repository that is gone (removed by hand: the
    // driver never deletes one) no longer counts. Backups are kept: a VM's
    // first backup that failed has no repository yet, and still warns.
    if (listed) {
        const std::set<std::string> present(repositories.begin(), repositories.end());
        std::erase_if(f.verifications, [&](const auto &v) { return !present.contains(v.first); });
    }
    const auto wanted = health_attributes(f);
    m.health_state = wanted.at("RESTIC_HEALTH_STATE");
    m.health_reason = wanted.at("RESTIC_HEALTH_REASON");
    m.stale_locks = f.stale_locks;
    const auto save = [&] {
        if (!state) return;
        if (auto saved = state->record_monitor(m); !saved)
            log_('W', "health of datastore " + ds + ": " + saved.err().message);
        if (auto written = write_metrics(settings_); !written)
            log_('W', "cannot write the metrics file: " + written.err().message);
    };
    save();
    send_update(job, changed_template(job.current, wanted), stop);

    // The repositories' sizes, at most hourly and after the update (a walk
    // of every repository's directories: config, keys, snapshots, index,
    // data/xx/...), then the state and the metrics again.
    if (!state || !listed || job.time - m.repository_bytes_time < 3600 || stop.stop_requested()) return;
    std::map<std::string, std::uint64_t> sizes;
    for (const auto &name : repositories) {
        std::uint64_t bytes = 0;
        std::vector<std::string> dirs{job.attrs.base_path + "/" + name};
        while (!dirs.empty() && !stop.stop_requested()) {
            const std::string dir = dirs.back();
            dirs.pop_back();
            auto entries = storage->list_directory(dir, stop);
            if (!entries || !*entries) continue;
            for (const auto &e : **entries)
                if (e.is_directory)
                    dirs.push_back(dir + "/" + e.name);
                else
                    bytes += e.size;
        }
        sizes[name] = bytes;
    }
    if (stop.stop_requested()) return;
    m.repository_bytes = std::move(sizes);
    m.repository_bytes_time = job.time;
    save();
}

void health_reporter::send_update(const health_job &job, const std::string &text, const std::stop_token &stop) {
    const std::string ds = std::to_string(job.attrs.ds_id);
    if (text.empty() || stop.stop_requested()) return;
    if (job.oned == nullptr) {
        if (!warned_no_oned_)
            log_('W', "datastore " + ds +
                          " health is not written to oned: no oned endpoint or credentials "
                          "(oned_endpoint, oned_auth_file)");
        warned_no_oned_ = true;
        return;
    }
    auto updated = job.oned->call("one.datastore.update", {std::int32_t(job.attrs.ds_id), text, std::int32_t{1}}, stop);
    if (!updated && updated.err().kind != ports::error_kind::cancelled)
        log_('W', "cannot write datastore " + ds + " health to oned (" + job.oned->describe() +
                      "): " + updated.err().message);
    else if (!updated)
        log_('W', "datastore " + ds + " health not written to oned: it did not answer before the driver stopped");
}

}  // namespace oneds::restic
