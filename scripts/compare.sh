#!/usr/bin/env bash
# One workload, several uploaders, the same local server: avbatch against the official api.video
# clients and the raw `split` + `curl` method, measured in one go.
#
# Builds avbatch, installs PyPI `api.video` and npm `@api.video/nodejs-client` into a temporary
# folder, makes (and caches) the files, and for every run starts a fresh `avbatch serve` on
# 127.0.0.1 with the profile's flags. Each run is timed with /usr/bin/time (wall, CPU, peak RSS)
# under `timeout`. Prints a Markdown table per workload and writes it, with the machine's
# description and a chart, to docs/benchmarks.md and docs/benchmarks.svg.
# Run `scripts/compare.sh --help` for the profiles and flags.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=scripts/bench-lib.sh
source "$here/bench-lib.sh"
# shellcheck source=official-clients.sh
. "$here/official-clients.sh"
KEY="compare-local-key"

usage() {
  cat <<'EOF'
Usage: scripts/compare.sh [OPTIONS]

Uploads the same files through several uploaders to the same kind of local `avbatch serve`
(a fresh one per run, 127.0.0.1 only), then prints and writes docs/benchmarks.md + .svg.

Uploaders (--tools, comma-separated; default: all that fit the profile):
  avbatch   avbatch with its defaults, and at the peers' concurrency with the peers' chunk size
  python    PyPI api.video: one video after another, and in a ThreadPoolExecutor of --concurrency
  node      npm @api.video/nodejs-client: one after another, and --concurrency at once
  curl      split + one curl per chunk (Content-Range: bytes), one by one and with xargs -P
  iperf3    raw TCP baseline on 127.0.0.1 (loopback only; skipped, and said so, if not installed)

Profiles (--profile, comma-separated; default: loopback,wan):
  loopback     server --discard; workloads: one BIG file, and COUNT x SIZE files
  wan          server --discard --latency LAT --bandwidth BW (per connection); WAN_COUNT x WAN_SIZE
  ratelimited  server --discard --rate-limit RL; RL_COUNT x RL_SIZE; avbatch and the peers' pools
  small        server --discard --rate-limit off; SMALL_COUNT x SMALL_SIZE; avbatch and the peers'
               pools of --small-concurrency; the notes give the requests per video the server saw
  relay        rows read from a bucket or a web server (issue #16): scripts/relay-bench.sh, which
               measures `--relay` and pulls against local files on the same bytes, and the peak
               RSS of relaying one 4 GiB object (its options: RELAY_* variables, or run it alone)

Options (environment variable in brackets; sizes take K/M/G suffixes, binary: 64M = 64 MiB):
  --profile LIST         profiles to run                               [COMPARE_PROFILE]
  --tools LIST           uploaders to run                              [COMPARE_TOOLS]
  -c, --concurrency N    the peers' concurrency (default 4)            [COMPARE_CONCURRENCY]
  --chunk-size SIZE      chunk size for every tool but avbatch's
                         default run (default 50M, the clients' own)   [COMPARE_CHUNK]
  --big SIZE             loopback single file (default 4G)             [COMPARE_BIG]
  --count N --size SIZE  loopback many files (default 64 x 64M)        [COMPARE_COUNT, COMPARE_SIZE]
  --wan-count N --wan-size SIZE   wan files (default 16 x 64M)         [COMPARE_WAN_COUNT, _SIZE]
  --latency DUR          wan latency per request (default 50ms)        [COMPARE_LATENCY]
  --bandwidth BYTES      wan cap per connection (default 20MiB)        [COMPARE_BANDWIDTH]
  --rl-count N --rl-size SIZE     ratelimited files (default 150 x 1M) [COMPARE_RL_COUNT, _SIZE]
  --rate-limit SPEC      ratelimited server quota (default production) [COMPARE_RATE_LIMIT]
  --small-count N --small-size SIZE   small files (default 2000 x 10K) [COMPARE_SMALL_COUNT, _SIZE]
  --small-concurrency N  the peers' pools on small files (default 16)  [COMPARE_SMALL_CONCURRENCY]
  --quick                small sizes for a trial run (1 x 512M, 16 x 16M, wan 8 x 16M, rl 40 x 1M)
  --sparse               sparse files (truncate -s) instead of random bytes
  --timeout SECS         limit per run (default 900)                   [COMPARE_TIMEOUT]
  --repeat N             run every case N times, report the median run (default 1) [COMPARE_REPEAT]
  --wait-idle SECS       before each run, wait up to SECS for other processes to use under 25%
                         of the CPU (default 0: do not wait)           [COMPARE_WAIT_IDLE]
  --cache DIR            where files are kept between runs (default target/compare-cache)
  --out FILE             Markdown output (default docs/benchmarks.md; the chart goes beside it
                         with the .svg extension); --no-write to only print
  --bin FILE             use this avbatch binary instead of building   [AVBATCH_BIN]
  -h, --help             this help

Examples:
  scripts/compare.sh --quick                      # a trial of loopback and wan in a few minutes
  scripts/compare.sh --profile loopback           # 4 GiB + 64 x 64 MiB on loopback
  scripts/compare.sh --profile wan --latency 50ms --bandwidth 20MiB
EOF
}

profiles="${COMPARE_PROFILE:-loopback,wan}"
tools="${COMPARE_TOOLS:-avbatch,python,node,curl,iperf3}"
conc="${COMPARE_CONCURRENCY:-4}"
chunk="${COMPARE_CHUNK:-50M}"
big="${COMPARE_BIG:-4G}"
count="${COMPARE_COUNT:-64}"
size="${COMPARE_SIZE:-64M}"
wan_count="${COMPARE_WAN_COUNT:-16}"
wan_size="${COMPARE_WAN_SIZE:-64M}"
latency="${COMPARE_LATENCY:-50ms}"
bandwidth="${COMPARE_BANDWIDTH:-20MiB}"
rl_count="${COMPARE_RL_COUNT:-150}"
rl_size="${COMPARE_RL_SIZE:-1M}"
rate_limit="${COMPARE_RATE_LIMIT:-production}"
small_count="${COMPARE_SMALL_COUNT:-2000}"
small_size="${COMPARE_SMALL_SIZE:-10K}"
small_conc="${COMPARE_SMALL_CONCURRENCY:-16}"
run_timeout="${COMPARE_TIMEOUT:-900}"
repeat="${COMPARE_REPEAT:-1}"
wait_idle="${COMPARE_WAIT_IDLE:-0}"
cache="${COMPARE_CACHE:-$root/target/compare-cache}"
out="${COMPARE_OUT:-$root/docs/benchmarks.md}"
write=1
content=random
bin="${AVBATCH_BIN:-}"
command_line="scripts/compare.sh${*:+ $*}"

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --profile) need "$@"; profiles="$2"; shift ;;
    --tools) need "$@"; tools="$2"; shift ;;
    -c | --concurrency) need "$@"; conc="$2"; shift ;;
    --chunk-size) need "$@"; chunk="$2"; shift ;;
    --big) need "$@"; big="$2"; shift ;;
    --count) need "$@"; count="$2"; shift ;;
    --size) need "$@"; size="$2"; shift ;;
    --wan-count) need "$@"; wan_count="$2"; shift ;;
    --wan-size) need "$@"; wan_size="$2"; shift ;;
    --latency) need "$@"; latency="$2"; shift ;;
    --bandwidth) need "$@"; bandwidth="$2"; shift ;;
    --rl-count) need "$@"; rl_count="$2"; shift ;;
    --rl-size) need "$@"; rl_size="$2"; shift ;;
    --rate-limit) need "$@"; rate_limit="$2"; shift ;;
    --small-count) need "$@"; small_count="$2"; shift ;;
    --small-size) need "$@"; small_size="$2"; shift ;;
    --small-concurrency) need "$@"; small_conc="$2"; shift ;;
    --quick) big=512M; count=16; size=16M; wan_count=8; wan_size=16M; rl_count=40; rl_size=1M ;;
    --sparse) content=sparse ;;
    --timeout) need "$@"; run_timeout="$2"; shift ;;
    --repeat) need "$@"; repeat="$2"; shift ;;
    --wait-idle) need "$@"; wait_idle="$2"; shift ;;
    --cache) need "$@"; cache="$2"; shift ;;
    --out) need "$@"; out="$2"; shift ;;
    --no-write) write=0 ;;
    --bin) need "$@"; bin="$2"; shift ;;
    *) echo "error: unknown option \`$1\` (see --help)" >&2; exit 2 ;;
  esac
  shift
done

chunk_b=$(to_bytes "$chunk"); big_b=$(to_bytes "$big"); size_b=$(to_bytes "$size")
wan_size_b=$(to_bytes "$wan_size"); rl_size_b=$(to_bytes "$rl_size"); small_size_b=$(to_bytes "$small_size")
for n in "$conc" "$count" "$wan_count" "$rl_count" "$small_count" "$small_conc" "$run_timeout" "$repeat"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: \`$n\` is not a positive whole number" >&2; exit 2; }
done
[[ "$wait_idle" =~ ^[0-9]+$ ]] || { echo "error: --wait-idle takes whole seconds" >&2; exit 2; }
if [ "$chunk_b" -lt $((5 << 20)) ] || [ "$chunk_b" -gt $((128 << 20)) ]; then
  echo "error: --chunk-size must be 5M..128M (the official clients' range)" >&2; exit 2
fi
has_tool() { [[ ",$tools," == *",$1,"* ]]; }
for p in ${profiles//,/ }; do
  case "$p" in loopback | wan | ratelimited | small | relay) ;; *) echo "error: unknown profile \`$p\`" >&2; exit 2 ;; esac
done
# `relay` is a benchmark of its own, with its own table; it goes first, then the others.
if [[ ",$profiles," == *,relay,* ]]; then
  "$here/relay-bench.sh" --wait-idle "$wait_idle" ${bin:+--bin "$bin"}
  profiles="$(tr ',' '\n' <<<"$profiles" | { grep -vx relay || true; } | paste -sd, -)"
  [ -n "$profiles" ] || exit 0
fi
for t in ${tools//,/ }; do
  case "$t" in avbatch | python | node | curl | iperf3) ;; *) echo "error: unknown tool \`$t\`" >&2; exit 2 ;; esac
done
has_tool avbatch || { echo "error: --tools must include avbatch (the ratios are to it)" >&2; exit 2; }
for c in python3 curl split xargs timeout numfmt; do
  command -v "$c" >/dev/null || { echo "error: \`$c\` is needed" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "error: /usr/bin/time (GNU time) is needed" >&2; exit 2; }

work="$(mktemp -d -t avbatch-compare-XXXXXX)"
# The server's records go to memory where there is /dev/shm (every uploader alike): a test server
# making two inodes a video on this machine's disk would measure the disk, not the uploaders.
data_root="$work"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then data_root="$(mktemp -d /dev/shm/avbatch-compare-XXXXXX)"; fi
server_pid=""
iperf_pid=""
cleanup() {
  for p in "$server_pid" "$iperf_pid"; do
    if [ -n "$p" ]; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work"
  if [ "$data_root" != "$work" ]; then rm -rf "$data_root"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- avbatch: built here, then copied so a rebuild during the run cannot change it -------------
bin_from="built from this tree"
[ -n "$bin" ] && bin_from="given with --bin, not built"
if [ -z "$bin" ]; then
  say "cargo build --release"
  (cd "$root" && cargo build --release --quiet --bin avbatch)
  bin="$root/target/release/avbatch"
fi
cp "$bin" "$work/avbatch"
bin="$work/avbatch"
# avbatch's own defaults, for the labels of its default run: read from its help, not assumed.
upload_help="$("$bin" upload --help)"
help_default() { printf '%s\n' "$upload_help" | awk -v flag="$1 <" 'index($0, flag) {f = 1} f && /\[default:/ {gsub(/.*\[default: |\].*/, ""); print; exit}'; }
def_conc=$(help_default --concurrency)
# "[default: 16; 64 when the files average under 8 MiB, …]": the default for small files too.
def_conc_small=$(printf '%s\n' "$def_conc" | sed -n 's/^[0-9]*; \([0-9]*\) when the files average under \([0-9]*\) MiB.*/\1 \2/p')
def_conc=${def_conc%%[!0-9]*}
read -r def_conc_small small_below_mib <<<"${def_conc_small:-$def_conc 0}"
def_chunk=$(to_bytes "$(help_default --chunk-size)")
[[ "$def_conc" =~ ^[0-9]+$ ]] || { echo "error: could not read avbatch's default --concurrency from its help" >&2; exit 1; }

# --- the official clients, in the temporary folder ----------------------------------------------
py_version="" node_version=""
if has_tool python; then
  say "installing $PY_CLIENT into $work/venv"
  install_python_client "$work"
  py_version="$("$work/venv/bin/python" --version 2>&1), $("$work/venv/bin/pip" show api.video 2>/dev/null | sed -n 's/^Version: /api.video /p')"
fi
if has_tool node; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "error: node and npm are needed for --tools node" >&2; exit 2
  fi
  say "installing $NODE_CLIENT into $work/node"
  install_node_client "$work"
  node_version="node $(node --version), @api.video/nodejs-client $(node -p "require('$work/node/node_modules/@api.video/nodejs-client/package.json').version")"
fi
iperf_ok=0
if has_tool iperf3 && command -v iperf3 >/dev/null; then iperf_ok=1; fi

# --- the peers' drivers: each client used as its documentation shows -----------------------------
# Args: BASE_URL API_KEY MANIFEST CHUNK_BYTES CONCURRENCY. CONCURRENCY 1 = one video after
# another (the documented loop); more = a pool of that many. Prints "uploaded OK/TOTAL".
cat >"$work/peer_python.py" <<'EOF'
import concurrent.futures, csv, os, sys
import apivideo
from apivideo.api.videos_api import VideosApi
from apivideo.configuration import Configuration
from apivideo.model.video_creation_payload import VideoCreationPayload

base, key, manifest, chunk, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
folder = os.path.dirname(os.path.abspath(manifest))
rows = [(os.path.join(folder, r["path"]), r["title"]) for r in csv.DictReader(open(manifest, newline=""))]
client = apivideo.AuthenticatedApiClient(key, configuration=Configuration(chunk_size=chunk))
client.configuration.host = base  # the constructor sets ws.api.video; a custom host goes after it
with client:
    videos_api = VideosApi(client)

    def upload(row):
        path, title = row
        try:
            video = videos_api.create(VideoCreationPayload(title=title))
            with open(path, "rb") as file:
                videos_api.upload(video["video_id"], file)
            return True
        except Exception as e:  # the client has no retries: a failure is final
            print(f"failed {path}: {type(e).__name__}: {str(e)[:200]}", file=sys.stderr)
            return False

    if conc == 1:
        ok = sum(upload(r) for r in rows)
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as pool:
            ok = sum(pool.map(upload, rows))
print(f"uploaded {ok}/{len(rows)}")
sys.exit(0 if ok == len(rows) else 1)
EOF
cat >"$work/peer_node.js" <<'EOF'
const fs = require("fs");
const path = require("path");
const ApiVideoClient = require("@api.video/nodejs-client");
const [base, key, manifest, chunk, conc] = process.argv.slice(2);
const folder = path.dirname(path.resolve(manifest));
// The script writes a plain manifest (no quoted fields): path,title per line.
const rows = fs.readFileSync(manifest, "utf8").trim().split("\n").slice(1).map((l) => {
  const [p, title] = l.split(",");
  return { file: path.resolve(folder, p), title };
});
const client = new ApiVideoClient({ apiKey: key, baseUri: base, chunkSize: Number(chunk) });
let ok = 0;
async function upload({ file, title }) {
  try {
    const video = await client.videos.create({ title });
    await client.videos.upload(video.videoId, file);
    ok += 1;
  } catch (e) { // no retries in the client: a failure is final
    console.error(`failed ${file}: ${String((e && (e.message || e.title)) || e).slice(0, 200)}`);
  }
}
(async () => {
  if (Number(conc) === 1) {
    for (const row of rows) await upload(row);
  } else {
    let next = 0;
    const worker = async () => { while (next < rows.length) await upload(rows[next++]); };
    await Promise.all(Array.from({ length: Number(conc) }, worker));
  }
  console.log(`uploaded ${ok}/${rows.length}`);
  process.exit(ok === rows.length ? 0 : 1);
})();
EOF
# The raw method, per file: split it, create the video, then one curl per chunk, in order.
cat >"$work/curl_one.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
f="$1"; total=$(stat -c %s "$f")
d="$(mktemp -d "$SPLIT_DIR/s-XXXXXX")"
trap 'rm -rf "$d"' EXIT
split -b "$CHUNK" -d -a 5 "$f" "$d/part."
id=$(curl -sSf -u "$KEY:" -H 'Content-Type: application/json' -d "{\"title\":\"$(basename "$f")\"}" "$URL/videos" \
  | sed -n 's/.*"videoId":"\([^"]*\)".*/\1/p')
[ -n "$id" ] || { echo "failed $f: no videoId" >&2; exit 1; }
start=0
for p in "$d"/part.*; do
  n=$(stat -c %s "$p"); end=$((start + n - 1))
  curl -sSf -o /dev/null -u "$KEY:" -H "Content-Range: bytes $start-$end/$total" -F "file=@$p" "$URL/videos/$id/source" \
    || { echo "failed $f: chunk $start-$end" >&2; exit 1; }
  start=$((end + 1))
done
echo "OK $f"
EOF

# --- files, cached between runs ------------------------------------------------------------------
# make_files NAME N BYTES: files NAME/f-001.bin... and NAME/manifest.csv (path,title) in the cache.
make_files() {
  local dir="$cache/$content-$3" n="$2" bytes="$3" i f
  mkdir -p "$dir"
  for i in $(seq 1 "$n"); do
    f="$dir/f-$(printf %03d "$i").bin"
    if [ "$(stat -c %s "$f" 2>/dev/null || echo -1)" != "$bytes" ]; then
      if [ "$content" = sparse ]; then
        rm -f "$f"; truncate -s "$bytes" "$f"
      else
        head -c "$bytes" /dev/urandom >"$f.tmp" && mv "$f.tmp" "$f"
      fi
    fi
  done
  mkdir -p "$work/wl/$1"
  {
    echo "path,title"
    for i in $(seq 1 "$n"); do echo "$dir/f-$(printf %03d "$i").bin,$1 $i"; done
  } >"$work/wl/$1/manifest.csv"
  for i in $(seq 1 "$n"); do echo "$dir/f-$(printf %03d "$i").bin"; done >"$work/wl/$1/files.txt"
}

# --- the server: a fresh one per run, on 127.0.0.1 ----------------------------------------------
url=""
start_server() {
  rm -rf "$data_root/data" "$work/server.out" # so the address read below cannot be the last server's
  AVBATCH_SERVE_API_KEYS="$KEY" "$bin" serve --addr 127.0.0.1:0 --data "$data_root/data" "$@" >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  url=""
  for _ in $(seq 1 300); do
    url="$(sed -n 's/^listening on //p' "$work/server.out" 2>/dev/null | head -n 1)"
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "error: the server exited" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "error: the server did not report its address" >&2; exit 1; }
  case "$url" in http://127.0.0.1:*) ;; *) echo "error: the server is not on 127.0.0.1: $url" >&2; exit 1 ;; esac
}
# CPU seconds the process has used so far (user + system), from /proc.
proc_cpu() {
  local ticks
  ticks=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}') || true
  [ -n "$ticks" ] && awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }' || echo ""
}
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  server_pid=""
  rm -rf "$data_root/data"
}
busy_runs=0 total_runs=0

results="$work/results.tsv"
meta="$work/meta.tsv"
printf 'profile\tworkload\tcase\trep\ttool\tlabel\tconcurrency\tchunk\tfiles\tbytes\tfiles_ok\trc\twall\tuser\tsys\tmaxrss_kb\tserver_cpu\tnote\n' >"$results"

# run_case PROFILE WORKLOAD CASE TOOL LABEL CONC CHUNK NOTE SERVER -- COMMAND...: the timed runs of
# one case, --repeat times. SERVER is the server flags (a fresh `avbatch serve` for each run; @URL@
# in COMMAND becomes its address) or "iperf3" (a one-off iperf3 server; @PORT@ becomes its port).
run_case() {
  local profile=$1 wl=$2 case=$3 tool=$4 label=$5 c=$6 ch=$7 note0=$8 server=$9
  shift 10
  local files nfiles bytes log tfile rc ok server_cpu note rep a port served=""
  local -a cmd
  files="$work/wl/$wl/files.txt"
  nfiles=$(wc -l <"$files")
  bytes=$(xargs -d '\n' -a "$files" stat -c %s | awk '{s += $1} END {printf "%.0f\n", s}')
  for rep in $(seq 1 "$repeat"); do
    log="$work/$profile-$wl-$case-$rep.log" tfile="$work/$profile-$wl-$case-$rep.time"
    wait_idle
    total_runs=$((total_runs + 1))
    xargs -d '\n' -a "$files" cat >/dev/null # the same warm page cache for every tool
    server_cpu=""
    if [ "$server" = iperf3 ]; then
      port=$(free_port)
      iperf3 -s -1 -B 127.0.0.1 -p "$port" >"$work/iperf-server.log" 2>&1 &
      iperf_pid=$!
      for _ in $(seq 1 50); do grep -q 'listening' "$work/iperf-server.log" 2>/dev/null && break; sleep 0.1; done
    else
      # shellcheck disable=SC2086 # the server flags are words
      start_server $server
    fi
    cmd=()
    for a in "$@"; do a="${a//@URL@/$url}"; cmd+=("${a//@PORT@/${port:-}}"); done
    say "$profile/$wl: $label$([ "$repeat" -gt 1 ] && echo " (run $rep of $repeat)")"
    set +e
    /usr/bin/time -o "$tfile" -f '%e %U %S %M' timeout -k 10 "$run_timeout" "${cmd[@]}" >"$log" 2>&1
    rc=$?
    set -e
    if [ "$server" = iperf3 ]; then
      kill "$iperf_pid" 2>/dev/null || true; wait "$iperf_pid" 2>/dev/null || true; iperf_pid=""
    else
      server_cpu=$(proc_cpu "$server_pid")
      stop_server
      # The server's own count of the requests it was sent, printed as it stops.
      served=$(sed -n 's/^served \([0-9]*\) API requests.*/\1/p' "$work/server.out" | tail -n 1)
    fi
    case "$tool" in
      avbatch) ok=$(python3 -c 'import csv, sys
try: print(sum(1 for r in csv.DictReader(open(sys.argv[1], newline="")) if r["status"] == "uploaded"))
except OSError: print(0)' "$work/report.csv") ;;
      python | node) ok=$(sed -n 's/^uploaded \([0-9]*\)\/.*/\1/p' "$log" | tail -n 1) ;;
      curl) ok=$(grep -c '^OK ' "$log" || true) ;;
      *) ok="" ;;
    esac
    note=$note0
    [ "$rc" = 124 ] && note="${note:+$note; }timed out after ${run_timeout} s"
    if [ "$profile" = small ] && [ -n "$served" ]; then
      note="${note:+$note; }$served API requests, $(awk -v r="$served" -v f="$nfiles" 'BEGIN { printf "%.2f", r / f }') per video"
    fi
    if [ "$rc" != 0 ]; then
      echo "   exit $rc; last lines of its output:" >&2
      tail -n 5 "$log" | sed 's/^/   | /' >&2
    fi
    read -r wall user sys rss < <(tail -n 1 "$tfile")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$profile" "$wl" "$case" "$rep" "$tool" "$label" "$c" \
      "$ch" "$nfiles" "$bytes" "${ok:-}" "$rc" "$wall" "$user" "$sys" "$rss" "$server_cpu" "$note" >>"$results"
    rm -f "$work/report.csv"
  done
}

# run_workload PROFILE WORKLOAD "SERVER FLAGS": every selected tool on the workload.
run_workload() {
  local profile=$1 wl=$2 sflags=$3 manifest="$work/wl/$2/manifest.csv" nfiles
  nfiles=$(wc -l <"$work/wl/$wl/files.txt")
  local mib=$((chunk_b >> 20)) avg dconc=$def_conc
  avg=$(xargs stat -c %s <"$work/wl/$wl/files.txt" | awk '{s += $1} END {print int(s / NR)}')
  if [ "$avg" -lt $((small_below_mib << 20)) ]; then dconc=$def_conc_small; fi
  if has_tool avbatch; then
    run_case "$profile" "$wl" avbatch-default avbatch "avbatch (defaults: -c $dconc, $((def_chunk >> 20)) MiB parts)" "$dconc" "$def_chunk" "" "$sflags" -- \
      env AVBATCH_API_KEY="$KEY" "$bin" upload "$manifest" --base-url @URL@ -q --no-journal --report "$work/report.csv"
    run_case "$profile" "$wl" avbatch-peer avbatch "avbatch -c $conc --chunk-size ${mib}MiB" "$conc" "$chunk_b" "" "$sflags" -- \
      env AVBATCH_API_KEY="$KEY" "$bin" upload "$manifest" --base-url @URL@ -q --no-journal --report "$work/report.csv" \
      -c "$conc" --chunk-size "$chunk_b"
  fi
  # One by one, then the pool (with a single file the pool is the same run: skipped).
  local variants="1"
  [ "$nfiles" -gt 1 ] && variants="1 $conc"
  [ "$profile" = ratelimited ] || [ "$profile" = small ] && variants="$conc"
  local v how
  for v in $variants; do
    if has_tool python; then
      how="one by one"; [ "$v" -gt 1 ] && how="ThreadPoolExecutor($v)"
      run_case "$profile" "$wl" "python-$v" python "Python api.video, $how" "$v" "$chunk_b" "" "$sflags" -- \
        "$work/venv/bin/python" "$work/peer_python.py" @URL@ "$KEY" "$manifest" "$chunk_b" "$v"
    fi
    if has_tool node; then
      how="one by one"; [ "$v" -gt 1 ] && how="$v at once"
      run_case "$profile" "$wl" "node-$v" node "Node @api.video/nodejs-client, $how" "$v" "$chunk_b" "" "$sflags" -- \
        env NODE_PATH="$work/node/node_modules" node "$work/peer_node.js" @URL@ "$KEY" "$manifest" "$chunk_b" "$v"
    fi
    if has_tool curl && [ "$profile" != ratelimited ]; then
      how="one by one"; [ "$v" -gt 1 ] && how="xargs -P $v"
      mkdir -p "$work/split"
      run_case "$profile" "$wl" "curl-$v" curl "split + curl, $how" "$v" "$chunk_b" "split time included; peak RSS is the largest single process" "$sflags" -- \
        env URL=@URL@ KEY="$KEY" CHUNK="$chunk_b" SPLIT_DIR="$work/split" \
        xargs -d '\n' -a "$work/wl/$wl/files.txt" -P "$v" -n 1 bash "$work/curl_one.sh"
    fi
  done
  if [ "$profile" = loopback ] && has_tool iperf3; then
    local streams=1 bytes
    [ "$nfiles" -gt 1 ] && streams=$conc
    bytes=$(xargs -d '\n' -a "$work/wl/$wl/files.txt" stat -c %s | awk '{s += $1} END {printf "%.0f\n", s}')
    if [ "$iperf_ok" = 1 ]; then
      run_case "$profile" "$wl" iperf3 iperf3 "iperf3 raw TCP, $streams $([ "$streams" = 1 ] && echo stream || echo streams)" "$streams" "" \
        "the same number of bytes from memory, no HTTP" iperf3 -- iperf3 -c 127.0.0.1 -B 127.0.0.1 -p @PORT@ -n "$bytes" -P "$streams"
    else
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$profile" "$wl" iperf3 1 iperf3 \
        "iperf3 raw TCP" "$streams" "" "$nfiles" "$bytes" "" skipped "" "" "" "" "" "iperf3 is not installed: no raw TCP baseline" >>"$results"
    fi
  fi
}

# --- the machine and the versions -------------------------------------------------------------
{
  printf 'command\t%s\n' "$command_line"
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'cpu\t%s\n' "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
  printf 'nproc\t%s\n' "$(nproc)"
  printf 'memory\t%s\n' "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  printf 'kernel\t%s\n' "$(uname -srm)"
  printf 'os\t%s\n' "$(sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"')"
  printf 'avbatch\t%s (%s; tree at git %s)\n' "$("$bin" --version)" "$bin_from" "$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
  printf 'python\t%s\n' "${py_version:-not run}"
  printf 'node\t%s\n' "${node_version:-not run}"
  printf 'curl\t%s\n' "$(curl --version | head -n 1 | cut -d' ' -f1-2), $(split --version | head -n 1)"
  printf 'iperf3\t%s\n' "$( [ "$iperf_ok" = 1 ] && iperf3 --version | head -n 1 | cut -d' ' -f1-2 || echo 'not installed')"
  printf 'content\t%s\n' "$content"
  printf 'concurrency\t%s\n' "$conc"
  printf 'chunk\t%s\n' "$chunk_b"
  printf 'timeout\t%s\n' "$run_timeout"
  printf 'repeat\t%s\n' "$repeat"
  printf 'wait_idle\t%s\n' "$wait_idle"
  printf 'load.start\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$meta"

for profile in ${profiles//,/ }; do
  case "$profile" in
    loopback)
      sflags="--discard --rate-limit off"
      make_files big 1 "$big_b"
      make_files many "$count" "$size_b"
      printf 'server.loopback\t%s\n' "$sflags" >>"$meta"
      run_workload loopback big "$sflags"
      run_workload loopback many "$sflags"
      ;;
    wan)
      sflags="--discard --rate-limit off --latency $latency --bandwidth $bandwidth"
      make_files wan "$wan_count" "$wan_size_b"
      printf 'server.wan\t%s\n' "$sflags" >>"$meta"
      run_workload wan wan "$sflags"
      ;;
    small)
      sflags="--discard --rate-limit off"
      make_files small "$small_count" "$small_size_b"
      printf 'server.small\t%s\n' "$sflags" >>"$meta"
      tools_saved=$tools conc_saved=$conc
      tools=$(echo "$tools" | tr ',' '\n' | grep -v -x -e curl -e iperf3 | paste -sd, -)
      conc=$small_conc
      run_workload small small "$sflags"
      tools=$tools_saved conc=$conc_saved
      ;;
    ratelimited)
      sflags="--discard --rate-limit $rate_limit"
      make_files rl "$rl_count" "$rl_size_b"
      printf 'server.ratelimited\t%s\n' "$sflags" >>"$meta"
      tools_saved=$tools
      tools=$(echo "$tools" | tr ',' '\n' | grep -v -x -e curl -e iperf3 | paste -sd, -)
      run_workload ratelimited rl "$sflags"
      tools=$tools_saved
      ;;
  esac
done

printf 'load.end\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$meta"
printf 'busy_runs\t%s of %s\n' "$busy_runs" "$total_runs" >>"$meta"
args=(--results "$results" --meta "$meta")
if [ "$write" = 1 ]; then
  mkdir -p "$(dirname "$out")"
  args+=(--md "$out" --svg "${out%.md}.svg")
fi
if [ "$write" = 1 ]; then
  # The raw numbers, to render again with scripts/compare_report.py without measuring again.
  mkdir -p "$root/target/compare-results"
  cp "$results" "$meta" "$root/target/compare-results/"
fi
python3 "$here/compare_report.py" "${args[@]}"
