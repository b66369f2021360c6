#!/usr/bin/env bash
# CI's fuzz smoke run (docs/fuzzing.md): a separate clang build of the
# libFuzzer targets only (ONEDS_BUILD_FUZZERS), then each target fuzzes for
# ONEDS_FUZZ_SMOKE_SECONDS (20) over a copy of its seed corpus. Needs clang
# and libclang-rt-14-dev (scripts/bootstrap.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${ONEDS_JOBS:-2}
build_dir=$(mktemp -d "${TMPDIR:-/tmp}/oneds-fuzz.XXXXXX")
trap 'rm -rf "$build_dir"' EXIT
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
echo "ci_fuzz: clang build of the fuzz targets in $build_dir"
# -O1 with line tables only: quicker to compile than -O2 -g, and still
# fast fuzzing with symbolised stack traces.
opt="-O1 -gline-tables-only -DNDEBUG"
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONEDS_WARNINGS_AS_ERRORS=ON \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$opt" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$opt" \
  -DONEDS_BUILD_TESTS=OFF -DONEDS_BUILD_FUZZERS=ON \
  -DONEDS_FUZZ_SMOKE_SECONDS="${ONEDS_FUZZ_SMOKE_SECONDS:-20}" "${launcher[@]}" >/dev/null
cmake --build "$build_dir" -j "$jobs" --target fuzzers
ctest --test-dir "$build_dir" -L fuzz-smoke -j "$jobs" --output-on-failure
