#!/usr/bin/env bash
# CI: the concurrency tests of the host and its runtime under ThreadSanitizer,
# in their own build directory (./build-tsan or $ONEDS_BUILD_DIR), building
# only what they need. Run after scripts/bootstrap.sh has installed the
# packages (.ci/run runs scripts/test.sh first). docs/sanitizers.md says
# which tests and why; extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONEDS_SANITIZE=thread
source scripts/sanitizers.sh
build_dir=${ONEDS_BUILD_DIR:-$oneds_default_build_dir}

# Threads inside one process: the request runtime (dispatcher), the stop
# helpers, the child launcher with its watcher, the process adapter's Asio
# loop; and one_ds_host in MAD mode (reader, request queue, writer, fallback
# relay, plugins' completions), driven by host_mad_test.
tests=(dispatcher_test stop_test child_test adapter_process_local_runner_test host_mad_test)

cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DONEDS_WARNINGS_AS_ERRORS=ON \
  "${oneds_sanitize_cmake_args[@]}" ${ONEDS_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${tests[@]}"
oneds_sanitizer_env
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j 2 -R "^($(IFS='|'; echo "${tests[*]}"))\$" "$@" || rc=$?
oneds_sanitizer_check_logs || rc=1
exit $rc
