# Sourced by the e2e-*.sh scripts. start_e2e ARGS... runs `$bench e2e
# ARGS...` in the background (its output in $log/out and $log/err, $log a
# temporary directory removed at exit), waits until the exchange it spawns
# is up, and sets $client (the e2e's pid) and $server (the `serve` pid).
# shellcheck shell=bash
start_e2e() {
    log=$(mktemp -d)
    trap 'rm -rf "$log"' EXIT
    # shellcheck disable=SC2086 # $bench may be "binary subcommand"
    $bench e2e "$@" >"$log/out" 2>"$log/err" &
    client=$!
    until grep -q "exchange on" "$log/err" 2>/dev/null; do
        kill -0 "$client" 2>/dev/null || { cat "$log/err"; exit 1; }
        sleep 0.1
    done
    server=$(pgrep -n -f "serve --config")
}
