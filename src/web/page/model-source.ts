// Where the page's model comes from, written into the in-memory file system (src/web/shims/fs.ts) under
// /models/<name>/ so the library's loaders read it as a diffusers folder:
// - the bundled default model from the page's own origin: files.json (written by the build) lists each file with
//   its size and SHA-256; files are fetched with a byte-count progress and kept in Cache Storage under a URL that
//   carries the hash, so a second visit reads them from the cache and a changed model is fetched again;
// - a diffusers-layout folder the visitor picks (<input type=file webkitdirectory>): nothing leaves the machine.
// ref: docs/browser.md

import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';

export interface ModelFileEntry {
  /** Path inside the model folder, '/'-separated (e.g. "transformer/config.json"). */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface ModelManifest {
  readonly name: string;
  readonly files: readonly ModelFileEntry[];
}

export interface LoadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** Files read from Cache Storage / fetched from the network so far. */
  fromCache: number;
  fromNetwork: number;
}

export interface LoadedModel {
  /** Folder in the in-memory file system. */
  readonly folder: string;
  readonly name: string;
  readonly totalBytes: number;
  readonly fromCache: number;
  readonly fromNetwork: number;
}

const CACHE_NAME = 'sana-ts-models-v1';
/** Weight files are the only ones worth a progress bar; small JSON files come along. */
const MODEL_ROOT = '/models';

function place(folder: string, rel: string, bytes: Uint8Array): void {
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) throw new Error(`model file "${rel}": not a plain relative path`);
  const file = path.join(folder, ...parts);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, bytes);
}

async function readBody(response: Response, url: string, onBytes: (n: number) => void): Promise<Uint8Array> {
  if (!response.ok || !response.body) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.byteLength;
    onBytes(value.byteLength);
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** Cache Storage exists only in secure contexts (https, localhost, 127.0.0.1); elsewhere every visit fetches. */
async function openCache(): Promise<Cache | undefined> {
  try {
    return globalThis.caches ? await caches.open(CACHE_NAME) : undefined;
  } catch {
    return undefined;
  }
}

/** Loads the model whose files.json is at `baseUrl` (e.g. "models/default/"), from the cache where it can. */
export async function loadModelFromOrigin(baseUrl: string, onProgress: (p: LoadProgress) => void): Promise<LoadedModel> {
  const base = new URL(baseUrl, location.href);
  const manifestUrl = new URL('files.json', base);
  const manifestResponse = await fetch(manifestUrl, { cache: 'no-cache' });
  if (!manifestResponse.ok) throw new Error(`${manifestUrl}: HTTP ${manifestResponse.status} (build the page with npm run build:web)`);
  const manifest = (await manifestResponse.json()) as ModelManifest;
  const folder = `${MODEL_ROOT}/${manifest.name}`;
  const cache = await openCache();
  const progress: LoadProgress = { loadedBytes: 0, totalBytes: manifest.files.reduce((s, f) => s + f.size, 0), fromCache: 0, fromNetwork: 0 };
  onProgress({ ...progress });
  for (const entry of manifest.files) {
    // the hash in the URL is the cache key: a rebuilt model with changed weights is fetched again
    const url = new URL(`${entry.path}?sha256=${entry.sha256}`, base).href;
    let bytes: Uint8Array | undefined;
    const cached = await cache?.match(url);
    if (cached) {
      bytes = new Uint8Array(await cached.arrayBuffer());
      if (bytes.byteLength !== entry.size || (await sha256Hex(bytes)) !== entry.sha256) bytes = undefined; // damaged entry
      else {
        progress.loadedBytes += entry.size;
        progress.fromCache++;
      }
    }
    if (!bytes) {
      bytes = await readBody(await fetch(url), url, (n) => {
        progress.loadedBytes += n;
        onProgress({ ...progress });
      });
      if (bytes.byteLength !== entry.size) throw new Error(`${url}: ${bytes.byteLength} bytes, files.json says ${entry.size}`);
      const hash = await sha256Hex(bytes);
      if (hash !== entry.sha256) throw new Error(`${url}: SHA-256 ${hash} differs from files.json (${entry.sha256})`);
      await cache?.put(url, new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }));
      progress.fromNetwork++;
    }
    place(folder, entry.path, bytes);
    onProgress({ ...progress });
  }
  return { folder, name: manifest.name, totalBytes: progress.totalBytes, fromCache: progress.fromCache, fromNetwork: progress.fromNetwork };
}

/**
 * A diffusers-layout folder the visitor picked with <input type=file webkitdirectory>: each File's
 * webkitRelativePath is "<folder>/<component>/<file>". Only what a SANA pipeline reads is copied into memory.
 */
export async function loadModelFromFiles(files: readonly File[], onProgress: (p: LoadProgress) => void): Promise<LoadedModel> {
  const wanted = files.filter((f) => /\.(json|safetensors)$/.test(f.name) && (f.webkitRelativePath || f.name).split('/').length >= 2);
  if (!wanted.length) throw new Error('the chosen folder has no .json or .safetensors files (pick a diffusers pipeline folder with model_index.json)');
  const top = wanted[0].webkitRelativePath.split('/')[0];
  if (!wanted.some((f) => f.webkitRelativePath === `${top}/model_index.json`)) {
    throw new Error(`the folder "${top}" has no model_index.json: pick a diffusers pipeline folder (its top level)`);
  }
  const folder = `${MODEL_ROOT}/picked-${Date.now()}`;
  const progress: LoadProgress = { loadedBytes: 0, totalBytes: wanted.reduce((s, f) => s + f.size, 0), fromCache: 0, fromNetwork: 0 };
  for (const file of wanted) {
    const rel = file.webkitRelativePath.split('/').slice(1).join('/');
    place(folder, rel, new Uint8Array(await file.arrayBuffer()));
    progress.loadedBytes += file.size;
    onProgress({ ...progress });
  }
  return { folder, name: top, totalBytes: progress.totalBytes, fromCache: 0, fromNetwork: 0 };
}
