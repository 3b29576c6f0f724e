#!/usr/bin/env bash
# Validation speed of a 1 000 000-row manifest: `avbatch upload --dry-run` parses every row and
# checks every row's file (stat + open, in parallel) before it would send anything.
#   scripts/manifest-1m.sh [ROWS] [FILES]
# Rows point at FILES distinct small files (default 1000), so the run measures the manifest
# machinery and the file checks, not the disk. Prints avbatch's own rows/s line and /usr/bin/time.
set -euo pipefail
ROWS=${1:-1000000}
FILES=${2:-1000}
cd "$(dirname "$0")/.."
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$work" "$ROWS" "$FILES" <<'PY'
import os, sys
work, rows, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{work}/v", exist_ok=True)
for i in range(files):
    with open(f"{work}/v/{i:05}.mp4", "wb") as f:
        f.write(b"x" * (1000 + i))
with open(f"{work}/manifest.csv", "w") as m:
    m.write("path,id,title,tags,metadata,meta.source,public\n")
    for r in range(rows):
        m.write(f'v/{r % files:05}.mp4,row-{r},"Video {r}, take {r % 7}",a;b,k=v;n={r},cam-{r % 13},yes\n')
PY
echo "manifest: $ROWS rows over $FILES files ($(du -h "$work/manifest.csv" | cut -f1)); $(nproc) cores"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
    target/release/avbatch upload "$work/manifest.csv" --dry-run --env local >/dev/null
