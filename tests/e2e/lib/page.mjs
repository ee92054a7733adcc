// Serves the test page (and the browser-side modules in this folder) from a tiny HTTP server on
// 127.0.0.1: loopback http is a secure context, which WebTransport requires.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ClutchCall e2e</title>
<script type="module">
  import { moqtSetupOverWebTransport } from '/lib/webtransport-check.mjs';
  window.moqtSetupOverWebTransport = moqtSetupOverWebTransport;
  window.pageReady = true;
</script>
`;

const MODULES = new Set(['moqt-wire.mjs', 'webtransport-check.mjs']);

/**
 * Starts the page server. `routes` maps extra paths to handlers `(req, res) => void`.
 * Returns { url, close() }.
 */
export async function servePage({ routes = {} } = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    try {
      if (path === '/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(PAGE);
      } else if (path.startsWith('/lib/') && MODULES.has(path.slice(5))) {
        const body = await readFile(join(here, path.slice(5)));
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        res.end(body);
      } else if (path === '/favicon.ico') {
        res.writeHead(204).end();
      } else if (routes[path]) {
        await routes[path](req, res);
      } else {
        res.writeHead(404).end();
      }
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
