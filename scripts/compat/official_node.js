// The official Node client (npm `@api.video/nodejs-client`), unchanged, against `avbatch serve`.
// Usage: node official_node.js BASE_URL API_KEY WORKDIR DATA   (NODE_PATH must reach the client;
// DATA: the server's --data)
// Prints PASS/FAIL lines; exits non-zero if any check failed.
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const ApiVideoClient = require("@api.video/nodejs-client");

const MIB = 1024 * 1024;
const [base, key, work, data] = process.argv.slice(2);
const zlib = require("zlib");
let failures = 0;

function check(ok, what) {
  console.log(`${ok ? "PASS" : "FAIL"} node: ${what}`);
  if (!ok) failures += 1;
}

function makeFile(name, size, seed) {
  const p = path.join(work, name);
  const block = Buffer.alloc(MIB);
  for (let i = 0; i < MIB; i += 32) crypto.createHash("sha256").update(`${seed}:${i}`).digest().copy(block, i);
  const fd = fs.openSync(p, "w");
  for (let left = size; left > 0; left -= Math.min(MIB, left)) fs.writeSync(fd, block, 0, Math.min(MIB, left));
  fs.closeSync(fd);
  return p;
}

const sha = (buf) => crypto.createHash("sha256").update(buf).digest("hex");

async function fetchBytes(url) {
  const r = await fetch(url);
  return Buffer.from(await r.arrayBuffer());
}

async function fetchTyped(url) {
  const r = await fetch(url);
  return { status: r.status, type: r.headers.get("content-type"), body: Buffer.from(await r.arrayBuffer()) };
}

// A valid RGB PNG: signature, IHDR, one IDAT (zlib), IEND, each chunk with its CRC.
function png(width, height, seed) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (kind, body) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(body.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([Buffer.from(kind), body])));
    return Buffer.concat([len, Buffer.from(kind), body, tail]);
  };
  const rows = [];
  for (let y = 0; y < height; y++) {
    rows.push(Buffer.from([0]));
    rows.push(Buffer.from(Array.from({ length: width * 3 }, (_, x) => (x * 7 + y * 13 + seed) % 256)));
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", zlib.deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

// What the double stored for a video (DATA is its data folder).
const videoRecord = (id) => JSON.parse(fs.readFileSync(path.join(data, "videos", id, "video.json"), "utf8"));

function split(file, partSize) {
  const data = fs.readFileSync(file);
  const parts = [];
  for (let off = 0, n = 1; off < data.length; off += partSize, n++) {
    const p = `${file}.part${n}`;
    fs.writeFileSync(p, data.subarray(off, off + partSize));
    parts.push(p);
  }
  return parts;
}

(async () => {
  const client = new ApiVideoClient({ apiKey: key, baseUri: base, chunkSize: 5 * MIB });

  // 1. Create with metadata, upload a 3-chunk file with the client's own chunking.
  const src = makeFile("node-chunked.mp4", 12 * MIB + 1234, 1);
  const video = await client.videos.create({
    title: "Node chunked",
    tags: ["compat", "node"],
    metadata: [{ key: "client", value: "node" }],
  });
  check(video.metadata.length === 1 && video.metadata[0].value === "node", "create keeps metadata");
  const uploaded = await client.videos.upload(video.videoId, src);
  check(sha(await fetchBytes(uploaded.assets.mp4)) === sha(fs.readFileSync(src)), "chunked upload (3 parts of 5 MiB) sha256 matches through assets.mp4");

  // 2. A small file: one request with no Content-Range, the file part named after the file.
  const small = makeFile("node small.mov", 300 * 1024, 2);
  const v2 = await client.videos.create({ title: "Node small" });
  const up2 = await client.videos.upload(v2.videoId, small);
  check(sha(await fetchBytes(up2.assets.mp4)) === sha(fs.readFileSync(small)), "single-request upload sha256 matches");

  // 3. Progressive session.
  const src3 = makeFile("node-progressive.mp4", 11 * MIB + 5, 3);
  const v3 = await client.videos.create({ title: "Node progressive" });
  const session = client.videos.createUploadProgressiveSession(v3.videoId);
  const parts = split(src3, 5 * MIB);
  for (const p of parts.slice(0, -1)) await session.uploadPart(p);
  const last = await session.uploadLastPart(parts[parts.length - 1]);
  check(sha(await fetchBytes(last.assets.mp4)) === sha(fs.readFileSync(src3)), "progressive session sha256 matches");

  // 4. Delegated upload with an upload token.
  const token = await client.uploadTokens.createToken({ ttl: 3600 });
  const src4 = makeFile("node-token.mp4", 10 * MIB + 3, 4);
  const tsession = client.videos.createUploadWithUploadTokenProgressiveSession(token.token);
  const tparts = split(src4, 5 * MIB);
  for (const p of tparts.slice(0, -1)) await tsession.uploadPart(p);
  const tlast = await tsession.uploadLastPart(tparts[tparts.length - 1]);
  check(sha(await fetchBytes(tlast.assets.mp4)) === sha(fs.readFileSync(src4)), "upload-token session sha256 matches");

  // 5. Assets: a thumbnail image, then a picked frame; captions and chapters.
  const v5 = await client.videos.create({ title: "Node assets" });
  const image = png(23, 11, 5);
  const imagePath = path.join(work, "node-thumb.png");
  fs.writeFileSync(imagePath, image);
  const withThumb = await client.videos.uploadThumbnail(v5.videoId, imagePath);
  const thumb = await fetchTyped(withThumb.assets.thumbnail);
  check(thumb.status === 200 && thumb.type === "image/png" && thumb.body.equals(image),
    "thumbnail upload parsed as Video; assets.thumbnail serves the PNG byte for byte");
  const picked = await client.videos.pickThumbnail(v5.videoId, { timecode: "00:00:03" });
  const kept = videoRecord(v5.videoId).thumbnail;
  check(picked.videoId === v5.videoId && kept.kind === "picked" && kept.timecode === "00:00:03",
    "pickThumbnail parsed as Video; the double kept the timecode");
  const vttEn = Buffer.from("WEBVTT\n\n00:00.000 --> 00:01.000\nHello \u00e9\n");
  const vttDe = Buffer.from("WEBVTT\n\n00:00.000 --> 00:01.000\nHallo\n");
  const enPath = path.join(work, "node-en.vtt");
  fs.writeFileSync(enPath, vttEn);
  const en = await client.captions.upload(v5.videoId, "en", enPath);
  // A Buffer goes out as field "file", file name "file"; a path as field and file name = basename.
  await client.captions.upload(v5.videoId, "de", vttDe);
  const enServed = await fetchTyped(en.src);
  check(en.srclang === "en" && en.languageName === "English" && en._default === false &&
    enServed.status === 200 && enServed.type.startsWith("text/vtt") && enServed.body.equals(vttEn),
    "caption upload parsed as Caption; src serves the file byte for byte");
  const madeDefault = await client.captions.update(v5.videoId, "de", { _default: true });
  const p1 = await client.captions.list({ videoId: v5.videoId, pageSize: 1 });
  const p2 = await client.captions.list({ videoId: v5.videoId, pageSize: 1, currentPage: 2 });
  check(madeDefault._default === true &&
    [...p1.data, ...p2.data].map((c) => c.srclang).join() === "de,en" &&
    p1.pagination.pagesTotal === 2 && p1.data[0]._default === true,
    "caption set default and listed over two pages (CaptionsListResponse)");
  const vttCh = Buffer.from("WEBVTT\n\n00:00.000 --> 00:05.000\nIntro\n");
  const chPath = path.join(work, "node-chapters.vtt");
  fs.writeFileSync(chPath, vttCh);
  const ch = await client.chapters.upload(v5.videoId, "en", chPath);
  const chList = await client.chapters.list({ videoId: v5.videoId });
  check(ch.language === "en" && (await fetchBytes(ch.src)).equals(vttCh) &&
    chList.data.map((c) => c.language).join() === "en",
    "chapters upload parsed as Chapter, listed, src serves the file byte for byte");
  await client.captions.delete(v5.videoId, "en");
  const after = await client.captions.list({ videoId: v5.videoId });
  const gone = await fetchTyped(en.src);
  check(after.data.map((c) => c.srclang).join() === "de" && gone.status === 404,
    "caption deleted: gone from the list and from the asset host");

  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL node: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
