// `sana make-shapes --out DIR --count N`: writes the procedural coloured-shapes data set (images + captions.jsonl).

import { parseArgs } from 'node:util';
import { DEFAULT_POSITION_FIRST_PROBABILITY, checkCaptionOptions } from '../train/shapes/caption.js';
import { writeShapesDataset } from '../train/shapes/dataset.js';
import { DEFAULT_KIND_WEIGHTS, SCENE_KINDS, checkKindWeights, type KindWeights, type SceneKind } from '../train/shapes/scene.js';
import { parseNumber, parsePositiveInt, parseBounded, parseImageSize } from './arg-values.js';
import { LIMITS } from '../limits.js';
import { UsageError } from './errors.js';

export const MAKE_SHAPES_HELP = `Usage: sana make-shapes --out DIR --count N [--seed S] [--size PX] [--split train|validation]
                         [--kinds single=W,relation=W,count=W] [--position-first P]
                         [--omit-color P] [--omit-shape P]

Writes the procedural coloured-shapes data set: DIR/images/NNNNN.png and DIR/captions.jsonl. Deterministic for a
seed; training scenes never contain the held-out colour-shape pairs (purple triangle, orange circle, white square,
green diamond). --kinds sets the relative share of single objects, two objects in a relation and counts (default
single=${DEFAULT_KIND_WEIGHTS.single},relation=${DEFAULT_KIND_WEIGHTS.relation},count=${DEFAULT_KIND_WEIGHTS.count}; kinds left out get 0). --position-first is how often a
single object's caption names the position first, "on the left, a red circle" (default
${DEFAULT_POSITION_FIRST_PROBABILITY}; 0 keeps every object before its position, as relation captions keep the subject before the relation).
--omit-color and --omit-shape are how often an object is named without its colour ("a circle") or with "shape" for
its shape ("a red shape"): captions that teach each word on its own (default 0 both; at most 1 together).
`;

function optionalProbability(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const p = parseNumber(text, flag);
  if (p < 0 || p > 1) throw new UsageError(`${flag}: expected a probability in [0, 1], got ${text}`);
  return p;
}

/** "single=1,relation=2" -> weights; kinds not named get 0. */
export function parseKindWeights(text: string, flag: string): KindWeights {
  const weights: Record<SceneKind, number> = { single: 0, relation: 0, count: 0 };
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*$/i.exec(part);
    if (!m) throw new UsageError(`${flag}: expected KIND=WEIGHT pairs separated by commas (e.g. relation=2,count=1), got "${part}"`);
    const kind = m[1] as SceneKind;
    if (!SCENE_KINDS.includes(kind)) throw new UsageError(`${flag}: unknown kind "${m[1]}" (expected ${SCENE_KINDS.join(', ')})`);
    weights[kind] = Number(m[2]);
  }
  try {
    return checkKindWeights(weights, flag);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

export async function makeShapesCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, size: { type: 'string' }, split: { type: 'string' }, kinds: { type: 'string' }, 'position-first': { type: 'string' }, 'omit-color': { type: 'string' }, 'omit-shape': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) {
    process.stdout.write(MAKE_SHAPES_HELP);
    return;
  }
  if (!v.out) throw new UsageError('--out DIR is required');
  const split = v.split ?? 'train';
  if (split !== 'train' && split !== 'validation') throw new UsageError(`--split: expected train or validation, got "${split}"`);
  const captions = {
    positionFirst: optionalProbability(v['position-first'], '--position-first'),
    omitColor: optionalProbability(v['omit-color'], '--omit-color'),
    omitShape: optionalProbability(v['omit-shape'], '--omit-shape'),
  };
  try {
    checkCaptionOptions(captions, 'make-shapes');
  } catch {
    // each flag's range was checked above, naming it: only their sum is left to fail here
    throw new UsageError(`--omit-color + --omit-shape must be at most 1, got ${captions.omitColor} + ${captions.omitShape}`);
  }
  const r = writeShapesDataset(v.out, {
    count: parseBounded(v.count ?? '1000', '--count', LIMITS.datasetImages),
    seed: Math.round(parseNumber(v.seed ?? '0', '--seed')),
    size: parseImageSize(v.size ?? '256', '--size'),
    split,
    kinds: v.kinds !== undefined ? parseKindWeights(v.kinds, '--kinds') : undefined,
    captions,
  });
  process.stderr.write(`wrote ${r.count} images and captions.jsonl to ${r.dir}\n`);
}
