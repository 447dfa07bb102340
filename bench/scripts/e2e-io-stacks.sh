#!/bin/bash
# What the I/O thread (gateway + market data) of `exchange serve` spends its
# time on during the pipelined phase of `exchange-bench e2e`: the share of
# its samples whose call stack holds each of a few frames. The figures behind
# docs/BENCHMARKS.md's "What is left on the I/O thread". Needs `perf` (root).
# The recording (DWARF call graphs) slows the run; the shares are what count.
#
# usage: bench/scripts/e2e-io-stacks.sh [EXCHANGE_BENCH]
#   THREAD=engine   another server thread (a pattern of its name; default
#                   gateway, the I/O thread)
#   FRAMES="a b"    the frames to count (default: the I/O thread's below)
#   PERF_DATA=FILE  keep the recording there (for `perf report -i FILE
#                   --no-children`, self time by function)
#
# The engine thread's shares quoted in the notes on issue 12 (there pwrite64
# is the store writer's: the segment steps use write):
#   THREAD=engine FRAMES="SnapshotAgent EdgesShadow prepare_step pwrite64" \
#       bench/scripts/e2e-io-stacks.sh
set -euo pipefail
bench=${1:-target/release/exchange-bench}
thread=${THREAD:-gateway}
frames=${FRAMES:-pwrite64 MessageStore::append crc32c MdAgent::take_outputs \
EventLoop::take_outputs finish_task_switch epoll_wait tcp_sendmsg tcp_recvmsg}
# shellcheck source=e2e-common.sh
source "$(dirname "$0")/e2e-common.sh"
start_e2e --orders 20000 --seconds 6
tid=$(ps -L -o tid=,comm= -p "$server" | awk -v t="$thread" '$2 ~ t {print $1; exit}')
data=${PERF_DATA:-$log/perf.data}
sleep 3.5
perf record -F 4999 --call-graph dwarf,16384 -t "$tid" -o "$data" -- sleep 2 2>/dev/null
wait "$client"
grep -i "throughput orders" "$log/out"
perf script -i "$data" 2>/dev/null | awk -v list="$frames" -v thread="$thread" '
    BEGIN { RS = ""; n = split(list, frames, " ") }
    { total++; for (i = 1; i <= n; i++) if (index($0, frames[i])) hits[i]++ }
    END { printf "%s thread samples: %d\n", thread, total
          for (i = 1; i <= n; i++) printf "  %-26s %5.1f%%\n", frames[i], 100 * hits[i] / total }'
