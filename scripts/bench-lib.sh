# Shared by the benchmark scripts (compare.sh, relay-bench.sh): argument checks, messages, and
# waiting for a quiet machine. Sourced, not run.

need() { [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }; }

# Sizes: plain bytes or a binary suffix (K, M, G, T; an optional "iB"/"B" is accepted).
to_bytes() {
  local s="${1%iB}"; s="${s%B}"
  numfmt --from=iec "$s" 2>/dev/null || { echo "error: bad size \`$1\`" >&2; exit 2; }
}

say() { echo "== $*" >&2; }

# wait_idle: with --wait-idle SECS ($wait_idle), wait up to SECS until the machine is quiet
# (other processes use under 25% of the CPU over one second), so that a build or test run
# elsewhere does not skew a measurement. Gives up after SECS, counting the run in $busy_runs: the
# load average is recorded in the report anyway.
cpu_busy() {
  local a b
  a=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  sleep 1
  b=$(awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat)
  echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 0)}'
}
wait_idle() {
  [ "$wait_idle" -gt 0 ] || return 0
  local start=$SECONDS busy
  while :; do
    busy=$(cpu_busy)
    [ "$busy" -lt 25 ] && return 0
    if [ $((SECONDS - start)) -ge "$wait_idle" ]; then
      say "the machine is still ${busy}% busy after ${wait_idle} s: measuring anyway"
      busy_runs=$((busy_runs + 1))
      return 0
    fi
    sleep 4
  done
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
