// What the transformer trainer reads every step, computed once per data folder and kept on disk: every image's
// DC-AE latent and every caption's text-encoder states, exactly as the pipeline makes them at inference (the
// complex human instruction in front, the last 299 positions kept; SANA.md §4.3), trimmed to the longest caption
// of the folder, plus the null (empty prompt) embedding for caption dropout. The text encoder stays frozen, so the
// cache is valid as long as the data, the autoencoder and the text encoder are unchanged (its fingerprint).
// ref: SANA.md §6 ("latents and text embeddings precomputed")

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HostTensor } from '../io/host-tensor.js';
import { SafetensorsFile, writeSafetensors } from '../io/safetensors.js';
import { Dcae } from '../models/dcae/model.js';
import { loadGemma2 } from '../models/gemma2/loader.js';
import { encodePrompts } from '../text/prompt-encoding.js';
import { GemmaTokenizer } from '../text/tokenizer.js';
import { CaptionRecord, loadTrainingImage } from './caption-folder.js';
import { TrainProgress } from './progress.js';

export interface EmbeddingCache {
  /** [N, C, h, w] unscaled latents. */
  readonly latents: HostTensor<'float32'>;
  /** [N, T, D] caption states and [N, T] masks. */
  readonly captions: HostTensor<'float32'>;
  readonly masks: HostTensor<'int64'>;
  /** [1, T, D] / [1, T]: the empty prompt (no instruction), for caption dropout. */
  readonly nullCaption: HostTensor<'float32'>;
  readonly nullMask: HostTensor<'int64'>;
}

export interface CacheSources {
  readonly data: string;
  readonly records: readonly CaptionRecord[];
  readonly vaeDir: string;
  readonly textEncoderDir: string;
  readonly tokenizerDir: string;
  readonly imageSize: number;
  readonly maxSequenceLength: number;
  readonly threads?: number;
}

const BATCH = 16;

function fileStamp(file: string): string {
  const st = fs.statSync(file);
  return `${path.resolve(file)}:${st.size}:${st.mtimeMs}`;
}

function folderStamp(dir: string): string {
  return fs
    .readdirSync(dir)
    .filter((f) => !f.startsWith('.'))
    .sort()
    .map((f) => (fs.statSync(path.join(dir, f)).isFile() ? fileStamp(path.join(dir, f)) : f))
    .join('|');
}

function fingerprint(s: CacheSources): string {
  const h = createHash('sha256');
  h.update(fs.readFileSync(path.join(s.data, 'captions.jsonl')));
  for (const r of s.records) h.update(fileStamp(path.resolve(s.data, r.file)));
  h.update(folderStamp(s.vaeDir));
  h.update(folderStamp(s.textEncoderDir));
  h.update(folderStamp(s.tokenizerDir));
  h.update(`${s.imageSize}:${s.maxSequenceLength}:${s.records.length}`);
  return h.digest('hex');
}

/** The cache in `dir` when it matches the sources, else computed and written there. */
export async function loadOrBuildEmbeddingCache(dir: string, s: CacheSources, progress?: TrainProgress): Promise<EmbeddingCache> {
  const file = path.join(dir, 'embeddings.safetensors');
  const key = fingerprint(s);
  if (fs.existsSync(file)) {
    const cached = SafetensorsFile.open(file);
    if (cached.metadata.fingerprint === key) {
      progress?.stage(`using cached latents and caption embeddings (${file})`);
      return {
        latents: cached.read('latents') as HostTensor<'float32'>,
        captions: cached.read('captions') as HostTensor<'float32'>,
        masks: cached.read('masks') as HostTensor<'int64'>,
        nullCaption: cached.read('null_caption') as HostTensor<'float32'>,
        nullMask: cached.read('null_mask') as HostTensor<'int64'>,
      };
    }
  }
  const cache = await buildEmbeddingCache(s, progress);
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(
    file,
    { latents: cache.latents, captions: cache.captions, masks: cache.masks, null_caption: cache.nullCaption, null_mask: cache.nullMask },
    { fingerprint: key },
  );
  return cache;
}

async function buildEmbeddingCache(s: CacheSources, progress?: TrainProgress): Promise<EmbeddingCache> {
  const n = s.records.length;
  progress?.stage(`encoding ${n} images with the autoencoder`);
  const dcae = await Dcae.load(s.vaeDir, { parts: ['encoder'], threads: s.threads });
  const latentParts: Float32Array[] = [];
  let latentShape: number[] = [];
  try {
    for (let i = 0; i < n; i += BATCH) {
      const rows = s.records.slice(i, i + BATCH);
      const pixels = new Float32Array(rows.length * 3 * s.imageSize * s.imageSize);
      rows.forEach((r, j) => pixels.set(loadTrainingImage(s.data, r, s.imageSize), j * 3 * s.imageSize * s.imageSize));
      const z = await dcae.encode(HostTensor.float32([rows.length, 3, s.imageSize, s.imageSize], pixels));
      latentShape = z.shape.slice(1);
      latentParts.push(Float32Array.from(z.data as Float32Array));
    }
  } finally {
    await dcae.release();
  }
  const latents = HostTensor.float32([n, ...latentShape], concatArrays(latentParts));

  progress?.stage(`encoding ${n} captions with the text encoder`);
  const tokenizer = GemmaTokenizer.fromFolder(s.tokenizerDir);
  const encoder = await loadGemma2(s.textEncoderDir, { threads: s.threads });
  const states: Float32Array[] = [];
  const masks: BigInt64Array[] = [];
  let hidden = 0;
  let nullCaption: HostTensor<'float32'>;
  let nullMask: HostTensor<'int64'>;
  try {
    for (let i = 0; i < n; i += BATCH) {
      const e = await encodePrompts(s.records.slice(i, i + BATCH).map((r) => r.caption), { maxSequenceLength: s.maxSequenceLength }, tokenizer, encoder);
      hidden = e.promptEmbeds.shape[2];
      states.push(e.promptEmbeds.data);
      masks.push(e.promptAttentionMask.data);
      if (i === 0) {
        nullCaption = HostTensor.float32([1, s.maxSequenceLength, hidden], e.negativePromptEmbeds.data.slice(0, s.maxSequenceLength * hidden));
        nullMask = new HostTensor('int64', [1, s.maxSequenceLength], e.negativePromptAttentionMask.data.slice(0, s.maxSequenceLength));
      }
    }
  } finally {
    await encoder.release();
  }
  // keep the positions up to the longest caption's last token (the rest is padding for every row)
  const maskAll = concatBigInt(masks);
  const L = s.maxSequenceLength;
  let keep = 1;
  for (let i = 0; i < maskAll.length; i++) if (maskAll[i] !== 0n) keep = Math.max(keep, (i % L) + 1);
  const allStates = concatArrays(states);
  const captions = new Float32Array(n * keep * hidden);
  const kept = new BigInt64Array(n * keep);
  for (let r = 0; r < n; r++) {
    captions.set(allStates.subarray(r * L * hidden, (r * L + keep) * hidden), r * keep * hidden);
    kept.set(maskAll.subarray(r * L, r * L + keep), r * keep);
  }
  const trim = <T extends Float32Array | BigInt64Array>(a: T, width: number): T => a.slice(0, keep * width) as T;
  return {
    latents,
    captions: HostTensor.float32([n, keep, hidden], captions),
    masks: new HostTensor('int64', [n, keep], kept),
    nullCaption: HostTensor.float32([1, keep, hidden], trim(nullCaption!.data, hidden)),
    nullMask: new HostTensor('int64', [1, keep], trim(nullMask!.data, 1)),
  };
}

function concatArrays(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((p, a) => p + a.length, 0));
  let o = 0;
  for (const a of parts) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

function concatBigInt(parts: readonly BigInt64Array[]): BigInt64Array {
  const out = new BigInt64Array(parts.reduce((p, a) => p + a.length, 0));
  let o = 0;
  for (const a of parts) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
