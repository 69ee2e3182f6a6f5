#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/redis_manager.sh: Redis beside the manager figures: LPUSH and RPOP from 1 and 50 clients.
#
# Usage: bench/redis_manager.sh        (REDIS_N=200000 requests per test)
#
# Starts a private redis-server on a free 127.0.0.1 port (no persistence),
# runs redis-benchmark -t lpush,rpop with -c 1 and -c 50 (no pipelining,
# like one manager call per round trip), prints
#   RESULT redis_lpush_1c req/s <v>   RESULT redis_rpop_1c req/s <v>
#   RESULT redis_lpush_50c req/s <v>  RESULT redis_rpop_50c req/s <v>
# and stops the server. Prints nothing (exit 0) when Redis is not installed,
# so that bench runs go on without it. A manager put+get pair is two
# requests: compare 2 x manager_queue_putget_50c with these rates.
set -euo pipefail

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
	echo "# redis: redis-server or redis-benchmark not installed, skipped" >&2
	exit 0
fi
n=${REDIS_N:-200000}
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--daemonize no --dir "$dir" --logfile "$dir/redis.log" &
pid=$!
cleanup() {
	redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT
# Ready when it answers PING (bounded: 100 tries, 0.1 s apart).
for _ in $(seq 100); do
	if redis-cli -p "$port" ping >/dev/null 2>&1; then
		break
	fi
	sleep 0.1
done
for c in 1 50; do
	timeout 300 redis-benchmark -h 127.0.0.1 -p "$port" -t lpush,rpop \
		-n "$n" -c "$c" -P 1 --csv |
		tr -d '"' | awk -F, -v c="$c" '
			$1 == "LPUSH" { printf "RESULT redis_lpush_%sc req/s %.0f\n", c, $2 }
			$1 == "RPOP"  { printf "RESULT redis_rpop_%sc req/s %.0f\n", c, $2 }'
done
