#!/usr/bin/env bash
# Same-run comparison of two core-service builds: on a shared or lent
# machine, numbers from different runs differ by more than most changes do.
#
#   scripts/bench-ab.sh OLD_CORE_SERVICE NEW_CORE_SERVICE DSSBENCH [DURATION] [ROUNDS]
#
# Starts three 3-node clusters on loopback (ports 19101-19103/19111-19113
# old, 19201-19203/19211-19213 new, 19301-19303/19311-19313 new with
# --raft_reads_via_log), then, for ROUNDS rounds (default 2), runs dssbench
# W3 and W1 at 4 and 64 users against old and new, and W3 against the
# reads-through-the-log cluster, interleaved, DURATION (default 5s) per
# phase, printing each phase's summary rows with the servers' CPU per
# operation. Raft traffic is mutual TLS (certificates made with dssctl certs,
# run from this repository with go) for every binary that has
# --raft_tls_cert. Data directories go under $TMPDIR (default /tmp). Build the
# binaries first, e.g. from a git worktree of the old commit:
#   git worktree add /tmp/old <commit> && (cd /tmp/old && go build -o /tmp/cs-old ./cmds/core-service)
set -euo pipefail
[ $# -ge 3 ] || { sed -n '2,18p' "$0" >&2; exit 2; }
old=$1 new=$2 bench=$3 dur=${4:-5s} rounds=${5:-2}
work=$(mktemp -d -t bench-ab.XXXXXX)
pids=()
cleanup() {
	kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
repo="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$repo" && go run ./cmds/dssctl certs --dir "$work/pki" --nodes 1,2,3 >/dev/null)

declare -A tpids
# start TAG BINARY BASE [FLAGS...]: nodes 1-3 on BASE+n (API), BASE+10+n (raft).
start() {
	local tag=$1 bin=$2 b=$3 n
	shift 3
	local peers="1=127.0.0.1:$((b + 11)),2=127.0.0.1:$((b + 12)),3=127.0.0.1:$((b + 13))"
	local tls=0 help quota=()
	help="$("$bin" --help 2>&1 || true)"
	grep -qE -- '^  -raft_tls_cert( |$)' <<<"$help" && tls=1
	# The workloads hold more per USS in one area than the per-USS quotas
	# allow (docs/quotas.md); quotas are not what is measured.
	grep -qE -- '^  -max_subscriptions_per_uss_per_cell( |$)' <<<"$help" &&
		quota=(--max_subscriptions_per_uss_per_cell 0 --max_entities_per_uss_per_cell 0)
	for n in 1 2 3; do
		local tlsflags=()
		[ "$tls" = 1 ] && tlsflags=(--raft_tls_cert "$work/pki/raft-node-$n.pem"
			--raft_tls_key "$work/pki/raft-node-$n-key.pem" --raft_tls_ca "$work/pki/ca.pem")
		"$bin" --dev --dev_dir "$work/dev" --log_level warn --addr "127.0.0.1:$((b + n))" --raft_node_id "$n" \
			--raft_peers "$peers" --raft_addr "127.0.0.1:$((b + 10 + n))" --raft_data_dir "$work/$tag$n" \
			"${tlsflags[@]}" "${quota[@]}" "$@" >"$work/$tag$n.log" 2>&1 &
		pids+=($!)
		tpids[$tag]="${tpids[$tag]:+${tpids[$tag]},}$!"
	done
	sleep 1 # the first start writes the shared --dev key
}
start old "$old" 19100
start new "$new" 19200
start log "$new" 19300 --raft_reads_via_log
for port in 19101 19102 19103 19201 19202 19203 19301 19302 19303; do
	for i in $(seq 300); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/readyz" || true)" = 200 ] && break
		[ "$i" = 300 ] && { echo "bench-ab: node on $port not ready; logs in $work" >&2; exit 1; }
		sleep 0.2
	done
done

# run TAG BASE WORKLOADS: one dssbench run, its summary and per-type rows.
run() {
	local tag=$1 b=$2 wl=$3
	"$bench" --label "$tag" --urls "http://127.0.0.1:$((b + 1)),http://127.0.0.1:$((b + 2)),http://127.0.0.1:$((b + 3))" \
		--token_key "$work/dev/dev-key.pem" --target_pids "${tpids[$tag]}" --workload "$wl" --concurrency 4,64 \
		--duration "$dur" --calibrate_duration 0 --json /dev/null --markdown /dev/stdout 2>/dev/null |
		grep -E '\*\*all|\| query \||\| flight \|'
}
echo "| label | workload | load | op | ok/s | ok | 409 | other 4xx | 5xx | errors | p50 ms | p95 ms | p99 ms | max ms | server CPU µs/op |"
echo "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for r in $(seq "$rounds"); do
	run old 19100 w3,w1
	run new 19200 w3,w1
	run log 19300 w3
done
