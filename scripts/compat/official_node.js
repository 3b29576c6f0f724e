// The official Node client (npm `@api.video/nodejs-client`), unchanged, against `avbatch serve`.
// Usage: node official_node.js BASE_URL API_KEY WORKDIR   (NODE_PATH must reach the client)
// Prints PASS/FAIL lines; exits non-zero if any check failed.
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const ApiVideoClient = require("@api.video/nodejs-client");

const MIB = 1024 * 1024;
const [base, key, work] = process.argv.slice(2);
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

  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL node: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
