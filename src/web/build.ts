// Builds the local page as plain static files (default: dist-web/): the browser bundle of the library and the page
// (esbuild), index.html and page.css, onnxruntime-web's wasm binary, and the bundled default model with its
// files.json (size and SHA-256 per file, which the page uses for its progress bar and cache keys). Any static file
// server can serve the folder; `sana serve` serves it at /local. `npm run build:web` runs this.
// The Node/browser split lives here and in src/web/shims/: Node modules the library imports are mapped to
// browser-safe stand-ins (memfs for node:fs, path-browserify, pngjs's own browser build, stubs for what the page
// never calls).
// ref: docs/browser.md, DESIGN.md §2

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

import { DEFAULT_WEB_DIR, REPO_ROOT } from './paths.js';

export { DEFAULT_WEB_DIR };

const WEB_SRC = path.join(REPO_ROOT, 'src', 'web');
const SHIMS = path.join(WEB_SRC, 'shims');
/**
 * onnxruntime-web's wasm build with the WebGPU provider (JSEP): its loader (which its worker threads start from too)
 * and its binary, fetched from ort/ (the page sets env.wasm.wasmPaths there).
 */
const ORT_FILES = ['ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

export interface WebBuildResult {
  readonly outDir: string;
  readonly bundleBytes: number;
  readonly files: readonly string[];
}

/** What loads write beside a checkpoint (quantized weights, instruction prefixes): this machine's, not the model's. */
const WEIGHT_CACHE_FOLDER = '.sana-ts-cache';

function modelManifest(modelDir: string, name: string): { name: string; files: { path: string; size: number; sha256: string }[] } {
  const files: { path: string; size: number; sha256: string }[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== WEIGHT_CACHE_FOLDER) walk(full);
      }
      else if (entry.isFile() && /\.(json|safetensors)$/.test(entry.name)) {
        const bytes = fs.readFileSync(full);
        files.push({ path: path.relative(modelDir, full).split(path.sep).join('/'), size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
      }
    }
  };
  walk(modelDir);
  if (!files.some((f) => f.path === 'model_index.json')) throw new Error(`${modelDir}: no model_index.json, not a diffusers pipeline folder`);
  return { name, files };
}

/** Writes the static page into `outDir` (replacing what a previous build left there). */
export async function buildWebPage(outDir = DEFAULT_WEB_DIR, modelDir = path.join(REPO_ROOT, 'models', 'default')): Promise<WebBuildResult> {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(path.join(outDir, 'ort'), { recursive: true });
  const shim = (file: string) => path.join(SHIMS, file);
  const result = await esbuild.build({
    entryPoints: [path.join(WEB_SRC, 'page', 'main.ts')],
    outfile: path.join(outDir, 'app.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: true,
    legalComments: 'linked',
    logLevel: 'silent',
    metafile: true,
    alias: {
      'node:fs': shim('fs.ts'),
      fs: shim('fs.ts'),
      'node:path': 'path-browserify',
      path: 'path-browserify',
      'node:os': shim('os.ts'),
      // memfs's own Node imports
      'node:buffer': 'buffer',
      'node:events': 'events',
      'node:stream': 'stream-browserify',
      'node:url': shim('url.ts'),
      'node:zlib': shim('zlib.ts'),
      'node:crypto': shim('crypto.ts'),
      'onnxruntime-node': shim('unavailable.ts'),
      // pngjs's own browserify build (with its zlib and stream polyfills) instead of its Node sources
      pngjs: path.join(REPO_ROOT, 'node_modules', 'pngjs', 'browser.js'),
    },
    inject: [shim('globals.ts')],
    // pngjs's bundled util.debuglog reads NODE_DEBUG; a constant lets esbuild drop those paths
    define: { 'process.env.NODE_DEBUG': 'false' },
  });
  fs.copyFileSync(path.join(WEB_SRC, 'page', 'index.html'), path.join(outDir, 'index.html'));
  fs.copyFileSync(path.join(WEB_SRC, 'page', 'page.css'), path.join(outDir, 'page.css'));
  for (const f of ORT_FILES) fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'onnxruntime-web', 'dist', f), path.join(outDir, 'ort', f));
  const modelOut = path.join(outDir, 'models', 'default');
  fs.cpSync(modelDir, modelOut, { recursive: true, dereference: true, filter: (f) => path.basename(f) !== WEIGHT_CACHE_FOLDER });
  fs.writeFileSync(path.join(modelOut, 'files.json'), JSON.stringify(modelManifest(modelDir, 'default'), null, 1));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else files.push(path.relative(outDir, full).split(path.sep).join('/'));
    }
  };
  walk(outDir);
  const bundleBytes = result.metafile.outputs[Object.keys(result.metafile.outputs).find((k) => k.endsWith('app.js'))!].bytes;
  return { outDir, bundleBytes, files: files.sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_WEB_DIR;
  buildWebPage(out).then(
    (r) => console.log(`built the local page into ${r.outDir} (${r.files.length} files, app.js ${(r.bundleBytes / 1e6).toFixed(2)} MB)`),
    (e) => {
      console.error(`build:web failed: ${e instanceof Error ? e.message : e}`);
      process.exit(1);
    },
  );
}
