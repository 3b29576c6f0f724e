#!/usr/bin/env bash
# The official api.video clients, unchanged, against `avbatch serve` on 127.0.0.1.
#
# Installs PyPI `api.video` and npm `@api.video/nodejs-client` into a temporary folder, starts the
# server, and with each client authenticates, creates videos with metadata, uploads files of three
# chunks (plain, progressive and with an upload token), and checks every source's sha256 through
# assets.mp4; then uploads a thumbnail (a PNG made on the spot) and picks a frame, uploads
# captions and chapters, sets a default caption, lists, deletes, and compares what the server
# serves back (and keeps in DATA/videos/{id}/video.json) with what was sent, byte for byte, while
# the clients parse every answer into their models. Ends with "N passed, M failed"; exits
# non-zero on any failure.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=official-clients.sh
. "$here/official-clients.sh"

work="$(mktemp -d -t avbatch-compat-XXXXXX)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

bin="${AVBATCH_BIN:-}"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --quiet --bin avbatch)
  bin="$root/target/release/avbatch"
fi

echo "== installing $PY_CLIENT and $NODE_CLIENT into $work"
install_python_client "$work"
install_node_client "$work"

key="compat-$(date +%s)-$RANDOM"
AVBATCH_SERVE_API_KEYS="$key" "$bin" serve --addr 127.0.0.1:0 --data "$work/data" --rate-limit off >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
url=""
for _ in $(seq 1 300); do
  url="$(sed -n 's/^listening on //p' "$work/server.out" | head -n 1)"
  [ -n "$url" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err"; echo "the server exited"; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "the server did not report its address"; exit 1; }
echo "== avbatch serve at $url"

mkdir -p "$work/files"
set +e
"$work/venv/bin/python" "$here/compat/official_python.py" "$url" "$key" "$work/files" "$work/data" | tee "$work/results.txt"
NODE_PATH="$work/node/node_modules" node "$here/compat/official_node.js" "$url" "$key" "$work/files" "$work/data" | tee -a "$work/results.txt"
set -e

passed=$(grep -c '^PASS' "$work/results.txt" || true)
failed=$(grep -c '^FAIL' "$work/results.txt" || true)
# Both clients must have run all their checks: a crash before a check would otherwise go unseen.
expected=23
missing=$((expected - passed - failed))
if [ "$missing" -gt 0 ]; then
  echo "$missing check(s) never ran"
  failed=$((failed + missing))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
