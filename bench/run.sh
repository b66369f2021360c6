#!/usr/bin/env bash
# bench/run.sh [CASE...]: build in Release, run the benchmark cases, and write
#   bench/results/<case>.csv       summary rows (one panel of the chart each)
#   bench/results/<case>.md        the case's section of RESULTS.md
#   bench/results/runs/<case>.csv  one row per run
#   bench/RESULTS.md               this machine + every case's section
#   bench/results.svg              the chart: one panel per bench/results/*.csv
# Without arguments every case runs; with names only those (the other cases'
# earlier results stay in RESULTS.md and the chart).
#
# Environment: ONEDS_BENCH_BUILD_DIR (default build-bench/release at the top,
# which .gitignore's /build*/ covers; configured without the tests), ONEDS_BENCH_REQUESTS (10000),
# ONEDS_BENCH_WINDOW (15), ONEDS_BENCH_THREADS (15), ONEDS_BENCH_REPEAT (5),
# ONEDS_BENCH_WARMUP (1).
#
# A new case is a function case_<name> that writes results/<name>.csv and
# results/<name>.md, plus its name in all_cases.
set -euo pipefail

bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname -- "$bench_dir")
build=${ONEDS_BENCH_BUILD_DIR:-$root/build-bench/release}
results=$bench_dir/results
requests=${ONEDS_BENCH_REQUESTS:-10000}
window=${ONEDS_BENCH_WINDOW:-15}
threads=${ONEDS_BENCH_THREADS:-15}
repeat=${ONEDS_BENCH_REPEAT:-5}
warmup=${ONEDS_BENCH_WARMUP:-1}
all_cases=(mad_monitor)

say() { printf 'bench: %s\n' "$*" >&2; }
thousands() { sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta' <<<"$1"; }

build_release() {
    say "building in $build (Release)"
    # Warnings do not change the code; a compiler's false positive under -O3
    # must not stop a benchmark. The benchmarks need no test (bench/ builds
    # the test plugin itself).
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DONEDS_WARNINGS_AS_ERRORS=OFF \
        -DONEDS_BUILD_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" --target mad_bench bench_chart >/dev/null
}

# ---- cases ----------------------------------------------------------------------

# MAD mode: MONITOR requests through one_ds_host and the test plugin, with a
# peer window and all at once (DESIGN.md §8: 10,000 with 15 in flight).
case_mad_monitor() {
    local table
    table=$("$build/bin/mad_bench" --requests "$requests" --window "$window" --threads "$threads" \
        --repeat "$repeat" --warmup "$warmup" \
        --title "MAD mode: $(thousands "$requests") MONITOR requests through one_ds_host (test plugin)" \
        --csv "$results/mad_monitor.csv" --raw-csv "$results/runs/mad_monitor.csv")
    {
        echo "## MAD mode: MONITOR throughput and latency"
        echo
        echo "\`mad_bench\` drives \`one_ds_host\` over pipes exactly as oned does (one argv string,"
        echo "fd 2 closed, INIT handshake, one \`write()\` per request line, FINALIZE) with the test"
        echo "plugin (DS_MAD \`testdrv\`), whose \`monitor\` answers at once, so this measures the host:"
        echo "line parsing, base64 + XML routing, the request queue, the plugin ABI and the reply writer."
        echo "*window*: the peer keeps at most $window requests outstanding (the host runs with"
        echo "\`-t $window\`); *all at once*: the peer writes all of them without waiting and the host's"
        echo "\`-t $threads\` queues them. Every id got exactly one SUCCESS reply in every run."
        echo
        echo "$table"
        echo
        echo "Goal (DESIGN.md §8): no reply lost or duplicated; peak RSS of the host with the plugin"
        echo "loaded <= 30 MiB."
    } >"$results/mad_monitor.md"
}

# ---- report -----------------------------------------------------------------------

machine_section() {
    local model mem_kib commit restic_version compiler load
    model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
    mem_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo)
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
        commit="$commit (with uncommitted changes)"
    fi
    restic_version=$(restic version 2>/dev/null | head -n 1 || true)
    compiler=$(c++ --version 2>/dev/null | head -n 1 || true)
    load=$load_at_start
    cat <<EOF
# Benchmark results

Written by \`bench/run.sh\` (see README.md, "Benchmarks"); the chart is
[results.svg](results.svg), the numbers behind it are in \`results/\`.

| | |
|---|---|
| CPUs (nproc) | $(nproc) |
| CPU model | ${model:-unknown} |
| RAM | $(awk -v k="${mem_kib:-0}" 'BEGIN { printf "%.1f GiB", k / 1048576 }') |
| kernel | $(uname -sr) |
| load average at start (1, 5, 15 min) | $load |
| date | $(date -u '+%Y-%m-%d %H:%M UTC') |
| git commit | $commit |
| restic | ${restic_version:-not installed} |
| compiler | ${compiler:-unknown}, CMake Release |

Other work on the machine during a run (see the load average) widens the spreads; compare
figures measured side by side in one run.

![benchmark chart](results.svg)
EOF
}

write_report() {
    local f
    {
        machine_section
        for f in "$results"/*.md; do
            [ -e "$f" ] || continue
            echo
            cat -- "$f"
        done
    } >"$bench_dir/RESULTS.md"
    local csvs=()
    for f in "$results"/*.csv; do
        [ -e "$f" ] && csvs+=("$f")
    done
    [ ${#csvs[@]} -gt 0 ] || return 0
    "$build/bin/bench_chart" --out "$bench_dir/results.svg" --title "one_ds_restic benchmarks" \
        --note "$(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1), $(uname -r), $(date -u '+%Y-%m-%d')" \
        --note "bar: median of the runs; whisker: min-max" \
        "${csvs[@]}"
    if command -v xmllint >/dev/null; then xmllint --noout "$bench_dir/results.svg"; fi
}

main() {
    local cases=("$@") c
    [ ${#cases[@]} -gt 0 ] || cases=("${all_cases[@]}")
    for c in "${cases[@]}"; do
        declare -F "case_$c" >/dev/null || { say "no such case: $c (cases: ${all_cases[*]})"; exit 2; }
    done
    build_release
    load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
    mkdir -p "$results/runs"
    for c in "${cases[@]}"; do
        say "case $c"
        "case_$c"
    done
    write_report
    say "wrote $bench_dir/RESULTS.md and $bench_dir/results.svg"
}

main "$@"
