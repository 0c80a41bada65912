// Where the local page's static build lives (kept apart from src/web/build.ts so the server can find the folder
// without loading esbuild, a development dependency).

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from dist/src/web/paths.js (or src/web/paths.ts under a TypeScript runner). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []));

/** `npm run build:web` writes the page here; `sana serve` serves it at /local. */
export const DEFAULT_WEB_DIR = path.join(REPO_ROOT, 'dist-web');
