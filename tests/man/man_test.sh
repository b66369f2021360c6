#!/usr/bin/env bash
# man_test.sh CHECK SOURCE_DIR [HOST]
#
# The man page and the logrotate entry the package installs:
#   render    docs/one_ds_host.1 renders with man(1) and groff without a single
#             warning, and no line of the 80-column rendering is wider than 80
#   complete  the rendered page names every option `one_ds_host --help` prints
#             (all three modes), every key of conf/one_ds_host.conf, every key
#             the restic plugin and its oned client read, and every datastore
#             attribute the plugin reads, and the title line names the version
#             `one_ds_host --version` prints, so that it cannot silently go stale
#   logrotate conf/one_ds_host.logrotate, pointed at a scratch log, passes
#             `logrotate -d`; then a real one_ds_host in MAD mode logs to that
#             file while `logrotate -f` rotates it twice: the old lines are in
#             the rotated file, the host's later lines in the live one (no
#             hole: O_APPEND), and the second rotation compresses the first
# HOST is the built one_ds_host (complete and logrotate).
set -uo pipefail

check=$1
src=$2
host=${3:-}
page=$src/docs/one_ds_host.1
entry=$src/conf/one_ds_host.logrotate

failures=0
pass() { printf 'ok    %s\n' "$*"; }
fail() {
    printf 'FAIL  %s\n' "$*"
    failures=$((failures + 1))
}

scratch=$(mktemp -d "${TMPDIR:-/tmp}/oneds-man-XXXXXX") || exit 1
host_pid=
cleanup() {
    [ -z "$host_pid" ] || kill "$host_pid" 2>/dev/null
    rm -rf -- "$scratch"
}
trap cleanup EXIT

# The page as text, one long line per paragraph: no hyphenation, no
# justification, and the hyphen characters groff may use turned into '-'.
render_text() {
    LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=1000 man --nh --nj -E UTF-8 -l "$page" 2>/dev/null |
        sed 's/\xe2\x80\x90/-/g; s/\xe2\x88\x92/-/g'
}

check_render() {
    local err width
    err=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >"$scratch/page.txt")
    if [ -z "$err" ]; then pass "man --warnings -l: no warning"; else fail "man --warnings -l: $err"; fi
    if [ -s "$scratch/page.txt" ]; then pass "man -l renders text"; else fail "man -l rendered nothing"; fi
    err=$(groff -man -ww -z "$page" 2>&1)
    if [ -z "$err" ]; then pass "groff -man -ww: no warning"; else fail "groff -man -ww: $err"; fi
    width=$(LC_ALL=C.UTF-8 wc -L <"$scratch/page.txt")
    if [ "$width" -le 80 ]; then
        pass "80-column rendering is at most 80 wide"
    else
        fail "80-column rendering has a line of $width columns"
    fi
}

# mentions WHAT WORD...: each WORD appears in the rendered page as a word.
mentions() {
    local what=$1 word missing=()
    shift
    for word in "$@"; do
        grep -qwF -e "$word" "$scratch/text" || missing+=("$word")
    done
    if ((${#missing[@]})); then
        fail "$what missing from the man page: ${missing[*]}"
    else
        pass "the man page names all $# $what"
    fi
}

check_complete() {
    render_text >"$scratch/text"
    if [ ! -s "$scratch/text" ]; then
        fail "man -l rendered nothing"
        return
    fi
    local mode options=() keys=() settings=() attributes=()
    for mode in "" action doctor; do
        # shellcheck disable=SC2086 # the empty mode is no argument
        if ! "$host" $mode --help >"$scratch/help" 2>&1; then
            fail "one_ds_host $mode --help failed: $(cat "$scratch/help")"
            continue
        fi
        # Option lines: "  -t [ --threads ] arg  ..." or "  --plugin arg  ...".
        mapfile -t -O "${#options[@]}" options < <(grep -E '^  -' "$scratch/help" |
            grep -oE '(^|[ [])--?[a-z][a-z-]*' | tr -d ' [' | sort -u)
    done
    mapfile -t options < <(printf '%s\n' "${options[@]}" | sort -u)
    if ((${#options[@]} < 20)); then
        fail "only ${#options[@]} options read from --help: ${options[*]}"
    else
        mentions "options of --help" "${options[@]}"
    fi

    # Keys of the config file, commented out or not ("#threads = 15").
    mapfile -t keys < <(grep -oE '^#?[a-z][a-z_]*[[:space:]]*=' "$src/conf/one_ds_host.conf" |
        tr -d '#= \t' | sort -u)
    if ((${#keys[@]} < 30)); then
        fail "only ${#keys[@]} keys read from conf/one_ds_host.conf"
    else
        mentions "keys of conf/one_ds_host.conf" "${keys[@]}"
    fi
    if grep -qF '[plugin.restic]' "$scratch/text"; then
        pass "the man page names [plugin.restic]"
    else
        fail "the man page does not name the section [plugin.restic]"
    fi

    # Keys the restic plugin reads (its settings, its systemd settings, its
    # oned client's); host.* are the host's options, covered above.
    mapfile -t settings < <(
        {
            grep -oE 'key == "[a-z_.]+"' "$src/plugin/restic/model/plugin_settings.cpp"
            grep -oE 'config\.find\("[a-z_.]+"\)' "$src/plugin/restic/model/plugin_settings.cpp" \
                "$src/adapters/oned/xmlrpc_one_api.cpp"
        } | grep -oE '"[a-z_.]+"' | tr -d '"' | grep -v '^host\.' | sort -u)
    if ((${#settings[@]} < 25)); then
        fail "only ${#settings[@]} plugin settings read from the sources: ${settings[*]}"
    else
        mentions "restic plugin settings" "${settings[@]}"
    fi

    # Datastore attributes: every RESTIC_* name in the plugin's sources but
    # RESTIC_PROGRESS_FPS (restic's own variable, set by the plugin).
    mapfile -t attributes < <(grep -rhoE '"RESTIC_[A-Z0-9_]+"|TEMPLATE/RESTIC_[A-Z0-9_]+' "$src/plugin/restic" |
        grep -oE 'RESTIC_[A-Z0-9_]+' | grep -vx 'RESTIC_PROGRESS_FPS' | sort -u)
    attributes+=(BASE_PATH TOTAL_MB)
    if ((${#attributes[@]} < 30)); then
        fail "only ${#attributes[@]} datastore attributes read from the sources"
    else
        mentions "datastore attributes" "${attributes[@]}"
    fi

    # The title line carries the version the host reports.
    local version
    version=$("$host" --version | grep -oE '^one_ds_host [0-9][^ ]*')
    if [ -n "$version" ] && grep -qF ".TH ONE_DS_HOST 1 " "$page" && grep -F ".TH ONE_DS_HOST 1 " "$page" |
        grep -qF "\"$version\""; then
        pass "the title line names $version"
    else
        fail "the title line (.TH) does not name '$version', the version of one_ds_host --version"
    fi

    mentions "sections" NAME SYNOPSIS DESCRIPTION OPTIONS CONFIGURATION "EXIT STATUS" ENVIRONMENT FILES \
        EXAMPLES "SEE ALSO"
    mentions "exit codes" 0 1 2 255
    mentions "environment variables" ONE_LOCATION ONE_MAD_DEBUG ONE_XMLRPC ONE_AUTH ONE_CIPHER_AUTH
    mentions "installed files" /usr/lib/one/mads/one_ds_host /usr/lib/one/mads/libone_ds_restic.so \
        /etc/one/one_ds_host.conf /var/log/one/one_ds_host.log /etc/logrotate.d/one_ds_host \
        /var/lib/one/remotes/datastore/restic/
}

# wait_for FILE TEXT: up to 10 s for TEXT to be in FILE.
wait_for() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -qF -e "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

check_logrotate() {
    local log_dir=$scratch/log log conf=$scratch/one_ds_host.logrotate state=$scratch/state out rc
    mkdir -m 0750 "$log_dir"
    log=$log_dir/one_ds_host.log
    # The installed entry names the real log and oneadmin: point it at the
    # scratch log and this user. Each rewrite must have matched.
    grep -q '^/var/log/one/one_ds_host.log {$' "$entry" || fail "the entry does not start with the log's path"
    grep -q '^ *su oneadmin oneadmin$' "$entry" || fail "the entry does not rotate as oneadmin"
    grep -q '^ *copytruncate$' "$entry" || fail "the entry does not use copytruncate"
    sed -e "s|^/var/log/one/one_ds_host.log {|$log {|" \
        -e "s|^\( *\)su oneadmin oneadmin$|\1su $(id -un) $(id -gn)|" "$entry" >"$conf"

    out=$(logrotate -d -s "$state" "$conf" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && ! grep -qi 'error' <<<"$out"; then
        pass "logrotate -d accepts the entry"
    else
        fail "logrotate -d (exit $rc): $out"
    fi

    # A real host in MAD mode, its stdin a fifo held open here.
    mkfifo "$scratch/in"
    ONE_LOCATION='' "$host" --log-file "$log" --log-level info <"$scratch/in" >"$scratch/out" 2>"$scratch/err" &
    host_pid=$!
    exec 3>"$scratch/in"
    echo 'BEFORE_ROTATION' >&3
    wait_for "$log" "action 'BEFORE_ROTATION'" || fail "the host did not log before the rotation"

    out=$(logrotate -f -s "$state" "$conf" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then pass "logrotate -f rotates (exit 0)"; else fail "logrotate -f (exit $rc): $out"; fi
    if [ -f "$log.1" ] && grep -qF "action 'BEFORE_ROTATION'" "$log.1"; then
        pass "the old lines are in one_ds_host.log.1 (not compressed yet: delaycompress)"
    else
        fail "no one_ds_host.log.1 with the old lines: $(ls "$log_dir")"
    fi

    echo 'AFTER_ROTATION' >&3
    if wait_for "$log" "action 'AFTER_ROTATION'"; then
        pass "the host goes on writing to the live file after the rotation"
    else
        fail "the host's line after the rotation is not in the live file"
    fi
    grep -qF 'BEFORE_ROTATION' "$log" && fail "the live file still holds the lines before the rotation"
    if LC_ALL=C grep -qaP '\x00' "$log"; then
        fail "the live file has a hole of NUL bytes (the host does not write with O_APPEND)"
    else
        pass "the live file has no hole"
    fi

    out=$(logrotate -f -s "$state" "$conf" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ] && [ -f "$log.2.gz" ] && gzip -dc "$log.2.gz" | grep -qF BEFORE_ROTATION &&
        grep -qF AFTER_ROTATION "$log.1"; then
        pass "a second rotation compresses the first (one_ds_host.log.2.gz)"
    else
        fail "second rotation (exit $rc: $out): $(ls "$log_dir")"
    fi

    echo FINALIZE >&3
    exec 3>&-
    wait "$host_pid"
    rc=$?
    host_pid=
    if [ "$rc" -eq 0 ]; then pass "the host exits 0 after FINALIZE"; else fail "the host exited $rc: $(cat "$scratch/err")"; fi
    if grep -qF 'FINALIZE received' "$log"; then
        pass "the host's last line is in the live file"
    else
        fail "the host's last line is not in the live file"
    fi
}

case $check in
render) check_render ;;
complete) check_complete ;;
logrotate) check_logrotate ;;
*)
    echo "man_test.sh: unknown check '$check'" >&2
    exit 2
    ;;
esac
if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
