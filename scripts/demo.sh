#!/usr/bin/env bash
# The README's demo command: set up, build, and run the main job on the
# embedded default, a LOCAL restic repository on this machine:
#   1. make a sample VM backup folder: two qcow2 disks with data (qemu-img,
#      qemu-io) and a base64 vm.xml, as OpenNebula's prebackup leaves it;
#   2. back it up through one_ds_host, exactly as oned's VMM driver runs
#      remotes/datastore/restic/backup (argv + XML on stdin);
#   3. back it up again (incremental: almost nothing is added);
#   4. list the snapshots, monitor the datastore (MAD mode, as oned does);
#   5. list it (ls) and download every disk through the restic:// downloader,
#      then compare each with its source (qemu-img compare).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh >/dev/null
build_dir=${ONEDS_BUILD_DIR:-build}
host="$PWD/$build_dir/bin/one_ds_host"
plugin="$PWD/$build_dir/bin/libone_ds_restic.so"

work=$(mktemp -d "${TMPDIR:-/tmp}/oneds-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
vm_id=42
vm_dir="$work/datastores/0/$vm_id"
bk="$vm_dir/backup"
base_path="$work/datastores/100"
password='demo pass "with" $pecial chars'
mkdir -p "$bk" "$base_path"

echo "== 1. sample VM $vm_id in $bk"
qemu-img create -q -f qcow2 "$bk/disk.0.0" 256M
qemu-io -c "write -P 0x61 0 24M" -c "write -P 0x62 100M 8M" "$bk/disk.0.0" >/dev/null
qemu-img create -q -f qcow2 "$bk/disk.1.0" 64M
qemu-io -c "write -P 0x63 0 8M" "$bk/disk.1.0" >/dev/null
printf '<VM><ID>%s</ID><NAME>demo</NAME><TEMPLATE><DISK><DISK_ID>0</DISK_ID><SIZE>256</SIZE></DISK><DISK><DISK_ID>1</DISK_ID><SIZE>64</SIZE></DISK></TEMPLATE></VM>' \
  "$vm_id" | base64 -w 60 > "$bk/vm.xml"
ls -l "$bk"

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e 's/"/\&quot;/g'; }
ds_xml="<DATASTORE><ID>100</ID><NAME>restic</NAME><DS_MAD>restic</DS_MAD><TM_MAD>-</TM_MAD><TYPE>3</TYPE><BASE_PATH>$base_path</BASE_PATH><TEMPLATE><RESTIC_PASSWORD>$(printf '%s' "$password" | xml_escape)</RESTIC_PASSWORD><RESTIC_BACKEND>LOCAL</RESTIC_BACKEND></TEMPLATE></DATASTORE>"
request="<DS_DRIVER_ACTION_DATA>$ds_xml<VM><ID>$vm_id</ID></VM></DS_DRIVER_ACTION_DATA>"
conf="$work/one_ds_host.conf"
cat > "$conf" <<CONF
[plugin.restic]
lock_dir = $work/locks
datastore_conf = $work/datastore.conf
progress_interval = 1
CONF

run_backup() {
  echo "\$ one_ds_host action restic backup localhost:$vm_dir 0:1 one-$vm_id - $vm_id 0 < request.xml"
  local start end out
  start=$(date +%s%N)
  out=$("$host" action -c "$conf" --plugin restic="$plugin" restic backup \
        "localhost:$vm_dir" 0:1 "one-$vm_id" - "$vm_id" 0 <<<"$request")
  end=$(date +%s%N)
  echo "stdout: $out   ($(( (end - start) / 1000000 )) ms)"
  snap=${out%% *}
}
echo "== 2. backup"
run_backup
echo "== 3. backup again (unchanged disks)"
run_backup

repo="$base_path/$vm_id"
echo "== 4. snapshots in $repo"
RESTIC_PASSWORD=$password restic -r "$repo" snapshots --no-lock
echo "\$ one_ds_host -t 15 -d restic   (MAD mode: INIT, MONITOR 100, FINALIZE)"
b64=$(printf '%s' "<DS_DRIVER_ACTION_DATA>$ds_xml</DS_DRIVER_ACTION_DATA>" | base64 -w0)
reply=$(printf 'INIT\nMONITOR  100 %s\n' "$b64" | "$host" "-t 15 -d restic -c $conf --plugin restic=$plugin" 2>/dev/null | grep '^MONITOR')
echo "< $reply"
echo "  decoded: $(echo "${reply##* }" | base64 -d | tr '\n' ' ')"

echo "== 5. list the backup as the TM's in-place restore does (ls), download every disk, verify"
image="<IMAGE><ID>7</ID><SOURCE>$snap</SOURCE><FORMAT>raw</FORMAT><VMS><ID>$vm_id</ID></VMS></IMAGE>"
echo "\$ one_ds_host action restic ls < request.xml"
urls=$("$host" action -c "$conf" --plugin restic="$plugin" restic ls <<<"<DS_DRIVER_ACTION_DATA>$ds_xml<VM><ID>$vm_id</ID></VM>$image</DS_DRIVER_ACTION_DATA>")
echo "stdout: $urls"
restore="$work/restore"
mkdir -p "$restore"
for disk in 0 1; do
  url=$(printf '%s' "$urls" | sed -n "s/.*\"$disk\":\"\([^\"]*\)\".*/\1/p")
  echo "\$ one_ds_host action restic downloader --stdout $url < datastore.xml > disk.$disk.qcow2"
  "$host" action -c "$conf" --plugin restic="$plugin" restic downloader --stdout "$url" <<<"$ds_xml" > "$restore/disk.$disk.qcow2"
  qemu-img compare -q "$bk/disk.$disk.0" "$restore/disk.$disk.qcow2"
  echo "  disk.$disk: qemu-img compare with the source: identical ($(stat -c %s "$restore/disk.$disk.qcow2") bytes downloaded)"
done
echo "== demo finished: backed up, listed, monitored, downloaded and verified VM $vm_id"
