#!/usr/bin/env bash
# bench/run.sh [--report-only] [CASE...]: build in Release, run the benchmark
# cases, and write
#   bench/results/runs/<case>.csv  one row per run (some cases keep other raw
#                                  files beside it: see their case_ function)
#   bench/results/<case>.csv       summary rows (one panel of the chart each)
#   bench/results/<case>.md        the case's section of RESULTS.md: the
#                                  template bench/cases/<case>.md, filled
#   bench/RESULTS.md               this machine + every case's section
#   bench/results.svg              the chart: one panel per bench/results/*.csv
# Without arguments every case runs; with names only those (the other cases'
# earlier results stay in RESULTS.md and the chart). --report-only measures
# nothing: it writes results/<case>.csv, results/<case>.md and RESULTS.md again
# from the raw files in results/runs/ (same samples, same bytes), for a
# template or a figure's format that changed; the chart stays. It needs the
# ONEDS_BENCH_* settings the measuring run had (the texts quote them).
#
# Environment: ONEDS_BENCH_BUILD_DIR (default build-bench/release at the top,
# which .gitignore's /build*/ covers; configured without the tests), ONEDS_BENCH_REQUESTS (10000),
# ONEDS_BENCH_WINDOW (15), ONEDS_BENCH_THREADS (15), ONEDS_BENCH_REPEAT (5),
# ONEDS_BENCH_WARMUP (1); the case's own: see the settings below.
#
# A new case <name> is two functions and its name in all_cases: case_<name>
# measures and appends one row per run to results/runs/<name>.csv;
# report_<name> writes results/<name>.csv and results/<name>.md from the raw
# rows. The prose is bench/cases/<name>.md, whose {{placeholders}} (tables,
# figures, counts, parameters) report_<name> fills through bench_stats render.
#
# This script runs the cases and collects each run's samples into files; every
# figure made of them (medians, ranges, ratios, percentiles, the tables' number
# format) is bench_stats's (bench/stats.hpp), and so are reading the raw rows
# back and filling the templates (bench/report.hpp).
set -euo pipefail

bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname -- "$bench_dir")
build=${ONEDS_BENCH_BUILD_DIR:-$root/build-bench/release}
results=$bench_dir/results
runs=$results/runs
stats=$build/bin/bench_stats
requests=${ONEDS_BENCH_REQUESTS:-10000}
window=${ONEDS_BENCH_WINDOW:-15}
threads=${ONEDS_BENCH_THREADS:-15}
repeat=${ONEDS_BENCH_REPEAT:-5}
warmup=${ONEDS_BENCH_WARMUP:-1}
all_cases=(mad_monitor restic_backup restic_monitor restic_download restic_concurrency restic_s3 profile)
restic_repeat=${ONEDS_BENCH_RESTIC_REPEAT:-5}
# Case 1 cells, SIZE_MIB:DATA:SNAPSHOTS (DATA random or halfzero). The snapshot
# counts are measured where the fixed cost shows (1 MiB); the large VMs show
# the streaming cost, which the repository's size does not change. The whole
# matrix (3 sizes x 2 data x 3 counts) would take an hour here; the issue's
# budget for the whole run is 15 minutes.
restic_cells=${ONEDS_BENCH_CELLS:-1:random:0 1:random:10 1:random:50 64:random:0 64:halfzero:0 1024:random:0 1024:halfzero:0}
monitor_calls=${ONEDS_BENCH_MONITOR_CALLS:-200}
download_base_mib=${ONEDS_BENCH_DOWNLOAD_MIB:-64}
download_inc_mib=${ONEDS_BENCH_DOWNLOAD_INC_MIB:-8}
concurrency_levels=${ONEDS_BENCH_CONCURRENCY:-1 2 4 8}
concurrency_mib=${ONEDS_BENCH_CONCURRENCY_MIB:-16}
concurrency_repeat=${ONEDS_BENCH_CONCURRENCY_REPEAT:-3}
# Case 7 (S3): the backed-up VM's size (its download chain is case 3's).
s3_mib=${ONEDS_BENCH_S3_MIB:-64}

# shellcheck source=bench/sshd_env.sh
. "$bench_dir/sshd_env.sh"
# shellcheck source=bench/restic_lib.sh
. "$bench_dir/restic_lib.sh"

say() { printf 'bench: %s\n' "$*" >&2; }

# csv_header CSV TITLE: a summary CSV's first two lines (TITLE: the chart panel's).
csv_header() { printf '# %s\ncase,metric,unit,median,min,max,runs,better,plot\n' "$2" >"$1"; }

# csv_row CSV CASE METRIC UNIT RUNS BETTER PLOT SAMPLES: appends the summary row
# "CASE,METRIC,UNIT,median,min,max,RUNS,BETTER,PLOT" of the SAMPLES file.
csv_row() {
    local figures
    figures=$("$stats" csv "$8")
    echo "$2,$3,$4,$figures,$5,$6,$7" >>"$1"
}

# table_cells SAMPLES...: sets cells to " A | B | ... |", each file's table
# cell; "–" for a file without samples (a variant that did not run).
table_cells() {
    local f c
    cells=""
    for f; do
        c="–"
        [ ! -s "$f" ] || c=$("$stats" cell "$f")
        cells+=" $c |"
    done
}

# render CASE NAME=TEXT|NAME@FILE...: results/CASE.md, the template
# bench/cases/CASE.md with each {{NAME}} replaced by TEXT or FILE's text.
render() {
    local name=$1
    shift
    "$stats" render "$bench_dir/cases/$name.md" "$@" >"$results/$name.md"
}

# distinct: the lines of stdin, each once, in the order first seen.
distinct() {
    local line
    local -A seen=()
    while IFS= read -r line; do
        [ -z "${seen["k$line"]:-}" ] || continue
        seen["k$line"]=1
        printf '%s\n' "$line"
    done
}

# size_label MIB: "64 MiB", "1 GiB".
size_label() {
    if (($1 >= 1024)); then echo "$(($1 / 1024)) GiB"; else echo "$1 MiB"; fi
}

# build_release TARGET...
build_release() {
    say "building in $build (Release)"
    # Warnings do not change the code; a compiler's false positive under -O3
    # must not stop a benchmark. The benchmarks need no test (bench/ builds
    # the test plugin itself).
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DONEDS_WARNINGS_AS_ERRORS=OFF \
        -DONEDS_BUILD_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" --target "$@" >/dev/null
}

# ---- cases ----------------------------------------------------------------------

# MAD mode: MONITOR requests through one_ds_host and the test plugin, with a
# peer window and all at once (docs/architecture.md#performance-targets: 10,000 with 15 in flight).
# mad_bench writes the summary and the raw rows itself; its table is kept as
# runs/mad_monitor_table.md, since only mad_bench sees each request's latency.
case_mad_monitor() {
    local count
    count=$("$stats" thousands "$requests")
    "$build/bin/mad_bench" --requests "$requests" --window "$window" --threads "$threads" \
        --repeat "$repeat" --warmup "$warmup" \
        --title "MAD mode: $count MONITOR requests through one_ds_host (test plugin)" \
        --csv "$results/mad_monitor.csv" --raw-csv "$runs/mad_monitor.csv" >"$runs/mad_monitor_table.md"
}

report_mad_monitor() {
    render mad_monitor window="$window" threads="$threads" table@"$runs/mad_monitor_table.md"
}

# ---- restic cases (real restic, loopback sshd) -----------------------------------

# Case 1 (issue 5): backup of a 2-disk VM into a repository holding N snapshots:
# ours (one_ds_host action mode) vs. bare restic (the restic command our plugin
# runs, by hand: one ssh to the hypervisor running it) vs. the stock driver's
# command sequence (bench/stock_sequence.sh). The repository is reset from a
# seeded copy before every run (not timed), so every run sees exactly N
# snapshots. For the 1 MiB VM (the fixed cost) also *ours, warm ssh*: ours with
# a shared ssh_control_dir, so that the ssh master the previous run left
# (ControlPersist) carries this run's ssh. Also case 6: peak RSS and CPU of
# one_ds_host per ours run (runs/restic_host_cost.txt) and of restic per bare
# run (runs/restic_child_cost.txt), GNU time's figures.
case_restic_backup() {
    rb_setup
    local vm=7 cell size kind n made=
    rb_shared_conf=$rb_tmp/one_ds_host.shared.conf
    sed "s|^\[plugin.restic\]\$|[plugin.restic]\nssh_control_dir = $rb_tmp/mux\nssh_control_persist = 60|" \
        "$rb_conf" >"$rb_shared_conf"
    echo "size_mib,data,snapshots,run,variant,seconds" >"$runs/restic_backup.csv"
    : >"$runs/restic_host_cost.txt"
    : >"$runs/restic_child_cost.txt"
    for cell in $restic_cells; do
        IFS=: read -r size kind n <<<"$cell"
        if [ "$made" != "$size:$kind" ]; then
            say "  backup: making a $(size_label "$size") VM ($kind)"
            rb_make_vm "$vm" "$size" "$kind"
            made=$size:$kind
        fi
        say "  backup: $(size_label "$size") VM ($kind), $n snapshots in the repository"
        backup_seed "$vm" "$n"
        backup_cell "$vm" "$size" "$kind" "$n"
        # The warm variant's master: gone before the next cell.
        ssh -F "$BENCH_SSH_CONFIG" -o "ControlPath=$rb_tmp/mux/%C" -O exit hypervisor >/dev/null 2>&1 || true
    done
    rb_teardown
}

# backup_seed VM SNAPSHOTS: $rb_tmp/seed, a repository holding SNAPSHOTS
# backups of the VM, copied over the VM's repository before every run.
backup_seed() {
    local bk=$rb_tmp/sys/0/$1/backup seed=$rb_tmp/seed i
    rm -rf -- "$seed"
    RESTIC_PASSWORD=$rb_password restic --repo="$seed" init >/dev/null 2>&1
    for ((i = 0; i < $2; i++)); do
        RESTIC_PASSWORD=$rb_password restic --repo="$seed" backup --force --tag="one-$1" \
            "$bk/disk.0.0" "$bk/disk.1.0" "$bk/vm.xml" >/dev/null 2>&1
    done
}

# backup_cell VM SIZE_MIB DATA SNAPSHOTS: the rounds of one cell, the variants
# alternated in each; after the warm-up a row per run, and GNU time's figures
# of ours and of bare restic with the cell's key and the run's seconds.
backup_cell() {
    local vm=$1 size=$2 kind=$3 n=$4 r v key variants="ours bare stock" cell_warmup=$warmup
    ((size == 1)) && variants="ours warm bare stock"
    # The 1 GiB cells skip the warm-up run (15-minute budget): their files are
    # in the page cache from being written, restic and ssh from the cells before.
    ((size >= 1024)) && cell_warmup=0
    key=$(size_label "$size")
    key="${key// /_}_$kind $n"
    for ((r = 0; r < cell_warmup + restic_repeat; r++)); do
        for v in $variants; do
            rm -rf -- "${rb_base:?}/$vm"
            cp -a -- "$rb_tmp/seed" "$rb_base/$vm"
            backup_run "$v" "$vm"
            ((r >= cell_warmup)) || continue
            echo "$size,$kind,$n,$((r - cell_warmup + 1)),$v,$run_secs" >>"$runs/restic_backup.csv"
            if [ "$v" = ours ]; then
                echo "$key $(cat "$rb_tmp/time") $run_secs" >>"$runs/restic_host_cost.txt"
            elif [ "$v" = bare ]; then
                echo "$key $(tail -n 1 "$rb_tmp/rtime") $run_secs" >>"$runs/restic_child_cost.txt"
            fi
        done
    done
}

# backup_run VARIANT VM: one backup, timed into run_secs. ours and warm leave
# GNU time's "%M %U %S" of one_ds_host in $rb_tmp/time, bare restic's (on the
# hypervisor side) in $rb_tmp/rtime.
backup_run() {
    local v=$1 vm=$2 bk=$rb_tmp/sys/0/$2/backup t0 t1 out conf=$rb_conf
    [ "$v" != warm ] || conf=$rb_shared_conf
    t0=$EPOCHREALTIME
    case $v in
    ours | warm)
        out=$(rb_doc_for "$vm" | /usr/bin/time -f '%M %U %S' -o "$rb_tmp/time" \
            "$build/bin/one_ds_host" action -c "$conf" --plugin "restic=$rb_plugin" restic backup \
            "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$vm" - "$vm" 0 2>"$rb_tmp/err") ||
            { cat "$rb_tmp/err" >&2; return 1; }
        ;;
    bare)
        # restic reads the password from its stdin (not a terminal), as the plugin sends it.
        out=$(ssh -F "$BENCH_SSH_CONFIG" hypervisor \
            "/usr/bin/time -f '%M %U %S' -o $rb_tmp/rtime restic '$rb_sftp_opt' --repo=sftp:$BENCH_SSH_USER@backupserver:$rb_base/$vm backup --force --json --tag=one-$vm $bk/disk.0.0 $bk/disk.1.0 $bk/vm.xml" \
            <<<"$rb_password" 2>"$rb_tmp/err" | tail -n 1) || { cat "$rb_tmp/err" >&2; return 1; }
        ;;
    stock)
        out=$(RESTIC_PASSWORD=$rb_password "$bench_dir/stock_sequence.sh" backup "$BENCH_SSH_CONFIG" \
            "$BENCH_SSH_USER" backupserver "$rb_base/$vm" hypervisor "$rb_tmp/sys/0/$vm" "$vm" 2>"$rb_tmp/err") ||
            { cat "$rb_tmp/err" >&2; return 1; }
        ;;
    esac
    t1=$EPOCHREALTIME
    [ -n "$out" ] || { echo "$v: no output" >&2; cat "$rb_tmp/err" >&2; return 1; }
    run_secs=$("$stats" elapsed "$t0" "$t1")
}

# Case 1's summary rows and table, the cells in the order measured; then case 6.
report_restic_backup() {
    local t size kind n
    t=$(mktemp -d)
    csv_header "$results/restic_backup.csv" "Case 1: backup of a 2-disk VM, ratios (lower is better for ours)"
    "$stats" select "$runs/restic_backup.csv" size_mib,data,snapshots | distinct >"$t/cells"
    : >"$t/rows"
    while IFS=, read -r size kind n; do
        backup_report_cell "$t/$size.$kind.$n" "$size" "$kind" "$n" >>"$t/rows"
    done <"$t/cells"
    render restic_backup repeat="$restic_repeat" warmup="$warmup" rows@"$t/rows"
    rm -rf -- "$t"
    report_host_cost
}

# backup_report_cell DIR SIZE_MIB DATA SNAPSHOTS: one cell's summary rows
# (appended to results/restic_backup.csv) and its table row (printed); its
# samples go to DIR.
backup_report_cell() {
    local d=$1 label name v csv=$results/restic_backup.csv
    mkdir -p "$d"
    label=$(size_label "$2")
    name="$label $3 $4 snaps"
    for v in ours warm bare stock; do
        "$stats" select "$runs/restic_backup.csv" seconds size_mib="$2" data="$3" snapshots="$4" variant="$v" >"$d/$v"
    done
    # Per-run ratios, the runs paired in the order measured.
    "$stats" ratios "$d/ours" "$d/bare" >"$d/ours_bare"
    "$stats" ratios "$d/ours" "$d/stock" >"$d/ours_stock"
    csv_row "$csv" "$name" ours_vs_bare ratio "$restic_repeat" lower 1 "$d/ours_bare"
    csv_row "$csv" "$name" ours_vs_stock ratio "$restic_repeat" lower 1 "$d/ours_stock"
    if [ -s "$d/warm" ]; then
        "$stats" ratios "$d/warm" "$d/stock" >"$d/warm_stock"
        csv_row "$csv" "$name" warm_ssh_vs_stock ratio "$restic_repeat" lower 1 "$d/warm_stock"
    fi
    for v in ours warm bare stock; do
        [ -s "$d/$v" ] || continue
        csv_row "$csv" "$name" "${v}_wall" s "$restic_repeat" lower 0 "$d/$v"
    done
    table_cells "$d/ours" "$d/warm" "$d/bare" "$d/stock" "$d/ours_bare" "$d/ours_stock" "$d/warm_stock"
    echo "| $label | $3 | $4 |$cells"
}

# Case 6: the cost of one_ds_host itself during case 1's "ours" runs. GNU time
# on one_ds_host: its peak RSS (%M: the largest of the host and the children it
# waited for, here the ssh clients; restic itself runs under sshd on the
# "hypervisor") and CPU seconds (user+sys of the host and its ssh children).
# restic's own cost: the bare run measured the same way on the hypervisor side.
report_host_cost() {
    local t vmk n
    t=$(mktemp -d)
    csv_header "$results/restic_host_cost.csv" "Case 6: one_ds_host during a backup (host + its ssh children)"
    # The cells in the order measured: "<VM>_<data> <snapshots>" (the lines'
    # first two words).
    while read -r vmk n _; do echo "$vmk $n"; done <"$runs/restic_host_cost.txt" | distinct >"$t/cells"
    : >"$t/rows"
    while read -r vmk n; do host_cost_cell "$t" "$vmk" "$n" >>"$t/rows"; done <"$t/cells"
    render restic_host_cost rows@"$t/rows"
    rm -rf -- "$t"
}

# host_cost_cell DIR CELL SNAPSHOTS: one cell's summary rows (appended to
# results/restic_host_cost.csv) and its table row (printed).
host_cost_cell() {
    local d=$1 vmk=$2 n=$3 size kind name csv=$results/restic_host_cost.csv
    local f=$runs/restic_host_cost.txt fr=$runs/restic_child_cost.txt
    size=${vmk%_*} kind=${vmk##*_}
    size=${size//_/ }
    "$stats" cost rss "$f" "$vmk" "$n" >"$d/rss"
    "$stats" cost cpu "$f" "$vmk" "$n" >"$d/cpu"
    "$stats" cost rss "$fr" "$vmk" "$n" >"$d/rrss"
    "$stats" cost cpu "$fr" "$vmk" "$n" >"$d/rcpu"
    name="$size $kind $n snaps"
    csv_row "$csv" "$name" restic_peak_rss MiB "$restic_repeat" lower 1 "$d/rrss"
    csv_row "$csv" "$name" restic_cpu s "$restic_repeat" lower 1 "$d/rcpu"
    csv_row "$csv" "$name" one_ds_host_peak_rss MiB "$restic_repeat" lower 1 "$d/rss"
    csv_row "$csv" "$name" one_ds_host_cpu s "$restic_repeat" lower 1 "$d/cpu"
    table_cells "$d/rss" "$d/cpu" "$d/rrss" "$d/rcpu"
    echo "| $size | $kind | $n |$cells"
}

# Case 2 (issue 5): monitor latency. *stock*: bench/stock_sequence.sh monitor
# (ssh running mkdir -p, the version check, df -PBM). *ours, first call*: a
# fresh `one_ds_host action restic monitor 100` (process start, plugin load,
# SSH + SFTP session set-up, statvfs). *ours, MAD warm*: one MAD-mode host
# (started as oned starts it, driven over a coproc) answering MONITOR after
# MONITOR through its persistent SFTP session; its first MONITOR is reported
# apart. Per round: stock, ours first call, then a fresh MAD host. Besides a
# row per variant and round, runs/restic_monitor_calls.csv has every warm call.
case_restic_monitor() {
    rb_setup
    local r doc64 d=$rb_tmp/mon
    mkdir -p "$d"
    echo "run,variant,seconds" >"$runs/restic_monitor.csv"
    echo "run,call,seconds" >"$runs/restic_monitor_calls.csv"
    doc64=$(printf '<DS_DRIVER_ACTION_DATA>%s</DS_DRIVER_ACTION_DATA>' "$rb_ds_xml" | base64 -w 0)
    for ((r = 0; r < warmup + restic_repeat; r++)); do
        monitor_round "$doc64" "$d"
        ((r < warmup)) || monitor_rows "$((r - warmup + 1))" "$d"
    done
    rb_teardown
}

# monitor_round DOC64 DIR: one round, timed into DIR: the stock sequence
# (stock), a fresh action-mode host (first), a fresh MAD host (mad).
monitor_round() {
    local doc64=$1 d=$2 t0 t1 out
    t0=$EPOCHREALTIME
    out=$("$bench_dir/stock_sequence.sh" monitor "$BENCH_SSH_CONFIG" "$BENCH_SSH_USER" backupserver "$rb_base")
    t1=$EPOCHREALTIME
    [[ $out == *FREE_MB=* ]] || { echo "stock monitor: $out" >&2; return 1; }
    "$stats" elapsed "$t0" "$t1" >"$d/stock"

    t0=$EPOCHREALTIME
    out=$(printf '%s' "$doc64" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
        restic monitor 100 2>"$d/err") || { cat "$d/err" >&2; return 1; }
    t1=$EPOCHREALTIME
    [[ $out == *FREE_MB=* ]] || { echo "ours monitor: $out" >&2; cat "$d/err" >&2; return 1; }
    "$stats" elapsed "$t0" "$t1" >"$d/first"

    monitor_mad "$doc64" "$d/mad"
}

# monitor_mad DOC64 OUT: a MAD-mode host answering 1 + monitor_calls MONITORs;
# OUT gets each one's latency, the first MONITOR's first.
monitor_mad() {
    local doc64=$1 out=$2 i t0 t1 line mad_pid
    : >"$out"
    # MAD mode: oned passes ARGUMENTS as one argv element.
    coproc MADHOST { exec "$build/bin/one_ds_host" "-t 15 -d restic --plugin restic=$rb_plugin -c $rb_conf" 2>/dev/null; }
    mad_pid=$MADHOST_PID
    printf 'INIT\n' >&"${MADHOST[1]}"
    read -r -t 10 line <&"${MADHOST[0]}" || { echo "MAD host: no INIT reply" >&2; return 1; }
    [[ $line == "INIT SUCCESS"* ]] || { echo "MAD host: $line" >&2; return 1; }
    for ((i = 0; i <= monitor_calls; i++)); do
        t0=$EPOCHREALTIME
        printf 'MONITOR  %d %s\n' "$i" "$doc64" >&"${MADHOST[1]}"
        read -r -t 30 line <&"${MADHOST[0]}" || { echo "MAD host: no MONITOR reply" >&2; return 1; }
        t1=$EPOCHREALTIME
        [[ $line == "MONITOR SUCCESS $i "* ]] || { echo "MAD host: $line" >&2; return 1; }
        "$stats" elapsed "$t0" "$t1" >>"$out"
    done
    printf 'FINALIZE\n' >&"${MADHOST[1]}"
    # Closes the host's stdin ({var}>&- closes the fd the variable holds).
    # shellcheck disable=SC1083,SC2093
    exec {MADHOST[1]}>&-
    wait "$mad_pid" 2>/dev/null || true
}

# monitor_rows RUN DIR: the round's rows, one per variant (warm: the median of
# the round's warm calls), and each warm call's.
monitor_rows() {
    local n=$1 d=$2 i=0 secs
    tail -n +2 "$d/mad" >"$d/warm_calls"
    {
        echo "$n,stock,$(cat "$d/stock")"
        echo "$n,first,$(cat "$d/first")"
        echo "$n,madfirst,$(head -n 1 "$d/mad")"
        echo "$n,warm,$("$stats" median "$d/warm_calls")"
    } >>"$runs/restic_monitor.csv"
    while read -r secs; do echo "$n,$((++i)),$secs"; done <"$d/warm_calls" >>"$runs/restic_monitor_calls.csv"
}

report_restic_monitor() {
    local t v csv=$results/restic_monitor.csv stock first madfirst warm up_first up_madfirst up_warm median p99
    t=$(mktemp -d)
    for v in stock first madfirst warm; do "$stats" select "$runs/restic_monitor.csv" seconds variant="$v" >"$t/$v"; done
    "$stats" select "$runs/restic_monitor_calls.csv" seconds >"$t/calls"
    # speed-ups: stock / ours per round
    for v in warm first madfirst; do "$stats" ratios "$t/stock" "$t/$v" >"$t/speedup_$v"; done
    csv_header "$csv" "Case 2: monitor, speed-up stock / ours (higher is better)"
    csv_row "$csv" "MAD warm" stock_over_ours x "$restic_repeat" higher 1 "$t/speedup_warm"
    csv_row "$csv" "MAD first MONITOR" stock_over_ours x "$restic_repeat" higher 1 "$t/speedup_madfirst"
    csv_row "$csv" "action mode (fresh process)" stock_over_ours x "$restic_repeat" higher 1 "$t/speedup_first"
    for v in stock first madfirst warm; do csv_row "$csv" "$v" latency s "$restic_repeat" lower 0 "$t/$v"; done
    stock=$("$stats" cell-ms "$t/stock"); first=$("$stats" cell-ms "$t/first")
    madfirst=$("$stats" cell-ms "$t/madfirst"); warm=$("$stats" cell-ms "$t/warm")
    up_first=$("$stats" cell "$t/speedup_first"); up_madfirst=$("$stats" cell "$t/speedup_madfirst")
    up_warm=$("$stats" cell "$t/speedup_warm")
    median=$("$stats" median "$t/calls"); median=$("$stats" ms "$median")
    p99=$("$stats" percentile 99 "$t/calls"); p99=$("$stats" ms "$p99")
    render restic_monitor calls="$monitor_calls" repeat="$restic_repeat" warmup="$warmup" \
        stock="$stock" first="$first" madfirst="$madfirst" warm="$warm" \
        up_first="$up_first" up_madfirst="$up_madfirst" up_warm="$up_warm" \
        all_calls="$((restic_repeat * monitor_calls))" warm_median="$median" warm_p99="$p99"
    rm -rf -- "$t"
}

# Case 3 (issue 5): download of a 4-increment chain (one disk, stock layout:
# increment 0 a full qcow2, increments 1-3 detached qcow2 overlays, one
# `restic backup` each, as docs/stock-driver.md#backup describes them). *ours*: `one_ds_host action
# restic downloader --stdout <restic:// URL>` with the datastore XML on stdin
# (restic restore of the 4 increments in parallel on the backup server,
# qemu-img rebase -u + convert there, cat back). *bare*: the same steps typed
# by hand in one ssh to the backup server: `restic dump` of each increment in
# turn, qemu-img rebase -u and convert, cat. Both write the image to a local
# file; the two images are compared after the first run. A row per run has the
# image's size too.
case_restic_download() {
    rb_setup
    local vm=9 r v d=$rb_tmp/dl raw=$runs/restic_download.csv
    mkdir -p "$d"
    download_chain "$vm" "$d"
    download_snapshots "$vm"
    echo "run,variant,seconds,image_bytes" >"$raw"
    for ((r = 0; r < warmup + restic_repeat; r++)); do
        for v in ours bare; do
            download_run "$v" "$d"
            ((r < warmup)) || echo "$((r - warmup + 1)),$v,$run_secs,$(stat -c %s "$d/$v.img")" >>"$raw"
        done
        if ((r == 0)); then
            qemu-img compare -q "$d/ours.img" "$d/expect.raw" || { echo "ours: the image differs" >&2; return 1; }
            qemu-img compare -q "$d/bare.img" "$d/expect.raw" || { echo "bare: the image differs" >&2; return 1; }
        fi
    done
    rb_teardown
}

# download_chain VM DIR: the VM's disk.0.0 (a full qcow2) to disk.0.3 (detached
# qcow2 overlays), and DIR/expect.raw, the image the chain stands for.
download_chain() {
    local bk=$rb_tmp/sys/0/$1/backup d=$2 k
    mkdir -p "$bk"
    printf '<VM><ID>%s</ID></VM>' "$1" | base64 -w 60 >"$bk/vm.xml"
    say "  download: building a 4-increment chain (${download_base_mib} MiB full + 3 x ${download_inc_mib} MiB)"
    head -c $((download_base_mib * 1048576)) /dev/urandom >"$d/raw"
    truncate -s $((download_base_mib * 2))M "$d/raw"
    qemu-img convert -q -f raw -O qcow2 "$d/raw" "$bk/disk.0.0"
    for k in 1 2 3; do
        qemu-img create -q -f qcow2 -F qcow2 -b "$bk/disk.0.$((k - 1))" "$bk/disk.0.$k"
        head -c $((download_inc_mib * 1048576)) /dev/urandom >"$d/pat"
        qemu-io -c "write -s $d/pat $((k * download_inc_mib))M ${download_inc_mib}M" "$bk/disk.0.$k" >/dev/null
        qemu-io -c "write -P 0x$((40 + k)) 64k 64k" "$bk/disk.0.$k" >/dev/null
    done
    # What the download must give: the intact chain, before the overlays are detached.
    qemu-img convert -q -O raw "$bk/disk.0.3" "$d/expect.raw"
    for k in 1 2 3; do qemu-img rebase -q -u -b "" "$bk/disk.0.$k"; done
    rm -f "$d/raw" "$d/pat"
}

# download_snapshots VM: one `restic backup` per increment into the VM's
# repository; sets dl_url (ours: the chain's restic:// URL) and dl_script
# (bare: the same work by hand, for bash on the backup server).
download_snapshots() {
    local vm=$1 bk=$rb_tmp/sys/0/$1/backup repo=$rb_base/$1 k sid ids=() chain=""
    RESTIC_PASSWORD=$rb_password restic --repo="$repo" init >/dev/null 2>&1
    for k in 0 1 2 3; do
        sid=$(RESTIC_PASSWORD=$rb_password restic --repo="$repo" backup --force --json --tag="one-$vm" \
            "$bk/disk.0.$k" "$bk/vm.xml" 2>/dev/null | jq -r 'select(.message_type == "summary") | .snapshot_id')
        ids+=("${sid:0:8}")
        chain+="${chain:+,}$k:${sid:0:8}"
    done
    dl_url="restic://100//$chain$bk/disk.0.3"
    # The password arrives on stdin (never on a command line), as the plugin sends it.
    dl_script="ids=(${ids[*]}); set -e -o pipefail; IFS= read -r RESTIC_PASSWORD; export RESTIC_PASSWORD; w=\$(mktemp -d)
for k in 0 1 2 3; do restic --repo='$repo' dump --quiet \${ids[k]} '$bk'/disk.0.\$k > \$w/disk.0.\$k; done
for k in 1 2 3; do qemu-img rebase -u -F qcow2 -b \$w/disk.0.\$((k - 1)) \$w/disk.0.\$k; done
qemu-img convert -O qcow2 \$w/disk.0.3 \$w/image; cat \$w/image; rm -rf \$w"
}

# download_run VARIANT DIR: one download of the chain into DIR/VARIANT.img,
# timed into run_secs.
download_run() {
    local v=$1 d=$2 t0 t1
    rm -f "$d/$v.img"
    t0=$EPOCHREALTIME
    case $v in
    ours)
        printf '%s' "$rb_ds_xml" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
            restic downloader --stdout "$dl_url" >"$d/ours.img" 2>"$d/err" || { cat "$d/err" >&2; return 1; }
        ;;
    bare)
        ssh -F "$BENCH_SSH_CONFIG" backupserver bash -c "$(printf '%q' "$dl_script")" <<<"$rb_password" \
            >"$d/bare.img" 2>"$d/err" ||
            { cat "$d/err" >&2; return 1; }
        ;;
    esac
    t1=$EPOCHREALTIME
    run_secs=$("$stats" elapsed "$t0" "$t1")
}

report_restic_download() {
    local t raw=$runs/restic_download.csv csv=$results/restic_download.csv bytes img_mib ours bare ratio
    t=$(mktemp -d)
    "$stats" select "$raw" seconds variant=ours >"$t/ours"
    "$stats" select "$raw" seconds variant=bare >"$t/bare"
    "$stats" ratios "$t/ours" "$t/bare" >"$t/ours_bare"
    # The image: ours's of the last run (both match the expected content).
    bytes=$("$stats" select "$raw" image_bytes variant=ours | tail -n 1)
    img_mib=$("$stats" mebi "$bytes")
    csv_header "$csv" "Case 3: download of a 4-increment chain, ours / bare (lower is better)"
    csv_row "$csv" "4 increments" ours_vs_bare_dump ratio "$restic_repeat" lower 1 "$t/ours_bare"
    csv_row "$csv" ours wall s "$restic_repeat" lower 0 "$t/ours"
    csv_row "$csv" "bare dump" wall s "$restic_repeat" lower 0 "$t/bare"
    ours=$("$stats" cell "$t/ours"); bare=$("$stats" cell "$t/bare"); ratio=$("$stats" cell "$t/ours_bare")
    render restic_download base_mib="$download_base_mib" inc_mib="$download_inc_mib" img_mib="$img_mib" \
        repeat="$restic_repeat" warmup="$warmup" ours="$ours" bare="$bare" ratio="$ratio"
    rm -rf -- "$t"
}

# Case 4 (issue 5): N VMs backed up at once. oned has no BACKUP message on
# the MAD channel (docs/oned-protocol.md#backup-through-the-vm-driver: backups run the datastore's `backup`
# action, one process each), so "at once" is N concurrent action-mode
# `one_ds_host` processes, vs. N concurrent stock sequences. Each VM has its
# own freshly initialised repository (reset before every run, not timed).
# Total MiB/s = N x VM size / wall time of the slowest; a row per run has both.
case_restic_concurrency() {
    rb_setup
    local c r v vm d=$rb_tmp/cc raw=$runs/restic_concurrency.csv
    mkdir -p "$d"
    echo "vms,run,variant,seconds,mib_per_s" >"$raw"
    RESTIC_PASSWORD=$rb_password restic --repo="$d/seed" init >/dev/null 2>&1
    for ((vm = 20; vm < 20 + ${concurrency_levels##* }; vm++)); do rb_make_vm "$vm" "$concurrency_mib"; done
    for c in $concurrency_levels; do
        say "  concurrency: $c VMs of $concurrency_mib MiB at once"
        for ((r = 0; r < warmup + concurrency_repeat; r++)); do
            for v in ours stock; do
                concurrent_run "$v" "$c" "$d"
                ((r < warmup)) || echo "$c,$((r - warmup + 1)),$v,$run_secs,$run_rate" >>"$raw"
            done
        done
    done
    rb_teardown
}

# concurrent_run VARIANT N DIR: N backups at once (VMs 20 to 19+N), each into a
# fresh copy of DIR/seed; sets run_secs (until the last one ends) and run_rate
# (total MiB/s).
concurrent_run() {
    local v=$1 c=$2 d=$3 vm x t0 t1 pids=()
    for ((vm = 20; vm < 20 + c; vm++)); do rm -rf -- "${rb_base:?}/$vm"; cp -a -- "$d/seed" "$rb_base/$vm"; done
    t0=$EPOCHREALTIME
    for ((vm = 20; vm < 20 + c; vm++)); do
        if [ "$v" = ours ]; then
            rb_doc_for "$vm" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
                restic backup "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$vm" - "$vm" 0 >"$d/out.$vm" 2>"$d/err.$vm" &
        else
            RESTIC_PASSWORD=$rb_password "$bench_dir/stock_sequence.sh" backup "$BENCH_SSH_CONFIG" "$BENCH_SSH_USER" \
                backupserver "$rb_base/$vm" hypervisor "$rb_tmp/sys/0/$vm" "$vm" >"$d/out.$vm" 2>"$d/err.$vm" &
        fi
        pids+=($!)
    done
    for x in "${pids[@]}"; do wait "$x" || { echo "$v backup failed" >&2; cat "$d"/err.* >&2; return 1; }; done
    t1=$EPOCHREALTIME
    run_rate=$("$stats" rate "$((c * concurrency_mib))" "$t0" "$t1")
    run_secs=$("$stats" elapsed "$t0" "$t1")
}

report_restic_concurrency() {
    local t c raw=$runs/restic_concurrency.csv csv=$results/restic_concurrency.csv
    t=$(mktemp -d)
    csv_header "$csv" "Case 4: N concurrent backups, total MiB/s ours / stock (higher is better)"
    "$stats" select "$raw" vms | distinct >"$t/levels"
    : >"$t/rows"
    while read -r c; do
        "$stats" select "$raw" mib_per_s vms="$c" variant=ours >"$t/ours.$c"
        "$stats" select "$raw" mib_per_s vms="$c" variant=stock >"$t/stock.$c"
        "$stats" ratios "$t/ours.$c" "$t/stock.$c" >"$t/ratio.$c"
        table_cells "$t/ours.$c" "$t/stock.$c" "$t/ratio.$c"
        echo "| $c |$cells" >>"$t/rows"
        csv_row "$csv" "$c VMs" ours_over_stock_MiBps ratio "$concurrency_repeat" higher 1 "$t/ratio.$c"
        csv_row "$csv" "$c VMs" ours_MiBps MiB/s "$concurrency_repeat" higher 0 "$t/ours.$c"
        csv_row "$csv" "$c VMs" stock_MiBps MiB/s "$concurrency_repeat" higher 0 "$t/stock.$c"
    done <"$t/levels"
    render restic_concurrency mib="$concurrency_mib" repeat="$concurrency_repeat" warmup="$warmup" rows@"$t/rows"
    rm -rf -- "$t"
}

# Profile (issue 5: where the time goes): one 1 MiB backup through
# one_ds_host, (a) as a timeline of the programs it starts (strace -f, execve
# and exit), (b) under callgrind (instructions of one_ds_host itself, its
# children not traced): where the host's own CPU goes. The tables are kept as
# runs/profile_timeline.md and runs/profile_callgrind.md.
case_profile() {
    rb_setup
    local vm=7 d=$rb_tmp/prof
    mkdir -p "$d"
    rb_make_vm "$vm" 1
    RESTIC_PASSWORD=$rb_password restic --repo="$rb_base/$vm" init >/dev/null 2>&1
    local argv=("$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" restic backup
        "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$vm" - "$vm" 0)
    rb_doc_for "$vm" | "${argv[@]}" >/dev/null 2>&1  # warm caches
    echo "not run (strace missing)" >"$runs/profile_timeline.md"
    echo "not run (valgrind missing)" >"$runs/profile_callgrind.md"
    if command -v strace >/dev/null; then
        rb_doc_for "$vm" | strace -f -tt -s 4096 -e trace=execve,exit_group -o "$d/strace" "${argv[@]}" >/dev/null 2>&1
        profile_timeline "$d/strace" >"$runs/profile_timeline.md"
    fi
    if command -v valgrind >/dev/null; then
        rb_doc_for "$vm" | valgrind --tool=callgrind --callgrind-out-file="$d/callgrind.out" "${argv[@]}" >/dev/null 2>"$d/vg.err" || true
        callgrind_annotate --inclusive=yes "$d/callgrind.out" 2>/dev/null | profile_callgrind >"$runs/profile_callgrind.md"
    fi
    rb_teardown
}

# profile_timeline STRACE: the table rows "| t s | step |" of strace's output.
profile_timeline() {
    awk '
        function secs(t,  a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
        /execve\(/ && !/resumed/ && !/ENOENT/ {
            if (t0 == "") t0 = secs($2)
            prog = $3; sub(/^execve\("/, "", prog); sub(/".*/, "", prog)
            n = split(prog, parts, "/"); what = parts[n]
            if (what == "ssh") {
                if ($0 ~ /"-O", "exit"/) what = "ssh -O exit (closes the master)"
                else if (match($0, /exec [^"]*/)) {
                    # the remote program: the first quoted word after exec
                    # that is neither env nor an assignment
                    rest = substr($0, RSTART + 5, RLENGTH - 5); what = "ssh"
                    while (match(rest, /\x27[^\x27]*\x27/)) {
                        w = substr(rest, RSTART + 1, RLENGTH - 2); rest = substr(rest, RSTART + RLENGTH)
                        if (w != "env" && w !~ /=/) { what = "ssh running " w; break }
                    }
                    if (match(rest, /\x27(backup|restore|snapshots|init|forget|dump)\x27/)) what = what " " substr(rest, RSTART + 1, RLENGTH - 2)
                    what = what " on the hypervisor"
                }
            }
            name[$1] = what
            printf "| %.3f | %s starts |\n", secs($2) - t0, what
        }
        /exit_group\(/ && !/resumed/ && t0 != "" {
            if ($1 in name && name[$1] ~ /^ssh running/) printf "| %.3f | %s ends |\n", secs($2) - t0, name[$1]
            last = secs($2) - t0
        }
        END { printf "| %.3f | one_ds_host ends |\n", last }' "$1"
}

# profile_callgrind: the summary and table rows of callgrind_annotate's output on stdin.
profile_callgrind() {
    awk '
        /PROGRAM TOTALS/ { print "Total: " $1 " instructions (Ir) in one_ds_host and its threads."; print ""; print "| Ir (inclusive) | function |"; print "|---:|---|"; next }
        /^-+$/ { dashes++; next }
        dashes >= 3 && NF >= 2 && $1 != "Ir" && n < 14 { ir = $1; $1 = ""; sub(/^ +/, ""); sub(/ \[.*$/, ""); gsub(/\|/, "\\|"); if (length($0) > 110) $0 = substr($0, 1, 107) "..."; printf "| %s | `%s` |\n", ir, $0; n++ }'
}

report_profile() {
    render profile timeline@"$runs/profile_timeline.md" callgrind@"$runs/profile_callgrind.md"
}

# ---- S3 case (real restic, loopback sshd, a real Ceph RADOS Gateway) --------------

# Case 7 (issue 12): RESTIC_BACKEND=S3 on a throw-away Ceph RADOS Gateway
# (bench/ceph_gateway: the tests' fixture, docs/ceph-fixture.md), started once
# for the case. Each round alternates, on that one gateway and bucket:
# *backup*: ours (one_ds_host action restic backup, as case 1, with an S3
# datastore document: restic on the "hypervisor" with the keys and the
# password on its stdin) vs bare (the same `restic backup` typed by hand in one
# ssh to the hypervisor, the keys and the password on stdin the same way), of
# the same 2-disk VM. Each variant backs up into a repository of its own,
# freshly initialised before the run (not timed): <bucket>/<run's VM id> and
# <bucket>/bare-<run's VM id>, so every run uploads the whole VM.
# *download*: the 4-increment chain of case 3 in <bucket>/9: ours
# (`one_ds_host action restic downloader --stdout <restic:// URL>`: on the front
# end, the keys in restic's environment) vs bare (`restic dump` of each
# increment, qemu-img rebase -u and convert, cat, on the front end with the
# keys in restic's environment). The images are compared after the first round.
# The gateway's keys arrive on ceph_gateway's stdout pipe and stay in this
# shell's memory: restic gets them in its environment or on stdin, one_ds_host
# in the datastore document on its stdin; never argv or a file.
case_restic_s3() {
    rb_setup
    s3_bucket=oneds-bench
    s3_start
    local vm=7 dvm=9 r id v d=$rb_tmp/s3dl raw=$runs/restic_s3.csv
    mkdir -p "$d"
    rb_ds_xml="<DATASTORE><ID>100</ID><NAME>restic-s3</NAME><DS_MAD>restic</DS_MAD><TM_MAD>-</TM_MAD><TYPE>3</TYPE><BASE_PATH>$rb_base</BASE_PATH><TEMPLATE><RESTIC_PASSWORD>$rb_password</RESTIC_PASSWORD><RESTIC_BACKEND>S3</RESTIC_BACKEND><RESTIC_S3_ENDPOINT>$s3_ep</RESTIC_S3_ENDPOINT><RESTIC_S3_BUCKET>$s3_bucket</RESTIC_S3_BUCKET><RESTIC_S3_ACCESS_KEY_ID>$s3_ak</RESTIC_S3_ACCESS_KEY_ID><RESTIC_S3_SECRET_ACCESS_KEY>$s3_sk</RESTIC_S3_SECRET_ACCESS_KEY></TEMPLATE></DATASTORE>"
    say "  s3: gateway $s3_ep started in $s3_start_secs s; making a $(size_label "$s3_mib") VM (random)"
    rb_make_vm "$vm" "$s3_mib" random
    download_chain "$dvm" "$d"
    s3_download_snapshots "$dvm"
    echo "run,op,variant,seconds" >"$raw"
    for ((r = 0; r < warmup + restic_repeat; r++)); do
        id=$((100 + r))
        s3_restic "$s3_url/$id" init >/dev/null
        s3_restic "$s3_url/bare-$id" init >/dev/null
        for v in ours bare; do
            s3_backup_run "$v" "$vm" "$id"
            ((r < warmup)) || echo "$((r - warmup + 1)),backup,$v,$run_secs" >>"$raw"
        done
        for v in ours bare; do
            s3_download_run "$v" "$d"
            ((r < warmup)) || echo "$((r - warmup + 1)),download,$v,$run_secs" >>"$raw"
        done
        if ((r == 0)); then
            s3_check_backups "$id"
            qemu-img compare -q "$d/ours.img" "$d/expect.raw" || { echo "s3 ours: the image differs" >&2; return 1; }
            qemu-img compare -q "$d/bare.img" "$d/expect.raw" || { echo "s3 bare: the image differs" >&2; return 1; }
        fi
    done
    s3_stop
    echo "$s3_start_secs $s3_stop_secs" >"$runs/restic_s3_fixture.txt"
    rb_teardown
}

# s3_start: bench/ceph_gateway as a coproc; sets s3_ep, s3_url (the bucket's
# restic URL), s3_ak, s3_sk (the keys, read from its stdout pipe) and
# s3_start_secs. Closing its stdin (s3_stop, or this shell's exit) stops it.
s3_start() {
    coproc S3GW { exec "$build/bin/ceph_gateway"; }
    s3_pid=$S3GW_PID
    IFS= read -r s3_ep <&"${S3GW[0]}" || { echo "ceph_gateway did not start" >&2; return 1; }
    IFS= read -r s3_ak <&"${S3GW[0]}"
    IFS= read -r s3_sk <&"${S3GW[0]}"
    IFS= read -r s3_start_secs <&"${S3GW[0]}"
    s3_url="s3:$s3_ep/$s3_bucket"
}

# s3_stop: closes the gateway's stdin and reads how long its stop took
# (s3_stop_secs).
s3_stop() {
    # shellcheck disable=SC1083,SC2093
    exec {S3GW[1]}>&-
    IFS= read -r s3_stop_secs <&"${S3GW[0]}" || s3_stop_secs=nan
    wait "$s3_pid" 2>/dev/null || true
}

# s3_restic REPO ARGS...: restic here, the keys and the password in its
# environment (as the plugin runs restic on the front end).
s3_restic() {
    local repo=$1
    shift
    AWS_ACCESS_KEY_ID=$s3_ak AWS_SECRET_ACCESS_KEY=$s3_sk RESTIC_PASSWORD=$rb_password \
        restic --repo="$repo" "$@" 2>"$rb_tmp/s3err" || { cat "$rb_tmp/s3err" >&2; return 1; }
}

# s3_download_snapshots VM: case 3's chain, one `restic backup` per increment
# into <bucket>/VM; sets dl_url (ours) and dl_script (bare: the same work by
# hand, for bash here with the keys and the password in its environment).
s3_download_snapshots() {
    local vm=$1 bk=$rb_tmp/sys/0/$1/backup repo=$s3_url/$1 k sid ids=() chain=""
    s3_restic "$repo" init >/dev/null
    for k in 0 1 2 3; do
        sid=$(s3_restic "$repo" backup --force --json --tag="one-$vm" "$bk/disk.0.$k" "$bk/vm.xml" |
            jq -r 'select(.message_type == "summary") | .snapshot_id')
        ids+=("${sid:0:8}")
        chain+="${chain:+,}$k:${sid:0:8}"
    done
    dl_url="restic://100//$chain$bk/disk.0.3"
    dl_script="ids=(${ids[*]}); set -e -o pipefail; w=\$(mktemp -d)
for k in 0 1 2 3; do restic --repo='$repo' dump --quiet \${ids[k]} '$bk'/disk.0.\$k > \$w/disk.0.\$k; done
for k in 1 2 3; do qemu-img rebase -u -F qcow2 -b \$w/disk.0.\$((k - 1)) \$w/disk.0.\$k; done
qemu-img convert -O qcow2 \$w/disk.0.3 \$w/image; cat \$w/image; rm -rf \$w"
}

# s3_backup_run VARIANT VM ID: one backup of VM's files into the run's
# repository (ours: <bucket>/ID, bare: <bucket>/bare-ID), timed into run_secs.
s3_backup_run() {
    local v=$1 vm=$2 id=$3 bk=$rb_tmp/sys/0/$2/backup t0 t1 out
    t0=$EPOCHREALTIME
    case $v in
    ours)
        out=$(rb_doc_for "$id" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
            restic backup "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$id" - "$id" 0 2>"$rb_tmp/err") ||
            { cat "$rb_tmp/err" >&2; return 1; }
        ;;
    bare)
        # As the plugin sends them: the two keys, then the password, on stdin;
        # a constant sh script puts the keys in restic's environment.
        out=$(printf '%s\n%s\n%s\n' "$s3_ak" "$s3_sk" "$rb_password" | ssh -F "$BENCH_SSH_CONFIG" hypervisor \
            "sh -c 'IFS= read -r AWS_ACCESS_KEY_ID && IFS= read -r AWS_SECRET_ACCESS_KEY && export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY && exec \"\$@\"' oneds-s3 restic --repo=$s3_url/bare-$id backup --force --json --tag=one-$id $bk/disk.0.0 $bk/disk.1.0 $bk/vm.xml" \
            2>"$rb_tmp/err" | tail -n 1) || { cat "$rb_tmp/err" >&2; return 1; }
        ;;
    esac
    t1=$EPOCHREALTIME
    [ -n "$out" ] || { echo "s3 $v: no output" >&2; cat "$rb_tmp/err" >&2; return 1; }
    run_secs=$("$stats" elapsed "$t0" "$t1")
}

# s3_check_backups ID: both repositories of the run hold one snapshot of the
# VM's three files.
s3_check_backups() {
    local repo n
    for repo in "$s3_url/$1" "$s3_url/bare-$1"; do
        n=$(s3_restic "$repo" snapshots --json | jq '[.[] | select((.paths | length) == 3)] | length')
        [ "$n" = 1 ] || { echo "s3: $repo holds $n snapshots of the VM, not 1" >&2; return 1; }
    done
}

# s3_download_run VARIANT DIR: one download of the chain into DIR/VARIANT.img,
# timed into run_secs.
s3_download_run() {
    local v=$1 d=$2 t0 t1
    rm -f "$d/$v.img"
    t0=$EPOCHREALTIME
    case $v in
    ours)
        printf '%s' "$rb_ds_xml" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
            restic downloader --stdout "$dl_url" >"$d/ours.img" 2>"$d/err" || { cat "$d/err" >&2; return 1; }
        ;;
    bare)
        AWS_ACCESS_KEY_ID=$s3_ak AWS_SECRET_ACCESS_KEY=$s3_sk RESTIC_PASSWORD=$rb_password \
            bash -c "$dl_script" >"$d/bare.img" 2>"$d/err" || { cat "$d/err" >&2; return 1; }
        ;;
    esac
    t1=$EPOCHREALTIME
    run_secs=$("$stats" elapsed "$t0" "$t1")
}

report_restic_s3() {
    local t raw=$runs/restic_s3.csv csv=$results/restic_s3.csv op start stop
    local -A cell=()
    t=$(mktemp -d)
    csv_header "$csv" "Case 7: S3 (Ceph RADOS Gateway), ours / bare restic (lower is better)"
    for op in backup download; do
        "$stats" select "$raw" seconds op="$op" variant=ours >"$t/$op.ours"
        "$stats" select "$raw" seconds op="$op" variant=bare >"$t/$op.bare"
        "$stats" ratios "$t/$op.ours" "$t/$op.bare" >"$t/$op.ratio"
        cell[$op.ours]=$("$stats" cell "$t/$op.ours")
        cell[$op.bare]=$("$stats" cell "$t/$op.bare")
        cell[$op.ratio]=$("$stats" cell "$t/$op.ratio")
    done
    csv_row "$csv" "backup $(size_label "$s3_mib") VM" ours_vs_bare ratio "$restic_repeat" lower 1 "$t/backup.ratio"
    csv_row "$csv" "download 4 increments" ours_vs_bare ratio "$restic_repeat" lower 1 "$t/download.ratio"
    for op in backup download; do
        csv_row "$csv" "$op ours" wall s "$restic_repeat" lower 0 "$t/$op.ours"
        csv_row "$csv" "$op bare" wall s "$restic_repeat" lower 0 "$t/$op.bare"
    done
    read -r start stop <"$runs/restic_s3_fixture.txt"
    render restic_s3 size="$(size_label "$s3_mib")" base_mib="$download_base_mib" inc_mib="$download_inc_mib" \
        repeat="$restic_repeat" warmup="$warmup" start_secs="$start" stop_secs="$stop" \
        backup_ours="${cell[backup.ours]}" backup_bare="${cell[backup.bare]}" backup_ratio="${cell[backup.ratio]}" \
        download_ours="${cell[download.ours]}" download_bare="${cell[download.bare]}" \
        download_ratio="${cell[download.ratio]}"
    rm -rf -- "$t"
}

# ---- report -----------------------------------------------------------------------

# machine_section: the head of RESULTS.md (bench/cases/machine.md), the machine
# and the moment of this run, as runs/machine.md.
machine_section() {
    local model mem_kib ram_gib commit restic_version compiler
    model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
    mem_kib=$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/meminfo)
    ram_gib=$("$stats" mebi "${mem_kib:-0}")
    commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
    # The run's own output does not count as a change.
    if [ -n "$(git -C "$root" status --porcelain -- . ':!bench/results' ':!bench/RESULTS.md' ':!bench/results.svg' 2>/dev/null)" ]; then
        commit="$commit (with uncommitted changes)"
    fi
    restic_version=$(restic version 2>/dev/null | head -n 1 || true)
    compiler=$(c++ --version 2>/dev/null | head -n 1 || true)
    "$stats" render "$bench_dir/cases/machine.md" cpus="$(nproc)" cpu_model="${model:-unknown}" ram_gib="$ram_gib" \
        kernel="$(uname -sr)" load="$load_at_start" date="$(date -u '+%Y-%m-%d %H:%M UTC')" commit="$commit" \
        restic="${restic_version:-not installed}" compiler="${compiler:-unknown}" >"$runs/machine.md"
}

# write_report [chart]: RESULTS.md, runs/machine.md and every case's section;
# with "chart" also the chart.
write_report() {
    local f csvs=()
    {
        cat -- "$runs/machine.md"
        for f in "$results"/*.md; do
            [ -e "$f" ] || continue
            echo
            cat -- "$f"
        done
        if [ -f "$bench_dir/analysis.md" ]; then
            echo
            cat -- "$bench_dir/analysis.md"
        fi
    } >"$bench_dir/RESULTS.md"
    [ "${1:-}" = chart ] || return 0
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
    local measure=1 cases c
    if [ "${1:-}" = --report-only ]; then
        measure=0
        shift
    fi
    cases=("$@")
    [ ${#cases[@]} -gt 0 ] || cases=("${all_cases[@]}")
    for c in "${cases[@]}"; do
        declare -F "case_$c" >/dev/null || { say "no such case: $c (cases: ${all_cases[*]})"; exit 2; }
    done
    if ((measure)); then
        build_release mad_bench bench_chart bench_stats one_ds_host one_ds_restic ceph_gateway
        load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
    else
        [ -f "$runs/machine.md" ] || { say "no $runs/machine.md: measure first (without --report-only)"; exit 2; }
        build_release bench_stats
    fi
    mkdir -p "$runs"
    for c in "${cases[@]}"; do
        if ((measure)); then
            say "case $c"
            "case_$c"
        fi
        "report_$c"
    done
    if ((measure)); then
        machine_section
        write_report chart
        say "wrote $bench_dir/RESULTS.md and $bench_dir/results.svg"
    else
        write_report
        say "wrote $bench_dir/RESULTS.md"
    fi
}

main "$@"
