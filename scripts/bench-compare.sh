#!/usr/bin/env bash
# Compare the DSS on a 3-node Raft cluster, a 1-node Raft cluster and
# PostgreSQL, on this machine, in one go.
#
#   scripts/bench-compare.sh [--smoke] [--rounds N] [--duration D] [--concurrency C] [--keep] [--bin DIR]
#
# It builds core-service and dssbench, starts the targets on loopback
# (ports 18091-18098 and 27091-27097, distinct from dev-cluster.sh's
# 8081-8083/26001-26003; PostgreSQL on a free port, in a throwaway data
# directory), then runs dssbench's W1 (flights, C users), W2 (busy cell,
# users added until throughput falls) and W3 (read-heavy, C users) against
# each target in turn, interleaved round by round (raft3, raft1, sql,
# raft3log, raft3, ...) so that drifting machine load hits every target
# alike. raft3log is a second 3-node cluster started with
# --raft_reads_via_log (every read is proposed as a log entry and executed
# through the log on every replica, the proposer answering from its own
# apply; a benchmark-only flag that all three nodes run with) and runs W3
# only: it is the "reads through the log" baseline of the W3 ratio. Each
# dssbench run also calibrates fdatasync and loopback HTTP.
# It ends with "dssbench compare": the headline numbers per target and the
# issue's target ratios, each marked met or MISSED (W1 raft3/sql ≥ 10, W1
# raft3/fdatasync rate ≥ 1, W2 peak/W1 at the same concurrency ≥ 0.5 with
# no 5xx, W3 raft3/raft3log ≥ 5), plus W3 raft3/sql, and W3 raft3/raft3log
# at 4 users (a second W3 run of those two targets, for information).
# dssbench gets each target's server PIDs (--target_pids: the target's
# core-service nodes; for sql also the PostgreSQL postmaster, whose backends
# and other children count with it), so every phase also reports the
# servers' CPU time per successful request, and the comparison shows it per
# workload and as the raft3log / raft3 ratio next to the W3 ratio: on this
# CPU-bound machine the W3 throughput ratio cannot exceed about that ratio.
#
# --smoke: a few seconds per target at 2 users, with dssbench --check (every
# operation type succeeded, no 5xx, no unexpected 4xx); for CI. It asserts
# no timing.
#
# The SQL target needs core-service's --datastore_url and --migrate flags and
# PostgreSQL's server binaries; without them it is skipped with a message.
# --bin DIR: use the core-service and dssbench binaries in DIR instead of
# building them (for a machine without Go, e.g. a larger one lent for a run);
# DIR also needs dssctl when core-service refuses plaintext raft peers.
# The 3-node clusters' raft traffic is mutual TLS, as in production
# (certificates from dssctl certs), when core-service has --raft_tls_cert.
# The work directory (nodes' data, the fdatasync calibration file) is made
# under $TMPDIR (default /tmp): point it at the disk to measure when /tmp is
# a tmpfs.
# Everything started here is stopped on exit, however the script ends;
# results stay in the work directory when --keep is given (it is printed).
set -euo pipefail

smoke=0
rounds=2
duration=10s
conc=64
low_conc=4
keep=0
bindir=""
while [ $# -gt 0 ]; do
	case "$1" in
	--smoke) smoke=1 ;;
	--rounds) rounds="$2"; shift ;;
	--duration) duration="$2"; shift ;;
	--concurrency) conc="$2"; shift ;;
	--keep) keep=1 ;;
	--bin) bindir="$(cd "$2" && pwd)"; shift ;;
	*) echo "usage: $0 [--smoke] [--rounds N] [--duration D] [--concurrency C] [--keep] [--bin DIR]" >&2; exit 2 ;;
	esac
	shift
done
bench_args=(--concurrency "$conc" --duration "$duration")
if [ "$smoke" = 1 ]; then
	rounds=1
	conc=2
	# A mix heavy in writes so that even half a second has every
	# operation type; --check turns any 5xx or bad request into a failure.
	bench_args=(--concurrency 2 --duration 500ms --w2_concurrency 1,2 --usses 2 --w3_seed 10
		--w3_mix 10,10,5,5 --calibrate_duration 200ms --check)
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t bench-compare.XXXXXX)"
pgdir=""
pgbin=""
pids=()

# cleanup stops every process this script started (SIGTERM, then SIGKILL
# after 20 s) and PostgreSQL, then removes the work directory unless --keep.
cleanup() {
	local status=$? pid
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		for _ in $(seq 200); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "bench-compare: pid $pid ignored SIGTERM; killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$pgdir" ] && [ -f "$pgdir/data/postmaster.pid" ]; then
		as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			echo "bench-compare: PostgreSQL in $pgdir did not stop cleanly" >&2
	fi
	[ -n "$pgdir" ] && rm -rf "$pgdir"
	if [ "$keep" = 1 ]; then
		echo "bench-compare: results kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench-compare: $*" >&2; }

# port_free P: nothing listens on 127.0.0.1:P.
port_free() { ! (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in 18091 18092 18093 18094 18095 18096 18097 18098 27091 27092 27093 27094 27095 27096 27097; do
	port_free "$p" || { log "port $p is in use: stop whatever uses it first"; exit 1; }
done

mkdir -p "$work/bin" "$work/results"
if [ -n "$bindir" ]; then
	log "using the binaries in $bindir"
	cp "$bindir/core-service" "$bindir/dssbench" "$work/bin/"
	[ -x "$bindir/dssctl" ] && cp "$bindir/dssctl" "$work/bin/"
else
	log "building into $work/bin"
	(cd "$repo" && go build -o "$work/bin/core-service" ./cmds/core-service && go build -o "$work/bin/dssbench" ./cmds/dssbench &&
		go build -o "$work/bin/dssctl" ./cmds/dssctl)
fi
cs="$work/bin/core-service"
help="$("$cs" --help 2>&1 || true)"
has_flag() { grep -qE -- "^  -$1( |$)" <<<"$help"; }

# The workloads load one area with more subscriptions and intents per USS
# than the per-USS quotas (docs/quotas.md) allow; quotas are not what is
# measured, so a core-service that has them runs without.
quota_args=()
has_flag max_subscriptions_per_uss_per_cell &&
	quota_args=(--max_subscriptions_per_uss_per_cell 0 --max_entities_per_uss_per_cell 0)

# peer_tls N: the raft TLS flags of node N of a 3-node cluster (one CA and
# certificate set, $work/pki, serves both clusters: their cluster IDs keep
# them apart); none for a core-service without raft TLS, which takes
# plaintext peers.
if has_flag raft_tls_cert; then
	if [ -x "$work/bin/dssctl" ]; then
		"$work/bin/dssctl" certs --dir "$work/pki" --nodes 1,2,3 >/dev/null
	elif has_flag raft_insecure_plaintext_peers; then
		log "no dssctl in --bin DIR to make raft peer certificates: add it (go build ./cmds/dssctl)"
		exit 1
	fi
fi
peer_tls() {
	[ -f "$work/pki/ca.pem" ] || return 0
	echo --raft_tls_cert "$work/pki/raft-node-$1.pem" --raft_tls_key "$work/pki/raft-node-$1-key.pem" \
		--raft_tls_ca "$work/pki/ca.pem"
}

# start NAME ARGS...: start one core-service in the background; its log is
# $work/NAME.log. Every node shares $work/dev, so one key signs all tokens.
start() {
	local name="$1"
	shift
	"$cs" --dev --dev_dir "$work/dev" --log_level warn "${quota_args[@]}" "$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
}

# http_code URL: the HTTP status of a GET of URL (000 when nothing answers),
# with curl, or with bash's /dev/tcp where curl is missing.
http_code() {
	if command -v curl >/dev/null 2>&1; then
		curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1" || true
		return
	fi
	local rest="${1#http://}" hostport path line
	hostport="${rest%%/*}"
	path="/${rest#*/}"
	line="$( (exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" &&
		printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$path" "$hostport" >&3 &&
		timeout 2 head -n 1 <&3) 2>/dev/null || true)"
	line="${line#HTTP/* }"
	echo "${line:0:3}" | grep -E '^[0-9]{3}$' || echo 000
}

# wait_ready NAME URL: until URL/readyz answers 200 (or /healthy, on a
# binary without /readyz); fails if the process exits or 60 s pass.
wait_ready() {
	local name="$1" url="$2" pidvar="pid_$1" deadline=$((SECONDS + 60)) code
	while :; do
		code="$(http_code "$url/readyz")"
		[ "$code" = 200 ] && return 0
		if [ "$code" = 404 ] && [ "$(http_code "$url/healthy")" = 200 ]; then
			return 0
		fi
		if ! kill -0 "${!pidvar}" 2>/dev/null; then
			log "$name exited during start-up; last lines of $work/$name.log:"
			tail -n 20 "$work/$name.log" >&2
			return 1
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			log "$name not ready after 60 s; see $work/$name.log"
			tail -n 20 "$work/$name.log" >&2
			return 1
		fi
		sleep 0.2
	done
}

# as_pg CMD...: PostgreSQL refuses to run as root; run it as "postgres".
as_pg() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# find_pgbin: the directory of initdb and postgres, as internal/pgtest
# looks for it (pg_config first, then Debian's versioned directories, PATH).
find_pgbin() {
	local d
	for d in "$(pg_config --bindir 2>/dev/null || true)" $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -Vr) \
		"$(dirname "$(command -v postgres 2>/dev/null || echo /nonexistent/x)")"; do
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	return 1
}

# start_postgres: initdb in a throwaway directory, fsync on, a free port;
# sets pg_url.
start_postgres() {
	pgbin="$(find_pgbin)" || { log "PostgreSQL server binaries not found"; return 1; }
	pgdir="$(mktemp -d /tmp/bench-compare-pg.XXXXXX)"
	mkdir -p "$pgdir/sock"
	[ "$(id -u)" = 0 ] && chown -R postgres: "$pgdir"
	as_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres --auth=trust -E UTF8 --locale=C --no-sync >"$pgdir/initdb.log" 2>&1 ||
		{ log "initdb failed:"; cat "$pgdir/initdb.log" >&2; return 1; }
	local port
	for port in $(seq 15432 15532); do port_free "$port" && break; done
	as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/postgres.log" -w -t 60 \
		-o "-p $port -k $pgdir/sock -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=300" \
		start >/dev/null || { log "PostgreSQL did not start:"; tail -n 20 "$pgdir/postgres.log" >&2; return 1; }
	local psql="$pgbin/psql"
	[ -x "$psql" ] || psql="$(command -v psql)" || { log "psql not found"; return 1; }
	as_pg "$psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE scd" postgres >/dev/null ||
		{ log "creating database scd failed"; return 1; }
	pg_url="postgres://postgres@127.0.0.1:$port/scd?sslmode=disable"
	log "PostgreSQL ($pgbin) on 127.0.0.1:$port, data in $pgdir"
}

targets=()
declare -A urls
declare -A tpids # target → comma-separated PIDs of its server processes (dssbench --target_pids)
if has_flag raft_node_id && has_flag raft_peers; then
	peers="1=127.0.0.1:27091,2=127.0.0.1:27092,3=127.0.0.1:27093"
	for n in 1 2 3; do
		start "raft3_n$n" --addr "127.0.0.1:1809$n" --raft_node_id "$n" --raft_peers "$peers" \
			--raft_addr "127.0.0.1:2709$n" --raft_data_dir "$work/raft3_n$n" $(peer_tls "$n")
	done
	start raft1 --addr 127.0.0.1:18094 --raft_node_id 1 --raft_addr 127.0.0.1:27094 --raft_data_dir "$work/raft1"
	for n in 1 2 3; do wait_ready "raft3_n$n" "http://127.0.0.1:1809$n"; done
	wait_ready raft1 http://127.0.0.1:18094
	targets+=(raft3 raft1)
	urls[raft3]="http://127.0.0.1:18091,http://127.0.0.1:18092,http://127.0.0.1:18093"
	urls[raft1]="http://127.0.0.1:18094"
	tpids[raft3]="$pid_raft3_n1,$pid_raft3_n2,$pid_raft3_n3"
	tpids[raft1]="$pid_raft1"
	if has_flag raft_reads_via_log; then
		peers="1=127.0.0.1:27095,2=127.0.0.1:27096,3=127.0.0.1:27097"
		for n in 1 2 3; do
			start "raft3log_n$n" --addr "127.0.0.1:1809$((n + 5))" --raft_node_id "$n" --raft_peers "$peers" \
				--raft_addr "127.0.0.1:2709$((n + 4))" --raft_data_dir "$work/raft3log_n$n" --raft_reads_via_log \
				$(peer_tls "$n")
		done
		for n in 1 2 3; do wait_ready "raft3log_n$n" "http://127.0.0.1:1809$((n + 5))"; done
		urls[raft3log]="http://127.0.0.1:18096,http://127.0.0.1:18097,http://127.0.0.1:18098"
		tpids[raft3log]="$pid_raft3log_n1,$pid_raft3log_n2,$pid_raft3log_n3"
	else
		log "core-service has no --raft_reads_via_log: the W3 reads-through-the-log baseline is SKIPPED"
	fi
else
	log "core-service has no --raft_* flags: the Raft targets are SKIPPED; measuring its in-memory store as 'mem1' instead"
	start mem1 --addr 127.0.0.1:18094
	wait_ready mem1 http://127.0.0.1:18094
	targets+=(mem1)
	urls[mem1]="http://127.0.0.1:18094"
	tpids[mem1]="$pid_mem1"
fi

missing=""
has_flag datastore_url || missing="--datastore_url"
has_flag migrate || missing="${missing:+$missing and }--migrate"
if [ -n "$missing" ]; then
	log "SQL target SKIPPED: core-service has no $missing flag yet"
elif start_postgres; then
	start sql --addr 127.0.0.1:18095 --datastore_url "$pg_url" --migrate
	wait_ready sql http://127.0.0.1:18095
	targets+=(sql)
	urls[sql]="http://127.0.0.1:18095"
	# The postmaster's PID is the first line of postmaster.pid; dssbench
	# counts its children (backends, WAL writer, checkpointer...) with it.
	tpids[sql]="$pid_sql"
	postmaster="$(head -n 1 "$pgdir/data/postmaster.pid" 2>/dev/null || true)"
	if [[ "$postmaster" =~ ^[0-9]+$ ]]; then
		tpids[sql]+=",$postmaster"
		sql_cpu="core-service + PostgreSQL"
	else
		log "PostgreSQL's postmaster PID not found: sql's server CPU counts core-service only"
		sql_cpu="core-service only, not PostgreSQL"
	fi
else
	log "SQL target SKIPPED: PostgreSQL could not be started"
	[ "$smoke" = 1 ] && exit 1
fi

# raft3log only differs from raft3 in its reads: it runs W3 alone.
[ -n "${urls[raft3log]:-}" ] && targets+=(raft3log)
log "targets: ${targets[*]}; rounds: $rounds"
for r in $(seq "$rounds"); do
	for t in "${targets[@]}"; do
		log "round $r: $t"
		wl=w1,w2,w3
		[ "$t" = raft3log ] && wl=w3
		"$work/bin/dssbench" --label "$t" --urls "${urls[$t]}" --token_key "$work/dev/dev-key.pem" \
			--target_pids "${tpids[$t]}" --workload "$wl" --calibrate_dir "$work" --json "$work/results/$t-r$r.jsonl" "${bench_args[@]}"
		if [ "$smoke" = 0 ] && { [ "$t" = raft3 ] || [ "$t" = raft3log ]; }; then
			# W3 at a few users too, where reads through the log wait for
			# fsyncs instead of sharing group commits (information only).
			"$work/bin/dssbench" --label "$t" --urls "${urls[$t]}" --token_key "$work/dev/dev-key.pem" \
				--target_pids "${tpids[$t]}" --workload w3 --concurrency "$low_conc" --duration "$duration" --calibrate_duration 0 \
				--json "$work/results/$t-r$r-c$low_conc.jsonl" --markdown /dev/null
		fi
	done
done

echo
echo "## Comparison ($(nproc) cores; ${targets[*]}; $rounds round(s))"
echo
echo "Server CPU per target: its core-service processes${sql_cpu:+ (sql: $sql_cpu)}."
echo
num="${targets[0]}"
den="sql"
if [[ " ${targets[*]} " != *" sql "* ]]; then
	for t in "${targets[@]}"; do [ "$t" = raft3log ] || den="$t"; done
fi
"$work/bin/dssbench" compare --concurrency "$conc" --num "$num" --den "$den" --via_log raft3log "$work"/results/*.jsonl
