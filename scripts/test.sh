#!/usr/bin/env bash
# The README's test command: set up, build, run every test (ctest).
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit
# ONEDS_SANITIZE=address runs it all under ASan+UBSan, ONEDS_SANITIZE=thread
# under TSan, in their own build directories (docs/sanitizers.md).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/sanitizers.sh
scripts/bootstrap.sh
build_dir=${ONEDS_BUILD_DIR:-$oneds_default_build_dir}
oneds_sanitizer_env
rc=0
ctest --test-dir "$build_dir" --output-on-failure -j 2 "$@" || rc=$?
oneds_sanitizer_check_logs || rc=1
exit $rc
