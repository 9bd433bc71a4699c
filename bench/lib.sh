# bench/lib.sh: shell helpers shared by bench/run.sh and bench/ab.sh (sourced; they
# expect WORK, the run's scratch directory, to be set).

# free_port prints a TCP port nobody listens on at 127.0.0.1.
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % 20000)) # below the ephemeral range (32768+) that clients use
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# wait_ready URL PID [NAME]: poll URL until it answers 200 (30 s), failing early,
# with the tail of the run's logs, if PID died.
wait_ready() {
	local url=$1 pid=$2 name=${3:-server $2}
	for _ in $(seq 1 300); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited before it was ready; its log:" >&2
			tail -n 40 "$WORK"/*.log >&2 || true
			return 1
		fi
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "$name not ready after 30 s ($url)" >&2
	return 1
}
