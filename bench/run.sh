#!/usr/bin/env bash
# bench/run.sh — the measurement harness behind `make bench`.
#
# Builds fixit and the bench tools, then on this machine, in one run:
#   1. webhook acknowledgement: bench/loadgen against bench/refserver (the ceiling)
#      and against `fixit serve` (dry-run outbound), at several connection counts;
#   2. end to end: fixit with the Graph API played by bench/fakegraph, 1,000
#      contacts walking simple_lead, dialog steps (replies) per second;
#   3. scale: the same walk on databases that already store N dialogs (bench/seed
#      fills them: simple_lead dialogs of other contacts, with their keys, timers,
#      contacts), for each N of SCALE_DIALOGS: steps per second and fixit's peak
#      resident memory, against N = 0 and the 200 MiB target;
#   4. the Go benchmarks of guard evaluation, an interpreter step, a store
#      transaction, and loading 1,000 flow files.
# Everything printed also goes to bench/results/<UTC date-time>.txt (full runs only).
#
# Environment: PARTS (default "ack e2e scale go": which of the four to run), CONNS
# ("8 64 256"), DURATION (10s), WARMUP (2s), CONTACTS (1000), E2E_CONTACTS (1000),
# E2E_STEPS (3), SCALE_DIALOGS ("0 1000000": the stored dialogs of each scale row;
# list 0 to get the ratio), GO (go), FIXIT_PPROF_ADDR (unset; set, e.g.
# 127.0.0.1:6060, to profile the fixit under test with `go tool pprof`).
set -euo pipefail

GO=${GO:-go}
PARTS=${PARTS:-"ack e2e scale go"}
CONNS=${CONNS:-"8 64 256"}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONTACTS=${CONTACTS:-1000}
E2E_CONTACTS=${E2E_CONTACTS:-1000}
E2E_STEPS=${E2E_STEPS:-3}
SCALE_DIALOGS=${SCALE_DIALOGS:-"0 1000000"}
SECRET=fixit-dev-app-secret

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fixit-bench.XXXXXX")
mkdir -p bench/results
STAMP=$(date -u +%Y-%m-%dT%H-%M-%SZ)
RESULT=bench/results/$STAMP.txt
REPORT=$WORK/report.txt
: >"$REPORT"

PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# has PART: whether PARTS asks for PART.
has() { [[ " $PARTS " == *" $1 "* ]]; }

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }

# free_port and wait_ready URL PID [NAME].
. "$ROOT/bench/lib.sh"

# stop PID: SIGTERM, then SIGKILL after 5 s (fixit drains its backlog on SIGTERM).
stop() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local keep=() p
	for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}

# Started servers' PIDs land here (a function's $! would be lost in a subshell).
SERVER_PID=
SERVER_URL=

start_refserver() {
	local port db
	port=$(free_port)
	db=$WORK/ref-$1.db
	"$WORK/refserver" -addr "127.0.0.1:$port" -db "$db" -secret "$SECRET" >>"$WORK/refserver.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_URL=http://127.0.0.1:$port
	wait_ready "$SERVER_URL/readyz" "$SERVER_PID"
}

# start_fixit NAME [VAR=value...]: fixit serve on a fresh database, demo secrets.
start_fixit() {
	local name=$1 port
	shift
	port=$(free_port)
	mkdir -p "$WORK/$name"
	env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
		FIXIT_ADDR="127.0.0.1:$port" FIXIT_DB="$WORK/$name/fixit.db" FIXIT_FLOWS=flows.d \
		FIXIT_LOG_LEVEL=warn FIXIT_LOG_FORMAT=text FIXIT_ADMIN_TOKEN=fixit-dev-admin-token \
		APP_SECRET="$SECRET" WABA_VERIFY_TOKEN=fixit-dev-verify-token \
		OKDESK_USER=okdesk OKDESK_PASS=fixit-dev-okdesk-pass ONEC_TOKEN=fixit-dev-onec-token \
		TELEGRAM_SECRET_TOKEN=fixit-dev-telegram-secret FIXIT_PPROF_ADDR="${FIXIT_PPROF_ADDR:-}" "$@" \
		"$WORK/fixit" serve >>"$WORK/fixit-$name.log" 2>&1 &
	SERVER_PID=$!
	PIDS+=("$SERVER_PID")
	SERVER_URL=http://127.0.0.1:$port
	wait_ready "$SERVER_URL/readyz" "$SERVER_PID"
}

echo "building fixit and the bench tools into $WORK ..." >&2
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/fixit" ./cmd/fixit
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/loadgen" ./bench/loadgen
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/refserver" ./bench/refserver
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/fakegraph" ./bench/fakegraph
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/seed" ./bench/seed

say "fixit bench — $STAMP"
say "commit $(git describe --tags --always --dirty 2>/dev/null || echo unknown), $("$GO" version | cut -d' ' -f3-)"
say "machine: $(nproc) CPU ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); generator on the same cores"
say ""
if has ack; then
	say "## 1. WhatsApp webhook acknowledgement (closed loop, warm-up $WARMUP, measured $DURATION, $CONTACTS contacts, unique wamids)"
	say "# reference = net/http + HMAC + JSON + one SQLite transaction per request (fixit's SQLite driver and pragmas)"
	say "# fixit = fixit serve, flows.d, dry-run outbound, fresh database per row"

	declare -A RATE
	header=-header
	for c in $CONNS; do
		for server in reference fixit; do
			if [ "$server" = reference ]; then
				start_refserver "$c"
			else
				start_fixit "c$c"
			fi
			row=$("$WORK/loadgen" $header -label "$server" -url "$SERVER_URL/webhooks/waba" -c "$c" \
				-d "$DURATION" -warmup "$WARMUP" -contacts "$CONTACTS" -secret "$SECRET")
			header=
			say "$row"
			RATE[$server-$c]=$(printf '%s\n' "$row" | tail -n1 | awk '{print $3}')
			stop "$SERVER_PID"
		done
	done
	say ""
	for c in $CONNS; do
		ref=${RATE[reference-$c]:-0} fix=${RATE[fixit-$c]:-0}
		say "$(awk -v c="$c" -v r="$ref" -v f="$fix" 'BEGIN { printf "ratio fixit / ceiling at %3d connections: %6.0f / %6.0f = %.2f", c, f, r, (r > 0 ? f / r : 0) }')"
	done
	say ""

fi

if has e2e; then
	say "## 2. End to end: $E2E_CONTACTS contacts walk simple_lead ($E2E_STEPS steps: greeting, name, problem); a step = a reply reaching the fake Graph API"
	gport=$(free_port)
	"$WORK/fakegraph" -addr "127.0.0.1:$gport" -token bench-graph-token >>"$WORK/fakegraph.log" 2>&1 &
	GRAPH_PID=$!
	PIDS+=("$GRAPH_PID")
	wait_ready "http://127.0.0.1:$gport/stats" "$GRAPH_PID"
	start_fixit e2e WABA_API_URL="http://127.0.0.1:$gport" WABA_ACCESS_TOKEN=bench-graph-token \
		WABA_PHONE_NUMBER_ID=498761234560011
	for c in 64; do
		say "$("$WORK/loadgen" -header -label fixit-e2e -walk "$E2E_STEPS" -contacts "$E2E_CONTACTS" -c "$c" \
			-url "$SERVER_URL/webhooks/waba" -replies "http://127.0.0.1:$gport/replies" -timeout 90s -secret "$SECRET")"
	done
	say "# messages received by the fake Graph API: $(curl -fsS "http://127.0.0.1:$gport/stats")"
	stop "$SERVER_PID"
	stop "$GRAPH_PID"
	say ""

fi

if has scale; then
	say "## 3. Scale: the walk of part 2 ($E2E_CONTACTS contacts, $E2E_STEPS steps, 64 connections) on a database that already stores N dialogs"
	say "# N dialogs of simple_lead seeded by bench/seed (other contacts; states, keys, timers as real ones); fresh fixit and fake Graph API per row"
	say "# peak RSS = fixit's VmHWM after the walk (start-up included), RSS = its VmRSS then"
	say "$(printf '%10s %8s %8s %10s %10s %9s %7s  %s' 'dialogs' 'seed s' 'steps/s' 'step p50' 'step p99' 'peak RSS' 'RSS' 'errors')"
	declare -A SCALE_RATE SCALE_HWM
	for n in $SCALE_DIALOGS; do
		# start_fixit serves $WORK/<name>/fixit.db: seed exactly that file first.
		mkdir -p "$WORK/scale-$n"
		echo "seeding $n dialogs ..." >&2
		t0=$(date +%s%N)
		if ! "$WORK/seed" -db "$WORK/scale-$n/fixit.db" -dialogs "$n" -flows flows.d >"$WORK/seed-$n.log" 2>&1; then
			cat "$WORK/seed-$n.log" >&2
			exit 1
		fi
		t1=$(date +%s%N)
		gport=$(free_port)
		"$WORK/fakegraph" -addr "127.0.0.1:$gport" -token bench-graph-token >>"$WORK/fakegraph.log" 2>&1 &
		GRAPH_PID=$!
		PIDS+=("$GRAPH_PID")
		wait_ready "http://127.0.0.1:$gport/stats" "$GRAPH_PID"
		start_fixit "scale-$n" WABA_API_URL="http://127.0.0.1:$gport" WABA_ACCESS_TOKEN=bench-graph-token \
			WABA_PHONE_NUMBER_ID=498761234560011
		row=$("$WORK/loadgen" -label "scale-$n" -walk "$E2E_STEPS" -contacts "$E2E_CONTACTS" -c 64 \
			-url "$SERVER_URL/webhooks/waba" -replies "http://127.0.0.1:$gport/replies" -timeout 90s -secret "$SECRET")
		hwm=$(awk '/^VmHWM:/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
		rss=$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$SERVER_PID/status")
		stop "$SERVER_PID"
		stop "$GRAPH_PID"
		# loadgen's row: server conns contacts steps steps/s p50 p99 replies errors...
		read -r _ _ _ _ rate p50 p99 _ errs <<<"$row"
		SCALE_RATE[$n]=$rate
		SCALE_HWM[$n]=$hwm
		say "$(printf '%10d %8.1f %8s %10s %10s %5s MiB %3s MiB  %s' "$n" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e9 }')" \
			"$rate" "$p50" "$p99" "$hwm" "$rss" "$errs")"
	done
	for n in $SCALE_DIALOGS; do
		say "# seed of $n: $(sed -n 's/^seed: done in /done in /p' "$WORK/seed-$n.log")"
	done
	say ""
	if [ -n "${SCALE_RATE[0]:-}" ]; then
		for n in $SCALE_DIALOGS; do
			[ "$n" = 0 ] && continue
			say "$(awk -v n="$n" -v r="${SCALE_RATE[$n]}" -v z="${SCALE_RATE[0]}" 'BEGIN { printf "ratio steps/s at %d / at 0: %.0f / %.0f = %.2f", n, r, z, (z > 0 ? r / z : 0) }')"
		done
	fi
	top=0 topn=
	for n in $SCALE_DIALOGS; do
		if [ "${SCALE_HWM[$n]}" -ge "$top" ]; then top=${SCALE_HWM[$n]} topn=$n; fi
	done
	say "peak RSS under 200 MiB: $([ "$top" -lt 200 ] && echo yes || echo no) (highest: $top MiB, with $topn dialogs stored)"
	say ""

fi

if has go; then
	say "## 4. Go benchmarks (guard, interpreter step and start, store transaction, 1,000 flow files)"
	if ! "$GO" test -run='^$' -bench='Guard|Step$|StartFlow|AppendEvents|Load1000' -benchmem ./engine/ ./engine/store/ >"$WORK/gobench.txt" 2>&1; then
		say "# go test reported a failure (its lines follow)"
	fi
	grep -E '^(Benchmark|ok|FAIL|--- FAIL|goos|goarch|cpu|pkg)|_test\.go:[0-9]+: ' "$WORK/gobench.txt" | grep -v 'level=INFO' | tee -a "$REPORT"

fi

echo >&2
if [ "$PARTS" = "ack e2e scale go" ]; then
	cp "$REPORT" "$RESULT"
	echo "written to $RESULT" >&2
else
	echo "a partial run (PARTS=$PARTS): not written to bench/results" >&2
fi
