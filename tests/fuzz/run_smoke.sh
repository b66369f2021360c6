#!/usr/bin/env bash
# run_smoke.sh FUZZER CORPUS_DIR SECONDS: fuzzes briefly over a scratch copy
# of the seed corpus (new inputs land there, not in the source tree). Fails
# when the fuzzer finds a crash, a leak, a timeout or an out-of-memory; the
# reproducer is kept in the directory it names.
set -euo pipefail
fuzzer=$1 corpus=$2 seconds=${3:-20}
work=$(mktemp -d "${TMPDIR:-/tmp}/oneds-fuzz.XXXXXX")
mkdir -p "$work/corpus" "$work/artifacts"
cp -R "$corpus"/. "$work/corpus/"
status=0
"$fuzzer" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" || status=$?
if [ "$status" -ne 0 ]; then
  echo "run_smoke: $fuzzer failed (exit $status); reproducer(s) kept in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2
  exit "$status"
fi
rm -rf "$work"
