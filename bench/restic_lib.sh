# bench/restic_lib.sh: sourced by bench/run.sh. Helpers of the restic cases
# (backup, monitor): a scratch "front-end + backup server + hypervisor" on one
# machine behind the loopback sshd of sshd_env.sh, and the VMs to back up.
# Timing and the statistics of the samples are bench_stats's (bench/run.sh).

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
    # The plugin's default ssh_control_dir is OpenNebula's /run/one/ssh-socks,
    # which OpenNebula's packages create (tmpfiles: 0700, oneadmin). Made here
    # the same way when missing, so that "ours" runs in the default
    # configuration of a front end; removed again by rb_teardown.
    rb_made_socks=
    if [ ! -d /run/one/ssh-socks ] && mkdir -p -m 0750 /run/one 2>/dev/null &&
        mkdir -m 0700 /run/one/ssh-socks 2>/dev/null; then
        rb_made_socks=1
    fi
    trap rb_teardown EXIT
    rb_sftp_opt="--option=sftp.command=ssh -F $BENCH_SSH_CONFIG -o BatchMode=yes -l $BENCH_SSH_USER backupserver -s sftp"
}

rb_teardown() {
    trap - EXIT
    if [ -n "${rb_made_socks:-}" ]; then
        local sock
        for sock in /run/one/ssh-socks/*; do
            [ -S "$sock" ] && ssh -o "ControlPath=$sock" -O exit this >/dev/null 2>&1
        done
        rm -rf /run/one/ssh-socks
        rmdir /run/one 2>/dev/null || true
        rb_made_socks=
    fi
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
