#!/usr/bin/env python3
"""Several `avbatch upload` runs at once over one manifest, each with its own journal, against
`avbatch serve` with optional faults: how many videos the account holds for the rows, trial after
trial, and whether the runs' reports name the same video for each row (issue #25, point 4).

    scripts/concurrent-runs.py [--trials 10] [--rows 30] [--runs 3] [--urls]
                               [--serve-args "--gateway-error-rate 0.2"] [--bin target/release/avbatch]

Files: a fifth of them 11 MiB, the rest 300 KiB, cut in 5 MiB parts. With --urls the rows are
URLs of a local web server (python's http.server on 127.0.0.1), which api.video's double pulls.
Everything runs on 127.0.0.1 and stops by itself (each run is bounded by --limit seconds).
Prints one line per trial and a summary; exits 1 if any trial left other than one video per row
or runs that disagree.
"""

import argparse
import csv
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

KEY = "concurrent-runs-key-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url):
    """A GET of the API, tried again through the double's injected gateway errors."""
    for attempt in range(50):
        req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token(url)})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code < 500 or attempt == 49:
                raise
            time.sleep(0.05)


_tokens = {}


def token(url):
    base = url.split("/videos")[0]
    if base not in _tokens:
        _tokens.clear()
        body = json.dumps({"apiKey": KEY}).encode()
        req = urllib.request.Request(
            base + "/auth/api-key", data=body, headers={"Content-Type": "application/json"}
        )
        for attempt in range(50):
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    _tokens[base] = json.load(r)["access_token"]
                break
            except urllib.error.HTTPError as e:
                if e.code < 500 or attempt == 49:
                    raise
                time.sleep(0.05)
    return _tokens[base]


def all_videos(base):
    out, page = [], 1
    while True:
        got = get(f"{base}/videos?pageSize=100&currentPage={page}")
        out.extend(got["data"])
        if page >= got["pagination"]["pagesTotal"]:
            return out
        page += 1


def start_web(root):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=root, **k)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def make_files(folder, rows):
    names = []
    for i in range(rows):
        size = 11 * 1024 * 1024 + i if i % 5 == 0 else 300 * 1024 + i
        name = f"f{i}.mp4"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(bytes([(i * 7 + j) % 251 for j in range(251)]) * (size // 251) + b"x" * (size % 251))
        names.append(name)
    return names


def trial(args, n):
    work = tempfile.mkdtemp(prefix="avbatch-concurrent-")
    got = run_trial(args, work, n)
    if args.keep_wrong and got["videos"] != args.rows:
        print(f"  kept {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return got


def run_trial(args, work, n):
    media = os.path.join(work, "media")
    os.mkdir(media)
    names = make_files(media, args.rows)
    web = start_web(media) if args.urls else None
    manifest = os.path.join(work, "manifest.csv")
    with open(manifest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "path", "title"])
        for i, name in enumerate(names):
            where = (
                f"http://127.0.0.1:{web.server_address[1]}/{name}"
                if web
                else os.path.join(media, name)
            )
            w.writerow([f"row-{i}", where, f"Video {i}"])
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = subprocess.Popen(
        [args.bin, "serve", "--addr", f"127.0.0.1:{port}", "--data", os.path.join(work, "data"),
         "--api-key", KEY, "--latency", "20ms", "--seed", str(1000 + n),
         "--request-log", os.path.join(work, "requests.jsonl")]
        + args.serve_args.split(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                token(base)
                break
            except OSError:
                time.sleep(0.1)
        runs, t0 = [], time.time()
        for k in range(args.runs):
            env = dict(os.environ, AVBATCH_API_KEY=KEY)
            runs.append(subprocess.Popen(
                [args.bin, "upload", manifest, "--base-url", base, "--chunk-size", "5MiB", "-q",
                 "--journal", os.path.join(work, f"run{k}.sqlite"),
                 "--report", os.path.join(work, f"run{k}.json"), "-c", "4"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            ))
        codes = []
        for r in runs:
            try:
                _, err = r.communicate(timeout=args.limit)
            except subprocess.TimeoutExpired:
                r.kill()
                _, err = r.communicate()
            codes.append(r.returncode)
            if args.verbose:
                print(f"  run ended {r.returncode} after {time.time() - t0:.1f} s: "
                      f"{err.decode(errors='replace').strip()[-600:]}", flush=True)
        if args.urls:
            # Pulls land after the runs end: wait until nothing is ingesting.
            deadline = time.time() + 60
            while time.time() < deadline:
                busy = [v for v in all_videos(base) if not status_done(base, v["videoId"])]
                if not busy:
                    break
                time.sleep(0.5)
        videos = all_videos(base)
        complete = [v for v in videos if status_done(base, v["videoId"])]
        reports = []
        held = {v["videoId"] for v in videos}
        for k in range(args.runs):
            try:
                with open(os.path.join(work, f"run{k}.json")) as f:
                    rows = json.load(f)["rows"]
            except (OSError, ValueError):
                rows = []
            reports.append({r["id"]: r.get("videoId") for r in rows})
            if len(videos) != args.rows:
                # What each run said of the rows whose video the account does not hold.
                for r in rows:
                    if r.get("videoId") not in held:
                        print(f"  run {k} row {r['id']}: {r['status']} {r.get('videoId')} "
                              f"note={r.get('note')} error={r.get('error')}", flush=True)
        agree = all(rep == reports[0] for rep in reports[1:])
        return {"videos": len(videos), "complete": len(complete), "codes": codes, "agree": agree}
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        if web:
            web.shutdown()


def status_done(base, vid):
    st = get(f"{base}/videos/{vid}/status")
    return st.get("ingest", {}).get("status") in ("uploaded", "ingested")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--rows", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--urls", action="store_true")
    p.add_argument("--serve-args", default="")
    p.add_argument("--limit", type=int, default=300)
    p.add_argument("--bin", default="target/release/avbatch")
    p.add_argument("--verbose", action="store_true", help="print each run's last words")
    p.add_argument("--keep-wrong", action="store_true", help="keep a wrong trial's folder")
    args = p.parse_args()
    bad = 0
    counts = []
    for n in range(args.trials):
        t0 = time.time()
        got = trial(args, n)
        ok = got["videos"] == args.rows and got["complete"] == args.rows and got["agree"]
        bad += not ok
        counts.append(got["videos"])
        print(f"trial {n + 1}: {got['videos']} videos ({got['complete']} complete) for "
              f"{args.rows} rows, exit codes {got['codes']}, reports agree: {got['agree']}, "
              f"{time.time() - t0:.1f} s{'' if ok else '  <-- WRONG'}", flush=True)
    print(f"{args.trials - bad}/{args.trials} trials left one video per row; "
          f"videos per trial: {counts}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
