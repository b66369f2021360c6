# bench/sshd_env.sh: sourced by bench/run.sh. A real OpenSSH sshd on a free
# loopback port with throw-away keys, as tests/support/sshd_fixture does
# (same sshd_config and ssh_config lines), without needing the test library,
# so the benchmarks build with -DONEDS_BUILD_TESTS=OFF.
#
#   bench_sshd_start DIR   starts it; sets BENCH_SSH_CONFIG (Host aliases
#                          "backupserver" and "hypervisor"), BENCH_SSHD_PID,
#                          BENCH_SSH_USER, BENCH_SSH_PORT
#   bench_sshd_stop        stops it (by its pid)

bench_sshd_start() {
    local dir=$1 port user try
    mkdir -p "$dir" && chmod 700 "$dir"
    user=$(id -un)
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key" >/dev/null
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id" >/dev/null
    cp "$dir/id.pub" "$dir/authorized_keys"
    for try in 1 2 3 4 5 6 7 8; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
            echo $((20000 + RANDOM % 30000)))
        cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
MaxStartups 100:30:200
MaxSessions 100
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
EOF
        /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
        BENCH_SSHD_PID=$!
        local i
        for i in $(seq 1 100); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
            kill -0 "$BENCH_SSHD_PID" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$BENCH_SSHD_PID" 2>/dev/null; then break; fi
        wait "$BENCH_SSHD_PID" 2>/dev/null || true
        BENCH_SSHD_PID=
    done
    [ -n "${BENCH_SSHD_PID:-}" ] || { cat "$dir/sshd.log" >&2; return 1; }
    local key
    key=$(cut -d ' ' -f 1-2 "$dir/host_key.pub")
    {
        echo "[127.0.0.1]:$port $key"
        for name in backupserver hypervisor; do echo "[$name]:$port $key"; done
    } >"$dir/known_hosts"
    : >"$dir/ssh_config"
    for name in backupserver hypervisor; do
        cat >>"$dir/ssh_config" <<EOF
Host $name
    HostName 127.0.0.1
    Port $port
    User $user
    IdentityFile $dir/id
    IdentitiesOnly yes
    UserKnownHostsFile $dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    BatchMode yes
    ControlMaster no
    ControlPath none
    ConnectTimeout 10
    LogLevel ERROR
EOF
    done
    BENCH_SSH_CONFIG=$dir/ssh_config
    BENCH_SSH_USER=$user
    BENCH_SSH_PORT=$port
    ssh -F "$BENCH_SSH_CONFIG" backupserver true || { cat "$dir/sshd.log" >&2; return 1; }
}

bench_sshd_stop() {
    if [ -n "${BENCH_SSHD_PID:-}" ]; then
        kill "$BENCH_SSHD_PID" 2>/dev/null || true
        wait "$BENCH_SSHD_PID" 2>/dev/null || true
        BENCH_SSHD_PID=
    fi
}
