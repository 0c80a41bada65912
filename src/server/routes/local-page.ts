// The local page at /local: the static files `npm run build:web` writes (dist-web/), where the visitor's browser
// runs the whole pipeline. Each path segment must be a plain file name, so no request reaches outside the folder.
// The page is cross-origin isolated (COOP + COEP), which gives onnxruntime-web's wasm its threads.
// ref: docs/browser.md

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { DEFAULT_WEB_DIR } from '../../web/paths.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.safetensors': 'application/octet-stream',
};

/** wasm needs 'wasm-unsafe-eval'; onnxruntime-web's threads are workers of the page's own script. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; img-src 'self' data: blob:; style-src 'self'; connect-src 'self' blob:; frame-ancestors 'none'";

const SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

export function registerLocalPageRoutes(app: FastifyInstance, webDir = DEFAULT_WEB_DIR): void {
  app.get('/local', async (request, reply) => {
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : '';
    return reply.redirect(`/local/${query}`);
  });
  app.get('/local/*', async (request, reply) => {
    const rel = (request.params as { '*': string })['*'] || 'index.html';
    const segments = rel.split('/');
    const file = segments.every((s) => SEGMENT.test(s)) ? path.join(webDir, ...segments) : undefined;
    const stat = file ? fs.statSync(file, { throwIfNoEntry: false }) : undefined;
    if (!file || !stat?.isFile()) {
      const built = fs.existsSync(path.join(webDir, 'index.html'));
      return reply
        .status(404)
        .type('text/plain; charset=utf-8')
        .send(built ? `no such file: /local/${rel}` : `the local page is not built: run npm run build:web (it writes ${webDir})`);
    }
    return reply
      .type(TYPES[path.extname(file)] ?? 'application/octet-stream')
      .header('Cache-Control', 'no-cache')
      .header('Cross-Origin-Opener-Policy', 'same-origin')
      .header('Cross-Origin-Embedder-Policy', 'require-corp')
      .header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
      .header('X-Content-Type-Options', 'nosniff')
      .send(fs.createReadStream(file));
  });
}
