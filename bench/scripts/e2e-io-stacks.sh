#!/bin/bash
# What the I/O thread (gateway + market data) of `exchange serve` spends its
# time on during the pipelined phase of `exchange-bench e2e`: the share of
# its samples whose call stack holds each of a few frames. The figures behind
# docs/BENCHMARKS.md's "What is left on the I/O thread". Needs `perf` (root).
# The recording (DWARF call graphs) slows the run; the shares are what count.
#
# usage: bench/scripts/e2e-io-stacks.sh [EXCHANGE_BENCH]
set -euo pipefail
bench=${1:-target/release/exchange-bench}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
# shellcheck disable=SC2086 # $bench may be "binary subcommand"
$bench e2e --orders 20000 --seconds 6 >"$log/out" 2>"$log/err" &
client=$!
until grep -q "exchange on" "$log/err" 2>/dev/null; do
    kill -0 "$client" 2>/dev/null || { cat "$log/err"; exit 1; }
    sleep 0.1
done
server=$(pgrep -n -f "serve --config")
io=$(ps -L -o tid=,comm= -p "$server" | awk '$2 ~ /gateway/ {print $1; exit}')
sleep 3.5
perf record -F 4999 --call-graph dwarf,16384 -t "$io" -o "$log/perf.data" -- sleep 2 2>/dev/null
wait "$client"
perf script -i "$log/perf.data" 2>/dev/null | awk '
    BEGIN { RS = ""
            n = split("pwrite64 MessageStore::append crc32c MdAgent::take_outputs " \
                      "EventLoop::take_outputs finish_task_switch epoll_wait " \
                      "tcp_sendmsg tcp_recvmsg", frames, " ") }
    { total++; for (i = 1; i <= n; i++) if (index($0, frames[i])) hits[i]++ }
    END { printf "I/O thread samples: %d\n", total
          for (i = 1; i <= n; i++) printf "  %-26s %5.1f%%\n", frames[i], 100 * hits[i] / total }'
