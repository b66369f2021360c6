#!/usr/bin/env bash
# package_test.sh BUILD_DIR SOURCE_DIR
#
# The one-ds-restic .deb on a throw-away dpkg root (dpkg --root DIR
# --force-script-chrootless, with a dpkg database created here): never the
# machine's own /var/lib/one or dpkg database, and every path comes from
# mktemp, so two copies of the suite can run at once.
#
#  1. builds the .deb with `scripts/package.sh --prebuilt BUILD_DIR` (or takes
#     $ONEDS_PACKAGE_DEB, e.g. the Release package of scripts/package.sh);
#  2. installs a fake stock `opennebula` package (dpkg-deb) owning a
#     remotes/datastore/restic/ tree as OpenNebula ships it: the action
#     scripts, restic.rb, the `restic` symlink to vendor/bin/restic, and
#     restic_downloader.rb, each with distinctive contents;
#  3. installs ours: every file it ships under /var/lib/one is diverted to
#     <file>.stock-opennebula (holding the stock contents), nothing else is;
#     our wrappers are in place and answer through the installed host;
#     OpenNebula's restic is untouched; the postinst names the oned.conf
#     change and `onehost sync --force`; /etc/one/one_ds_host.conf is a
#     conffile (an admin's edit survives a reinstall);
#  4. installs version 2 of the fake stock package (changed contents, a new
#     file, a dropped file): its versions land beside ours;
#  5. purges ours: no diversion left, and the stock tree is byte for byte
#     (file list, types, modes, symlink targets, checksums) what version 2
#     installed; `dpkg --verify opennebula` agrees.
set -uo pipefail

build=$1
source_dir=$2

scratch=$(mktemp -d "${TMPDIR:-/tmp}/oneds-package-test.XXXXXX") || exit 1
trap 'rm -rf -- "$scratch"' EXIT

# pass, fail, check and $failures.
# shellcheck source-path=SCRIPTDIR source=../lib/checks.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../lib/checks.sh"
die() {
    printf 'FAIL  %s\n' "$*"
    exit 1
}

for tool in dpkg dpkg-deb dpkg-divert dpkg-query sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done

# --- 1. our package -----------------------------------------------------------
if [ -n "${ONEDS_PACKAGE_DEB:-}" ]; then
    deb=$ONEDS_PACKAGE_DEB
else
    echo "building the package from $build (scripts/package.sh --prebuilt)"
    # No lintian and no -dbgsym package: the test needs the contents and
    # the maintainer scripts only, and quickly.
    ONEDS_LINTIAN=0 DEB_BUILD_OPTIONS=noautodbgsym \
        "$source_dir/scripts/package.sh" --prebuilt "$build" -o "$scratch/out" -w "$scratch/work" \
        >"$scratch/package.log" 2>&1 || {
        cat "$scratch/package.log"
        die "scripts/package.sh --prebuilt $build failed"
    }
    deb=$(ls "$scratch"/out/one-ds-restic_*.deb 2>/dev/null | head -n 1)
fi
[ -f "$deb" ] || die "no one-ds-restic .deb (looked for $deb)"
pass "package built: ${deb##*/}"

# What our package ships under /var/lib/one: exactly what must be diverted.
ours=()
while IFS= read -r f; do ours+=("$f"); done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t |
    sed -n 's|^\./\(var/lib/one/.*[^/]\)$|/\1|p' | LC_ALL=C sort)
check "the package ships the 14 action wrappers and restic_downloader.rb under /var/lib/one (found ${#ours[@]})" \
    test "${#ours[@]}" -eq 15

depends=$(dpkg-deb -f "$deb" Depends)
check "Depends comes from the linked libraries (libc6, libstdc++6, libssh2-1, libssl3: $depends)" \
    sh -c 'for l in libc6 libstdc++6 libssh2-1 libssl3; do printf "%s\n" "$1" | grep -q "\(^\|, \)$l\( \|,\|$\)" || exit 1; done' sh "$depends"

# --- 2. fake stock opennebula -------------------------------------------------
stock_scripts=(backup backup_cancel increment_flatten ls monitor restic.rb restore rm stat
    cp clone mkfs snap_delete snap_revert snap_flatten)
# make_stock VERSION DIR: the fake opennebula package tree of VERSION (1 or 2).
make_stock() {
    local v=$1 dir=$2 r=$2/var/lib/one/remotes/datastore s
    mkdir -p "$dir/DEBIAN" "$r/restic/vendor/bin" "$r/fs"
    cat >"$dir/DEBIAN/control" <<EOF
Package: opennebula
Version: 7.4.$v-1
Architecture: all
Maintainer: package test <test@example.org>
Description: fake stock OpenNebula for the one-ds-restic package test
EOF
    for s in "${stock_scripts[@]}"; do
        printf '#!/bin/sh\n# stock %s, opennebula v%s\necho stock-v%s-%s\n' "$s" "$v" "$v" "$s" >"$r/restic/$s"
        chmod 0755 "$r/restic/$s"
    done
    printf '#!/usr/bin/env ruby\n# stock restic_downloader.rb v%s\n' "$v" >"$r/restic_downloader.rb"
    chmod 0755 "$r/restic_downloader.rb"
    printf '#!/bin/sh\necho "restic 0.18.%s (fake binary of opennebula v%s)"\n' "$v" "$v" >"$r/restic/vendor/bin/restic"
    printf '\177ELF fake arm64 restic v%s\n' "$v" >"$r/restic/vendor/bin/restic.arm64"
    chmod 0755 "$r/restic/vendor/bin/restic" "$r/restic/vendor/bin/restic.arm64"
    ln -s vendor/bin/restic "$r/restic/restic"
    printf '#!/bin/sh\n# stock fs/cp v%s\n' "$v" >"$r/fs/cp"
    chmod 0755 "$r/fs/cp"
    if [ "$v" = 1 ]; then
        printf '#!/bin/sh\n# vendor/download v1, dropped in v2\n' >"$r/restic/vendor/download"
        chmod 0755 "$r/restic/vendor/download"
    else
        printf '#!/bin/sh\n# new in v2\n' >"$r/restic/new_in_v2"
        chmod 0755 "$r/restic/new_in_v2"
    fi
}
# tree_state DIR: every path under DIR/var/lib/one with its type, mode,
# symlink target and, for files, checksum.
tree_state() {
    (cd "$1" && find var/lib/one -printf '%y %m %p -> %l\n' | LC_ALL=C sort &&
        find var/lib/one -type f -exec sha256sum {} + | LC_ALL=C sort -k 2)
}
for v in 1 2; do
    make_stock "$v" "$scratch/stock$v"
    dpkg-deb --root-owner-group --build "$scratch/stock$v" "$scratch/opennebula_$v.deb" >/dev/null ||
        die "dpkg-deb could not build the fake opennebula v$v"
done

# --- the throw-away root ------------------------------------------------------
root=$scratch/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
# The root holds no libraries: ours come from the machine (hence
# --force-depends; the Depends line itself is checked below).
force=(--force-script-chrootless --force-depends)
[ "$(id -u)" -eq 0 ] || force+=(--force-not-root)
dpkg_root() { dpkg --root="$root" "${force[@]}" --log="$scratch/dpkg.log" "$@"; }
diversions() { dpkg-divert --root="$root" --list | LC_ALL=C sort; }

dpkg_root -i "$scratch/opennebula_1.deb" >"$scratch/stock1.log" 2>&1 || {
    cat "$scratch/stock1.log"
    die "the fake opennebula v1 does not install into $root"
}
tree_state "$root" >"$scratch/state.v1"
pass "fake opennebula v1 installed into the throw-away root"

# --- 3. our package -----------------------------------------------------------
dpkg_root -i "$deb" >"$scratch/ours.log" 2>&1
rc=$?
check "dpkg -i one-ds-restic over the stock tree exits 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || { cat "$scratch/ours.log"; die "one-ds-restic does not install; nothing else to check"; }

remotes=$root/var/lib/one/remotes/datastore
wrapper_of() { # wrapper_of PATH: our source of the installed PATH
    case $1 in
        */restic_downloader.rb) echo "$source_dir/conf/remotes/datastore/restic_downloader" ;;
        *) echo "$source_dir/conf/remotes/datastore/restic/action_wrapper" ;;
    esac
}
expected=$(for f in "${ours[@]}"; do
    printf 'diversion of %s to %s.stock-opennebula by one-ds-restic\n' "$f" "$f"
done | LC_ALL=C sort)
check "exactly the files the package ships under /var/lib/one are diverted, to <file>.stock-opennebula" \
    test "$(diversions)" = "$expected"
for f in "${ours[@]}"; do
    name=${f#/var/lib/one/remotes/datastore/}
    check "$name: the stock v1 version is at $name.stock-opennebula" \
        cmp -s "$root$f.stock-opennebula" "$scratch/stock1$f"
    check "$name: our wrapper is in place, executable" cmp -s "$root$f" "$(wrapper_of "$f")"
    test -x "$root$f" || fail "$name is not executable"
done
for f in restic/restic restic/vendor/bin/restic restic/vendor/bin/restic.arm64 restic/restic.rb fs/cp; do
    check "$f: OpenNebula's file is untouched and not diverted" \
        sh -c 'cmp -s "$1" "$2" && ! dpkg-divert --root="$3" --list "$4" | grep -q .' sh \
        "$remotes/$f" "$scratch/stock1/var/lib/one/remotes/datastore/$f" "$root" "/var/lib/one/remotes/datastore/$f"
done
check "restic is still the symlink to vendor/bin/restic" test "$(readlink "$remotes/restic/restic")" = vendor/bin/restic

host=$root/usr/lib/one/mads/one_ds_host
out=$("$host" --version 2>&1)
rc=$?
check "the installed one_ds_host --version exits 0 and names itself (rc $rc: $out)" \
    sh -c '[ "$1" -eq 0 ] && printf "%s\n" "$2" | grep -q "^one_ds_host [0-9]"' sh "$rc" "$out"
err=$(env -u ONE_LOCATION ONE_DS_HOST="$host" "$remotes/restic/cp" 5 </dev/null 2>&1 >"$scratch/cp.out")
rc=$?
check "the installed wrapper 'cp 5' answers through the installed host: exit 1, 'cp: Operation not supported' (rc $rc: $err)" \
    test "$rc" -eq 1 -a "$err" = "cp: Operation not supported"
check "the postinst prints oned.conf's DATASTORE_MAD change with one_ds_host" \
    grep -q 'EXECUTABLE = "one_ds_host"' "$scratch/ours.log"
check "the postinst prints 'onehost sync --force'" grep -q 'onehost sync --force' "$scratch/ours.log"

conffiles=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Conffiles}\n' one-ds-restic)
check "/etc/one/one_ds_host.conf is a conffile" grep -q '^ /etc/one/one_ds_host.conf [0-9a-f]\{32\}$' <<<"$conffiles"
echo "# edited by the admin" >>"$root/etc/one/one_ds_host.conf"
dpkg_root -i "$deb" >"$scratch/reinstall.log" 2>&1
rc=$?
check "reinstalling one-ds-restic exits 0 (got $rc)" test "$rc" -eq 0
check "the admin's edit of /etc/one/one_ds_host.conf survives the reinstall" \
    grep -q '^# edited by the admin$' "$root/etc/one/one_ds_host.conf"
check "the diversions are unchanged by the reinstall" test "$(diversions)" = "$expected"

# --- 4. an upgrade of the stock package ---------------------------------------
dpkg_root -i "$scratch/opennebula_2.deb" >"$scratch/stock2.log" 2>&1
rc=$?
check "the fake opennebula v2 upgrade exits 0 (got $rc)" test "$rc" -eq 0
for f in "${ours[@]}"; do
    name=${f#/var/lib/one/remotes/datastore/}
    check "after the upgrade, $name.stock-opennebula holds v2" cmp -s "$root$f.stock-opennebula" "$scratch/stock2$f"
    check "after the upgrade, our $name is still in place" cmp -s "$root$f" "$(wrapper_of "$f")"
done
check "after the upgrade, OpenNebula's restic is v2's (it stays OpenNebula's)" \
    cmp -s "$remotes/restic/vendor/bin/restic" "$scratch/stock2/var/lib/one/remotes/datastore/restic/vendor/bin/restic"
check "after the upgrade, the diversions are unchanged" test "$(diversions)" = "$expected"

# --- 5. purge -----------------------------------------------------------------
dpkg_root --purge one-ds-restic >"$scratch/purge.log" 2>&1
rc=$?
check "dpkg --purge one-ds-restic exits 0 (got $rc)" test "$rc" -eq 0
check "no diversion is left" test -z "$(diversions)"
tree_state "$root" >"$scratch/state.after"
mkdir -p "$scratch/v2only"
dpkg-deb -x "$scratch/opennebula_2.deb" "$scratch/v2only"
tree_state "$scratch/v2only" >"$scratch/state.v2"
if diff -u "$scratch/state.v2" "$scratch/state.after" >"$scratch/state.diff"; then
    pass "/var/lib/one is byte for byte what opennebula v2 installed (file list, modes, symlinks, sha256)"
else
    fail "/var/lib/one differs from what opennebula v2 installed:"
    cat "$scratch/state.diff"
fi
check "dpkg --verify opennebula finds nothing changed" \
    sh -c '[ -z "$(dpkg --root="$1" --verify opennebula 2>&1)" ]' sh "$root"
check "the host, the plugin and the config are gone" \
    test ! -e "$host" -a ! -e "$root/usr/lib/one/mads/libone_ds_restic.so" -a ! -e "$root/etc/one/one_ds_host.conf"

if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed; dpkg's output:"
    cat "$scratch/ours.log" "$scratch/stock2.log" "$scratch/purge.log"
    exit 1
fi
echo "all checks passed"
