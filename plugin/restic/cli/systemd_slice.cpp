#include "plugin/restic/cli/systemd_slice.hpp"

#include "common/strings.hpp"

namespace oneds::restic {
namespace {

constexpr std::string_view error_marker = "ONEDS_SLICE_ERROR=";

// A cancel (SIGINT or SIGTERM to this script, the pid the runner knows)
// becomes `systemctl --user kill` of the unit: a signal to `systemd-run
// --pipe` would end systemd-run and leave the unit, restic in it, running.
// A cancel before systemd-run started ends the script (130) before it
// starts; one while it starts is sent again once its pid is known. `wait`
// is repeated only when a signal interrupted it, so restic's own status is
// the script's. systemd-run --wait exits 255 when the service died of a
// signal (restic killed, or OOM-killed under MemoryMax=); that becomes 137,
// a killed restic, so that its lock is looked at afterwards.
//
// $1 systemd-run, $2 systemctl, $3 unit directory ("" = ~/.config/systemd/user),
// $4 the user manager's cgroup ("" = the usual place), $5 the slice's name,
// $6 the slice file, $7 the controllers needed; the rest is systemd-run's
// varying options and restic's command line. No single quote, so the quoted
// remote line stays readable. systemctl gets /dev/null as stdin: the
// password on stdin is for restic alone.
constexpr const char *launcher_script =
    "sr=$1 sc=$2 dir=${3:-$HOME/.config/systemd/user} cg=$4 slice=$5 conf=$6 need=$7; shift 7; "
    "me=$(id -un); uid=$(id -u); "
    "fail() { printf \"ONEDS_SLICE_ERROR=%s:%s:%s\\n\" \"$1\" \"$me\" \"$2\"; exit 1; }; "
    "[ -n \"$XDG_RUNTIME_DIR\" ] || { XDG_RUNTIME_DIR=/run/user/$uid; export XDG_RUNTIME_DIR; }; "
    "[ -n \"$cg\" ] || cg=/sys/fs/cgroup/user.slice/user-$uid.slice/user@$uid.service; "
    "if [ -r \"$cg/cgroup.controllers\" ]; then have=\" $(cat \"$cg/cgroup.controllers\") \"; miss=; "
    "for c in $need; do case $have in *\" $c \"*) ;; *) miss=\"$miss $c\";; esac; done; "
    "[ -z \"$miss\" ] || fail controllers \"${miss# }\"; fi; "
    "mkdir -p \"$dir\" || fail write \"cannot create $dir\"; "
    "( : >>\"$dir/.lock\" ) 2>/dev/null || fail write \"cannot open $dir/.lock\"; "
    "( flock -w 180 9; r=$?; [ \"$r\" -eq 0 ] || { [ \"$r\" -eq 1 ] && fail lock \"$dir/.lock\"; "
    "fail write \"flock failed (exit $r) on $dir/.lock\"; }; "
    "printf %s \"$conf\" >\"$dir/$slice\" || fail write \"cannot write $dir/$slice\"; "
    "out=$(\"$sc\" --user daemon-reload </dev/null 2>&1) || fail manager \"$(printf %s \"$out\" | tr \"\\n\" \" \")\" "
    ") 9>\"$dir/.lock\" || exit 1; "
    "u=oneds-${slice%.slice}-$$.service; p=; c=; g=; "
    "stop() { c=1; g=1; [ -n \"$p\" ] || return 0; n=0; "
    "until \"$sc\" --user kill --kill-who=main --signal=SIGINT \"$u\" </dev/null >/dev/null 2>&1; do "
    "n=$((n+1)); [ \"$n\" -lt 10 ] && kill -0 \"$p\" 2>/dev/null || break; sleep 1; done; }; "
    "trap stop INT TERM; exec 3<&0; "
    "[ -z \"$c\" ] || exit 130; "
    "\"$sr\" --user --quiet --pipe --collect --wait --slice=\"$slice\" --unit=\"$u\" "
    "${SSH_AUTH_SOCK:+\"--setenv=SSH_AUTH_SOCK=$SSH_AUTH_SOCK\"} \"$@\" <&3 3<&- & "
    "p=$!; exec 3<&-; [ -z \"$c\" ] || stop; "
    "while :; do g=; wait \"$p\"; rc=$?; [ -n \"$g\" ] || break; done; "
    "[ \"$rc\" -ne 255 ] || rc=137; exit $rc";

// A word of a unit file line that systemd reads as one path: no blank,
// quote, backslash or specifier.
std::string unit_path_problem(const std::string &path) {
    for (const char c : path)
        if (c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '\\' || c == '%')
            return std::string("holds '") + c + "', which a systemd unit file would not read as part of the path";
    return {};
}

std::string join(const std::vector<std::string> &names, const char *last_sep) {
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i != 0) out += (i + 1 == names.size()) ? last_sep : ", ";
        out += names[i];
    }
    return out;
}

}  // namespace

std::string slice_name(const datastore_attributes &a) { return "backup." + std::to_string(a.ds_id) + ".slice"; }

std::string slice_file_content(const datastore_attributes &a, const std::string &io_path) {
    if (a.max_riops != -1 || a.max_wiops != -1)
        if (auto p = unit_path_problem(io_path); !p.empty())
            throw attribute_error(std::string(a.max_riops != -1 ? "RESTIC_MAX_RIOPS" : "RESTIC_MAX_WIOPS") +
                                  " is set but the backup folder " + common::printable(io_path) + " " + p);
    const auto v = [](std::int64_t n, const std::string &text) { return n == -1 ? std::string() : text; };
    return "[Slice]\n"
           "CPUQuota=" +
           v(a.cpu_quota, std::to_string(a.cpu_quota) + "%") +
           "\nMemoryMax=" + v(a.memory_max_mb, std::to_string(a.memory_max_mb) + "M") +
           "\nIOReadIOPSMax=" + v(a.max_riops, io_path + " " + std::to_string(a.max_riops)) +
           "\nIOWriteIOPSMax=" + v(a.max_wiops, io_path + " " + std::to_string(a.max_wiops)) + "\n\n";
}

std::string needed_controllers(const datastore_attributes &a) {
    std::vector<std::string> c;
    if (a.cpu_quota != -1) c.emplace_back("cpu");
    if (a.memory_max_mb != -1) c.emplace_back("memory");
    if (a.max_riops != -1 || a.max_wiops != -1) c.emplace_back("io");
    std::string out;
    for (const auto &n : c) out += (out.empty() ? "" : " ") + n;
    return out;
}

std::vector<std::string> slice_launcher(const datastore_attributes &a, const systemd_tools &tools,
                                        const std::string &io_path, const std::map<std::string, std::string> &env) {
    // "oneds-slice" is the script's $0, the name its shell errors carry.
    std::vector<std::string> words{"sh",
                                   "-c",
                                   launcher_script,
                                   "oneds-slice",
                                   tools.run,
                                   tools.ctl,
                                   tools.unit_dir,
                                   tools.user_cgroup,
                                   slice_name(a),
                                   slice_file_content(a, io_path),
                                   needed_controllers(a)};
    for (const auto &[name, value] : env) words.push_back("--setenv=" + name + "=" + value);
    return words;
}

std::optional<slice_failure> parse_slice_line(std::string_view line) {
    if (!line.starts_with(error_marker)) return std::nullopt;
    line.remove_prefix(error_marker.size());
    slice_failure f;
    const auto c1 = line.find(':');
    const auto c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) {
        f.kind = "manager";
        f.detail = std::string(line);
        return f;
    }
    f.kind = std::string(line.substr(0, c1));
    f.user = std::string(line.substr(c1 + 1, c2 - c1 - 1));
    f.detail = std::string(common::trim(line.substr(c2 + 1)));
    return f;
}

std::string slice_failure_message(const slice_failure &f, const datastore_attributes &a, const std::string &host) {
    const std::string who =
        "the systemd user manager of " + common::printable(f.user) + " on " + (host.empty() ? "this host" : host);
    const std::string delegate = std::string(
                                     "/etc/systemd/system/user@.service.d/delegate.conf with Delegate=cpu "
                                     "cpuset io") +
                                 (a.memory_max_mb != -1 ? " memory" : "");
    std::vector<std::string> names = a.slice_limits_set;
    if (f.kind == "controllers") {
        // Only the attributes that need a missing controller.
        const std::string missing = " " + f.detail + " ";
        const auto lacks = [&](const char *c) { return missing.find(std::string(" ") + c + " ") != std::string::npos; };
        names.clear();
        for (const auto &n : a.slice_limits_set)
            if ((n == "RESTIC_CPU_QUOTA" && lacks("cpu")) || (n == "RESTIC_MEMORY_MAX_MB" && lacks("memory")) ||
                ((n == "RESTIC_MAX_RIOPS" || n == "RESTIC_MAX_WIOPS") && lacks("io")))
                names.push_back(n);
        if (names.empty()) names = a.slice_limits_set;
    }
    const std::string set = join(names, " and ") + (names.size() == 1 ? " is set" : " are set");
    const std::string detail = common::printable(f.detail);
    if (f.kind == "controllers")
        return set + " but " + who + " has no " + detail +
               " controller delegated to it; delegate the controllers: " + delegate +
               ", then run systemctl daemon-reload and log " + common::printable(f.user) + " in again";
    if (f.kind == "lock")
        return set + " but the slice lock " + detail + " of " + common::printable(f.user) + " on " +
               (host.empty() ? "this host" : host) + " stayed held for 180 s (flock -w 180)";
    if (f.kind == "write")
        return set + " but the slice file of " + common::printable(f.user) + " on " +
               (host.empty() ? "this host" : host) + " could not be written: " + detail;
    return set + " but " + who + " is not reachable (systemctl --user daemon-reload: " + detail +
           "); enable lingering (loginctl enable-linger " + common::printable(f.user) +
           ") and delegate the controllers: " + delegate;
}

}  // namespace oneds::restic
