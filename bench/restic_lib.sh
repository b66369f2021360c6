# bench/restic_lib.sh: sourced by bench/run.sh. Helpers of the restic cases
# (backup, monitor): a scratch "front-end + backup server + hypervisor" on one
# machine behind the loopback sshd of sshd_env.sh, wall-clock timing, and the
# summary statistics (median, min, max) written as results/<case>.csv rows.

# rb_setup: a scratch tree, the sshd, the datastore document and the host config.
rb_setup() {
    rb_tmp=$(mktemp -d)
    bench_sshd_start "$rb_tmp/sshd"
    rb_base=$rb_tmp/datastores/100
    mkdir -p "$rb_base" "$rb_tmp/locks"
    rb_password=bench-pw
    rb_doc=$rb_tmp/ds.xml
    rb_ds_xml="<DATASTORE><ID>100</ID><NAME>restic</NAME><DS_MAD>restic</DS_MAD><TM_MAD>-</TM_MAD><TYPE>3</TYPE><BASE_PATH>$rb_base</BASE_PATH><TEMPLATE><RESTIC_PASSWORD>$rb_password</RESTIC_PASSWORD><RESTIC_SFTP_SERVER>backupserver</RESTIC_SFTP_SERVER><RESTIC_SFTP_USER>$BENCH_SSH_USER</RESTIC_SFTP_USER></TEMPLATE></DATASTORE>"
    rb_conf=$rb_tmp/one_ds_host.conf
    cat >"$rb_conf" <<EOF
log_level = info
[plugin.restic]
ssh_config = $BENCH_SSH_CONFIG
datastore_conf = $rb_tmp/datastore.conf
lock_dir = $rb_tmp/locks
progress_interval = 0
EOF
    rb_plugin=$build/bin/libone_ds_restic.so
    trap rb_teardown EXIT
    rb_sftp_opt="--option=sftp.command=ssh -F $BENCH_SSH_CONFIG -o BatchMode=yes -l $BENCH_SSH_USER backupserver -s sftp"
}

rb_teardown() {
    trap - EXIT
    bench_sshd_stop
    rm -rf -- "$rb_tmp"
}

# rb_doc_for VM_ID: the DS_DRIVER_ACTION_DATA a backup gets on stdin.
rb_doc_for() {
    printf '<DS_DRIVER_ACTION_DATA>%s<VM><ID>%s</ID></VM></DS_DRIVER_ACTION_DATA>' "$rb_ds_xml" "$1"
}

# rb_make_vm VM_ID TOTAL_MIB [random|halfzero]: <sys>/<vm>/backup with disk.0.0
# and disk.1.0 (half the data each, qcow2 as the stock prebackup leaves them)
# and a base64 vm.xml. halfzero: each disk's second half is zeros, which
# qemu-img leaves unallocated (so the files hold half the data).
rb_make_vm() {
    local vm=$1 mib=$2 kind=${3:-random} dir d half
    dir=$rb_tmp/sys/0/$vm/backup
    rm -rf -- "$dir"
    mkdir -p "$dir"
    half=$((mib * 1024 / 2))
    for d in 0 1; do
        if [ "$kind" = halfzero ]; then
            { head -c $((half / 2 * 1024)) /dev/urandom; head -c $((half / 2 * 1024)) /dev/zero; } >"$dir/raw"
        else
            head -c $((half * 1024)) /dev/urandom >"$dir/raw"
        fi
        qemu-img convert -q -f raw -O qcow2 "$dir/raw" "$dir/disk.$d.0"
    done
    rm -f "$dir/raw"
    printf '<VM><ID>%s</ID><NAME>vm%s</NAME><TEMPLATE><DISK><DISK_ID>0</DISK_ID></DISK><DISK><DISK_ID>1</DISK_ID></DISK></TEMPLATE></VM>' \
        "$vm" "$vm" | base64 -w 60 >"$dir/vm.xml"
}

# rb_now: seconds since the epoch with microseconds.
rb_now() { echo "${EPOCHREALTIME/,/.}"; }
rb_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f\n", b - a }'; }

# rb_stats FILE: "median min max n" of the numbers in FILE (one a line).
rb_stats() {
    sort -g "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan nan nan 0"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.6f %.6f %.6f %d\n", m, v[1], v[NR], NR }'
}

# rb_ratio FILE_A FILE_B: "median min max" of the per-run ratios A_i / B_i
# (runs paired in the order measured; A and B alternate in one loop).
rb_ratio() {
    paste "$1" "$2" | awk '{ print $1 / $2 }' >"$1.ratio"
    rb_stats "$1.ratio"
}

# rb_fmt N: 3 significant digits.
rb_fmt() { awk -v x="$1" 'BEGIN { if (x >= 100) printf "%.0f", x; else if (x >= 10) printf "%.1f", x; else if (x >= 1) printf "%.2f", x; else printf "%.3g", x }'; }
# rb_cell "median min max n": "m (min–max)"
rb_cell() { local m a b n; read -r m a b n <<<"$1"; echo "$(rb_fmt "$m") ($(rb_fmt "$a")–$(rb_fmt "$b"))"; }
