// The metrics file (docs/metrics.md): Prometheus' text exposition format, made
// whole from the state store (model/ds_state.hpp) and put in place with a
// rename, so that node_exporter's textfile collector never reads half a file.
#include "plugin/restic/health.hpp"

#include "plugin/restic/model/ds_state.hpp"

#include <cstdio>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace oneds::restic {
namespace {

// A label value: backslash, double quote and newline escaped.
std::string label(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string number(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

struct family {
    const char *name;
    const char *type;
    const char *help;
    std::vector<std::string> samples;  // "{labels} value"
};

class exposition {
public:
    family &add(const char *name, const char *type, const char *help) {
        families_.push_back({name, type, help, {}});
        return families_.back();
    }
    static void sample(family &f, const std::vector<std::pair<const char *, std::string>> &labels, double v) {
        std::string s = "{";
        for (std::size_t i = 0; i < labels.size(); ++i)
            s += (i ? "," : "") + std::string(labels[i].first) + "=\"" + label(labels[i].second) + "\"";
        f.samples.push_back(s + "} " + number(v));
    }
    std::string text() const {
        std::string out;
        for (const auto &f : families_) {
            if (f.samples.empty()) continue;
            out += std::string("# HELP ") + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.type + "\n";
            for (const auto &s : f.samples) out += f.name + s + "\n";
        }
        return out;
    }

private:
    std::deque<family> families_;
};

double state_number(const std::string &s) { return s == "OK" ? 0 : s == "WARNING" ? 1 : s == "ERROR" ? 2 : -1; }
double verify_number(const std::string &s) { return s == "ok" ? 0 : s == "error" ? 1 : s == "damaged" ? 2 : -1; }

}  // namespace

std::string render_metrics(const std::string &state_dir) {
    exposition e;
    auto &up = e.add("one_ds_restic_datastore_storage_up", "gauge",
                     "1 when the last MONITOR reached the datastore's storage, else 0.");
    auto &mon = e.add("one_ds_restic_datastore_monitor_timestamp_seconds", "gauge",
                      "End of the datastore's last MONITOR, seconds since the epoch.");
    auto &total = e.add("one_ds_restic_datastore_total_bytes", "gauge", "Datastore size (MONITOR's TOTAL_MB).");
    auto &used = e.add("one_ds_restic_datastore_used_bytes", "gauge", "Datastore space used (MONITOR's USED_MB).");
    auto &free = e.add("one_ds_restic_datastore_free_bytes", "gauge", "Datastore space free (MONITOR's FREE_MB).");
    auto &health = e.add("one_ds_restic_datastore_health_state", "gauge",
                         "Datastore health (RESTIC_HEALTH_STATE): 0 OK, 1 WARNING, 2 ERROR.");
    auto &locks = e.add("one_ds_restic_datastore_stale_locks", "gauge",
                        "restic lock files older than 30 minutes in the datastore's repositories.");
    auto &b_time = e.add("one_ds_restic_vm_last_backup_timestamp_seconds", "gauge",
                         "End of the VM's last backup (successful or not), seconds since the epoch.");
    auto &b_ok_time = e.add("one_ds_restic_vm_last_success_timestamp_seconds", "gauge",
                            "End of the VM's last successful backup, seconds since the epoch.");
    auto &b_dur = e.add("one_ds_restic_vm_last_backup_duration_seconds", "gauge", "Duration of the VM's last backup.");
    auto &b_added = e.add("one_ds_restic_vm_last_backup_added_bytes", "gauge",
                          "Bytes the VM's last backup added to its repository (restic's data_added).");
    auto &b_ok = e.add("one_ds_restic_vm_last_backup_success", "gauge",
                       "1 when the VM's last backup succeeded, 0 when it failed or was cancelled.");
    auto &r_size = e.add("one_ds_restic_repository_size_bytes", "gauge",
                         "Size of the repository's files on the storage (measured at most hourly).");
    auto &v_time = e.add("one_ds_restic_repository_last_verify_timestamp_seconds", "gauge",
                         "End of the repository's last verification, seconds since the epoch.");
    auto &v_res = e.add("one_ds_restic_repository_verify_status", "gauge",
                        "Result of the repository's last verification: 0 ok, 1 could not run, 2 damaged.");

    for (const auto id : ds_state::datastores(state_dir)) {
        const std::string ds = std::to_string(id);
        const ds_state::store st(state_dir, id);
        if (auto m = st.last_monitor(); m && *m) {
            const auto &r = **m;
            exposition::sample(up, {{"datastore", ds}}, r.ok ? 1 : 0);
            exposition::sample(mon, {{"datastore", ds}}, static_cast<double>(r.time));
            if (r.ok) {
                exposition::sample(total, {{"datastore", ds}}, static_cast<double>(r.total_mb) * 1048576.0);
                exposition::sample(used, {{"datastore", ds}}, static_cast<double>(r.used_mb) * 1048576.0);
                exposition::sample(free, {{"datastore", ds}}, static_cast<double>(r.free_mb) * 1048576.0);
            }
            if (state_number(r.health_state) >= 0)
                exposition::sample(health, {{"datastore", ds}}, state_number(r.health_state));
            if (r.stale_locks >= 0) exposition::sample(locks, {{"datastore", ds}}, static_cast<double>(r.stale_locks));
            for (const auto &[repo, bytes] : r.repository_bytes)
                exposition::sample(r_size, {{"datastore", ds}, {"repository", repo}}, static_cast<double>(bytes));
        }
        if (auto b = st.backups(); b)
            for (const auto &[vm, r] : *b) {
                const std::vector<std::pair<const char *, std::string>> l{
                    {"datastore", ds}, {"vm", vm}, {"repository", r.repository}};
                exposition::sample(b_time, l, static_cast<double>(r.time));
                if (r.last_ok_time > 0) exposition::sample(b_ok_time, l, static_cast<double>(r.last_ok_time));
                exposition::sample(b_dur, l, r.duration_s);
                exposition::sample(b_added, l, static_cast<double>(r.bytes_added));
                exposition::sample(b_ok, l, r.ok ? 1 : 0);
            }
        if (auto v = st.verifications(); v)
            for (const auto &[repo, r] : *v) {
                const std::vector<std::pair<const char *, std::string>> l{
                    {"datastore", ds}, {"repository", repo}, {"vm", r.vm}};
                exposition::sample(v_time, l, static_cast<double>(r.time));
                if (verify_number(r.result) >= 0) exposition::sample(v_res, l, verify_number(r.result));
            }
    }
    return e.text();
}

ports::status write_metrics(const plugin_settings &s) {
    if (s.metrics_file.empty() || s.state_dir.empty()) return ports::ok();
    return ds_state::write_atomically(s.metrics_file, render_metrics(s.state_dir), 0644);
}

}  // namespace oneds::restic
