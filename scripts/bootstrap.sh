#!/usr/bin/env bash
# Installs what building and testing need on Debian 12, then configures and
# builds into ./build (or $ONEDS_BUILD_DIR). Safe to run again: packages that
# are already installed are not fetched. ONEDS_SANITIZE=address or thread
# builds with sanitizers, into ./build-asan or ./build-tsan by default
# (docs/sanitizers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizers.sh

packages=(
  build-essential cmake pkg-config git
  libboost1.81-dev libboost-program-options1.81-dev libboost-test1.81-dev
  libboost-json1.81-dev libboost-filesystem1.81-dev
  libssh2-1-dev libssl-dev libxmlrpc-c++8-dev libspdlog-dev libpugixml-dev
  restic openssh-server openssh-client qemu-utils libxml2-utils jq time clang-format
  # A throw-away single-node Ceph (monitor, memstore OSD, RADOS Gateway) for the
  # S3 and RBD tests; the packages start no daemon.
  ceph-mon ceph-osd radosgw ceph-common
  # The RBD test writes images through librbd's Python binding; the S3 store
  # test checks objects with curl (SigV4) and TLS with openssl s_server.
  python3-rbd curl openssl
  # The man page renders without warnings (man -l, groff) and the logrotate
  # entry rotates a real host's log (tests/man).
  man-db groff-base logrotate
  # The Debian package (scripts/package.sh) and its test; Rules-Requires-Root:
  # no, so no fakeroot.
  debhelper dpkg-dev lintian
  # The libFuzzer targets (scripts/ci_fuzz.sh, docs/fuzzing.md) build with clang.
  clang libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}"
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

build_dir=${ONEDS_BUILD_DIR:-$oneds_default_build_dir}
build_type=${ONEDS_BUILD_TYPE:-RelWithDebInfo}
# Developers and CI build with warnings as errors; a plain cmake (a release
# build) does not.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" -DONEDS_WARNINGS_AS_ERRORS=ON \
  "${oneds_sanitize_cmake_args[@]}" ${ONEDS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
