#!/usr/bin/env bash
# Builds the Debian package one-ds-restic (debian/, debhelper) from a clean
# copy of this tree and leaves the .deb (and its -dbgsym .ddeb) in the output
# directory; then runs lintian on them when it is installed. docs/packaging.md.
#
#   scripts/package.sh [-o OUTPUT_DIR] [-w WORK_DIR] [--prebuilt BUILD_DIR] [--werror]
#
#   -o DIR          where the .deb goes (default ./dist, created if missing)
#   -w DIR          where to copy the tree and build (default: a mktemp
#                   directory, removed afterwards; a given one is kept)
#   --prebuilt DIR  do not configure or build: install from DIR, an already
#                   built CMake build directory of this tree (the package
#                   test uses it to stay quick; any build type). DIR is only
#                   read.
#   --werror        build with -DONEDS_WARNINGS_AS_ERRORS=ON (CI); the same
#                   as ONEDS_WARNINGS_AS_ERRORS=ON in the environment
# Environment: ONEDS_CMAKE_ARGS (extra configure arguments, e.g. a compiler
# launcher), ONEDS_JOBS (parallel jobs, default nproc), ONEDS_LINTIAN=0 (skip
# lintian). Release build, no tests. Exits non-zero when the build fails or
# lintian reports an error.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '6,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
out=dist
work=
prebuilt=
werror=${ONEDS_WARNINGS_AS_ERRORS:-OFF}
while (($#)); do
    case $1 in
        -o) out=${2:?-o needs a directory}; shift 2 ;;
        -w) work=${2:?-w needs a directory}; shift 2 ;;
        --prebuilt) prebuilt=${2:?--prebuilt needs a build directory}; shift 2 ;;
        --werror) werror=ON; shift ;;
        -h | --help) usage ;;
        *) echo "package.sh: unknown argument '$1'" >&2; usage ;;
    esac
done

for tool in dpkg-buildpackage dh cmake; do
    command -v "$tool" >/dev/null || {
        echo "package.sh: $tool is missing (scripts/bootstrap.sh installs it)" >&2
        exit 1
    }
done
if [ -n "$prebuilt" ]; then
    [ -f "$prebuilt/CMakeCache.txt" ] || {
        echo "package.sh: --prebuilt $prebuilt is not a CMake build directory (no CMakeCache.txt)" >&2
        exit 1
    }
    grep -qx 'ONEDS_INSTALL_LAYOUT:STRING=system' "$prebuilt/CMakeCache.txt" || {
        echo "package.sh: --prebuilt $prebuilt is not configured with ONEDS_INSTALL_LAYOUT=system" >&2
        exit 1
    }
    prebuilt=$(cd "$prebuilt" && pwd)
fi

# debian/changelog's upstream version must be the project's.
project_version=$(sed -n 's/^project(one_ds_restic VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -l debian/changelog -S Version)
if [ "${deb_version%-*}" != "$project_version" ]; then
    echo "package.sh: debian/changelog is at $deb_version, CMakeLists.txt at $project_version" >&2
    exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -z "$work" ]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/oneds-package.XXXXXX")
    trap 'rm -rf -- "$work"' EXIT
else
    mkdir -p "$work"
    work=$(cd "$work" && pwd)
fi

# A clean tree: the files git knows (tracked, and new ones not ignored), so
# nothing of a build directory or an earlier package build comes along.
src=$work/one-ds-restic-$project_version
rm -rf -- "$src"
mkdir -p "$src"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -z -co --exclude-standard |
        (cd "$root" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) |
        tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
else
    tar -C "$root" --exclude='./build*' --exclude=./dist --exclude=./.cache -cf - . | tar -C "$src" -xf -
fi

jobs=${ONEDS_JOBS:-$(nproc)}
echo "package.sh: building one-ds-restic $deb_version in $src${prebuilt:+ from $prebuilt}"
(
    cd "$src"
    export ONEDS_WARNINGS_AS_ERRORS=$werror ONEDS_PREBUILT_DIR=$prebuilt
    export DEB_BUILD_OPTIONS="parallel=$jobs ${DEB_BUILD_OPTIONS:-}"
    dpkg-buildpackage -b -us -uc
)
debs=()
for f in "$work"/*.deb "$work"/*.ddeb; do
    [ -e "$f" ] || continue
    mv -f -- "$f" "$out/"
    debs+=("$out/${f##*/}")
done
((${#debs[@]})) || { echo "package.sh: dpkg-buildpackage left no .deb in $work" >&2; exit 1; }
printf 'package.sh: %s\n' "${debs[@]}"

if [ "${ONEDS_LINTIAN:-1}" != 0 ]; then
    if command -v lintian >/dev/null; then
        echo "package.sh: lintian --info --pedantic"
        lintian --info --pedantic "${debs[@]}"
        echo "package.sh: lintian reported no error"
    else
        echo "package.sh: lintian is not installed, not run"
    fi
fi
