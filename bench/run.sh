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
#
# This script runs the cases and collects each run's samples into files (one
# number a line); every figure made of them (medians, ranges, ratios,
# percentiles, the tables' number format) is bench_stats's (bench/stats.hpp).
set -euo pipefail

bench_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname -- "$bench_dir")
build=${ONEDS_BENCH_BUILD_DIR:-$root/build-bench/release}
results=$bench_dir/results
stats=$build/bin/bench_stats
requests=${ONEDS_BENCH_REQUESTS:-10000}
window=${ONEDS_BENCH_WINDOW:-15}
threads=${ONEDS_BENCH_THREADS:-15}
repeat=${ONEDS_BENCH_REPEAT:-5}
warmup=${ONEDS_BENCH_WARMUP:-1}
all_cases=(mad_monitor restic_backup restic_monitor restic_download restic_concurrency profile)
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

# shellcheck source=bench/sshd_env.sh
. "$bench_dir/sshd_env.sh"
# shellcheck source=bench/restic_lib.sh
. "$bench_dir/restic_lib.sh"

say() { printf 'bench: %s\n' "$*" >&2; }

# csv_row CSV CASE METRIC UNIT RUNS BETTER PLOT SAMPLES: appends the summary row
# "CASE,METRIC,UNIT,median,min,max,RUNS,BETTER,PLOT" of the SAMPLES file.
csv_row() {
    local figures
    figures=$("$stats" csv "$8")
    echo "$2,$3,$4,$figures,$5,$6,$7" >>"$1"
}

build_release() {
    say "building in $build (Release)"
    # Warnings do not change the code; a compiler's false positive under -O3
    # must not stop a benchmark. The benchmarks need no test (bench/ builds
    # the test plugin itself).
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DONEDS_WARNINGS_AS_ERRORS=OFF \
        -DONEDS_BUILD_TESTS=OFF >/dev/null
    cmake --build "$build" -j"$(nproc)" --target mad_bench bench_chart bench_stats one_ds_host one_ds_restic >/dev/null
}

# ---- cases ----------------------------------------------------------------------

# MAD mode: MONITOR requests through one_ds_host and the test plugin, with a
# peer window and all at once (docs/architecture.md#performance-targets: 10,000 with 15 in flight).
case_mad_monitor() {
    local table count
    count=$("$stats" thousands "$requests")
    table=$("$build/bin/mad_bench" --requests "$requests" --window "$window" --threads "$threads" \
        --repeat "$repeat" --warmup "$warmup" \
        --title "MAD mode: $count MONITOR requests through one_ds_host (test plugin)" \
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
        echo "Goal (docs/architecture.md#performance-targets): no reply lost or duplicated; peak RSS of the host with the plugin"
        echo "loaded <= 30 MiB."
    } >"$results/mad_monitor.md"
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
# one_ds_host per ours run.
case_restic_backup() {
    rb_setup
    local raw=$results/runs/restic_backup.csv csv=$results/restic_backup.csv md=$results/restic_backup.md
    local vm=7 cell size kind n r v i t0 t1 seed repo bk out label variants conf mdrows=() made=
    local shared_conf=$rb_tmp/one_ds_host.shared.conf
    sed "s|^\[plugin.restic\]\$|[plugin.restic]\nssh_control_dir = $rb_tmp/mux\nssh_control_persist = 60|" \
        "$rb_conf" >"$shared_conf"
    echo "size_mib,data,snapshots,run,variant,seconds" >"$raw"
    {
        echo "# Case 1: backup of a 2-disk VM, ratios (lower is better for ours)"
        echo "case,metric,unit,median,min,max,runs,better,plot"
    } >"$csv"
    local host_cost=$rb_tmp/host_cost
    : >"$host_cost"; : >"$host_cost.restic"
    for cell in $restic_cells; do
        IFS=: read -r size kind n <<<"$cell"
        if ((size >= 1024)); then label="$((size / 1024)) GiB"; else label="$size MiB"; fi
        if [ "$made" != "$size:$kind" ]; then
            say "  backup: making a ${label} VM ($kind)"
            rb_make_vm "$vm" "$size" "$kind"
            made=$size:$kind
        fi
        bk=$rb_tmp/sys/0/$vm/backup
        repo=$rb_base/$vm
        variants="ours bare stock"
        ((size == 1)) && variants="ours warm bare stock"
        say "  backup: ${label} VM ($kind), $n snapshots in the repository"
        seed=$rb_tmp/seed
        rm -rf -- "$seed"
        RESTIC_PASSWORD=$rb_password restic --repo="$seed" init >/dev/null 2>&1
        for ((i = 0; i < n; i++)); do
            RESTIC_PASSWORD=$rb_password restic --repo="$seed" backup --force --tag="one-$vm" \
                "$bk/disk.0.0" "$bk/disk.1.0" "$bk/vm.xml" >/dev/null 2>&1
        done
        local d=$rb_tmp/t_${size}_${kind}_$n
        mkdir -p "$d"
        : >"$d/ours"; : >"$d/warm"; : >"$d/bare"; : >"$d/stock"
        # The 1 GiB cells skip the warm-up run (15-minute budget): their files are
        # in the page cache from being written, restic and ssh from the cells before.
        local cell_warmup=$warmup
        ((size >= 1024)) && cell_warmup=0
        for ((r = 0; r < cell_warmup + restic_repeat; r++)); do
            for v in $variants; do
                rm -rf -- "$repo"
                cp -a -- "$seed" "$repo"
                t0=$EPOCHREALTIME
                case $v in
                ours | warm)
                    conf=$rb_conf
                    [ "$v" = warm ] && conf=$shared_conf
                    out=$(rb_doc_for "$vm" | /usr/bin/time -f '%M %U %S' -o "$d/time" \
                        "$build/bin/one_ds_host" action -c "$conf" --plugin "restic=$rb_plugin" restic backup \
                        "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$vm" - "$vm" 0 2>"$d/err") ||
                        { cat "$d/err" >&2; return 1; }
                    ;;
                bare)
                    # restic reads the password from its stdin (not a terminal), as the plugin sends it.
                    out=$(ssh -F "$BENCH_SSH_CONFIG" hypervisor \
                        "/usr/bin/time -f '%M %U %S' -o $d/rtime restic '$rb_sftp_opt' --repo=sftp:$BENCH_SSH_USER@backupserver:$repo backup --force --json --tag=one-$vm $bk/disk.0.0 $bk/disk.1.0 $bk/vm.xml" \
                        <<<"$rb_password" 2>"$d/err" | tail -n 1) || { cat "$d/err" >&2; return 1; }
                    ;;
                stock)
                    out=$(RESTIC_PASSWORD=$rb_password "$bench_dir/stock_sequence.sh" backup "$BENCH_SSH_CONFIG" \
                        "$BENCH_SSH_USER" backupserver "$repo" hypervisor "$rb_tmp/sys/0/$vm" "$vm" 2>"$d/err") ||
                        { cat "$d/err" >&2; return 1; }
                    ;;
                esac
                t1=$EPOCHREALTIME
                [ -n "$out" ] || { echo "$v: no output" >&2; cat "$d/err" >&2; return 1; }
                if ((r >= cell_warmup)); then
                    "$stats" elapsed "$t0" "$t1" >>"$d/$v"
                    echo "$size,$kind,$n,$((r - cell_warmup + 1)),$v,$(tail -n 1 "$d/$v")" >>"$raw"
                    if [ "$v" = ours ]; then
                        echo "${label// /_}_$kind $n $(cat "$d/time") $(tail -n 1 "$d/$v")" >>"$host_cost"
                    elif [ "$v" = bare ]; then
                        echo "${label// /_}_$kind $n $(tail -n 1 "$d/rtime") $(tail -n 1 "$d/$v")" >>"$host_cost.restic"
                    fi
                fi
            done
        done
        # The warm variant's master: gone before the next cell.
        ssh -F "$BENCH_SSH_CONFIG" -o "ControlPath=$rb_tmp/mux/%C" -O exit hypervisor >/dev/null 2>&1 || true
        local name="$label $kind $n snaps" warm_cell="–" warm_ratio="–"
        # Per-run ratios, the runs paired in the order measured.
        "$stats" ratios "$d/ours" "$d/bare" >"$d/ours_bare"
        "$stats" ratios "$d/ours" "$d/stock" >"$d/ours_stock"
        csv_row "$csv" "$name" ours_vs_bare ratio "$restic_repeat" lower 1 "$d/ours_bare"
        csv_row "$csv" "$name" ours_vs_stock ratio "$restic_repeat" lower 1 "$d/ours_stock"
        if [ -s "$d/warm" ]; then
            "$stats" ratios "$d/warm" "$d/stock" >"$d/warm_stock"
            warm_cell=$("$stats" cell "$d/warm"); warm_ratio=$("$stats" cell "$d/warm_stock")
            csv_row "$csv" "$name" warm_ssh_vs_stock ratio "$restic_repeat" lower 1 "$d/warm_stock"
        fi
        mdrows+=("| $label | $kind | $n | $("$stats" cell "$d/ours") | $warm_cell | $("$stats" cell "$d/bare") | $("$stats" cell "$d/stock") | $("$stats" cell "$d/ours_bare") | $("$stats" cell "$d/ours_stock") | $warm_ratio |")
        for v in ours warm bare stock; do
            [ -s "$d/$v" ] || continue
            csv_row "$csv" "$name" "${v}_wall" s "$restic_repeat" lower 0 "$d/$v"
        done
    done
    cp "$host_cost" "$results/runs/restic_host_cost.txt"
    cp "$host_cost.restic" "$results/runs/restic_child_cost.txt"
    {
        echo "## Case 1: backup of a 2-disk VM (ours vs. bare restic vs. stock sequence)"
        echo
        echo "A VM with two qcow2 disks (half the size each; *random* data, or *halfzero*: the second"
        echo "half of each disk zeros, which qemu-img leaves unallocated) and vm.xml, backed up over"
        echo "SFTP to the loopback sshd (\"backupserver\"; the files are read on \"hypervisor\", the same"
        echo "sshd). The repository is restored from a seeded copy before every run (not timed), so"
        echo "every run sees exactly *snapshots* earlier snapshots of the same VM (0 = freshly"
        echo "initialised). *ours*: \`one_ds_host action restic backup hypervisor:<vm_dir> 0:1 one-7 - 7 0\`"
        echo "with the datastore XML on stdin and the default configuration (its ssh connection is"
        echo "its own, closed when it ends). *ours, warm ssh* (1 MiB only: the fixed cost): the same with"
        echo "\`ssh_control_dir\` set, so the ssh master the previous run left (ControlPersist, as"
        echo "OpenNebula's drivers keep theirs in /run/one/ssh-socks) carries the run; that is the case"
        echo "for every backup after the first of a host within \`ssh_control_persist\`. *bare*: the"
        echo "\`restic backup --force --json --tag=one-7\` our plugin runs, typed by hand (one ssh to"
        echo "the hypervisor running it). *stock*: \`bench/stock_sequence.sh backup\` (front-end"
        echo "\`restic stats || restic init\`, ssh to the hypervisor running the bash script with"
        echo "\`restic backup\` and jq, parsing). Wall seconds and the per-run ratios; median (min–max)"
        echo "of $restic_repeat runs after $warmup warm-up run (none for 1 GiB: their files are in the page cache"
        echo "from being written), the variants alternated in one loop. Not every size is measured at"
        echo "every repository size: the snapshot counts at 1 MiB, where the fixed cost shows; the whole"
        echo "matrix would not fit the 15-minute budget."
        echo
        echo "| VM | data | snapshots | ours s | ours, warm ssh s | bare restic s | stock sequence s | ours / bare | ours / stock | warm ssh / stock |"
        echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        printf '%s\n' "${mdrows[@]}"
        echo
        echo "Targets (issue 5): ours / bare <= 1.05; ours / stock <= 0.5 for the 1 MiB VM, and ours flat"
        echo "from 0 to 50 snapshots."
    } >"$md"
    case6_report "$host_cost" "$host_cost.restic"
    rb_teardown
}

# Case 2 (issue 5): monitor latency. *stock*: bench/stock_sequence.sh monitor
# (ssh running mkdir -p, the version check, df -PBM). *ours, first call*: a
# fresh `one_ds_host action restic monitor 100` (process start, plugin load,
# SSH + SFTP session set-up, statvfs). *ours, MAD warm*: one MAD-mode host
# (started as oned starts it, driven over a coproc) answering MONITOR after
# MONITOR through its persistent SFTP session; its first MONITOR is reported
# apart. Per round: stock, ours first call, then a fresh MAD host.
case_restic_monitor() {
    rb_setup
    local raw=$results/runs/restic_monitor.csv csv=$results/restic_monitor.csv md=$results/restic_monitor.md
    local d=$rb_tmp/mon r i t0 t1 out doc64 line warm_all=$rb_tmp/mon/warm_all
    mkdir -p "$d"
    : >"$d/stock"; : >"$d/first"; : >"$d/madfirst"; : >"$d/warm"; : >"$warm_all"
    echo "run,variant,seconds" >"$raw"
    doc64=$(printf '<DS_DRIVER_ACTION_DATA>%s</DS_DRIVER_ACTION_DATA>' "$rb_ds_xml" | base64 -w 0)
    for ((r = 0; r < warmup + restic_repeat; r++)); do
        t0=$EPOCHREALTIME
        out=$("$bench_dir/stock_sequence.sh" monitor "$BENCH_SSH_CONFIG" "$BENCH_SSH_USER" backupserver "$rb_base")
        t1=$EPOCHREALTIME
        [[ $out == *FREE_MB=* ]] || { echo "stock monitor: $out" >&2; return 1; }
        ((r < warmup)) || "$stats" elapsed "$t0" "$t1" >>"$d/stock"

        t0=$EPOCHREALTIME
        out=$(printf '%s' "$doc64" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
            restic monitor 100 2>"$d/err") || { cat "$d/err" >&2; return 1; }
        t1=$EPOCHREALTIME
        [[ $out == *FREE_MB=* ]] || { echo "ours monitor: $out" >&2; cat "$d/err" >&2; return 1; }
        ((r < warmup)) || "$stats" elapsed "$t0" "$t1" >>"$d/first"

        # MAD mode: oned passes ARGUMENTS as one argv element.
        coproc MADHOST { exec "$build/bin/one_ds_host" "-t 15 -d restic --plugin restic=$rb_plugin -c $rb_conf" 2>/dev/null; }
        local mad_pid=$MADHOST_PID
        printf 'INIT\n' >&"${MADHOST[1]}"
        read -r -t 10 line <&"${MADHOST[0]}" || { echo "MAD host: no INIT reply" >&2; return 1; }
        [[ $line == "INIT SUCCESS"* ]] || { echo "MAD host: $line" >&2; return 1; }
        : >"$d/warm_run"
        for ((i = 0; i <= monitor_calls; i++)); do
            t0=$EPOCHREALTIME
            printf 'MONITOR  %d %s\n' "$i" "$doc64" >&"${MADHOST[1]}"
            read -r -t 30 line <&"${MADHOST[0]}" || { echo "MAD host: no MONITOR reply" >&2; return 1; }
            t1=$EPOCHREALTIME
            [[ $line == "MONITOR SUCCESS $i "* ]] || { echo "MAD host: $line" >&2; return 1; }
            if ((i == 0)); then
                ((r < warmup)) || "$stats" elapsed "$t0" "$t1" >>"$d/madfirst"
            else
                "$stats" elapsed "$t0" "$t1" >>"$d/warm_run"
            fi
        done
        printf 'FINALIZE\n' >&"${MADHOST[1]}"
        exec {MADHOST[1]}>&-
        wait "$mad_pid" 2>/dev/null || true
        if ((r >= warmup)); then
            "$stats" median "$d/warm_run" >>"$d/warm"
            cat "$d/warm_run" >>"$warm_all"
            for v in stock first madfirst warm; do echo "$((r - warmup + 1)),$v,$(tail -n 1 "$d/$v")" >>"$raw"; done
        fi
    done
    # speed-ups: stock / ours per round
    for v in warm first madfirst; do "$stats" ratios "$d/stock" "$d/$v" >"$d/speedup_$v"; done
    {
        echo "# Case 2: monitor, speed-up stock / ours (higher is better)"
        echo "case,metric,unit,median,min,max,runs,better,plot"
    } >"$csv"
    csv_row "$csv" "MAD warm" stock_over_ours x "$restic_repeat" higher 1 "$d/speedup_warm"
    csv_row "$csv" "MAD first MONITOR" stock_over_ours x "$restic_repeat" higher 1 "$d/speedup_madfirst"
    csv_row "$csv" "action mode (fresh process)" stock_over_ours x "$restic_repeat" higher 1 "$d/speedup_first"
    for v in stock first madfirst warm; do csv_row "$csv" "$v" latency s "$restic_repeat" lower 0 "$d/$v"; done
    local ms_stock ms_first ms_madfirst ms_warm up_first up_madfirst up_warm warm_median warm_p99
    ms_stock=$("$stats" cell-ms "$d/stock"); ms_first=$("$stats" cell-ms "$d/first")
    ms_madfirst=$("$stats" cell-ms "$d/madfirst"); ms_warm=$("$stats" cell-ms "$d/warm")
    up_first=$("$stats" cell "$d/speedup_first"); up_madfirst=$("$stats" cell "$d/speedup_madfirst")
    up_warm=$("$stats" cell "$d/speedup_warm")
    warm_median=$("$stats" ms "$("$stats" median "$warm_all")")
    warm_p99=$("$stats" ms "$("$stats" percentile 99 "$warm_all")")
    {
        echo "## Case 2: monitor latency (ours vs. stock sequence)"
        echo
        echo "*stock*: \`bench/stock_sequence.sh monitor\` (one ssh running \`mkdir -p\`, the version check and"
        echo "\`df -PBM\`; no Ruby start, no remotes sync). *ours, action mode*: a fresh"
        echo "\`one_ds_host action restic monitor 100\` (process start, plugin load, SSH + SFTP set-up,"
        echo "statvfs). *ours, MAD*: one MAD-mode \`one_ds_host\` per round, driven over pipes as oned"
        echo "does; its first MONITOR opens the SFTP session, the next $monitor_calls reuse it (*warm*: the"
        echo "median of those $monitor_calls per round). Latency: request written to reply read. Median"
        echo "(min–max) over $restic_repeat rounds after $warmup warm-up round; stock, action mode and MAD"
        echo "alternate in each round."
        echo
        echo "| variant | latency ms | speed-up stock / ours |"
        echo "|---|---:|---:|"
        echo "| stock sequence | $ms_stock | 1 |"
        echo "| ours, action mode (fresh process) | $ms_first | $up_first |"
        echo "| ours, MAD, first MONITOR | $ms_madfirst | $up_madfirst |"
        echo "| ours, MAD, warm | $ms_warm | $up_warm |"
        echo
        echo "Warm MONITOR over all $((restic_repeat * monitor_calls)) calls: median $warm_median ms, p99 $warm_p99 ms."
        echo "Target (issue 5): MAD warm >= 100x faster than the stock sequence."
    } >"$md"
    rb_teardown
}

# Case 3 (issue 5): download of a 4-increment chain (one disk, stock layout:
# increment 0 a full qcow2, increments 1-3 detached qcow2 overlays, one
# `restic backup` each, as docs/stock-driver.md#backup describes them). *ours*: `one_ds_host action
# restic downloader --stdout <restic:// URL>` with the datastore XML on stdin
# (restic restore of the 4 increments in parallel on the backup server,
# qemu-img rebase -u + convert there, cat back). *bare*: the same steps typed
# by hand in one ssh to the backup server: `restic dump` of each increment in
# turn, qemu-img rebase -u and convert, cat. Both write the image to a local
# file; the two images are compared after the first run.
case_restic_download() {
    rb_setup
    local raw=$results/runs/restic_download.csv csv=$results/restic_download.csv md=$results/restic_download.md
    local vm=9 bk repo k r v t0 t1 d=$rb_tmp/dl ids=() url chain="" pat
    mkdir -p "$d"
    bk=$rb_tmp/sys/0/$vm/backup
    repo=$rb_base/$vm
    mkdir -p "$bk"
    printf '<VM><ID>%s</ID></VM>' "$vm" | base64 -w 60 >"$bk/vm.xml"
    RESTIC_PASSWORD=$rb_password restic --repo="$repo" init >/dev/null 2>&1
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
    for k in 0 1 2 3; do
        local sid
        sid=$(RESTIC_PASSWORD=$rb_password restic --repo="$repo" backup --force --json --tag="one-$vm" \
            "$bk/disk.0.$k" "$bk/vm.xml" 2>/dev/null | jq -r 'select(.message_type == "summary") | .snapshot_id')
        ids+=("${sid:0:8}")
        chain+="${chain:+,}$k:${sid:0:8}"
    done
    rm -f "$d/raw" "$d/pat"
    url="restic://100//$chain$bk/disk.0.3"
    : >"$d/ours"; : >"$d/bare"
    echo "run,variant,seconds" >"$raw"
    local script
    # The password arrives on stdin (never on a command line), as the plugin sends it.
    script="set -e -o pipefail; IFS= read -r RESTIC_PASSWORD; export RESTIC_PASSWORD; w=\$(mktemp -d)
for k in 0 1 2 3; do restic --repo='$repo' dump --quiet \${ids[k]} '$bk'/disk.0.\$k > \$w/disk.0.\$k; done
for k in 1 2 3; do qemu-img rebase -u -F qcow2 -b \$w/disk.0.\$((k - 1)) \$w/disk.0.\$k; done
qemu-img convert -O qcow2 \$w/disk.0.3 \$w/image; cat \$w/image; rm -rf \$w"
    script="ids=(${ids[*]}); $script"
    for ((r = 0; r < warmup + restic_repeat; r++)); do
        for v in ours bare; do
            rm -f "$d/$v.img"
            t0=$EPOCHREALTIME
            case $v in
            ours)
                printf '%s' "$rb_ds_xml" | "$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" \
                    restic downloader --stdout "$url" >"$d/ours.img" 2>"$d/err" || { cat "$d/err" >&2; return 1; }
                ;;
            bare)
                ssh -F "$BENCH_SSH_CONFIG" backupserver bash -c "$(printf '%q' "$script")" <<<"$rb_password" \
                    >"$d/bare.img" 2>"$d/err" ||
                    { cat "$d/err" >&2; return 1; }
                ;;
            esac
            t1=$EPOCHREALTIME
            if ((r >= warmup)); then
                "$stats" elapsed "$t0" "$t1" >>"$d/$v"
                echo "$((r - warmup + 1)),$v,$(tail -n 1 "$d/$v")" >>"$raw"
            fi
        done
        if ((r == 0)); then
            qemu-img compare -q "$d/ours.img" "$d/expect.raw" || { echo "ours: the image differs" >&2; return 1; }
            qemu-img compare -q "$d/bare.img" "$d/expect.raw" || { echo "bare: the image differs" >&2; return 1; }
        fi
    done
    "$stats" ratios "$d/ours" "$d/bare" >"$d/ours_bare"
    local img_mib c_ours c_bare c_ratio
    img_mib=$("$stats" mebi "$(stat -c %s "$d/ours.img")")
    {
        echo "# Case 3: download of a 4-increment chain, ours / bare (lower is better)"
        echo "case,metric,unit,median,min,max,runs,better,plot"
    } >"$csv"
    csv_row "$csv" "4 increments" ours_vs_bare_dump ratio "$restic_repeat" lower 1 "$d/ours_bare"
    csv_row "$csv" ours wall s "$restic_repeat" lower 0 "$d/ours"
    csv_row "$csv" "bare dump" wall s "$restic_repeat" lower 0 "$d/bare"
    c_ours=$("$stats" cell "$d/ours"); c_bare=$("$stats" cell "$d/bare"); c_ratio=$("$stats" cell "$d/ours_bare")
    {
        echo "## Case 3: download of a 4-increment chain (ours vs. bare restic dump + qemu-img)"
        echo
        echo "One disk, written as the stock driver writes increments: a full qcow2 (${download_base_mib} MiB random"
        echo "data) and 3 detached qcow2 overlays (${download_inc_mib} MiB random each), one \`restic backup\` per"
        echo "increment. *ours*: \`one_ds_host action restic downloader --stdout restic://100//0:…,3:…/…/disk.0.3\`"
        echo "with the datastore XML on stdin (no oned): on the backup server, over ssh, \`restic snapshots\`,"
        echo "the 4 increments with \`restic restore\` in parallel, \`qemu-img rebase -u\` + \`convert\`, \`cat\`."
        echo "*bare*: the same work typed by hand in ONE ssh to the backup server: \`restic dump\` of each"
        echo "increment in turn, \`qemu-img rebase -u\` and \`convert\`, \`cat\`. Both images ($img_mib MiB qcow2) are"
        echo "checked against the expected content after the first round. Median (min–max) of $restic_repeat runs"
        echo "after $warmup warm-up run, alternated."
        echo
        echo "| variant | wall s | ours / bare |"
        echo "|---|---:|---:|"
        echo "| ours (downloader --stdout) | $c_ours | $c_ratio |"
        echo "| bare restic dump + qemu-img, one ssh | $c_bare | 1 |"
        echo
        echo "Target (issue 5): faster than bare \`restic dump\` on restic 0.14 (ratio < 1)."
    } >"$md"
    rb_teardown
}

# Case 4 (issue 5): N VMs backed up at once. oned has no BACKUP message on
# the MAD channel (docs/oned-protocol.md#backup-through-the-vm-driver: backups run the datastore's `backup`
# action, one process each), so "at once" is N concurrent action-mode
# `one_ds_host` processes, vs. N concurrent stock sequences. Each VM has its
# own freshly initialised repository (reset before every run, not timed).
# Total MiB/s = N x VM size / wall time of the slowest.
case_restic_concurrency() {
    rb_setup
    local raw=$results/runs/restic_concurrency.csv csv=$results/restic_concurrency.csv md=$results/restic_concurrency.md
    local c r v t0 t1 vm d=$rb_tmp/cc mdrows=() pids=() x secs
    mkdir -p "$d"
    echo "vms,run,variant,seconds" >"$raw"
    {
        echo "# Case 4: N concurrent backups, total MiB/s ours / stock (higher is better)"
        echo "case,metric,unit,median,min,max,runs,better,plot"
    } >"$csv"
    RESTIC_PASSWORD=$rb_password restic --repo="$d/seed" init >/dev/null 2>&1
    for ((vm = 20; vm < 20 + ${concurrency_levels##* }; vm++)); do rb_make_vm "$vm" "$concurrency_mib"; done
    for c in $concurrency_levels; do
        say "  concurrency: $c VMs of $concurrency_mib MiB at once"
        : >"$d/ours.$c"; : >"$d/stock.$c"
        for ((r = 0; r < warmup + concurrency_repeat; r++)); do
            for v in ours stock; do
                for ((vm = 20; vm < 20 + c; vm++)); do rm -rf -- "$rb_base/$vm"; cp -a -- "$d/seed" "$rb_base/$vm"; done
                pids=()
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
                if ((r >= warmup)); then
                    "$stats" rate "$((c * concurrency_mib))" "$t0" "$t1" >>"$d/$v.$c"
                    secs=$("$stats" elapsed "$t0" "$t1")
                    echo "$c,$((r - warmup + 1)),$v,$secs" >>"$raw"
                fi
            done
        done
        "$stats" ratios "$d/ours.$c" "$d/stock.$c" >"$d/ratio.$c"
        mdrows+=("| $c | $("$stats" cell "$d/ours.$c") | $("$stats" cell "$d/stock.$c") | $("$stats" cell "$d/ratio.$c") |")
        csv_row "$csv" "$c VMs" ours_over_stock_MiBps ratio "$concurrency_repeat" higher 1 "$d/ratio.$c"
        csv_row "$csv" "$c VMs" ours_MiBps MiB/s "$concurrency_repeat" higher 0 "$d/ours.$c"
        csv_row "$csv" "$c VMs" stock_MiBps MiB/s "$concurrency_repeat" higher 0 "$d/stock.$c"
    done
    {
        echo "## Case 4: concurrent backups (ours vs. stock sequence)"
        echo
        echo "N VMs of $concurrency_mib MiB (2 random qcow2 disks) backed up at once, each into its own freshly"
        echo "initialised repository over SFTP. oned sends no BACKUP on the MAD channel (it runs the"
        echo "\`backup\` action, one process per backup), so *ours* is N concurrent \`one_ds_host action restic"
        echo "backup\` processes and *stock* N concurrent \`bench/stock_sequence.sh backup\`. Total MiB/s ="
        echo "N x $concurrency_mib MiB / wall time until the last one ends; median (min–max) of $concurrency_repeat runs"
        echo "after $warmup warm-up run (3, not 5, to fit the 15-minute budget), ours and stock alternated."
        echo
        echo "| VMs at once | ours MiB/s | stock MiB/s | ours / stock |"
        echo "|---:|---:|---:|---:|"
        printf '%s\n' "${mdrows[@]}"
    } >"$md"
    rb_teardown
}

# Case 6: the cost of one_ds_host itself during case 1's "ours" runs. GNU time
# on one_ds_host: its peak RSS (%M: the largest of the host and the children it
# waited for, here the ssh clients; restic itself runs under sshd on the
# "hypervisor") and CPU seconds (user+sys of the host and its ssh children).
# restic's own cost: the bare run measured the same way on the hypervisor side.
case6_report() {
    local f=$1 fr=$2 md=$results/restic_host_cost.md csv=$results/restic_host_cost.csv
    {
        echo "# Case 6: one_ds_host during a backup (host + its ssh children)"
        echo "case,metric,unit,median,min,max,runs,better,plot"
    } >"$csv"
    # The cells in the order measured: "<VM>_<data> <snapshots>" (the lines'
    # first two words).
    local mdrows=() cells=() key vmk n size kind name tmp
    local -A seen=()
    while read -r vmk n _; do
        [ -z "${seen[$vmk@$n]:-}" ] || continue
        seen[$vmk@$n]=1
        cells+=("$vmk@$n")
    done <"$f"
    tmp=$(mktemp -d)
    for key in "${cells[@]}"; do
        vmk=${key%@*} n=${key#*@}
        size=${vmk%_*} kind=${vmk##*_}
        size=${size//_/ }
        "$stats" cost rss "$f" "$vmk" "$n" >"$tmp/rss"
        "$stats" cost cpu "$f" "$vmk" "$n" >"$tmp/cpu"
        "$stats" cost rss "$fr" "$vmk" "$n" >"$tmp/rrss"
        "$stats" cost cpu "$fr" "$vmk" "$n" >"$tmp/rcpu"
        mdrows+=("| $size | $kind | $n | $("$stats" cell "$tmp/rss") | $("$stats" cell "$tmp/cpu") | $("$stats" cell "$tmp/rrss") | $("$stats" cell "$tmp/rcpu") |")
        name="$size $kind $n snaps"
        csv_row "$csv" "$name" restic_peak_rss MiB "$restic_repeat" lower 1 "$tmp/rrss"
        csv_row "$csv" "$name" restic_cpu s "$restic_repeat" lower 1 "$tmp/rcpu"
        csv_row "$csv" "$name" one_ds_host_peak_rss MiB "$restic_repeat" lower 1 "$tmp/rss"
        csv_row "$csv" "$name" one_ds_host_cpu s "$restic_repeat" lower 1 "$tmp/cpu"
    done
    rm -rf -- "$tmp"
    {
        echo "## Case 6: cost of one_ds_host during a backup"
        echo
        echo "GNU \`time\` around each *ours* run of case 1: peak RSS (the largest of \`one_ds_host\` and the"
        echo "ssh clients it started) and CPU seconds (user+sys of the host and those ssh clients)."
        echo "restic itself runs on the hypervisor side (under sshd), so it is not in these figures;"
        echo "the restic columns are GNU \`time\` around the same \`restic backup\` in the *bare* runs"
        echo "(run on the hypervisor side, alternated with ours in the same loop)."
        echo
        echo "| VM | data | snapshots | one_ds_host (+ssh) peak RSS MiB | one_ds_host (+ssh) CPU s | restic peak RSS MiB | restic CPU s |"
        echo "|---|---|---:|---:|---:|---:|---:|"
        printf '%s\n' "${mdrows[@]}"
    } >"$md"
}

# Profile (issue 5: where the time goes): one 1 MiB backup through
# one_ds_host, (a) as a timeline of the programs it starts (strace -f, execve
# and exit), (b) under callgrind (instructions of one_ds_host itself, its
# children not traced): where the host's own CPU goes.
case_profile() {
    rb_setup
    local vm=7 d=$rb_tmp/prof md=$results/profile.md
    mkdir -p "$d"
    rb_make_vm "$vm" 1
    RESTIC_PASSWORD=$rb_password restic --repo="$rb_base/$vm" init >/dev/null 2>&1
    local argv=("$build/bin/one_ds_host" action -c "$rb_conf" --plugin "restic=$rb_plugin" restic backup
        "hypervisor:$rb_tmp/sys/0/$vm" 0:1 "one-$vm" - "$vm" 0)
    rb_doc_for "$vm" | "${argv[@]}" >/dev/null 2>&1  # warm caches
    local timeline="not run (strace missing)" calls="not run (valgrind missing)"
    if command -v strace >/dev/null; then
        rb_doc_for "$vm" | strace -f -tt -s 4096 -e trace=execve,exit_group -o "$d/strace" "${argv[@]}" >/dev/null 2>&1
        timeline=$(awk '
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
            END { printf "| %.3f | one_ds_host ends |\n", last }' "$d/strace")
    fi
    if command -v valgrind >/dev/null; then
        rb_doc_for "$vm" | valgrind --tool=callgrind --callgrind-out-file="$d/callgrind.out" "${argv[@]}" >/dev/null 2>"$d/vg.err" || true
        calls=$(callgrind_annotate --inclusive=yes "$d/callgrind.out" 2>/dev/null | awk '
            /PROGRAM TOTALS/ { print "Total: " $1 " instructions (Ir) in one_ds_host and its threads."; print ""; print "| Ir (inclusive) | function |"; print "|---:|---|"; next }
            /^-+$/ { dashes++; next }
            dashes >= 3 && NF >= 2 && $1 != "Ir" && n < 14 { ir = $1; $1 = ""; sub(/^ +/, ""); sub(/ \[.*$/, ""); gsub(/\|/, "\\|"); if (length($0) > 110) $0 = substr($0, 1, 107) "..."; printf "| %s | `%s` |\n", ir, $0; n++ }')
    fi
    {
        echo "## Profile: one 1 MiB backup through one_ds_host"
        echo
        echo "Timeline (\`strace -f -tt -e trace=execve,exit_group\`, seconds from the host's start;"
        echo "strace slows every step a little):"
        echo
        echo "| t s | step |"
        echo "|---:|---|"
        echo "$timeline"
        echo
        echo "callgrind (\`valgrind --tool=callgrind\`, one_ds_host only: ssh and restic are children and"
        echo "not traced): instructions by function, inclusive."
        echo
        echo "$calls"
    } >"$md"
    rb_teardown
}

# ---- report -----------------------------------------------------------------------

machine_section() {
    local model mem_kib ram_gib commit restic_version compiler load
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
    load=$load_at_start
    cat <<EOF
# Benchmark results

Written by \`bench/run.sh\` (see README.md, "Benchmarks"); the chart is
[results.svg](results.svg), the numbers behind it are in \`results/\`.

| | |
|---|---|
| CPUs (nproc) | $(nproc) |
| CPU model | ${model:-unknown} |
| RAM | $ram_gib GiB |
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
        if [ -f "$bench_dir/analysis.md" ]; then
            echo
            cat -- "$bench_dir/analysis.md"
        fi
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
