// Serves web/ over HTTP on a loopback port chosen at run time, with the same URL paths turnkey
// serves it under (see web/README.md): the demo page at /, /turnkey.js, and socket.io-client's
// browser builds from web/node_modules. Only for the local browser tests in this folder; it
// has no API, no Socket.IO and no TURN: those come from a real turnkey.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

export const webDir = normalize(join(dirname(fileURLToPath(import.meta.url)), '..'));

const kSocketIoDist = join(webDir, 'node_modules', 'socket.io-client', 'dist');

// URL path -> file, for the files that do not sit at the same path under web/.
const kMapped = new Map([
  ['/', join(webDir, 'index.html')],
  ['/socket.io.min.js', join(kSocketIoDist, 'socket.io.min.js')],
  ['/socket.io.min.js.map', join(kSocketIoDist, 'socket.io.min.js.map')],
  ['/socket.io.esm.min.js', join(kSocketIoDist, 'socket.io.esm.min.js')],
  ['/socket.io.esm.min.js.map', join(kSocketIoDist, 'socket.io.esm.min.js.map')],
]);

const kPublic = new Set(['/index.html', '/app.js', '/style.css', '/turnkey.js', '/turnkey.d.ts']);

const kTypes = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.ts': 'text/plain; charset=utf-8',
};

/**
 * Starts the server. `extra` maps more URL paths to {type, body} (test pages). Resolves with
 * {url, close()}.
 */
export async function startStaticServer(extra = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (extra[path]) {
      res.writeHead(200, { 'Content-Type': extra[path].type, 'Cache-Control': 'no-store' });
      res.end(extra[path].body);
      return;
    }
    const file = kMapped.get(path) ?? (kPublic.has(path) ? join(webDir, path) : null);
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, {
        'Content-Type': kTypes[extname(file)] ?? 'application/octet-stream',
        'Cache-Control': 'no-store',
      });
      res.end(body);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
