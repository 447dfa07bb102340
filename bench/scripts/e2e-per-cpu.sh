#!/bin/bash
# Where each core's time goes during the pipelined phase of `exchange-bench
# e2e`: samples of the whole machine (every thread, short-lived ones too,
# which `perf stat -p` misses) by CPU and thread name. The figures behind
# docs/BENCHMARKS.md's "the core the engine leaves to the others held ...".
# Needs `perf` (run as root).
#
# usage: bench/scripts/e2e-per-cpu.sh [EXCHANGE_BENCH] [WINDOW_SECONDS]
#   EXCHANGE_BENCH  default target/release/exchange-bench ("path/to/exchange
#                   bench" for an older build)
#   WINDOW_SECONDS  default 2
#
# The e2e runs with --seconds 6; the window starts 3.5 s after the server is
# up, inside the pipelined phase. Each CPU's lines add up to about 50% (two
# CPUs); a thread's share of its CPU is twice its figure.
set -euo pipefail
bench=${1:-target/release/exchange-bench}
window=${2:-2}
# shellcheck source=e2e-common.sh
source "$(dirname "$0")/e2e-common.sh"
start_e2e --orders 20000 --seconds 6
sleep 3.5
perf record -a -F 2999 -o "$log/perf.data" -- sleep "$window" 2>/dev/null
wait "$client"
perf report -i "$log/perf.data" --sort cpu,comm --stdio 2>/dev/null \
    | grep -v '^#' | grep -v '^$' | awk '$1+0 >= 0.5'
grep -i "throughput orders" "$log/out"
