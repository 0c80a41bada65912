// What the transformer trainer reads every step, computed once per data folder and kept on disk: every image's
// DC-AE latent and every caption's text-encoder states, exactly as the pipeline makes them at inference (the
// complex human instruction in front, the last 299 positions kept; SANA.md §4.3), trimmed to the longest caption
// of the folder, plus the null (empty prompt) embedding for caption dropout. The text encoder stays frozen, so the
// cache is valid as long as its sources are unchanged. The two halves are keyed apart (images + autoencoder,
// captions + text encoder + tokenizer): swapping the text encoder or rewording captions re-encodes only the text.
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

/**
 * The latents' key: which images, in which order, at which size, through which autoencoder. Captions and the text
 * encoder are not in it, so changing those keeps the latents (the slow half on a CPU).
 */
function latentFingerprint(s: CacheSources): string {
  const h = createHash('sha256');
  for (const r of s.records) h.update(`${fileStamp(path.resolve(s.data, r.file))}\n`);
  h.update(folderStamp(s.vaeDir));
  h.update(`${s.imageSize}:${s.records.length}`);
  return h.digest('hex');
}

/** The caption states' key: the captions in order, the text encoder, its tokenizer and the sequence length. */
function captionFingerprint(s: CacheSources): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(s.records.map((r) => r.caption)));
  h.update(folderStamp(s.textEncoderDir));
  h.update(folderStamp(s.tokenizerDir));
  h.update(`${s.maxSequenceLength}:${s.records.length}`);
  return h.digest('hex');
}

/** The tensors of `file` when its fingerprint is `key`, else undefined. */
function readIfCurrent(file: string, key: string, names: readonly string[]): Map<string, HostTensor> | undefined {
  if (!fs.existsSync(file)) return undefined;
  const cached = SafetensorsFile.open(file);
  if (cached.metadata.fingerprint !== key) return undefined;
  return new Map(names.map((n) => [n, cached.read(n)]));
}

/** Files of the cache folder: latents and caption states are keyed apart, so each is rebuilt only when its sources change. */
export const LATENT_CACHE_FILE = 'latents.safetensors';
export const CAPTION_CACHE_FILE = 'captions.safetensors';

/** The cache in `dir` where it matches the sources; each half that does not is computed and written there. */
export async function loadOrBuildEmbeddingCache(dir: string, s: CacheSources, progress?: TrainProgress): Promise<EmbeddingCache> {
  fs.mkdirSync(dir, { recursive: true });
  const latentFile = path.join(dir, LATENT_CACHE_FILE);
  const latentKey = latentFingerprint(s);
  let latents = readIfCurrent(latentFile, latentKey, ['latents'])?.get('latents') as HostTensor<'float32'> | undefined;
  if (latents) {
    progress?.stage(`using cached latents (${latentFile})`);
  } else {
    latents = await encodeLatents(s, progress);
    writeSafetensors(latentFile, { latents }, { fingerprint: latentKey });
  }

  const captionFile = path.join(dir, CAPTION_CACHE_FILE);
  const captionKey = captionFingerprint(s);
  const names = ['captions', 'masks', 'null_caption', 'null_mask'];
  const cached = readIfCurrent(captionFile, captionKey, names);
  let states: CaptionStates;
  if (cached) {
    progress?.stage(`using cached caption embeddings (${captionFile})`);
    states = {
      captions: cached.get('captions') as HostTensor<'float32'>,
      masks: cached.get('masks') as HostTensor<'int64'>,
      nullCaption: cached.get('null_caption') as HostTensor<'float32'>,
      nullMask: cached.get('null_mask') as HostTensor<'int64'>,
    };
  } else {
    states = await encodeCaptions(s, progress);
    writeSafetensors(
      captionFile,
      { captions: states.captions, masks: states.masks, null_caption: states.nullCaption, null_mask: states.nullMask },
      { fingerprint: captionKey },
    );
  }
  // the single-file cache of earlier versions: both halves now live apart, so it is only stale bytes
  fs.rmSync(path.join(dir, 'embeddings.safetensors'), { force: true });
  return { latents, ...states };
}

type CaptionStates = Omit<EmbeddingCache, 'latents'>;

async function encodeLatents(s: CacheSources, progress?: TrainProgress): Promise<HostTensor<'float32'>> {
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
  return HostTensor.float32([n, ...latentShape], concatArrays(latentParts)); // [N, C, h, w]
}

async function encodeCaptions(s: CacheSources, progress?: TrainProgress): Promise<CaptionStates> {
  const n = s.records.length;
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
