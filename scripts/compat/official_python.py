"""The official Python client (PyPI `api.video`), unchanged, against `avbatch serve`.

Usage: python official_python.py BASE_URL API_KEY WORKDIR
Prints PASS/FAIL lines; exits non-zero if any check failed.
"""
import hashlib
import os
import sys
import urllib.request

import apivideo
from apivideo.api.upload_tokens_api import UploadTokensApi
from apivideo.api.videos_api import VideosApi
from apivideo.configuration import Configuration
from apivideo.model.metadata import Metadata
from apivideo.model.token_creation_payload import TokenCreationPayload
from apivideo.model.video_creation_payload import VideoCreationPayload

MIB = 1024 * 1024
base, key, work = sys.argv[1], sys.argv[2], sys.argv[3]
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

sys.exit(1 if failures else 0)
