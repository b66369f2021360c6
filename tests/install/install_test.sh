#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR CMAKE GENERATOR ACTIONS UNSUPPORTED
#
# ACTIONS and UNSUPPORTED: blank-separated action names, as CMake reads them
# from the action table (plugin/restic/actions/actions.def): the wrappers of actions
# the plugin runs, and those of the stock stubs ("Operation not supported").
#
# System layout: `cmake --install BUILD_DIR --prefix STAGE`, then checks that
# STAGE holds what OpenNebula expects (usr/lib/one/mads, the 14 remotes
# wrappers, etc/one) and that the installed wrapper runs the installed host,
# which finds libone_ds_restic.so beside itself.
#
# Self-contained layout: a second configure of SOURCE_DIR with
# -DONEDS_INSTALL_LAYOUT=self-contained (no build: the layout only changes
# install() destinations, no compile flag, and the programs carry no RPATH, so
# BUILD_DIR's host and plugin are copied into its bin/ instead of rebuilt),
# installed with `cmake --install` and checked the same way, the wrapper
# finding the host through $ONE_LOCATION.
set -uo pipefail

build=$1
source_dir=$2
cmake=$3
generator=$4
read -r -a supported <<<"$5"
read -r -a unsupported <<<"$6"
actions=("${supported[@]}" "${unsupported[@]}")
conf_files=(one_ds_host.conf oned.conf.snippet datastore-restic.tmpl)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/oneds-install-XXXXXX") || exit 1
trap 'rm -rf -- "$scratch"' EXIT

# pass, fail, check and $failures.
# shellcheck source-path=SCRIPTDIR source=../lib/checks.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../lib/checks.sh"

# check_layout STAGE MADS REMOTES SYSCONF: files and modes.
check_layout() {
    local stage=$1 mads=$1/$2 remotes=$1/$3/datastore/restic sysconf=$1/$4 a f n
    check "$2/one_ds_host is an executable" test -f "$mads/one_ds_host" -a -x "$mads/one_ds_host"
    check "$2/libone_ds_restic.so is installed" test -f "$mads/libone_ds_restic.so"
    for a in "${actions[@]}"; do
        check "$3/datastore/restic/$a is executable" test -f "$remotes/$a" -a -x "$remotes/$a"
    done
    # OpenNebula's own restic binary lives there too (placed by OpenNebula,
    # never by us): not counted.
    n=$(find "$remotes" -mindepth 1 -maxdepth 1 ! -name restic | wc -l)
    check "$3/datastore/restic holds exactly the ${#actions[@]} wrappers (found $n)" test "$n" -eq "${#actions[@]}"
    for f in "${conf_files[@]}"; do
        check "$4/$f is installed" test -f "$sysconf/$f" -a -s "$sysconf/$f"
    done
}

# check_runs DESCRIPTION HOST WRAPPER_DIR ENV...: --version of the installed
# host, and `cp 5` through the installed wrapper, as the stock stub answers.
check_runs() {
    local what=$1 host=$2 remotes=$3
    shift 3
    local out err rc
    out=$("$host" --version 2>&1)
    rc=$?
    check "$what: one_ds_host --version exits 0 (got $rc: $out)" test "$rc" -eq 0
    check "$what: one_ds_host --version names the program" grep -q '^one_ds_host [0-9]' <<<"$out"

    err=$(env -u ONE_LOCATION -u ONE_DS_HOST "$@" "$remotes/cp" 5 </dev/null 2>&1 >"$scratch/cp.out")
    rc=$?
    check "$what: wrapper 'cp 5' exits 1 (got $rc)" test "$rc" -eq 1
    check "$what: wrapper 'cp 5' says 'cp: Operation not supported' on stderr (got '$err')" \
        test "$err" = "cp: Operation not supported"
    check "$what: wrapper 'cp 5' writes nothing on stdout" test ! -s "$scratch/cp.out"

    # Every wrapper reaches the plugin: the actions it runs answer with
    # their own error for an empty request, the stubs with theirs.
    local a
    for a in "${supported[@]}"; do
        err=$(env -u ONE_LOCATION -u ONE_DS_HOST "$@" "$remotes/$a" </dev/null 2>&1 >/dev/null)
        check "$what: wrapper '$a' is run by the plugin (got '$err')" \
            test -n "$err" -a "${err%Operation not supported}" = "$err"
    done
    for a in "${unsupported[@]}"; do
        err=$(env -u ONE_LOCATION -u ONE_DS_HOST "$@" "$remotes/$a" </dev/null 2>&1 >/dev/null)
        check "$what: wrapper '$a' is a stub (got '$err')" test "$err" = "$a: Operation not supported"
    done
}

# ---- system layout ---------------------------------------------------------------

# OpenNebula's restic, already in remotes/datastore/restic/restic (the
# opennebula package ships it): installing our wrappers must leave it alone,
# byte for byte (docs/restic-binary.md).
stage=$scratch/system
one_restic=$stage/var/lib/one/remotes/datastore/restic/restic
mkdir -p "${one_restic%/*}" && head -c 200000 /dev/urandom >"$one_restic" && chmod 0755 "$one_restic"
cp -p -- "$one_restic" "$scratch/one_restic.orig"
if "$cmake" --install "$build" --prefix "$stage" >"$scratch/install-system.log" 2>&1; then
    pass "cmake --install (system layout)"
    check "remotes/datastore/restic/restic is OpenNebula's, byte for byte, after the install" \
        cmp -s -- "$scratch/one_restic.orig" "$one_restic"
    check "remotes/datastore/restic/restic keeps its mode 0755" test "$(stat -c %a -- "$one_restic")" = 755
    check_layout "$stage" usr/lib/one/mads var/lib/one/remotes etc/one
    check_runs "system" "$stage/usr/lib/one/mads/one_ds_host" "$stage/var/lib/one/remotes/datastore/restic" \
        ONE_DS_HOST="$stage/usr/lib/one/mads/one_ds_host"
else
    fail "cmake --install (system layout):"
    cat "$scratch/install-system.log"
fi

# ---- self-contained layout ---------------------------------------------------------

sc_build=$scratch/self-contained-build
if "$cmake" -S "$source_dir" -B "$sc_build" -G "$generator" -DONEDS_INSTALL_LAYOUT=self-contained \
    -DONEDS_BUILD_TESTS=OFF >"$scratch/configure-sc.log" 2>&1; then
    pass "configure with ONEDS_INSTALL_LAYOUT=self-contained"
    mkdir -p "$sc_build/bin"
    cp -- "$build/bin/one_ds_host" "$build/bin/libone_ds_restic.so" "$sc_build/bin/"
    stage=$scratch/one_location
    one_restic=$stage/var/remotes/datastore/restic/restic
    mkdir -p "${one_restic%/*}" && cp -p -- "$scratch/one_restic.orig" "$one_restic"
    if "$cmake" --install "$sc_build" --prefix "$stage" >"$scratch/install-sc.log" 2>&1; then
        pass "cmake --install (self-contained layout)"
        check "var/remotes/datastore/restic/restic is OpenNebula's, byte for byte, after the install" \
            cmp -s -- "$scratch/one_restic.orig" "$one_restic"
        check_layout "$stage" lib/mads var/remotes etc
        # The wrapper finds the host through $ONE_LOCATION, and the host then
        # reads $ONE_LOCATION/etc/one_ds_host.conf: the installed example.
        check_runs "self-contained" "$stage/lib/mads/one_ds_host" "$stage/var/remotes/datastore/restic" \
            ONE_LOCATION="$stage"
    else
        fail "cmake --install (self-contained layout):"
        cat "$scratch/install-sc.log"
    fi
else
    fail "configure with ONEDS_INSTALL_LAYOUT=self-contained:"
    tail -n 30 "$scratch/configure-sc.log"
fi

if [ "$failures" -gt 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
