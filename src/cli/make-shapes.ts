// `sana make-shapes --out DIR --count N`: writes the procedural coloured-shapes data set (images + captions.jsonl).

import { parseArgs } from 'node:util';
import { writeShapesDataset } from '../train/shapes/dataset.js';
import { parseNumber, parsePositiveInt, parseBounded, parseImageSize } from './arg-values.js';
import { LIMITS } from '../limits.js';
import { UsageError } from './errors.js';

export const MAKE_SHAPES_HELP = `Usage: sana make-shapes --out DIR --count N [--seed S] [--size PX] [--split train|validation]

Writes the procedural coloured-shapes data set: DIR/images/NNNNN.png and DIR/captions.jsonl. Deterministic for a
seed; training scenes never contain the held-out colour-shape pairs (purple triangle, orange circle, white square,
green diamond).
`;

export async function makeShapesCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, count: { type: 'string' }, seed: { type: 'string' }, size: { type: 'string' }, split: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (v.help) {
    process.stdout.write(MAKE_SHAPES_HELP);
    return;
  }
  if (!v.out) throw new UsageError('--out DIR is required');
  const split = v.split ?? 'train';
  if (split !== 'train' && split !== 'validation') throw new UsageError(`--split: expected train or validation, got "${split}"`);
  const r = writeShapesDataset(v.out, {
    count: parseBounded(v.count ?? '1000', '--count', LIMITS.datasetImages),
    seed: Math.round(parseNumber(v.seed ?? '0', '--seed')),
    size: parseImageSize(v.size ?? '256', '--size'),
    split,
  });
  process.stderr.write(`wrote ${r.count} images and captions.jsonl to ${r.dir}\n`);
}
