#!/usr/bin/env bash
# The README's demo command: set up, build, and run the main job on the
# embedded default. For now (the backup actions come next) it starts
# one_ds_host in MAD mode, holds a short oned conversation with it and prints
# the transcript: INIT, a MONITOR and a CP for a restic datastore, a request
# for a datastore driver nobody serves, FINALIZE.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
build_dir=${ONEDS_BUILD_DIR:-build}
host="$build_dir/bin/one_ds_host"

payload() { # DS_MAD DS_ID -> base64 DS_DRIVER_ACTION_DATA, as oned sends it
  printf '<DS_DRIVER_ACTION_DATA><DATASTORE><ID>%s</ID><DS_MAD>%s</DS_MAD><TYPE>3</TYPE></DATASTORE></DS_DRIVER_ACTION_DATA>' "$2" "$1" | base64 -w0
}

requests=(
  "INIT"
  "CP  42 $(payload restic 100)"
  "MONITOR  100 $(payload restic 100)"
  "RM  43 $(payload fs 1)"
  "FINALIZE"
)
echo "== one_ds_host MAD conversation (> oned to driver, < driver to oned)"
coproc HOST { "$host" -t 15 -d restic 2>/dev/null; }
for line in "${requests[@]}"; do
  echo "> ${line:0:60}$([ ${#line} -gt 60 ] && echo ...)"
  printf '%s\n' "$line" >&"${HOST[1]}"
  [ "$line" = FINALIZE ] && break
  IFS= read -r -t 10 reply <&"${HOST[0]}" || { echo "no reply"; exit 1; }
  echo "< $reply"
done
exec {HOST[1]}>&-
wait "$HOST_PID"
echo "== host exited with status $?"
