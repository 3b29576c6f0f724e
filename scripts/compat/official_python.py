"""The official Python client (PyPI `api.video`), unchanged, against `avbatch serve`.

Usage: python official_python.py BASE_URL API_KEY WORKDIR DATA   (DATA: the server's --data)
Prints PASS/FAIL lines; exits non-zero if any check failed.
"""
import hashlib
import json
import os
import struct
import sys
import urllib.error
import urllib.request
import zlib

import apivideo
from apivideo.api.captions_api import CaptionsApi
from apivideo.api.chapters_api import ChaptersApi
from apivideo.api.upload_tokens_api import UploadTokensApi
from apivideo.api.videos_api import VideosApi
from apivideo.configuration import Configuration
from apivideo.model.metadata import Metadata
from apivideo.model.captions_update_payload import CaptionsUpdatePayload
from apivideo.model.token_creation_payload import TokenCreationPayload
from apivideo.model.video_thumbnail_pick_payload import VideoThumbnailPickPayload
from apivideo.model.video_creation_payload import VideoCreationPayload

MIB = 1024 * 1024
base, key, work = sys.argv[1], sys.argv[2], sys.argv[3]
data = sys.argv[4] if len(sys.argv) > 4 else None
failures = 0


def check(ok, what):
    global failures
    print(("PASS" if ok else "FAIL") + " python: " + what, flush=True)
    if not ok:
        failures += 1


def make_file(name, size, seed):
    path = os.path.join(work, name)
    block = hashlib.sha256(str(seed).encode()).digest() * (MIB // 32)
    with open(path, "wb") as f:
        left = size
        i = 0
        while left:
            chunk = (i.to_bytes(8, "big") + block)[: min(len(block), left)]
            f.write(chunk)
            left -= len(chunk)
            i += 1
    return path


def sha(path_or_bytes):
    if isinstance(path_or_bytes, bytes):
        return hashlib.sha256(path_or_bytes).hexdigest()
    with open(path_or_bytes, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def fetch(url):
    with urllib.request.urlopen(url) as r:
        return r.read()


def fetch_typed(url):
    """(status, Content-Type, bytes) of a GET; 404 and other errors as a status."""
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def png(width, height, seed):
    """A valid RGB PNG, written with zlib: signature, IHDR, one IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )
    rows = b"".join(
        b"\x00" + bytes((x * 7 + y * 13 + seed) % 256 for x in range(width * 3))
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def video_record(video_id):
    """What the double stored for a video (its data folder is the script's DATA)."""
    with open(os.path.join(data, "videos", video_id, "video.json")) as f:
        return json.load(f)


def split(path, part_size):
    paths = []
    with open(path, "rb") as f:
        n = 0
        while True:
            data = f.read(part_size)
            if not data:
                break
            n += 1
            p = f"{path}.part{n}"
            with open(p, "wb") as out:
                out.write(data)
            paths.append(p)
    return paths


client = apivideo.AuthenticatedApiClient(key, configuration=Configuration(chunk_size=5 * MIB))
# The constructor points the client at ws.api.video; the host must be set after it and before
# connecting (official-clients.md §1).
client.configuration.host = base
with client:
    videos = VideosApi(client)

    # 1. Create with metadata, upload a 3-chunk file with the client's own chunking (part N/M).
    src = make_file("python-chunked.mp4", 12 * MIB + 4321, 1)
    video = videos.create(
        VideoCreationPayload(
            title="Python chunked",
            description="official client",
            tags=["compat", "python"],
            metadata=[Metadata(key="client", value="python"), Metadata(key="case", value="chunked")],
        )
    )
    meta = {m["key"]: m["value"] for m in video["metadata"]}
    check(meta == {"client": "python", "case": "chunked"}, "create keeps metadata")
    uploaded = videos.upload(video["video_id"], open(src, "rb"))
    check(uploaded["video_id"] == video["video_id"], "upload returns the Video")
    check(sha(fetch(uploaded["assets"]["mp4"])) == sha(src), "chunked upload (3 parts of 5 MiB) sha256 matches through assets.mp4")
    status = videos.get_status(video["video_id"])
    check(list(status["ingest"]["received_parts"]["parts"]) == [1, 2, 3], "status lists parts 1, 2, 3")

    # 2. Progressive session: part 1/*, part 2/*, part 3/3.
    src2 = make_file("python-progressive.mov", 11 * MIB + 99, 2)
    video2 = videos.create(VideoCreationPayload(title="Python progressive"))
    session = videos.create_upload_progressive_session(video2["video_id"])
    parts = split(src2, 5 * MIB)
    for p in parts[:-1]:
        session.uploadPart(open(p, "rb"))
    last = session.uploadLastPart(open(parts[-1], "rb"))
    check(sha(fetch(last["assets"]["mp4"])) == sha(src2), "progressive session sha256 matches")

    # 3. Delegated upload: an upload token and the token progressive session.
    token = UploadTokensApi(client).create_token(TokenCreationPayload(ttl=3600))
    src3 = make_file("python-token.mp4", 10 * MIB + 7, 3)
    tsession = videos.create_upload_with_upload_token_progressive_session(token["token"])
    parts = split(src3, 5 * MIB)
    for p in parts[:-1]:
        tsession.uploadPart(open(p, "rb"))
    tlast = tsession.uploadLastPart(open(parts[-1], "rb"))
    check(sha(fetch(tlast["assets"]["mp4"])) == sha(src3), "upload-token session sha256 matches")

    # 4. Assets: a thumbnail image, then a picked frame; captions and chapters.
    video4 = videos.create(VideoCreationPayload(title="Python assets"))
    vid = video4["video_id"]
    image = png(31, 17, 4)
    image_path = os.path.join(work, "python-thumb.png")
    with open(image_path, "wb") as f:
        f.write(image)
    with_thumb = videos.upload_thumbnail(vid, open(image_path, "rb"))
    status, ctype, served = fetch_typed(with_thumb["assets"]["thumbnail"])
    check(
        status == 200 and ctype == "image/png" and served == image,
        "thumbnail upload parsed as Video; assets.thumbnail serves the PNG byte for byte",
    )
    picked = videos.pick_thumbnail(vid, VideoThumbnailPickPayload(timecode="00:00:02.5"))
    record = video_record(vid)
    check(
        picked["video_id"] == vid
        and record.get("thumbnail") == {"kind": "picked", "timecode": "00:00:02.5"},
        "pick_thumbnail parsed as Video; the double kept the timecode",
    )
    captions = CaptionsApi(client)
    vtt_en = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello \xc3\xa9\n"
    vtt_fr = b"WEBVTT\n\n00:00.000 --> 00:01.000\nBonjour\n"
    paths = {}
    for lang, body in (("en", vtt_en), ("fr", vtt_fr)):
        paths[lang] = os.path.join(work, f"python-{lang}.vtt")
        with open(paths[lang], "wb") as f:
            f.write(body)
    en = captions.upload(vid, "en", open(paths["en"], "rb"))
    captions.upload(vid, "fr", open(paths["fr"], "rb"))
    status, ctype, served = fetch_typed(en["src"])
    check(
        en["srclang"] == "en" and en["language_name"] == "English" and en["default"] is False
        and status == 200 and ctype.startswith("text/vtt") and served == vtt_en,
        "caption upload parsed as Caption; src serves the file byte for byte",
    )
    made_default = captions.update(vid, "fr", CaptionsUpdatePayload(default=True))
    listed = captions.list(vid, page_size=1)
    page2 = captions.list(vid, page_size=1, current_page=2)
    check(
        made_default["default"] is True
        and [c["srclang"] for c in listed["data"] + page2["data"]] == ["en", "fr"]
        and listed["pagination"]["pages_total"] == 2
        and page2["data"][0]["default"] is True,
        "caption set default and listed over two pages (CaptionsListResponse)",
    )
    chapters = ChaptersApi(client)
    vtt_ch = b"WEBVTT\n\n00:00.000 --> 00:05.000\nIntro\n"
    ch_path = os.path.join(work, "python-chapters.vtt")
    with open(ch_path, "wb") as f:
        f.write(vtt_ch)
    ch = chapters.upload(vid, "en", open(ch_path, "rb"))
    ch_list = chapters.list(vid)
    check(
        ch["language"] == "en" and fetch(ch["src"]) == vtt_ch
        and [c["language"] for c in ch_list["data"]] == ["en"],
        "chapters upload parsed as Chapter, listed, src serves the file byte for byte",
    )
    captions.delete(vid, "en")
    after = captions.list(vid)
    status, _, _ = fetch_typed(en["src"])
    check(
        [c["srclang"] for c in after["data"]] == ["fr"] and status == 404,
        "caption deleted: gone from the list and from the asset host",
    )

sys.exit(1 if failures else 0)
