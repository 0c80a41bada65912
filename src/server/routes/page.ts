// The web page: three files read once at start-up and served from memory under fixed routes, so no part of a
// request's path ever reaches the file system. ref: docs/server.md "The page"

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';

/** The page's sources (no build step): src/server/page, found from the compiled dist/src/server/routes. */
export const PAGE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'src', 'server', 'page');

const ASSETS: ReadonlyArray<{ route: string; file: string; type: string }> = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/assets/page.js', file: 'page.js', type: 'text/javascript; charset=utf-8' },
  { route: '/assets/page.css', file: 'page.css', type: 'text/css; charset=utf-8' },
];

/** Scripts and styles only from this origin; images also from data: (previews) and blob: (fetched results). */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

export function registerPageRoutes(app: FastifyInstance, pageDir = PAGE_DIR): void {
  for (const asset of ASSETS) {
    const file = path.join(pageDir, asset.file);
    let body: Buffer;
    try {
      body = fs.readFileSync(file);
    } catch (e) {
      throw new Error(`the web page's ${asset.file} is missing from ${pageDir} (${(e as NodeJS.ErrnoException).code ?? e})`);
    }
    app.get(asset.route, async (_request, reply) =>
      reply
        .type(asset.type)
        .header('Cache-Control', 'no-cache')
        .header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
        .header('X-Content-Type-Options', 'nosniff')
        .send(body),
    );
  }
  app.get('/favicon.ico', async (_request, reply) => reply.status(204).send());
}
