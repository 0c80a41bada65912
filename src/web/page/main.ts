// The local page: the whole pipeline in the visitor's browser. Loads the bundled default model from this origin
// (progress bar, Cache Storage), or a diffusers folder the visitor picks; a form for prompt, seed, steps, guidance
// and size; a progress bar with step previews; each finished image an <img data-seed data-prompt> with a download
// link. Settings live in the URL as on the server's page: ?prompt=&seed=&steps=&guidance=&width=&height=&run=1
// (and ep=auto|wasm|webgpu, preview=N for a preview every N steps, 0 = none).
// ref: docs/browser.md, src/server/page/page.js (the server's page, whose URL settings this follows)

import { RequestError } from '../../pipeline/request.js';
import { SanaPipeline } from '../../pipeline/sana-pipeline.js';
import { LoadProgress, LoadedModel, loadModelFromFiles, loadModelFromOrigin } from './model-source.js';
import { RuntimeChoice, chooseRuntime, generateImage, previewPng, webPipeline } from './runner.js';
import { memoryText, sampleMemory } from './memory.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const STAGE_TEXT = { encode: 'Encoding the prompt…', denoise: 'Denoising…', decode: 'Decoding the image…' } as const;
const FIELDS = ['prompt', 'seed', 'steps', 'guidance', 'width', 'height'] as const;
const DEFAULT_PREVIEW_EVERY = 5;

const state: { model?: LoadedModel; runtime?: RuntimeChoice; pipeline?: SanaPipeline; running: boolean } = { running: false };

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function setStatus(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

function showLoad(p: LoadProgress): void {
  const bar = $<HTMLProgressElement>('download');
  bar.max = p.totalBytes || 1;
  bar.value = p.loadedBytes;
  const mb = (n: number) => (n / 1e6).toFixed(1);
  $('download-text').textContent = `${mb(p.loadedBytes)} of ${mb(p.totalBytes)} MB (${p.fromCache} files from the cache, ${p.fromNetwork} from the network)`;
}

function useModel(model: LoadedModel): void {
  state.model = model;
  state.pipeline = webPipeline(model.folder, state.runtime!);
  $('model-name').textContent = model.name;
  document.body.dataset.ready = 'true';
  document.body.dataset.modelFrom = model.fromNetwork ? 'network' : model.fromCache ? 'cache' : 'disk';
  $<HTMLButtonElement>('generate').disabled = false;
}

/** The form's settings as a request; empty seed = a random one (shown on the result). */
function readForm(): { prompt: string; seed: number; steps: number; guidance: number; width: number; height: number } {
  const value = (id: string) => $<HTMLInputElement>(id).value.trim();
  const int = (id: string) => {
    const v = Number(value(id));
    if (!Number.isInteger(v)) throw new RequestError(`${id} must be a whole number, got "${value(id)}"`);
    return v;
  };
  const seedText = value('seed');
  const seed = seedText === '' ? Math.floor(Math.random() * 2 ** 31) : int('seed');
  const guidance = Number(value('guidance'));
  if (!Number.isFinite(guidance)) throw new RequestError(`guidance must be a number, got "${value('guidance')}"`);
  return { prompt: value('prompt'), seed, steps: int('steps'), guidance, width: int('width'), height: int('height') };
}

/** Settings into the URL (replaceState), so a reload or a shared link gives the same form. */
function writeUrl(): void {
  const params = new URLSearchParams(location.search);
  for (const f of FIELDS) params.set(f, $<HTMLInputElement>(f).value.trim());
  params.delete('run');
  history.replaceState(null, '', `${location.pathname}?${params}`);
}

async function generate(): Promise<void> {
  if (state.running || !state.pipeline || !state.model) return;
  state.running = true;
  document.body.dataset.busy = 'true';
  $<HTMLButtonElement>('generate').disabled = true;
  const bar = $<HTMLProgressElement>('progress');
  const preview = $<HTMLImageElement>('preview');
  const previewEvery = Number(new URLSearchParams(location.search).get('preview') ?? DEFAULT_PREVIEW_EVERY);
  const stop = sampleMemory();
  try {
    writeUrl();
    const form = readForm();
    const t0 = performance.now();
    bar.value = 0;
    const image = await generateImage(
      state.pipeline,
      { prompts: [form.prompt], seed: form.seed, steps: form.steps, guidanceScale: form.guidance, width: form.width, height: form.height },
      state.model.name,
      async (e) => {
        if (e.type === 'stage') {
          $('stage').textContent = STAGE_TEXT[e.stage];
          if (e.stage === 'decode') bar.value = 0.95;
        } else if (e.type === 'step') {
          bar.value = 0.05 + (0.9 * e.step) / e.total;
          $('stage').textContent = `Step ${e.step} of ${e.total} (${e.seconds.toFixed(2)} s)`;
          if (previewEvery > 0 && e.step % previewEvery === 0 && e.step < e.total) {
            preview.src = URL.createObjectURL(new Blob([(await previewPng(state.pipeline!, e.denoised)) as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
            preview.hidden = false;
          }
        } else if (e.type === 'warning') setStatus(e.message);
      },
    );
    const seconds = (performance.now() - t0) / 1000;
    bar.value = 1;
    preview.hidden = true;
    const img = addResult(image.png, form.prompt, form.seed, image.width, image.height, seconds);
    img.dataset.timings = JSON.stringify(image.result.timings);
    $('stage').textContent = `Done in ${seconds.toFixed(1)} s`;
    setStatus('');
  } catch (e) {
    setStatus((e as Error).message, true);
    $('stage').textContent = 'Failed';
  } finally {
    $('memory').textContent = memoryText(stop());
    state.running = false;
    document.body.dataset.busy = 'false';
    $<HTMLButtonElement>('generate').disabled = false;
  }
}

function addResult(png: Uint8Array, prompt: string, seed: number, width: number, height: number, seconds: number): HTMLImageElement {
  const url = URL.createObjectURL(new Blob([png as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
  const img = el('img', { src: url, alt: prompt, width, height });
  img.dataset.seed = String(seed);
  img.dataset.prompt = prompt;
  img.dataset.seconds = seconds.toFixed(2);
  img.dataset.ep = state.runtime!.executionProvider;
  const link = el('a', { href: url, download: `sana-${seed}.png`, className: 'download' }, 'Download');
  const caption = el('figcaption', {}, `${prompt} — seed ${seed}, ${seconds.toFixed(1)} s on ${state.runtime!.executionProvider} `, link);
  $('gallery').prepend(el('figure', {}, img, caption));
  return img;
}

function applyUrl(params: URLSearchParams): void {
  for (const f of FIELDS) {
    const v = params.get(f);
    if (v !== null) $<HTMLInputElement>(f).value = v;
  }
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  applyUrl(params);
  $('settings').addEventListener('submit', (e) => {
    e.preventDefault();
    void generate();
  });
  $<HTMLInputElement>('folder').addEventListener('change', async (e) => {
    const files = [...((e.target as HTMLInputElement).files ?? [])];
    if (!files.length) return;
    try {
      setStatus('Reading the chosen folder…');
      useModel(await loadModelFromFiles(files, showLoad));
      setStatus(`Using ${state.model!.name} from your disk`);
    } catch (err) {
      setStatus((err as Error).message, true);
    }
  });
  try {
    const ep = (params.get('ep') ?? 'auto') as 'auto' | 'wasm' | 'webgpu';
    if (!['auto', 'wasm', 'webgpu'].includes(ep)) throw new Error(`ep must be auto, wasm or webgpu, got "${ep}"`);
    state.runtime = await chooseRuntime(ep);
    $('runtime').textContent = state.runtime.note;
    document.body.dataset.ep = state.runtime.executionProvider;
    setStatus('Loading the default model…');
    useModel(await loadModelFromOrigin('models/default/', showLoad));
    setStatus('');
    if (params.get('run') === '1') await generate();
  } catch (e) {
    setStatus((e as Error).message, true);
    document.body.dataset.ready = 'error';
  }
}

void main();
