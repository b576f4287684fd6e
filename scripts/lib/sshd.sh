# shellcheck shell=bash
# Sourced by the scripts/bench-* benchmarks that go over SSH: a throwaway OpenSSH sshd on
# 127.0.0.1 and the client files that reach it, all inside one directory. Defines functions
# only; sets no shell option. Needs log/die (scripts/lib/bench.sh).
#
# start_sshd DIR: a free port, throwaway ed25519 host and client keys, sshd in the foreground
# (-D) as a child of this shell, logging to DIR/sshd.log at LogLevel INFO (one "Accepted
# publickey" line per connection: sshd_connections counts them). Writes in DIR:
#   client_key             the client's private key (authorized for root)
#   known_hosts            the host key as "[127.0.0.1]:PORT ..." (checked by every client)
#   ssh_config             for `ssh -F DIR/ssh_config`: that key, that known_hosts file, no
#                          other (-F keeps ~/.ssh/config and /etc/ssh/ssh_config out)
#   sshbin/ssh             `ssh -F DIR/ssh_config "$@"`, for programs that run "ssh" from PATH
#                          and have no known_hosts option of their own (btrbk)
#   home/.ssh/{id_ed25519,known_hosts}  a HOME for ssh2-based clients (buttersink)
# Sets SSHD_PID and SSHD_PORT; the host is 127.0.0.1, the user root. stop_sshd ends it.
# Sessions get HOME=DIR/remote-home (empty; sshd_config SetEnv overrides the passwd home):
# bash started by sshd sources ~/.bashrc even for `ssh host CMD`, and this machine's
# /root/.bashrc (pyenv init) costs ~5 s of every remote command, which no peer should pay.
# /run/sshd (sshd's privilege-separation directory) is created if missing and left there.
start_sshd() {
  local dir=$1 i
  [[ -d /run/sshd ]] || mkdir -m 0755 /run/sshd
  mkdir -p "$dir"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  SSHD_PORT=$(free_port)
  cat >"$dir/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
LogLevel INFO
SetEnv HOME=$dir/remote-home
EOF
  mkdir -p "$dir/remote-home"
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$dir/host_key.pub")" >"$dir/known_hosts"
  cat >"$dir/ssh_config" <<EOF
Host 127.0.0.1
  Port $SSHD_PORT
  User root
  IdentityFile $dir/client_key
  IdentitiesOnly yes
  UserKnownHostsFile $dir/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
EOF
  mkdir -p "$dir/sshbin"
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %q "$@"\n' "$dir/ssh_config" >"$dir/sshbin/ssh"
  chmod +x "$dir/sshbin/ssh"
  mkdir -p "$dir/home"
  mkdir -m 0700 "$dir/home/.ssh"
  cp "$dir/client_key" "$dir/home/.ssh/id_ed25519"
  cp "$dir/known_hosts" "$dir/home/.ssh/known_hosts"
  /usr/sbin/sshd -D -e -f "$dir/sshd_config" 2>"$dir/sshd.log" &
  SSHD_PID=$!
  for i in $(seq 1 100); do
    ssh -F "$dir/ssh_config" 127.0.0.1 true 2>/dev/null && return 0
    kill -0 "$SSHD_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "sshd did not come up (tried $i times): $(tail -n 5 "$dir/sshd.log")"
}

# stop_sshd: SIGTERM to the sshd start_sshd started (only that PID), and waits for it.
stop_sshd() {
  [[ -n ${SSHD_PID:-} ]] || return 0
  kill "$SSHD_PID" 2>/dev/null
  wait "$SSHD_PID" 2>/dev/null
  SSHD_PID=""
}

# sshd_connections DIR: the connections sshd accepted so far (its log's "Accepted" lines).
sshd_connections() { grep -c '^Accepted publickey' "$1/sshd.log" || true; }

# sshd_settle: waits (up to 5 s) until the sshd has no connection process left, so that
# sshd_cpu counts every finished session and the log has its lines.
sshd_settle() {
  local i
  for i in $(seq 1 100); do
    pgrep -P "$SSHD_PID" >/dev/null || return 0
    sleep 0.05
  done
  log "sshd still has connection processes after 5 s"
}

# sshd_cpu: user+system CPU seconds of the sshd's finished descendants so far (its cutime
# and cstime: every sshd process reaps its children, so a connection's privilege-separation
# monitor, session and remote commands are all in it once the connection process is reaped).
sshd_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($14 + $15) / hz }' "/proc/$SSHD_PID/stat"; }

# free_port: a TCP port free on 127.0.0.1 just now.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }
