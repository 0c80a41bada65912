// The local page (/local): the whole pipeline in real headless Chromium (Debian's chromium through playwright-core),
// on wasm and on WebGPU (SwiftShader's software adapter). The page's PNGs are compared with PNGs made in Node for the
// same prompt and seed: bit for bit with onnxruntime-web's wasm backend in Node (same kernels as the page, so
// equality is meaningful), and within a stated tolerance of `sana generate` (onnxruntime-node's MLAS kernels round
// differently). A reload reads the model from Cache Storage (no weight file over the network). Writes
// docs/browser-page.png for the README. ref: docs/browser.md

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Browser, BrowserContext, Page, chromium } from 'playwright-core';
import { decodePng, DecodedPng } from '../src/io/png.js';
import { pipelineComponents } from '../src/pipeline/components.js';
import { toRgbImages } from '../src/pipeline/postprocess.js';
import { SanaPipeline } from '../src/pipeline/sana-pipeline.js';
import { createWebBackend } from '../src/runtime/web-backend.js';
import { SanaServer, startSanaServer } from '../src/server/server.js';
import { buildWebPage } from '../src/web/build.js';
import { descendantPeaks } from './helpers/process-memory.js';
import { repoRoot } from './helpers/fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
/**
 * WebGPU without a GPU: Chromium's Dawn over SwiftShader (Vulkan in software). --enable-unsafe-webgpu turns WebGPU
 * on where Chromium's blocklist keeps it off (Linux, headless); --use-webgpu-adapter=swiftshader picks the software
 * adapter. No --disable-gpu: that would remove the GPU process Dawn runs in.
 */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
];
const PROMPT = 'a red circle left of a blue square on a yellow background';
const SEED = 7;
/** The model's default steps on wasm (a finished image for the screenshot). */
const WASM_STEPS = 20;
/** One step on WebGPU: SwiftShader is slow (20-35 s a step here), and the comparison is about the kernels. */
const WEBGPU_STEPS = 1;
const SIZE = 256; // the default model's native size
/**
 * Largest per-channel difference (of 255) allowed against onnxruntime-node's CPU kernels. MLAS's AVX-512 GEMMs and
 * convolutions sum in another order than the wasm SIMD kernels, so float32 results differ in the last bits and
 * a few pixels round to the neighbouring 8-bit value; measured here: 1 on wasm (7 of 196608 values) and on WebGPU.
 */
const NODE_CPU_TOLERANCE = 2;
/** WebGPU (fp32 on SwiftShader) against the same: other summation orders again; measured 1 (about 1,600 values). */
const WEBGPU_TOLERANCE = 2;
const WAIT_MS = 240_000;

declare const document: any;

function maxDifference(a: DecodedPng, b: DecodedPng): { max: number; differing: number } {
  assert.equal(a.width, b.width);
  assert.equal(a.height, b.height);
  let max = 0;
  let differing = 0;
  for (let i = 0; i < a.rgb.length; i++) {
    const d = Math.abs(a.rgb[i] - b.rgb[i]);
    if (d) differing++;
    if (d > max) max = d;
  }
  return { max, differing };
}

describe('the local page (the pipeline in the browser)', { timeout: 600_000 }, () => {
  let server: SanaServer | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let tmp: string;
  /** `sana generate`'s PNGs (onnxruntime-node, CPU) at WASM_STEPS and WEBGPU_STEPS. */
  const cliPng = new Map<number, DecodedPng>();
  /** The library in Node on onnxruntime-web's wasm backend, as the page runs it (WASM_STEPS). */
  let wasmPng: DecodedPng;
  const pageErrors: string[] = [];

  const url = (query: Record<string, string | number>) =>
    `${server!.url}/local/?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`;
  const settings = { prompt: PROMPT, seed: SEED, width: SIZE, height: SIZE, run: 1 };

  async function newPage(): Promise<Page> {
    const p = await context.newPage();
    p.setDefaultTimeout(WAIT_MS);
    p.on('pageerror', (e) => pageErrors.push(e.message));
    return p;
  }

  /** Waits for the first finished image (or the page's error) and returns its PNG. */
  async function finishedPng(p: Page): Promise<DecodedPng> {
    await p.waitForFunction(() => document.querySelector('#gallery img[data-seed]')?.complete || document.querySelector('#status.error'), null, { timeout: WAIT_MS });
    const error = await p.locator('#status.error').count();
    assert.equal(error, 0, `the page failed: ${await p.textContent('#status')}`);
    const base64: string = await p.evaluate(async () => {
      const img = document.querySelector('#gallery img[data-seed]');
      const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
      let s = '';
      for (const b of bytes) s += String.fromCharCode(b);
      return btoa(s);
    });
    return decodePng(Buffer.from(base64, 'base64'));
  }

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: the local page's browser test needs Debian's chromium (apt-get install chromium)`);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-browser-'));
    await buildWebPage();
    // the Node references, made before the browser starts so they do not compete for the two cores
    const cli = path.join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    for (const steps of [WASM_STEPS, WEBGPU_STEPS]) {
      const out = path.join(tmp, `cli-${steps}.png`);
      const args = [cli, 'generate', PROMPT, '--seed', String(SEED), '--steps', String(steps), '--width', String(SIZE), '--height', String(SIZE), '-o', out, '--quiet'];
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      assert.equal(r.status, 0, `sana generate failed: ${r.stderr}`);
      cliPng.set(steps, decodePng(fs.readFileSync(out)));
    }
    const pipeline = new SanaPipeline(pipelineComponents(path.join(repoRoot, 'models', 'default'), { backend: createWebBackend(), threads: 1 }));
    const result = await pipeline.run({ prompts: [PROMPT], seed: SEED, steps: WASM_STEPS, width: SIZE, height: SIZE });
    const rgb = toRgbImages(result.images)[0];
    wasmPng = { ...rgb, text: {} };
    server = await startSanaServer({ port: 0, host: '127.0.0.1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await server?.close();
      if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    }
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
  });

  it('generates on wasm the same pixels as the library on onnxruntime-web in Node, close to sana generate, and writes docs/browser-page.png', { timeout: WAIT_MS }, async () => {
    const page = await newPage();
    const weights: string[] = [];
    page.on('request', (q) => q.url().includes('.safetensors') && weights.push(q.url()));
    await page.goto(url({ ...settings, steps: WASM_STEPS, ep: 'wasm', preview: 5 }));
    await page.evaluate(() => {
      const w = globalThis as unknown as { __previews: number };
      w.__previews = 0;
      const preview = document.getElementById('preview');
      new (globalThis as any).MutationObserver(() => preview.src.startsWith('blob:') && w.__previews++).observe(preview, { attributes: true, attributeFilter: ['src'] });
    });
    const png = await finishedPng(page);
    assert.ok((await page.evaluate(() => (globalThis as unknown as { __previews: number }).__previews)) >= 1, 'a step preview was shown');
    assert.match((await page.textContent('#runtime')) ?? '', /^WebAssembly \(SIMD\), fp32, /);
    assert.equal(await page.getAttribute('body', 'data-ep'), 'wasm');
    assert.equal(await page.getAttribute('body', 'data-model-from'), 'network', 'a fresh browser context fetches the model');
    assert.equal(weights.length, 3, `the three weight files were fetched: ${weights.join(', ')}`);
    const img = page.locator('#gallery img[data-seed]').first();
    assert.equal(await img.getAttribute('data-seed'), String(SEED));
    assert.equal(await img.getAttribute('data-prompt'), PROMPT);
    assert.equal(png.text.prompt, PROMPT, 'the PNG carries its prompt');
    assert.equal(png.text.seed, String(SEED));
    assert.deepEqual([png.width, png.height], [SIZE, SIZE]);

    assert.ok(Buffer.from(png.rgb).equals(Buffer.from(wasmPng.rgb)), `wasm in the page equals wasm in Node bit for bit: ${JSON.stringify(maxDifference(png, wasmPng))}`);
    const cpu = maxDifference(png, cliPng.get(WASM_STEPS)!);
    console.log(`# wasm page vs sana generate (onnxruntime-node CPU): max difference ${cpu.max}, ${cpu.differing} of ${png.rgb.length} values differ; ${await img.getAttribute('data-seconds')} s in the page`);
    assert.ok(cpu.max <= NODE_CPU_TOLERANCE, `wasm page vs sana generate: max difference ${cpu.max} > ${NODE_CPU_TOLERANCE}`);
    const u = new URL(page.url());
    assert.equal(u.searchParams.get('prompt'), PROMPT, 'the settings stay in the URL');
    assert.equal(u.searchParams.get('run'), null, 'run=1 is dropped once used, so a reload does not generate again');
    await page.locator('#generate').blur();
    // written under a temporary name and renamed, so the README never shows half a file
    const target = path.join(repoRoot, 'docs', 'browser-page.png');
    const temporary = `${target}.${process.pid}.tmp.png`;
    try {
      await page.screenshot({ path: temporary, fullPage: true });
      assert.deepEqual(fs.readFileSync(temporary).subarray(0, 4), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
      fs.renameSync(temporary, target);
    } finally {
      fs.rmSync(temporary, { force: true });
    }
    await page.close();
  });

  it('loads the model from Cache Storage on the second visit (no weight file over the network)', { timeout: WAIT_MS }, async () => {
    const page = await newPage();
    const weights: string[] = [];
    page.on('request', (q) => q.url().includes('.safetensors') && weights.push(q.url()));
    await page.goto(url({ ep: 'wasm' }));
    await page.waitForSelector('body[data-ready="true"]');
    assert.deepEqual(weights, [], 'no request for a weight file');
    assert.equal(await page.getAttribute('body', 'data-model-from'), 'cache');
    assert.match((await page.textContent('#download-text')) ?? '', /\(11 files from the cache, 0 from the network\)/);
    await page.close();
  });

  it('reads a diffusers folder the visitor picks (webkitdirectory), nothing fetched', { timeout: WAIT_MS }, async () => {
    const page = await newPage();
    await page.goto(url({ ep: 'wasm' }));
    await page.waitForSelector('body[data-ready="true"]');
    const fetched: string[] = [];
    page.on('request', (q) => fetched.push(q.url()));
    await page.setInputFiles('#folder', path.join(repoRoot, 'models', 'default'));
    await page.waitForSelector('body[data-model-from="disk"]');
    assert.equal(await page.textContent('#status'), 'Using default from your disk');
    assert.equal(await page.textContent('#model-name'), 'default');
    assert.deepEqual(fetched, [], 'the picked files are read in the page');
    await page.close();
  });

  it('generates on WebGPU (SwiftShader, fp32) within the tolerance of sana generate', { timeout: WAIT_MS * 2 }, async () => {
    const page = await newPage();
    // no step preview here: each is a VAE decode, about half a minute on SwiftShader (the wasm run checks previews)
    await page.goto(url({ ...settings, steps: WEBGPU_STEPS, ep: 'webgpu', preview: 0 }));
    const png = await finishedPng(page);
    assert.match((await page.textContent('#runtime')) ?? '', /^WebGPU \(.*swiftshader.*\), fp32/i);
    assert.equal(await page.getAttribute('body', 'data-ep'), 'webgpu');
    const vsCpu = maxDifference(png, cliPng.get(WEBGPU_STEPS)!);
    const seconds = await page.locator('#gallery img[data-seed]').first().getAttribute('data-seconds');
    console.log(`# WebGPU page vs sana generate: max ${vsCpu.max} (${vsCpu.differing} values differ); ${seconds} s in the page`);
    assert.ok(vsCpu.max <= WEBGPU_TOLERANCE, `WebGPU vs sana generate: max difference ${vsCpu.max} > ${WEBGPU_TOLERANCE}`);
    const peaks = descendantPeaks();
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
    const byType = (t: string) => Math.max(0, ...peaks.filter((p) => p.type === t).map((p) => p.peakBytes));
    console.log(`# peak resident memory: renderer ${mib(byType('renderer'))}, GPU process ${mib(byType('gpu-process'))}, browser ${mib(byType('browser'))}; page says: ${await page.textContent('#memory')}`);
    assert.ok(byType('renderer') > 0, 'the renderer process was found');

    await page.close();
  });
});
