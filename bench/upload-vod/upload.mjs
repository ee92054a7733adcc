// One tus upload over loopback: POST (creation, Upload-Length) then PATCHes of `chunkMiB`
// streamed from the file. Prints {"mbps": MB/s, "seconds", "bytes"}.
// Usage: node upload.mjs <creation endpoint> <file> <chunkMiB> [authorization header value]
import http from 'node:http';
import { createReadStream, statSync } from 'node:fs';

const [endpoint, file, chunkMiB, auth] = process.argv.slice(2);
const size = statSync(file).size;
const agent = new http.Agent({ keepAlive: true });

function request(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'tus-resumable': '1.0.0', ...(auth ? { authorization: auth } : {}), ...headers }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

const created = await request('POST', endpoint, { 'upload-length': String(size), 'content-length': '0' });
if (created.statusCode !== 201) throw new Error(`creation: HTTP ${created.statusCode}`);
const url = new URL(created.headers.location, endpoint).toString();
const chunk = Number(chunkMiB) * (1 << 20);
const t0 = process.hrtime.bigint();
for (let off = 0; off < size; off += chunk) {
  const end = Math.min(off + chunk, size);
  const res = await request(
    'PATCH',
    url,
    { 'upload-offset': String(off), 'content-type': 'application/offset+octet-stream', 'content-length': String(end - off) },
    createReadStream(file, { start: off, end: end - 1, highWaterMark: 1 << 20 }),
  );
  if (res.statusCode !== 204) throw new Error(`PATCH at ${off}: HTTP ${res.statusCode}`);
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
console.log(JSON.stringify({ mbps: size / 1e6 / secs, seconds: secs, bytes: size }));
agent.destroy();
