#!/usr/bin/env bash
# Rows whose `path` is a URL (issue #16), measured: how fast `upload --relay` sends objects from
# an S3-compatible server or a web server against the same bytes read from local files, how fast
# the pull (the double fetches the URL itself) is, how fast the stores serve alone, and the peak
# RSS of relaying one big object.
#
# Everything runs on 127.0.0.1 in one go, so each result is a ratio to the local-file baseline of
# the same run. Builds avbatch, makes (and caches) the files, starts moto's S3 server (the Python
# environment `tests/common/s3.rs` and `.ci/run` use, made if missing) and a small range-capable
# web server (scripts/relay/range_server.py, sendfile), then a fresh `avbatch serve --discard` for
# every run. Each run is timed with /usr/bin/time (wall, peak RSS) under `timeout`.
# Run `scripts/relay-bench.sh --help` for the options.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=scripts/bench-lib.sh
source "$here/bench-lib.sh"
KEY="relay-bench-key"
BUCKET="bench"

usage() {
  cat <<'EOF'
Usage: scripts/relay-bench.sh [OPTIONS]

Throughput: COUNT files of SIZE uploaded to `avbatch serve --discard` from local files
(the baseline), with --relay from moto (s3://) and from a range-capable web server (http://),
and pulled by the server from each (no --relay); and each store read alone with curl.
Memory: peak RSS of uploading one BIG object with --relay from the web server (and from moto,
unless --no-big-moto) and of the same local file, with the default --chunk-size and with 5MiB.

Options (environment variable in brackets; sizes take K/M/G suffixes, binary: 64M = 64 MiB):
  --count N        files for throughput (default 8)                     [RELAY_COUNT]
  --size SIZE      size of each, random bytes (default 256M)            [RELAY_SIZE]
  --big SIZE       the one object for memory (default 4G, sparse)       [RELAY_BIG]
  --no-big-moto    do not put the BIG object into moto (it holds it all: RAM or its temp dir)
  --only WHAT      throughput or memory (default both)                  [RELAY_ONLY]
  --repeat N       runs of every throughput case; the median is kept (default 3) [RELAY_REPEAT]
  --wait-idle SECS before each run, wait up to SECS for other processes to use under 25% of
                   the CPU (default 0: do not wait)                     [RELAY_WAIT_IDLE]
  --timeout SECS   limit per run (default 600)                          [RELAY_TIMEOUT]
  --cache DIR      files kept between runs (default target/relay-bench-cache)
  --bin FILE       use this avbatch binary instead of building          [AVBATCH_BIN]
  -h, --help       this help
EOF
}

count="${RELAY_COUNT:-8}"
size="${RELAY_SIZE:-256M}"
repeat="${RELAY_REPEAT:-3}"
wait_idle="${RELAY_WAIT_IDLE:-0}"
big="${RELAY_BIG:-4G}"
big_moto=1
only="${RELAY_ONLY:-both}"
run_timeout="${RELAY_TIMEOUT:-600}"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
cache="$target_dir/relay-bench-cache"
bin="${AVBATCH_BIN:-}"
command_line="scripts/relay-bench.sh${*:+ $*}"

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --count) need "$@"; count="$2"; shift ;;
    --size) need "$@"; size="$2"; shift ;;
    --big) need "$@"; big="$2"; shift ;;
    --no-big-moto) big_moto=0 ;;
    --only) need "$@"; only="$2"; shift ;;
    --timeout) need "$@"; run_timeout="$2"; shift ;;
    --repeat) need "$@"; repeat="$2"; shift ;;
    --wait-idle) need "$@"; wait_idle="$2"; shift ;;
    --cache) need "$@"; cache="$2"; shift ;;
    --bin) need "$@"; bin="$2"; shift ;;
    *) echo "error: unknown option \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done
size_b=$(to_bytes "$size"); big_b=$(to_bytes "$big")
for n in "$count" "$run_timeout" "$repeat"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: \`$n\` is not a positive whole number" >&2; exit 2; }
done
[[ "$wait_idle" =~ ^[0-9]+$ ]] || { echo "error: --wait-idle takes whole seconds" >&2; exit 2; }
case "$only" in both | throughput | memory) ;; *) echo "error: --only takes throughput or memory" >&2; exit 2 ;; esac
for c in python3 curl xargs timeout numfmt; do
  command -v "$c" >/dev/null || { echo "error: \`$c\` is needed" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time (GNU time) is needed" >&2; exit 2; }

work="$(mktemp -d -t avbatch-relay-XXXXXX)"
server_pid="" moto_pid="" web_pid=""
stop() { # stop PID: the process, if still there
  if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
cleanup() {
  stop "$server_pid"; stop "$moto_pid"; stop "$web_pid"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- avbatch: built here, then copied so a rebuild during the run cannot change it -------------
if [ -z "$bin" ]; then
  say "cargo build --release"
  (cd "$root" && cargo build --release --quiet --bin avbatch)
  bin="$target_dir/release/avbatch"
fi
cp "$bin" "$work/avbatch"
bin="$work/avbatch"
def_chunk=$("$bin" upload --help | awk 'index($0, "--chunk-size <") {f = 1}
  f && /\[default:/ {gsub(/.*\[default: |\].*/, ""); print; exit}')
[ -n "$def_chunk" ] || { echo "error: could not read avbatch's default --chunk-size from its help" >&2; exit 1; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- moto, from the environment the tests use (made here if missing) ---------------------------
venv="$target_dir/test-venvs/moto"
if [ ! -e "$venv/.complete" ]; then
  say "making $venv (moto[s3]==5.2.5 flask flask-cors, as tests/common/s3.rs)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check 'moto[s3]==5.2.5' flask flask-cors
  touch "$venv/.complete"
fi

# wait_line FILE PATTERN PID: the first line of FILE matching the sed PATTERN's capture, within 30 s.
wait_line() {
  local got=""
  for _ in $(seq 1 300); do
    got="$(sed -n "$2" "$1" 2>/dev/null | head -n 1)"
    [ -n "$got" ] && { echo "$got"; return 0; }
    kill -0 "$3" 2>/dev/null || break
    sleep 0.1
  done
  echo "error: no address in $1:" >&2; tail -n 5 "$1" >&2; exit 1
}
start_moto() {
  "$venv/bin/python" -m moto.server -H 127.0.0.1 -p 0 >"$work/moto.out" 2>"$work/moto.err" &
  moto_pid=$!
  moto="http://127.0.0.1:$(wait_line "$work/moto.err" 's/.*Running on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$moto_pid")"
  export AWS_ENDPOINT_URL="$moto"
  s3 PUT "$moto/$BUCKET" >/dev/null
}
# s3 METHOD URL [curl args]: a request signed with moto's keys.
s3() {
  local m=$1 u=$2; shift 2
  curl -sSf --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
    -X "$m" "$@" "$u"
}
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true

# --- the api.video double: a fresh one per run --------------------------------------------------
url=""
start_server() {
  rm -rf "$work/data" "$work/server.out" "$work/server.err"
  AVBATCH_SERVE_API_KEYS="$KEY" "$bin" serve --addr 127.0.0.1:0 --data "$work/data" --discard --rate-limit off \
    --source-max-bytes 1T >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  url="$(wait_line "$work/server.out" 's/^listening on //p' "$server_pid")"
  case "$url" in http://127.0.0.1:*) ;; *) echo "error: the server is not on 127.0.0.1: $url" >&2; exit 1 ;; esac
}

results="$work/results.tsv"
: >"$results"
now() { date +%s.%N; }
# record NAME KIND BYTES SECONDS RSS_KB NOTE
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"; }

busy_runs=0

# median_of FILE: the line of FILE ("SECONDS RSS_KB", one a run) with the median SECONDS.
median_of() { sort -g "$1" | awk '{l[NR] = $0} END {print l[int((NR + 1) / 2)]}'; }

# upload NAME MANIFEST MODE BYTES [avbatch flags]: --repeat timed uploads, each to a fresh
# server; records the median. MODE pull also waits until the server has ingested every row's
# source (its log says so, row by row): the time is then to the last ingest, polled every 20 ms.
upload() {
  local name=$1 manifest=$2 mode=$3 bytes=$4 rows start rc wall rss rep
  shift 4
  rows=$(($(wc -l <"$manifest") - 1))
  : >"$work/runs"
  for rep in $(seq 1 "$repeat"); do
    wait_idle
    start_server
    say "$name$([ "$repeat" -gt 1 ] && echo " (run $rep of $repeat)")"
    start=$(now)
    set +e
    AVBATCH_API_KEY="$KEY" /usr/bin/time -o "$work/time" -f '%e %M' timeout -k 10 "$run_timeout" \
      "$bin" upload "$manifest" --base-url "$url" -q --no-journal --report "$work/report.csv" "$@" \
      >"$work/up.log" 2>&1
    rc=$?
    set -e
    read -r wall rss < <(tail -n 1 "$work/time")
    if [ "$mode" = pull ] && [ "$rc" = 0 ]; then
      while [ "$(grep -c 'source ingested' "$work/server.err" || true)" -lt "$rows" ]; do
        grep -q 'source not ingested' "$work/server.err" && { rc=1; break; }
        [ "$(echo "$(now) - $start > $run_timeout" | bc)" = 1 ] && { rc=124; break; }
        sleep 0.02
      done
      wall=$(echo "$(now) - $start" | bc)
    fi
    stop "$server_pid"; server_pid=""
    if [ "$rc" != 0 ]; then
      echo "   exit $rc; last lines:" >&2
      tail -n 5 "$work/up.log" "$work/server.err" | sed 's/^/   | /' >&2
      record "$name" "$mode" "$bytes" "" "$rss" "failed (exit $rc)"
      rm -f "$work/report.csv"
      return 0
    fi
    echo "$wall $rss" >>"$work/runs"
    rm -f "$work/report.csv"
  done
  read -r wall rss < <(median_of "$work/runs")
  record "$name" "$mode" "$bytes" "$wall" "$rss" "$rows rows$([ "$repeat" -gt 1 ] && echo ", median of $repeat")"
}

# read_alone NAME LISTFILE BYTES PARALLEL [curl args]: every URL of LISTFILE read with curl,
# PARALLEL at once, to /dev/null, --repeat times (the median recorded): what the store serves
# with no avbatch in the way.
read_alone() {
  local name=$1 list=$2 bytes=$3 par=$4 start rep wall
  shift 4
  : >"$work/runs"
  for rep in $(seq 1 "$repeat"); do
    wait_idle
    say "$name$([ "$repeat" -gt 1 ] && echo " (run $rep of $repeat)")"
    start=$(now)
    xargs -a "$list" -P "$par" -n 1 timeout -k 10 "$run_timeout" curl -sSf -o /dev/null "$@"
    echo "$(echo "$(now) - $start" | bc) 0" >>"$work/runs"
  done
  read -r wall _ < <(median_of "$work/runs")
  record "$name" store "$bytes" "$wall" "" "curl, $par at once$([ "$repeat" -gt 1 ] && echo ", median of $repeat")"
}

# manifest FILE LINES...: a path,title manifest.
manifest() {
  local f=$1 i=0 p; shift
  { echo "path,title"; for p in "$@"; do i=$((i + 1)); echo "$p,relay bench $i"; done; } >"$f"
}

# --- files, cached between runs ----------------------------------------------------------------
mkdir -p "$cache"
web_root="$cache/web"
mkdir -p "$web_root"
python3 "$here/relay/range_server.py" "$web_root" >"$work/web.out" 2>"$work/web.err" &
web_pid=$!
web="$(wait_line "$work/web.out" 's/^listening on //p' "$web_pid")"
start_moto

if [ "$only" != memory ]; then
  names=()
  for i in $(seq 1 "$count"); do
    f="$web_root/f-$size_b-$(printf %03d "$i").bin"
    if [ "$(stat -c %s "$f" 2>/dev/null || echo -1)" != "$size_b" ]; then
      head -c "$size_b" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
    fi
    names+=("$(basename "$f")")
  done
  total=$((count * size_b))
  say "putting $count x $size into moto"
  for n in "${names[@]}"; do s3 PUT "$moto/$BUCKET/$n" -T "$web_root/$n" >/dev/null; done
  manifest "$work/local.csv" "${names[@]/#/$web_root/}"
  manifest "$work/s3.csv" "${names[@]/#/s3://$BUCKET/}"
  manifest "$work/http.csv" "${names[@]/#/$web/}"
  printf '%s\n' "${names[@]/#/$moto/$BUCKET/}" >"$work/s3.list"
  printf '%s\n' "${names[@]/#/$web/}" >"$work/http.list"
  cat "${names[@]/#/$web_root/}" >/dev/null # the same warm page cache for every run
  par=$((count < 16 ? count : 16))
  read_alone "moto: curl GET" "$work/s3.list" "$total" "$par" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user test:test -H "x-amz-content-sha256: UNSIGNED-PAYLOAD"
  read_alone "web server: curl GET" "$work/http.list" "$total" "$par"
  upload "local files (baseline)" "$work/local.csv" file "$total"
  upload "--relay from moto (s3://)" "$work/s3.csv" relay "$total" --relay
  upload "--relay from the web server (http://)" "$work/http.csv" relay "$total" --relay
  upload "pulled from moto (presigned URL)" "$work/s3.csv" pull "$total"
  upload "pulled from the web server" "$work/http.csv" pull "$total"
  # moto holds objects in memory: the big object's turn needs the room.
  for n in "${names[@]}"; do s3 DELETE "$moto/$BUCKET/$n" >/dev/null || true; done
fi

if [ "$only" != throughput ]; then
  bigf="$web_root/big-$big_b.bin"
  if [ "$(stat -c %s "$bigf" 2>/dev/null || echo -1)" != "$big_b" ]; then
    rm -f "$bigf"; truncate -s "$big_b" "$bigf" # sparse: served from no disk at all
  fi
  manifest "$work/big-local.csv" "$bigf"
  manifest "$work/big-http.csv" "$web/$(basename "$bigf")"
  manifest "$work/big-s3.csv" "s3://$BUCKET/$(basename "$bigf")"
  if [ "$big_moto" = 1 ]; then
    say "putting $big into moto"
    s3 PUT "$moto/$BUCKET/$(basename "$bigf")" -T "$bigf" >/dev/null || { say "moto refused $big: skipped"; big_moto=0; }
  fi
  # Memory runs once each: peak RSS barely moves between runs, and a 4 GiB run is long.
  repeat_saved=$repeat repeat=1
  moto_per_range=""
  for chunk in "$def_chunk" 5MiB; do
    label="--chunk-size $chunk"
    if [ "$chunk" = "$def_chunk" ]; then label="$label (default)"; fi
    upload "memory: local file, $label" "$work/big-local.csv" file-mem "$big_b" --chunk-size "$chunk"
    upload "memory: --relay from the web server, $label" "$work/big-http.csv" relay-mem "$big_b" \
      --relay --chunk-size "$chunk"
    [ "$big_moto" = 1 ] || continue
    # moto reads the whole object for every ranged GET (moto/s3/models.py, FakeKey.value), so
    # a range of a big object costs as much as the object: skip a run that would outlast
    # --timeout by the seconds per range the first run measured.
    ranges=$(( (big_b + $(to_bytes "$chunk") - 1) / $(to_bytes "$chunk") ))
    if [ -n "$moto_per_range" ]; then
      estimate=$(echo "$moto_per_range * $ranges" | bc | cut -d. -f1)
      if [ "${estimate:-0}" -gt "$run_timeout" ]; then
        record "memory: --relay from moto, $label" relay-mem "$big_b" "" "" \
          "skipped: $ranges ranges at $moto_per_range s each (moto reads the whole object for each) > --timeout"
        continue
      fi
    fi
    upload "memory: --relay from moto, $label" "$work/big-s3.csv" relay-mem "$big_b" --relay --chunk-size "$chunk"
    last_wall=$(tail -n 1 "$results" | cut -f4)
    if [ -n "$last_wall" ]; then
      moto_per_range=$(awk -v w="$last_wall" -v r="$ranges" 'BEGIN { printf "%.2f", w / r }')
    fi
  done
  repeat=$repeat_saved
fi

# --- the report: MB/s (10^6 bytes), ratios to the local-file baseline of this run --------------
echo
echo "load average at the start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)$([ "$wait_idle" -gt 0 ] && echo "; runs on a busy machine: $busy_runs")"
echo "$command_line  ($(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores; $("$bin" --version); $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo))"
awk -F'\t' -v count="$count" -v size="$size" -v big="$big" '
  function mbps(b, s) { return s > 0 ? b / s / 1e6 : 0 }
  $2 == "file" && $4 != "" { base = mbps($3, $4) }
  { rows[NR] = $0 }
  END {
    for (i = 1; i <= NR; i++) { split(rows[i], f, "\t"); if (f[2] ~ /-mem$/) mem = 1; else thr = 1 }
    if (thr) printf "\nThroughput: %d x %s, to avbatch serve --discard\n", count, size
    if (thr) printf "| %-44s | %8s | %7s | %8s | %s\n", "run", "MB/s", "x local", "peak RSS", "note"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      if (f[2] ~ /-mem$/) continue
      sp = f[4] == "" ? "-" : sprintf("%.0f", mbps(f[3], f[4]))
      ratio = (f[4] == "" || base == 0) ? "-" : sprintf("%.2f", mbps(f[3], f[4]) / base)
      rss = f[5] == "" ? "-" : sprintf("%.0f MiB", f[5] / 1024)
      if (f[2] == "pull") rss = rss " (client)"
      printf "| %-44s | %8s | %7s | %8s | %s\n", f[1], sp, ratio, rss, f[6]
    }
    if (!mem) exit
    printf "\nMemory: one %s object (sparse), peak RSS of avbatch upload\n", big
    printf "| %-60s | %8s | %8s | %s\n", "run", "peak RSS", "MB/s", "note"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      if (f[2] !~ /-mem$/) continue
      sp = f[4] == "" ? "-" : sprintf("%.0f", mbps(f[3], f[4]))
      rss = f[5] == "" ? "-" : sprintf("%.0f MiB", f[5] / 1024)
      printf "| %-60s | %8s | %8s | %s\n", substr(f[1], 9), rss, sp, f[6]
    }
  }' "$results"
