#!/usr/bin/env bash
# A bounded chaos run (issue #5): avbatch uploads a library to `avbatch serve` on 127.0.0.1 while
# the server injects 503s, mid-body resets and lost answers on capped connections, `avbatch upload`
# is killed with SIGKILL at random moments again and again, and the server itself is killed -9
# and restarted on the same port and data folder mid-batch. Then one run without kills must
# finish the batch, and the server (restarted once more, without faults) must hold every row
# exactly once, each source byte-identical to its file.
#
# Usage: scripts/chaos.sh
# Settings (environment):
#   ROWS=12            files in the library              MIN_MIB=6 MAX_MIB=30  file sizes (random)
#   KILLS=12           SIGKILLs of avbatch that must land mid-run (at least 10 for issue #5)
#   SERVER_RESTARTS=2  kill -9 + restart of the server during those rounds
#   FAIL_RATE=0.1 RESET_RATE=0.05 LOSE_RATE=0.02 BANDWIDTH=4MiB   server faults (per connection)
#   CONCURRENCY=2      avbatch -c                        SEED=<random>  repeatable dice and sizes
#   BUDGET=900         seconds for everything after the build (then it fails)
#   AVBATCH_BIN=path   skip `cargo build --release`      KEEP=1  keep the work folder
# Exits 0 only if every check passed; prints the figures either way.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
: "${ROWS:=12}" "${KILLS:=12}" "${SERVER_RESTARTS:=2}" "${BUDGET:=900}" "${SEED:=$(( (RANDOM << 15) | RANDOM ))}"
: "${MIN_MIB:=6}" "${MAX_MIB:=30}" "${CONCURRENCY:=2}"
: "${FAIL_RATE:=0.1}" "${RESET_RATE:=0.05}" "${LOSE_RATE:=0.02}" "${BANDWIDTH:=4MiB}"

# --- Outer part: build, make the work folder, run the chaos under `timeout`, clean up. ----------
if [ "${CHAOS_PHASE:-}" != run ]; then
  for tool in curl jq cmp timeout; do
    command -v "$tool" >/dev/null || { echo "chaos: needs $tool" >&2; exit 2; }
  done
  if [ -z "${AVBATCH_BIN:-}" ]; then
    (cd "$root" && cargo build --release --bin avbatch)
    AVBATCH_BIN="${CARGO_TARGET_DIR:-$root/target}/release/avbatch"
  fi
  work="$(mktemp -d -t avbatch-chaos-XXXXXX)"
  outer_cleanup() {
    local rc=$?
    # Whatever the inner part started and may have left behind if it was killed itself.
    if [ -f "$work/pids" ]; then
      while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$work/pids"
    fi
    if [ "${KEEP:-}" = 1 ]; then echo "chaos: work folder kept: $work"; else rm -rf "$work"; fi
    exit "$rc"
  }
  trap outer_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  set +e
  CHAOS_PHASE=run CHAOS_WORK="$work" AVBATCH_BIN="$AVBATCH_BIN" ROWS="$ROWS" KILLS="$KILLS" SERVER_RESTARTS="$SERVER_RESTARTS" \
    SEED="$SEED" MIN_MIB="$MIN_MIB" MAX_MIB="$MAX_MIB" CONCURRENCY="$CONCURRENCY" FAIL_RATE="$FAIL_RATE" \
    RESET_RATE="$RESET_RATE" LOSE_RATE="$LOSE_RATE" BANDWIDTH="$BANDWIDTH" \
    timeout -k 15 "$BUDGET" bash "$0"
  rc=$?
  set -e
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "chaos: FAILED: over the ${BUDGET} s budget"; fi
  exit "$rc"
fi

# --- Inner part: the chaos itself. ------------------------------------------------------------
W="$CHAOS_WORK"
BIN="$AVBATCH_BIN"
KEY="chaos-key-$SEED-$$"
export AVBATCH_API_KEY="$KEY"
unset RUST_LOG AVBATCH_BASE_URL AVBATCH_ENV AVBATCH_UPLOAD_TOKEN APIVIDEO_API_KEY AVBATCH_SERVE_ADDR AVBATCH_SERVE_DATA AVBATCH_SERVE_API_KEYS
RANDOM=$SEED
server_pid=""
upload_pid=""
url=""

log() { printf '[chaos %4ss] %s\n' "$SECONDS" "$*"; }
die() {
  log "FAILED: $*"
  exit 1
}
cleanup() {
  if [ -n "$upload_pid" ]; then kill -9 "$upload_pid" 2>/dev/null || true; fi
  if [ -n "$server_pid" ]; then kill -9 "$server_pid" 2>/dev/null || true; fi
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Sleeps a random time between $1 and $2 milliseconds; prints the milliseconds.
random_ms() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

# Starts `avbatch serve` on $1 (host:port; port 0 picks one) with the flags that follow, and
# waits for its address. Retries while the port is not free yet.
start_server() {
  local addr="$1" tries=0
  shift
  while :; do
    : >"$W/serve.out"
    AVBATCH_SERVE_API_KEYS="$KEY" "$BIN" serve --addr "$addr" --data "$W/data" --rate-limit off "$@" >"$W/serve.out" 2>>"$W/serve.err" &
    server_pid=$!
    echo "$server_pid" >>"$W/pids"
    for _ in $(seq 1 100); do
      url="$(sed -n 's/^listening on //p' "$W/serve.out" | head -n 1)"
      [ -n "$url" ] && return 0
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || die "avbatch serve did not start on $addr: $(tail -n 3 "$W/serve.err")"
    sleep 0.2
  done
}

kill_server() {
  kill -9 "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# The upload's arguments (set once the server's URL is known). Started as `"$BIN" "${upload[@]}" &`
# so that $! is avbatch itself, not a subshell around it.
set_upload_args() {
  upload=(upload "$W/lib/manifest.csv" --base-url "$url" --chunk-size 5MiB -c "$CONCURRENCY" -q
    --retries 10 --timeout 30s --report "$W/report.json")
}

journal_bytes() {
  "$BIN" status "$W/lib/manifest.csv" --json 2>/dev/null | jq -r '.bytesDone // 0' 2>/dev/null || echo 0
}

# 1. The library: ROWS files of MIN_MIB..MAX_MIB MiB (plus a few odd bytes) of random content.
mkdir -p "$W/lib" "$W/back"
echo "id,path,title" >"$W/lib/manifest.csv"
total_bytes=0
for i in $(seq 1 "$ROWS"); do
  size=$(((MIN_MIB + RANDOM % (MAX_MIB - MIN_MIB + 1)) * 1048576 + RANDOM % 65536))
  head -c "$size" /dev/urandom >"$W/lib/v$i.mp4"
  echo "chaos-$i,v$i.mp4,Chaos video $i" >>"$W/lib/manifest.csv"
  total_bytes=$((total_bytes + size))
done
log "library: $ROWS files, $total_bytes bytes (seed $SEED)"

# 2. The server, with faults.
faults=(--fail-rate "$FAIL_RATE" --reset-rate "$RESET_RATE" --lose-rate "$LOSE_RATE" --bandwidth "$BANDWIDTH")
start_server 127.0.0.1:0 "${faults[@]}" --seed "$SEED"
addr="${url#http://}"
set_upload_args
log "avbatch serve at $url with ${faults[*]}"

# 3. Rounds: start avbatch, kill it -9 at a random moment; in some rounds kill -9 and restart
#    the server while avbatch runs.
restart_rounds=" "
for r in $(seq 1 "$SERVER_RESTARTS"); do restart_rounds+="$((r * KILLS / (SERVER_RESTARTS + 1) + 1)) "; done
kills=0
ended=0
restarts=0
round=0
while [ "$kills" -lt "$KILLS" ]; do
  round=$((round + 1))
  [ "$round" -le $((KILLS * 3)) ] || die "only $kills of $KILLS kills landed in $((round - 1)) rounds: the batch finishes too fast (lower BANDWIDTH or raise ROWS)"
  "$BIN" "${upload[@]}" >"$W/upload.$round.out" 2>"$W/upload.$round.err" &
  upload_pid=$!
  echo "$upload_pid" >>"$W/pids"
  if [[ "$restart_rounds" == *" $round "* ]]; then
    ms=$(random_ms 300 1500)
    sleep_ms "$ms"
    kill_server
    sleep_ms "$(random_ms 200 1000)"
    restarts=$((restarts + 1))
    start_server "$addr" "${faults[@]}" --seed "$((SEED + restarts))"
    log "round $round: server killed -9 ${ms} ms into the run, restarted on $addr (restart $restarts)"
  fi
  ms=$(random_ms 300 2500)
  sleep_ms "$ms"
  if kill -0 "$upload_pid" 2>/dev/null; then
    kill -9 "$upload_pid"
    wait "$upload_pid" 2>/dev/null || true
    kills=$((kills + 1))
    log "round $round: avbatch killed -9 after ${ms} ms (kill $kills); journal: $(journal_bytes) of $total_bytes bytes acknowledged"
  else
    rc=0
    wait "$upload_pid" || rc=$?
    ended=$((ended + 1))
    log "round $round: avbatch ended by itself (exit $rc) before the kill"
    # 0 (all done) or 1 (rows failed, retried by the next run) are fine under faults; not 2 or 3.
    [ "$rc" -le 1 ] || die "avbatch exited $rc: $(cat "$W/upload.$round.err")"
  fi
  upload_pid=""
done
[ "$restarts" -ge "$SERVER_RESTARTS" ] || die "only $restarts of $SERVER_RESTARTS server restarts happened"

# 4. The final run, without kills (the server keeps its faults).
log "final run"
final_rc=0
"$BIN" "${upload[@]}" >"$W/final.out" 2>"$W/final.err" || final_rc=$?
tail -n 3 "$W/final.err" | sed 's/^/    /'
[ "$final_rc" -eq 0 ] || die "the final run exited $final_rc: $(cat "$W/final.err")"
summary="$(jq -c .summary "$W/report.json")"

# 5. Verification against the server, restarted once more without faults (which also shows that
#    nothing acknowledged lived only in the old process).
kill_server
start_server "$addr"
log "verifying against $url (restarted without faults)"
: >"$W/videos.jsonl"
page=1
while :; do
  curl -sS -f -u "$KEY:" "$url/videos?pageSize=100&currentPage=$page" -o "$W/page.json" || die "GET /videos failed"
  jq -c '.data[]' "$W/page.json" >>"$W/videos.jsonl"
  pages="$(jq -r '.pagination.pagesTotal' "$W/page.json")"
  [ "$page" -ge "$pages" ] && break
  page=$((page + 1))
done
videos="$(wc -l <"$W/videos.jsonl" | tr -d ' ')"
jq -r '[.metadata[]? | select(.key == "avbatch_key") | .value][0] // "(none)"' "$W/videos.jsonl" | sort >"$W/keys"
distinct="$(sort -u "$W/keys" | wc -l | tr -d ' ')"
duplicates=$((videos - distinct))
tail -n +2 "$W/lib/manifest.csv" | cut -d, -f1 | sort >"$W/want"
missing="$(comm -23 "$W/want" <(sort -u "$W/keys") | wc -l | tr -d ' ')"
strangers="$(comm -13 "$W/want" <(sort -u "$W/keys") | wc -l | tr -d ' ')"

problems=0
identical=0
verified_bytes=0
for i in $(seq 1 "$ROWS"); do
  row="$(jq -c --arg id "chaos-$i" '.rows[] | select(.id == $id)' "$W/report.json")"
  status="$(jq -r .status <<<"$row")"
  vid="$(jq -r '.videoId // empty' <<<"$row")"
  if [ "$status" != uploaded ] && [ "$status" != skipped ]; then
    log "row chaos-$i: status $status in the report"
    problems=$((problems + 1))
    continue
  fi
  mp4="$(jq -r --arg v "$vid" 'select(.videoId == $v) | .assets.mp4 // empty' "$W/videos.jsonl")"
  [ -n "$mp4" ] || mp4="$url/vod/$vid/mp4/source.mp4"
  if ! curl -sS -f "$mp4" -o "$W/back/v$i.mp4"; then
    log "row chaos-$i: video $vid has no source to download"
    problems=$((problems + 1))
  elif cmp -s "$W/back/v$i.mp4" "$W/lib/v$i.mp4"; then
    identical=$((identical + 1))
    verified_bytes=$((verified_bytes + $(stat -c %s "$W/lib/v$i.mp4")))
  else
    log "row chaos-$i: the source of $vid differs from v$i.mp4 ($(stat -c %s "$W/back/v$i.mp4") vs $(stat -c %s "$W/lib/v$i.mp4") bytes)"
    problems=$((problems + 1))
  fi
  rm -f "$W/back/v$i.mp4"
done
journal="$("$BIN" status "$W/lib/manifest.csv" --json | jq -c '{done, failed, uploading, notStarted, bytesDone, bytesTotal}')"
journal_done="$(jq -r .done <<<"$journal")"

[ "$videos" -eq "$ROWS" ] || { log "the server holds $videos videos for $ROWS rows"; problems=$((problems + 1)); }
[ "$duplicates" -eq 0 ] || { log "$duplicates duplicate video(s) for one key"; problems=$((problems + 1)); }
[ "$missing" -eq 0 ] || { log "$missing row(s) have no video"; problems=$((problems + 1)); }
[ "$strangers" -eq 0 ] || { log "$strangers video(s) belong to no row"; problems=$((problems + 1)); }
[ "$journal_done" -eq "$ROWS" ] || { log "the journal has $journal_done of $ROWS rows done: $journal"; problems=$((problems + 1)); }
[ "$verified_bytes" -eq "$total_bytes" ] || problems=$((problems + 1))

echo
echo "chaos figures (seed $SEED)"
echo "  rows                  $ROWS, $total_bytes bytes ($((total_bytes / 1048576)) MiB)"
echo "  avbatch kill -9       $kills landed mid-run in $round rounds ($ended run(s) ended by themselves first)"
echo "  server kill -9        $restarts restart(s) on $addr mid-batch, +1 before verification"
echo "  faults (flags)        ${faults[*]} (per connection), 429-free (--rate-limit off)"
echo "  final run             exit $final_rc, $summary"
echo "  journal               $journal"
echo "  server                $videos videos, $distinct distinct keys, $duplicates duplicate(s), $missing missing, $strangers unknown"
echo "  sources               $identical of $ROWS byte-identical ($verified_bytes of $total_bytes bytes)"
echo "  time                  ${SECONDS} s"
if [ "$problems" -ne 0 ]; then
  echo "chaos: FAILED ($problems problem(s))"
  exit 1
fi
echo "chaos: PASSED"
