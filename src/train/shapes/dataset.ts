// Examples of the coloured-shapes dataset drawn from a seed, and a dataset folder written from them:
// dir/images/00000.png ... and dir/captions.jsonl, one {"file", "caption", "scene"} object per line. The folder
// is the whole interface to the data loader, which needs only file and caption; scene is there for analysis.
// Nothing is half-written: every image is renamed into place when complete and captions.jsonl comes last, so a
// folder without captions.jsonl is an interrupted write, never a smaller dataset.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeBytesAtomic, writeFileAtomic } from '../../io/atomic-write.js';
import { encodePng } from '../../io/png.js';
import { captionScene, checkCaptionOptions, type CaptionOptions } from './caption.js';
import { ShapesRng } from './random.js';
import { renderScene } from './render.js';
import { DEFAULT_KIND_WEIGHTS, checkKindWeights, sampleScene, type KindWeights, type Scene } from './scene.js';

export type ShapesSplit = 'train' | 'validation';

// Separate stream words for scenes and captions, so rewording captions never moves an object, and separate
// ones per split, so the validation examples come from generators no training example starts from.
const STREAMS: Readonly<Record<ShapesSplit, { scene: number; caption: number }>> = {
  train: { scene: 0x5348_0001, caption: 0x5348_0002 },
  validation: { scene: 0x5348_0101, caption: 0x5348_0102 },
};

export interface ShapesExample {
  readonly scene: Scene;
  readonly caption: string;
}

/**
 * Example `index` of the stream `seed` of a split; the same arguments give the same example everywhere. `kinds`
 * reweights the scene kinds (a relation-heavy set for fine-tuning) and `captions` the wording; the defaults give the
 * default data set.
 */
export function sampleShapesExample(
  seed: number,
  index = 0,
  split: ShapesSplit = 'train',
  kinds: KindWeights = DEFAULT_KIND_WEIGHTS,
  captions: CaptionOptions = {},
): ShapesExample {
  const streams = STREAMS[split];
  if (streams === undefined) throw new RangeError(`split must be "train" or "validation", got ${JSON.stringify(split)}`);
  const scene = sampleScene(new ShapesRng(streams.scene, seed, index), kinds);
  return { scene, caption: captionScene(scene, new ShapesRng(streams.caption, seed, index), captions) };
}

export interface ShapesDatasetOptions {
  readonly count: number;
  readonly seed: number;
  /** Image side in pixels. */
  readonly size?: number;
  readonly split: ShapesSplit;
  /** Relative share of single, relation and count scenes; default DEFAULT_KIND_WEIGHTS (0.4, 0.35, 0.25). */
  readonly kinds?: KindWeights;
  /** Caption wording options (how often a single object's position comes first). */
  readonly captions?: CaptionOptions;
}

export interface ShapesDatasetSummary {
  readonly dir: string;
  readonly count: number;
  /** Relative paths of the images, in captions.jsonl order. */
  readonly files: readonly string[];
}

export const CAPTIONS_FILE = 'captions.jsonl';
export const IMAGES_DIR = 'images';

function ensureEmptyDir(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      fs.mkdirSync(dir, { recursive: true });
      return;
    }
    if (code === 'ENOTDIR') throw new Error(`writeShapesDataset: ${dir} exists and is not a folder`);
    throw new Error(`writeShapesDataset: cannot read ${dir}: ${code ?? String(e)}`);
  }
  if (entries.length > 0) {
    throw new Error(`writeShapesDataset: ${dir} is not empty (${entries.length} entries); write a dataset into a new or empty folder`);
  }
}

/** Writes `count` examples of the split into dir, which must be missing or empty. */
export function writeShapesDataset(dir: string, options: ShapesDatasetOptions): ShapesDatasetSummary {
  const { count, seed, split } = options;
  const size = options.size ?? 256;
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`writeShapesDataset: count ${count} must be a non-negative integer`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`writeShapesDataset: seed ${seed} must be an integer in [0, 2^32)`);
  }
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`writeShapesDataset: size ${size} must be an integer >= 8`);
  if (STREAMS[split] === undefined) throw new RangeError(`writeShapesDataset: split must be "train" or "validation", got ${JSON.stringify(split)}`);
  const kinds = checkKindWeights(options.kinds ?? DEFAULT_KIND_WEIGHTS, 'writeShapesDataset: kinds');
  const captions = checkCaptionOptions(options.captions ?? {}, 'writeShapesDataset: captions');
  ensureEmptyDir(dir);
  fs.mkdirSync(path.join(dir, IMAGES_DIR));
  const digits = Math.max(5, String(Math.max(0, count - 1)).length);
  const files: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const { scene, caption } = sampleShapesExample(seed, i, split, kinds, captions);
    const file = `${IMAGES_DIR}/${String(i).padStart(digits, '0')}.png`;
    writeBytesAtomic(path.join(dir, file), encodePng(renderScene(scene, size)));
    files.push(file);
    lines.push(JSON.stringify({ file, caption, scene }) + '\n');
  }
  const body = Buffer.from(lines.join(''), 'utf8');
  writeFileAtomic(path.join(dir, CAPTIONS_FILE), (out) => out.write(body));
  return { dir, count, files };
}
