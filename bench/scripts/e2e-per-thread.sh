#!/bin/bash
# CPU time per thread of `exchange-bench e2e` (the client) and of the server it
# spawns, over a window of the pipelined phase: the figures behind the
# "CPU per order" tables of docs/BENCHMARKS.md. Needs `perf` (run as root).
#
# usage: bench/scripts/e2e-per-thread.sh [EXCHANGE_BENCH] [WINDOW_SECONDS]
#   EXCHANGE_BENCH  default target/release/exchange-bench; an older build's
#                   `exchange bench` works too (pass "path/to/exchange bench")
#   WINDOW_SECONDS  default 3
#
# The e2e runs with --seconds 6: 1 s of warm-up and the latency phase
# (--orders 100000 takes well under 2 s here), then the window starts 3.5 s
# after the server is up, inside the pipelined phase. Divide a thread's
# task-clock by (orders/s × window) for its CPU per order.
set -euo pipefail
bench=${1:-target/release/exchange-bench}
window=${2:-3}
# shellcheck source=e2e-common.sh
source "$(dirname "$0")/e2e-common.sh"
start_e2e --seconds 6
sleep 3.5
perf stat --per-thread -e task-clock,context-switches -p "$server,$client" -- sleep "$window" 2>&1 \
    | grep -E "task-clock|context-switches" | awk '$2+0 > 5' | sort -k2 -n -r
wait "$client"
grep -i "throughput orders" "$log/out"
