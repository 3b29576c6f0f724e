#!/usr/bin/env python3
"""Turns the measurements of scripts/compare.sh into Markdown tables and an SVG chart.

Usage: compare_report.py --results RESULTS.tsv --meta META.tsv [--md FILE.md --svg FILE.svg]

Prints the tables on stdout; with --md/--svg also writes docs/benchmarks.md and its chart.
Every ratio is computed from rows of the same results file, that is of the same run. Standard
library only.
"""
import argparse
import csv
import html
import os

PROFILE_TEXT = {
    "loopback": "Loopback: the bare cost of each uploader. The server checks and counts the bytes and "
    "stores nothing (`--discard`), so client and server share the machine's cores and the client's "
    "own CPU cost decides its speed.",
    "wan": "WAN-like: every request waits `--latency` and every connection is capped at `--bandwidth` "
    "each way, as a long link would. Speed then comes from how many connections an uploader keeps "
    "busy and how little it waits between requests.",
    "small": "Small videos: thousands of tiny files, no limits, the server stores nothing. Each video "
    "costs its requests' round trips, not its bytes: files/s and the requests each uploader needs per "
    "video (counted by the server, in the notes) decide.",
    "ratelimited": "Rate-limited: the server enforces api.video's quotas (`--rate-limit`) and answers "
    "`429` when a bucket is empty, so the quota, not the link, sets the shortest possible run. The official "
    "clients have no retries, so a `429` fails the video.",
}
COLORS = {"avbatch": "#1565c0", "python": "#f9a825", "node": "#43a047", "curl": "#8d6e63", "iperf3": "#9e9e9e"}


def human_bytes(n):
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if n == int(n) else f"{n:.1f} {unit}"
        n /= 1024


def fnum(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def load(results_path, meta_path):
    with open(meta_path, newline="") as f:
        meta = dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
    with open(results_path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        files, size = int(r["files"]), int(r["bytes"])
        r["files_n"], r["bytes_n"] = files, size
        r["skipped"] = r["rc"] == "skipped"
        if r["skipped"]:
            r.update(ok=None, wall=None, cpu=None, rss=None, mbps=None, fps=None, scpu=None)
            continue
        wall = float(r["wall"]) if r["wall"] else None
        ok = int(r["files_ok"]) if r["files_ok"] not in ("", None) else (files if r["rc"] == "0" else 0)
        sent = size if r["tool"] == "iperf3" and r["rc"] == "0" else size * ok // max(files, 1)
        r["ok"] = ok
        r["wall"] = wall
        r["cpu"] = float(r["user"]) + float(r["sys"]) if r["user"] else None
        r["rss"] = int(r["maxrss_kb"]) / 1024 if r["maxrss_kb"] else None
        r["mbps"] = sent / 1e6 / wall if wall else None
        r["fps"] = ok / wall if wall and r["tool"] != "iperf3" else None
        r["scpu"] = float(r["server_cpu"]) if r["server_cpu"] else None
    # Repeated runs of one case: keep the run with the median MB/s (a failed run counts as the
    # slowest), and the MB/s range.
    cases = {}
    for r in rows:
        cases.setdefault((r["profile"], r["workload"], r["case"]), []).append(r)
    groups = {}
    for (profile, wl, _), runs in cases.items():
        runs.sort(key=lambda r: r["mbps"] or 0)
        pick = runs[len(runs) // 2]
        speeds = [r["mbps"] for r in runs if r["mbps"] is not None]
        pick["runs"] = len(runs)
        pick["range"] = (min(speeds), max(speeds)) if len(speeds) > 1 else None
        groups.setdefault((profile, wl), []).append(pick)
    return meta, groups


def describe(rows):
    r = rows[0]
    n, total = r["files_n"], r["bytes_n"]
    return f"1 × {human_bytes(total)}" if n == 1 else f"{n} × {human_bytes(total // n)} = {human_bytes(total)}"


def spread(r):
    if not r.get("range"):
        return ""
    lo, hi = r["range"]
    d = 0 if hi >= 100 else 1
    return f" ({lo:,.{d}f}–{hi:,.{d}f})"


def table(rows, conc):
    ref = next((r for r in rows if r["case"] == "avbatch-peer"), None)
    # The reference is avbatch at the peers' concurrency of this workload (the small profile's
    # pools are larger than the others').
    conc = ref.get("concurrency", conc) if ref else conc
    out = [
        f"| uploader | at once | chunk | files ok | wall s | MB/s | files/s | CPU s | peak RSS MiB | server CPU s | MB/s ÷ avbatch -c {conc} |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        if r["skipped"]:
            out.append(f"| {r['label']} | | | | | skipped: {r['note']} | | | | | |")
            continue
        chunk = human_bytes(int(r["chunk"])) if r["chunk"] else "–"
        files = "–" if r["tool"] == "iperf3" else f"{r['ok']}/{r['files_n']}"
        rel = ratio(r["mbps"], ref["mbps"] if ref else None)
        if r["tool"] != "iperf3" and r["ok"] != r["files_n"]:
            rel = None  # a run that gave up on some videos is not a speed to compare
        label = f"**{r['label']}**" if r["tool"] == "avbatch" else r["label"]
        if r["rc"] not in ("0", "1") or (r["tool"] == "iperf3" and r["rc"] != "0"):
            label += f" (exit {r['rc']})"
        out.append(
            f"| {label} | {r['concurrency']} | {chunk} | {files} | {fnum(r['wall'], 2)} | {fnum(r['mbps'])}{spread(r)} | "
            f"{fnum(r['fps'], 2)} | {fnum(r['cpu'], 2)} | {fnum(r['rss'], 0)} | {fnum(r['scpu'], 2)} | "
            f"{'–' if rel is None else f'{rel:.2f}×'} |"
        )
    return "\n".join(out)


def comparisons(profile, rows, conc):
    by = {r["case"]: r for r in rows if not r["skipped"]}
    lines = []
    peer, default = by.get("avbatch-peer"), by.get("avbatch-default")

    def failed(r):
        return "" if r["tool"] == "iperf3" or r["ok"] == r["files_n"] else f" ({r['files_n'] - r['ok']} of {r['files_n']} files failed)"

    def times(x):
        return "–" if x is None else f"{x:.2f}×"

    multi = rows[0]["files_n"] > 1
    official = [by[c] for c in ((f"python-{conc}", f"node-{conc}") if multi else ("python-1", "node-1")) if c in by]
    incomplete = [r for r in official if r["ok"] != r["files_n"]]
    if peer and incomplete:
        done = f"avbatch -c {conc} uploaded {peer['ok']} of {peer['files_n']} in {fnum(peer['wall'])} s"
        if default:
            done += f", avbatch defaults {default['ok']} of {default['files_n']} in {fnum(default['wall'])} s"
        lines.append(
            f"- **Completed uploads**: {done}; "
            + "; ".join(f"{r['label']}: {r['ok']} of {r['files_n']} in {fnum(r['wall'])} s" for r in incomplete)
            + ". An uploader that drops videos has no speed worth comparing: the ratio column is left empty for it."
        )
    official = [r for r in official if r["ok"] == r["files_n"]]
    if peer and official:
        best = max(official, key=lambda r: r["mbps"] or 0)
        which = "at the same concurrency" if multi else "(one file, so one by one)"
        lines.append(
            f"- **avbatch -c {conc} vs the best official client {which}**, {best['label']}{failed(best)}; "
            f"avbatch ÷ client: throughput {times(ratio(peer['mbps'], best['mbps']))}, "
            f"CPU seconds {times(ratio(peer['cpu'], best['cpu']))}, "
            f"peak RSS {times(ratio(peer['rss'], best['rss']))} "
            f"({fnum(peer['mbps'])} vs {fnum(best['mbps'])} MB/s, {fnum(peer['cpu'], 2)} vs {fnum(best['cpu'], 2)} CPU s, "
            f"{fnum(peer['rss'], 0)} vs {fnum(best['rss'], 0)} MiB)."
        )
    if default:
        for case in ("python-1", "node-1", "curl-1"):
            if case in by:
                r = by[case]
                lines.append(
                    f"- **avbatch defaults vs {r['label']}**{failed(r)}: throughput "
                    f"{times(ratio(default['mbps'], r['mbps']))} ({fnum(default['wall'])} s vs {fnum(r['wall'])} s wall)."
                )
    curl = by.get(f"curl-{conc}") if multi else by.get("curl-1")
    if peer and curl:
        lines.append(
            f"- **avbatch -c {conc} vs {curl['label']}** (the same bytes, the same server): throughput "
            f"{times(ratio(peer['mbps'], curl['mbps']))}, CPU seconds {times(ratio(peer['cpu'], curl['cpu']))} "
            f"({fnum(peer['cpu'], 2)} vs {fnum(curl['cpu'], 2)} s)."
        )
    ip = next((r for r in rows if r["tool"] == "iperf3"), None)
    if ip is not None:
        if ip["skipped"] or ip["mbps"] is None:
            lines.append(f"- Raw TCP baseline: not measured ({ip['note'] or 'iperf3 failed'}).")
        else:
            best_av = max((r for r in (peer, default) if r), key=lambda r: r["mbps"] or 0, default=None)
            if best_av:
                lines.append(
                    f"- **Raw TCP (iperf3, {ip['concurrency']} {'stream' if ip['concurrency'] == '1' else 'streams'})**: {fnum(ip['mbps'])} MB/s; "
                    f"{best_av['label']} ran at {100 * best_av['mbps'] / ip['mbps']:.0f}% of it, through HTTP, "
                    f"multipart and the server's checks"
                    + (
                        ": at loopback TCP's ceiling, within the run-to-run spread (iperf3 is one run of a noisy baseline, not a hard limit)."
                        if best_av["mbps"] >= 0.9 * ip["mbps"]
                        else "."
                    )
                )
    if profile == "ratelimited":
        for r in rows:
            if r["tool"] != "avbatch" and not r["skipped"] and r["ok"] != r["files_n"]:
                lines.append(f"- {r['label']}: {r['files_n'] - r['ok']} of {r['files_n']} videos failed (the client does not retry a `429`).")
    return "\n".join(lines)


def svg_chart(meta, groups):
    width, label_w, bar_w, row_h, pad = 980, 360, 470, 24, 16
    parts, y = [], 58
    for (profile, wl), rows in groups.items():
        shown = [r for r in rows if not r["skipped"] and r["mbps"] is not None]
        if not shown:
            continue
        complete = [r for r in shown if r["tool"] == "iperf3" or r["ok"] == r["files_n"]]
        top = max((r["mbps"] for r in complete), default=1) or 1
        parts.append(
            f'<text x="{pad}" y="{y + 16}" font-size="15" font-weight="bold">{html.escape(profile)}: '
            f"{html.escape(describe(rows))}"
            f'<tspan dx="12" font-size="12" font-weight="normal" fill="#555">avbatch serve {html.escape(meta.get("server." + profile, ""))}</tspan></text>'
        )
        y += 26
        for r in shown:
            if r["tool"] != "iperf3" and r["ok"] != r["files_n"]:
                parts.append(
                    f'<text x="{label_w - 8}" y="{y + 16}" font-size="13" text-anchor="end">{html.escape(r["label"])}</text>'
                    f'<text x="{label_w}" y="{y + 16}" font-size="13" fill="#c62828">no bar: gave up on '
                    f'{r["files_n"] - r["ok"]} of {r["files_n"]} videos</text>'
                )
                y += row_h
                continue
            w = max(1.0, bar_w * r["mbps"] / top)
            color = COLORS.get(r["tool"], "#607d8b")
            weight = ' font-weight="bold"' if r["tool"] == "avbatch" else ""
            parts.append(
                f'<text x="{label_w - 8}" y="{y + 16}" font-size="13" text-anchor="end"{weight}>{html.escape(r["label"])}</text>'
                f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{color}" rx="2"/>'
                f'<text x="{label_w + w + 6:.1f}" y="{y + 16}" font-size="13"{weight}>{r["mbps"]:,.{0 if r["mbps"] >= 100 else 1}f} MB/s</text>'
            )
            y += row_h
        y += 14
    height = y + 30
    footer = f"{meta.get('cpu', '')}, {meta.get('nproc', '?')} cores, {meta.get('memory', '')}; {meta.get('date', '')}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="Helvetica, Arial, sans-serif">\n'
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
        f'<text x="{pad}" y="28" font-size="18" font-weight="bold">Upload throughput to a local avbatch serve, MB/s (longer is better)</text>\n'
        f'<text x="{pad}" y="48" font-size="12" fill="#555">Bars of one panel share a scale; panels do not. '
        f'Blue: avbatch; yellow: Python api.video; green: Node client; brown: split + curl; grey: raw TCP.</text>\n'
        + "\n".join(parts)
        + f'\n<text x="{pad}" y="{height - 12}" font-size="11" fill="#777">{html.escape(footer)}</text>\n</svg>\n'
    )


def markdown(meta, groups, svg_name):
    conc = meta.get("concurrency", "?")
    chunk = human_bytes(int(meta.get("chunk", "0")))
    d = next((r for rows in groups.values() for r in rows if r["case"] == "avbatch-default"), None)
    dconc = d["concurrency"] if d else "?"
    dchunk = human_bytes(int(d["chunk"])) if d and d["chunk"] else "?"
    out = [
        "# Benchmarks: avbatch against the official clients and curl",
        "",
        "Generated by `scripts/compare.sh` (issue #6); rerun it to refresh this page. Every number below "
        "comes from one run of the script, on this machine, and each ratio compares rows of the same run.",
        "",
        f"```sh\n{meta.get('command', 'scripts/compare.sh')}\n```",
        "",
    ]
    if svg_name:
        out += [f"![Upload throughput per uploader, MB/s]({svg_name})", ""]
    out += [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| date | {meta.get('date', '')} |",
        f"| CPU | {meta.get('cpu', '')}, {meta.get('nproc', '')} cores (`nproc`) |",
        f"| memory | {meta.get('memory', '')} |",
        f"| kernel, OS | {meta.get('kernel', '')}, {meta.get('os', '')} |",
        f"| avbatch | {meta.get('avbatch', '')} |",
        f"| Python client | {meta.get('python', '')} |",
        f"| Node client | {meta.get('node', '')} |",
        f"| raw method | {meta.get('curl', '')} |",
        f"| raw TCP | {meta.get('iperf3', '')} |",
        f"| load average (1, 5, 15 min) | {meta.get('load.start', '?')} at the start, {meta.get('load.end', '?')} at the end |",
        "",
        "## Method",
        "",
        f"- Every run gets a fresh `avbatch serve` on 127.0.0.1 with the profile's flags (below), so no run "
        "inherits another's videos, connections or rate-limit buckets; the files are read once before "
        f"each run so every uploader starts from the same warm page cache. File content: {meta.get('content', '')}.",
        f"- **avbatch (defaults)** is `avbatch upload MANIFEST --base-url URL -q --no-journal`: {dconc} videos at "
        f"once, {dchunk} parts. **avbatch -c {conc}** runs at the peers' concurrency with their chunk size.",
        "- **Python api.video** and **Node @api.video/nodejs-client** are used as their documentation shows: "
        "`create` then `upload(videoId, file)`, one video after another; then the same call in a "
        f"`ThreadPoolExecutor({conc})` (Python) or {conc} promises pulling from one queue (Node). Both send "
        "their chunks in order, one request at a time per video.",
        "- **split + curl** is the raw method: `split -b CHUNK`, `curl -u KEY: POST /videos`, then one "
        "`curl -F file=@chunk -H 'Content-Range: bytes FROM-TO/TOTAL'` per chunk in order; several files "
        "through `xargs -P`. The time includes `split` writing the chunks out.",
        f"- Chunk size: {chunk} for every uploader where it can be set (the official clients' default), "
        f"except avbatch's default run ({dchunk}).",
        "- Measured with `/usr/bin/time` around the uploader (under `timeout "
        f"{meta.get('timeout', '')}`): wall seconds, CPU seconds (user + system, children included) and peak "
        "RSS. For `xargs` + `curl` the peak RSS is that of the largest single process, not the sum. "
        "**server CPU s** is what the server process used during the run (from `/proc`). "
        "MB/s = 10⁶ bytes per second of wall time, counting only the files that were uploaded.",
        (f"- Before each run the script waited (up to {meta['wait_idle']} s) for other processes to use under 25% of the CPU"
         + (f"; {meta['busy_runs']} runs started with the machine still busy after that wait, so their numbers include "
            "contention (the MB/s ranges show how much)." if meta.get("busy_runs", "0 of").split()[0] != "0" else ".")
         if meta.get("wait_idle", "0") != "0" else "- The script did not wait for the machine to be idle (`--wait-idle 0`)."),
        f"- Runs per case: {meta.get('repeat', '1')}"
        + ("; each row is the run with the median MB/s (the faster of the middle two for an even count), and the MB/s range of all runs follows in brackets." if meta.get("repeat", "1") != "1" else "."),
        "",
    ]
    for profile in dict.fromkeys(p for p, _ in groups):
        out += [f"## {profile}", "", PROFILE_TEXT.get(profile, ""), "", f"Server: `avbatch serve {meta.get('server.' + profile, '')}`", ""]
        for (p, wl), rows in groups.items():
            if p != profile:
                continue
            out += [f"### {describe(rows)}", "", table(rows, conc), ""]
            comp = comparisons(profile, rows, conc)
            if comp:
                out += [comp, ""]
            notes = [r for r in rows if r["note"] and not r["skipped"] and "split time" not in r["note"]]
            for r in notes:
                out.append(f"- {r['label']}: {r['note']}.")
            if rows[0]["files_n"] == 1:
                out.append("- One file: the pool variants of the peers would repeat the one-by-one run, so they are not run.")
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--md")
    ap.add_argument("--svg")
    a = ap.parse_args()
    meta, groups = load(a.results, a.meta)
    conc = meta.get("concurrency", "?")
    for (profile, wl), rows in groups.items():
        print(f"\n## {profile}: {describe(rows)}\n")
        print(table(rows, conc))
        comp = comparisons(profile, rows, conc)
        if comp:
            print("\n" + comp)
    if a.svg:
        with open(a.svg, "w") as f:
            f.write(svg_chart(meta, groups))
    if a.md:
        svg_name = os.path.relpath(a.svg, os.path.dirname(os.path.abspath(a.md))) if a.svg else None
        with open(a.md, "w") as f:
            f.write(markdown(meta, groups, svg_name))
        print(f"\nwrote {a.md}" + (f" and {a.svg}" if a.svg else ""))


if __name__ == "__main__":
    main()
