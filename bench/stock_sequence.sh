#!/usr/bin/env bash
# bench/stock_sequence.sh: the command sequence of OpenNebula's stock restic
# datastore driver (remotes/datastore/restic/{backup,monitor}), reproduced as a
# baseline for bench/run.sh (docs/stock-driver.md#backup and #monitor).
# Each line says which stock step it stands for. Not reproduced: the
# Ruby interpreter start and the XML/API handling of the stock scripts (they
# would only make the stock side slower), agent forwarding (-A), and the
# monitor's remotes sync (rsync of restic to the backup server when the
# version check prints false): the baseline is the cheapest stock path.
#
#   stock_sequence.sh backup  SSH_CONFIG SFTP_USER SFTP_SERVER REPO_PATH HYPERVISOR VM_DIR VM_ID
#   stock_sequence.sh monitor SSH_CONFIG SFTP_USER SFTP_SERVER BASE_PATH
#
# RESTIC_PASSWORD comes from the environment (the stock driver reads it from
# the datastore template). SSH_CONFIG stands for ~/.ssh/config of oneadmin: the
# stock driver's ssh and restic's sftp ssh both read that file.
set -euo pipefail

action=$1
shift

case $action in
backup)
    ssh_config=$1 user=$2 server=$3 repo_path=$4 hypervisor=$5 vm_dir=$6 vm_id=$7
    bk=$vm_dir/backup
    repo=sftp:$user@$server:$repo_path
    # restic's sftp backend runs ssh itself; the stock driver relies on
    # ~/.ssh/config, here the bench's config file.
    sftp_opt="--option=sftp.command=ssh -F $ssh_config -o BatchMode=yes -l $user $server -s sftp"
    export RESTIC_PASSWORD

    # docs/stock-driver.md#backup step 3 (Restic.new create_repo: true), on the front-end:
    #   "$RESTIC_BIN" --repo=<repo> stats || "$RESTIC_BIN" --repo=<repo> init
    # (stats with no arguments walks every snapshot of the repository).
    if ! restic "$sftp_opt" "--repo=$repo" stats >/dev/null 2>/dev/null; then
        restic "$sftp_opt" "--repo=$repo" init >/dev/null
    fi

    # docs/stock-driver.md#backup steps 5-6: one ssh to the hypervisor (stock: ssh -A ... vm_host)
    # running a bash script: the env block (exported RESTIC_PASSWORD, ...),
    # BKNAME, `restic backup --force --json --tag=one-<vm>` of the globbed
    # files, jq over its JSON lines, echo "$INFO $BKNAME".
    q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
    out=$(ssh -F "$ssh_config" "$hypervisor" bash -s <<EOF
set -e -o pipefail
shopt -s failglob
export RESTIC_PASSWORD=$(q "$RESTIC_PASSWORD")
export RESTIC_REPOSITORY=$(q "$repo")
BKNAME=\$(ls $(q "$bk")/disk.* | head -n 1)
RC=\`restic $(q "$sftp_opt") --repo=$(q "$repo") backup $(q "$bk")/disk.* $(q "$bk")/vm.xml --force --json --tag=one-$vm_id\`
INFO=\$(echo "\$RC" | jq -r '.snapshot_id + " " + (.total_bytes_processed|tostring)' | grep -v ' null\$')
echo "\$INFO \$BKNAME"
EOF
    )
    # docs/stock-driver.md#backup step 7, on the front-end: last stdout line, 3 tokens ->
    # "<short_id> <size_mb> <raw|rbd>".
    last=$(printf '%s\n' "$out" | tail -n 1)
    read -r id bytes bkname extra <<<"$last"
    if [ -z "${bkname:-}" ] || [ -n "${extra:-}" ]; then
        echo "Wrong format for backup action: $out" >&2
        exit 255
    fi
    case ${bkname##*.} in rbd2 | rbdiff) fmt=rbd ;; *) fmt=raw ;; esac
    echo "${id:0:8} $((bytes / 1048576)) $fmt"
    ;;
monitor)
    ssh_config=$1 user=$2 server=$3 base=$4
    # docs/stock-driver.md#monitor SFTP: one ssh to <user>@<server> running mkdir -p, the version check
    # (restic executable, VERSION present and equal to the front-end's) and
    # df -PBM | tail -1.
    out=$(ssh -F "$ssh_config" -l "$user" "$server" bash -s <<EOF
mkdir -p '$base/'
if [ -x /var/tmp/one/datastore/restic/restic ] && [ -f /var/tmp/one/VERSION ] && [ "\$(head -n 1 /var/tmp/one/VERSION)" = '6.10.0' ]; then echo true; else echo false; fi
df -PBM '$base/' | tail -1
EOF
    )
    # docs/stock-driver.md#monitor parsing: the 2nd line's df fields -> USED_MB / TOTAL_MB / FREE_MB.
    df_line=$(printf '%s\n' "$out" | sed -n 2p)
    read -r _ total used free _ <<<"$df_line"
    [ -n "${free:-}" ] || { echo "Error parsing repo stats: $out" >&2; exit 255; }
    printf 'USED_MB=%s\nTOTAL_MB=%s\nFREE_MB=%s\n' "$used" "$total" "$free"
    ;;
*)
    echo "usage: $0 backup|monitor ..." >&2
    exit 2
    ;;
esac
