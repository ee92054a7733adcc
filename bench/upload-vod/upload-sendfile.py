"""One tus upload over loopback with the cheapest client at hand: POST (creation,
Upload-Length), then PATCHes of `chunk_mib` on one kept-alive connection, each body sent with
sendfile(2) straight from the page cache (no user-space copy on the client side).
Prints {"mbps": MB/s, "seconds", "bytes"}; the clock runs from the first PATCH to the last
answer, as in upload.mjs.
Usage: python3 upload-sendfile.py <creation endpoint> <file> <chunk_mib> [authorization]
"""

import http.client
import json
import os
import sys
import time
from urllib.parse import urljoin, urlsplit

endpoint, path, chunk_mib = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = sys.argv[4] if len(sys.argv) > 4 else None
size = os.path.getsize(path)
u = urlsplit(endpoint)
conn = http.client.HTTPConnection(u.hostname, u.port)
base = {"tus-resumable": "1.0.0"}
if auth:
    base["authorization"] = auth
conn.request("POST", u.path, headers={**base, "upload-length": str(size), "content-length": "0"})
res = conn.getresponse()
res.read()
if res.status != 201:
    sys.exit(f"creation: HTTP {res.status}")
target = urlsplit(urljoin(endpoint, res.headers["location"]))
target = target.path + (f"?{target.query}" if target.query else "")
chunk = chunk_mib << 20
with open(path, "rb") as f:
    t0 = time.perf_counter()
    for off in range(0, size, chunk):
        n = min(chunk, size - off)
        conn.putrequest("PATCH", target, skip_accept_encoding=True)
        for k, v in {
            **base,
            "upload-offset": str(off),
            "content-type": "application/offset+octet-stream",
            "content-length": str(n),
        }.items():
            conn.putheader(k, v)
        conn.endheaders()
        sent = conn.sock.sendfile(f, off, n)
        if sent != n:
            sys.exit(f"PATCH at {off}: sent {sent} of {n} bytes")
        res = conn.getresponse()
        res.read()
        if res.status != 204:
            sys.exit(f"PATCH at {off}: HTTP {res.status}")
    secs = time.perf_counter() - t0
print(json.dumps({"mbps": round(size / 1e6 / secs, 1), "seconds": round(secs, 3), "bytes": size}, separators=(",", ":")))
conn.close()
