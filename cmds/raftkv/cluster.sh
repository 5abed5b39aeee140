#!/usr/bin/env bash
# Starts (or stops) a local 3-node raftkv cluster.
#   ./cmds/raftkv/cluster.sh          build and start nodes 1..3 in the background
#   ./cmds/raftkv/cluster.sh stop     stop them (SIGTERM, then wait)
# State lives in ${RAFTKV_DIR:-/tmp/raftkv}: node-N/ (data), node-N.log, node-N.pid.
set -euo pipefail

DIR="${RAFTKV_DIR:-/tmp/raftkv}"
PEERS="1=127.0.0.1:26001,2=127.0.0.1:26002,3=127.0.0.1:26003"
REPO="$(cd "$(dirname "$0")/../.." && pwd)"

stop() {
	for n in 1 2 3; do
		pidfile="$DIR/node-$n.pid"
		[ -f "$pidfile" ] || continue
		pid="$(cat "$pidfile")"
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid"
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		fi
		rm -f "$pidfile"
		echo "node $n stopped"
	done
}

start() {
	mkdir -p "$DIR"
	(cd "$REPO" && go build -o "$DIR/raftkv" ./cmds/raftkv)
	for n in 1 2 3; do
		if [ -f "$DIR/node-$n.pid" ] && kill -0 "$(cat "$DIR/node-$n.pid")" 2>/dev/null; then
			echo "node $n already running (pid $(cat "$DIR/node-$n.pid"))"
			continue
		fi
		"$DIR/raftkv" --id "$n" --peers "$PEERS" --raft_addr "127.0.0.1:2600$n" \
			--http_addr "127.0.0.1:2700$n" --data_dir "$DIR/node-$n" \
			>"$DIR/node-$n.log" 2>&1 &
		echo $! >"$DIR/node-$n.pid"
		echo "node $n: http://127.0.0.1:2700$n (pid $!, log $DIR/node-$n.log)"
	done
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 [start|stop]" >&2; exit 2 ;;
esac
