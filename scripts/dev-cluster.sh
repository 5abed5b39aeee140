#!/usr/bin/env bash
# Local 3-node DSS cluster on loopback, for development.
#
#   scripts/dev-cluster.sh start [DIR]   build core-service, start nodes 1..3, wait until ready
#   scripts/dev-cluster.sh stop  [DIR]   stop them (SIGTERM, then SIGKILL after 20 s)
#
# Node N serves the DSS API on http://127.0.0.1:808N and raft on 127.0.0.1:2600N.
# Raft peers authenticate each other with mutual TLS, as in production
# (docs/peer-security.md): the first start makes a CA and one certificate per
# node with `dssctl certs`.
# DIR (default ./.dss-cluster) holds core-service and dssctl (the binaries),
# dev/ (the --dev signing key, shared so one token works on every node), pki/
# (the raft peer CA and raft-node-N certificates), nodeN/ (raft data),
# nodeN.log and nodeN.pid. Starting again with the same DIR restarts the nodes
# on their data: the cluster keeps its contents. Each node's admin socket
# (membership changes: dssctl member list|add|promote|remove --raft_data_dir DIR/nodeN)
# is DIR/nodeN/admin.sock.
set -euo pipefail

usage() {
	echo "usage: $0 start|stop [DIR]" >&2
	exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
cmd="$1"
dir="${2:-./.dss-cluster}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
repo="$(cd "$(dirname "$0")/.." && pwd)"
nodes=(1 2 3)
peers="1=127.0.0.1:26001,2=127.0.0.1:26002,3=127.0.0.1:26003"

# running N: exit status 0 when node N's pid file names a live core-service
# (checking the command line guards against a recycled pid).
running() {
	local pidfile="$dir/node$1.pid" pid
	[ -f "$pidfile" ] || return 1
	pid="$(cat "$pidfile")"
	[ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "core-service"
}

stop_node() {
	local n="$1" pid
	if ! running "$n"; then
		rm -f "$dir/node$n.pid"
		return 0
	fi
	pid="$(cat "$dir/node$n.pid")"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 200); do
		running "$n" || break
		sleep 0.1
	done
	if running "$n"; then
		echo "node $n (pid $pid) ignored SIGTERM for 20 s; killing it" >&2
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$dir/node$n.pid"
	echo "node $n stopped"
}

stop() {
	for n in "${nodes[@]}"; do stop_node "$n"; done
}

# ready N: exit status 0 when node N answers /readyz with 200.
ready() {
	curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:808$1/readyz" 2>/dev/null
}

start() {
	command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
	echo "building core-service and dssctl into $dir"
	(cd "$repo" && go build -o "$dir/core-service" ./cmds/core-service && go build -o "$dir/dssctl" ./cmds/dssctl)
	# The raft peer certificates: made once, kept across restarts (dssctl
	# certs never overwrites; only missing nodes are made).
	local missing=() n
	for n in "${nodes[@]}"; do
		[ -f "$dir/pki/raft-node-$n.pem" ] || missing+=("$n")
	done
	if [ "${#missing[@]}" -gt 0 ]; then
		local ids
		ids="$(IFS=,; echo "${missing[*]}")"
		"$dir/dssctl" certs --dir "$dir/pki" --nodes "$ids" >/dev/null
		echo "made raft peer certificates for nodes $ids in $dir/pki"
	fi
	for n in "${nodes[@]}"; do
		if running "$n"; then
			echo "node $n already running (pid $(cat "$dir/node$n.pid"))"
			continue
		fi
		# Every node shares dev/, so it accepts tokens signed by one key.
		"$dir/core-service" --dev --dev_dir "$dir/dev" --addr "127.0.0.1:808$n" \
			--raft_node_id "$n" --raft_peers "$peers" --raft_data_dir "$dir/node$n" \
			--raft_tls_cert "$dir/pki/raft-node-$n.pem" --raft_tls_key "$dir/pki/raft-node-$n-key.pem" \
			--raft_tls_ca "$dir/pki/ca.pem" \
			>"$dir/node$n.log" 2>&1 &
		echo $! >"$dir/node$n.pid"
	done

	# Wait until every node sees a leader and has applied what it knows
	# is committed. A node that exits meanwhile fails the start.
	local deadline=$((SECONDS + 60)) n
	for n in "${nodes[@]}"; do
		until ready "$n"; do
			if ! running "$n"; then
				echo "node $n exited; last lines of $dir/node$n.log:" >&2
				tail -n 20 "$dir/node$n.log" >&2
				stop
				exit 1
			fi
			if [ "$SECONDS" -ge "$deadline" ]; then
				echo "node $n not ready after 60 s; see $dir/node$n.log" >&2
				stop
				exit 1
			fi
			sleep 0.2
		done
	done

	local token
	token="$(grep -ho 'export DSS_TOKEN=[^ ]*' "$dir/node1.log" | tail -n 1 | cut -d= -f2-)"
	echo
	for n in "${nodes[@]}"; do
		echo "node $n: http://127.0.0.1:808$n  (pid $(cat "$dir/node$n.pid"), raft 127.0.0.1:2600$n, log $dir/node$n.log)"
	done
	cat <<EOF

Every node accepts this token (USS "uss1", all scopes; it expires within an hour: restart for a new one):

export DSS_TOKEN=$token

Status of a node:  curl -s -H "Authorization: Bearer \$DSS_TOKEN" http://127.0.0.1:8081/status
                   (or, without a token: curl -s --unix-socket $dir/node1/admin.sock http://admin/status)
Members:           $dir/dssctl member list --raft_data_dir $dir/node1
Stop the cluster:  $0 stop $dir
EOF
}

case "$cmd" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
