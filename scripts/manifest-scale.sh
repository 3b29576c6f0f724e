#!/usr/bin/env bash
# Memory and speed of avbatch over manifests far larger than memory (issue #12): peak RSS of the
# uploading process (/usr/bin/time's %M, the kernel's high-water mark) and rows per second.
#   scripts/manifest-scale.sh dry  [ROWS] [FILES]   # `upload --dry-run`: the whole check (default 10 000 000 rows)
#   scripts/manifest-scale.sh real [ROWS] [FILES]   # a real run against `avbatch serve --discard --rate-limit off`
# Rows share FILES tiny files (default 500) and each has its own `id`, so the run measures the
# manifest, engine and report machinery rather than the disk. A real run makes 3 to 5 requests per
# row against a server on the same cores: 1 000 000 rows take tens of minutes, so it is bounded by
# TIMEOUT seconds (default 7200) and the row count is an argument. AVBATCH=path runs another build
# (an older one, to compare); the default is target/release/avbatch, built first.
# AUTH=key (default) uploads with an API key: per row a lookup by key, a create and the upload.
# AUTH=token uploads with a delegated token alone: one request per row (the manifest then has
# only `path` and `id`, as a token cannot apply other fields). The test server answers a lookup
# by key by scanning every video it holds, so with AUTH=key a run's time grows with the square
# of its rows; AUTH=token is what reaches 1 000 000 rows in minutes.
set -euo pipefail
MODE=${1:-dry}
case "$MODE" in
dry) ROWS=${2:-10000000} ;;
real) ROWS=${2:-1000000} ;;
*)
    echo "usage: $0 dry|real [ROWS] [FILES]" >&2
    exit 2
    ;;
esac
FILES=${3:-500}
AUTH=${AUTH:-key}
TIMEOUT=${TIMEOUT:-7200}
cd "$(dirname "$0")/.."
if [ -z "${AVBATCH:-}" ]; then
    cargo build --release --quiet
    AVBATCH=target/release/avbatch
fi
work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
python3 - "$work" "$ROWS" "$FILES" "$AUTH" <<'PY'
import os, sys
work, rows, files, auth = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.makedirs(f"{work}/v", exist_ok=True)
for i in range(files):
    with open(f"{work}/v/{i:05}.mp4", "wb") as f:
        f.write(b"x" * (1000 + i))
with open(f"{work}/manifest.csv", "w", buffering=1 << 20) as m:
    if auth == "token":
        m.write("path,id\n")
        for r in range(rows):
            m.write(f'v/{r % files:05}.mp4,row-{r}\n')
    else:
        m.write("path,id,title,tags,metadata,meta.source,public\n")
        for r in range(rows):
            m.write(f'v/{r % files:05}.mp4,row-{r},"Video {r}, take {r % 7}",a;b,k=v;n={r},cam-{r % 13},yes\n')
PY
echo "manifest: $ROWS rows over $FILES files ($(du -h "$work/manifest.csv" | cut -f1)); $(nproc) cores; $($AVBATCH --version)"

# Prints `MODE ROWS rows: wall S s, R rows/s, peak RSS M MiB` from /usr/bin/time's output.
summarise() {
    local times=$1
    local wall kib
    wall=$(sed -n 's/^wall \([0-9.]*\) s.*/\1/p' "$times")
    kib=$(sed -n 's/.*peak RSS \([0-9]*\) KiB.*/\1/p' "$times")
    cat "$times"
    awk -v m="$MODE${AUTH:+ ($AUTH)}" -v r="$ROWS" -v w="$wall" -v k="$kib" \
        'BEGIN { printf "%s %d rows: wall %.1f s, %.0f rows/s, peak RSS %.1f MiB\n", m, r, w, r / (w > 0 ? w : 1), k / 1024 }'
}

if [ "$MODE" = dry ]; then
    /usr/bin/time -o "$work/time" -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
        timeout "$TIMEOUT" "$AVBATCH" upload "$work/manifest.csv" --dry-run --env local >/dev/null 2>"$work/stderr" || {
        tail -n 20 "$work/stderr" >&2
        exit 1
    }
    grep 'manifest checked' "$work/stderr" || true
    summarise "$work/time"
    exit 0
fi

key="scale-$RANDOM$RANDOM"
mkdir -p "$work/data"
AVBATCH_SERVE_API_KEYS=$key "$AVBATCH" serve --addr 127.0.0.1:0 --discard --rate-limit off --data "$work/data" \
    >"$work/serve.out" 2>"$work/serve.err" &
server=$!
for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$work/serve.out")
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || {
    cat "$work/serve.err" >&2
    exit 1
}
auth=(AVBATCH_API_KEY="$key")
if [ "$AUTH" = token ]; then
    token=$(curl -sf -u "$key:" -H 'Content-Type: application/json' -d '{"ttl":0}' "$url/upload-tokens" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
    auth=(AVBATCH_UPLOAD_TOKEN="$token")
fi
echo "real run with AUTH=$AUTH against $url"
status=0
env "${auth[@]}" /usr/bin/time -o "$work/time" -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
    timeout "$TIMEOUT" "$AVBATCH" upload "$work/manifest.csv" --base-url "$url" --no-journal -q \
    --report "$work/report.csv" >/dev/null 2>"$work/stderr" || status=$?
tail -n 3 "$work/stderr"
[ "$status" -eq 0 ] || {
    echo "avbatch upload exited $status" >&2
    exit 1
}
uploaded=$(grep -c ',uploaded,' "$work/report.csv" || true)
echo "report: $(($(wc -l <"$work/report.csv") - 1)) rows, $uploaded uploaded"
summarise "$work/time"
