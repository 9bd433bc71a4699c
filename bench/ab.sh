#!/usr/bin/env bash
# bench/ab.sh: compare fixit binaries with alternating end-to-end walks.
#
#   bash bench/ab.sh ROUNDS NAME=BINARY[:FLOWS_DIR] NAME=BINARY[:FLOWS_DIR] ...
#
# Each round runs every binary once, in turn: a fresh database, bench/fakegraph as
# the Graph API, and bench/loadgen walking 1,000 contacts through 3 steps of
# simple_lead over 64 connections (part 2 of make bench). One line per walk: the
# loadgen row (steps/s, step latency) and fixit's own CPU time per step (user +
# system from /proc/PID/stat). Alternate rounds and compare the paired ratios: on
# a shared machine single walks swing widely. Build an older version with
#   git archive REV | tar -x -C DIR && (cd DIR && CGO_ENABLED=0 go build -o BIN ./cmd/fixit)
# and give its own flows.d. FLOWS_DIR defaults to flows.d.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,16p' "$0" >&2; exit 2; }
rounds=$1
shift
GO=${GO:-go}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fixit-ab.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT
. bench/lib.sh # free_port, wait_ready URL PID [NAME]
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/loadgen" ./bench/loadgen
CGO_ENABLED=0 "$GO" build -trimpath -o "$WORK/fakegraph" ./bench/fakegraph
SECRET=fixit-dev-app-secret
STEPS=3 CONTACTS=1000
hz=$(getconf CLK_TCK)
for r in $(seq 1 "$rounds"); do
	for spec in "$@"; do
		name=${spec%%=*} rest=${spec#*=}
		bin=${rest%%:*} flows=flows.d
		[ "$rest" != "$bin" ] && flows=${rest#*:}
		gport=$(free_port)
		"$WORK/fakegraph" -addr "127.0.0.1:$gport" -token bench-graph-token >>"$WORK/fakegraph.log" 2>&1 &
		gpid=$!
		PIDS+=("$gpid")
		wait_ready "http://127.0.0.1:$gport/stats" "$gpid" fakegraph
		port=$(free_port)
		rm -rf "$WORK/db" && mkdir -p "$WORK/db"
		env -i PATH="$PATH" HOME="${HOME:-/tmp}" FIXIT_ADDR="127.0.0.1:$port" FIXIT_DB="$WORK/db/fixit.db" \
			FIXIT_FLOWS="$flows" FIXIT_LOG_LEVEL=warn FIXIT_ADMIN_TOKEN=fixit-dev-admin-token \
			APP_SECRET="$SECRET" WABA_VERIFY_TOKEN=fixit-dev-verify-token OKDESK_USER=okdesk \
			OKDESK_PASS=fixit-dev-okdesk-pass ONEC_TOKEN=fixit-dev-onec-token \
			TELEGRAM_SECRET_TOKEN=fixit-dev-telegram-secret WABA_API_URL="http://127.0.0.1:$gport" \
			WABA_ACCESS_TOKEN=bench-graph-token WABA_PHONE_NUMBER_ID=498761234560011 \
			"$bin" serve >>"$WORK/fixit-$name.log" 2>&1 &
		fpid=$!
		PIDS+=("$fpid")
		wait_ready "http://127.0.0.1:$port/readyz" "$fpid" "fixit ($name)"
		before=$(cpu_ticks "$fpid")
		row=$("$WORK/loadgen" -label "$name" -walk "$STEPS" -contacts "$CONTACTS" -c 64 -timeout 120s \
			-url "http://127.0.0.1:$port/webhooks/waba" -replies "http://127.0.0.1:$gport/replies" -secret "$SECRET" | tail -n1)
		after=$(cpu_ticks "$fpid")
		echo "round $r $row  cpu/step $(awk -v a="$before" -v b="$after" -v hz="$hz" -v n=$((STEPS * CONTACTS)) \
			'BEGIN { printf "%.2f ms", (b - a) * 1000 / hz / n }')  load $(cut -d' ' -f1 /proc/loadavg)"
		kill "$fpid" "$gpid" 2>/dev/null || true
		wait "$fpid" "$gpid" 2>/dev/null || true
	done
done
