// How well a model draws what the held-out prompts ask for: one image per evaluation prompt (a fixed seed each),
// scored by the procedural checker (colour, shape, size, position, relation, count), plus the autoencoder's PSNR on
// validation-split images it never saw. Used by the default model's test and at the end of `sana train-default`.

import * as path from 'node:path';
import { RgbImage } from '../../io/png.js';
import { Dcae } from '../../models/dcae/model.js';
import { loadSanaPipeline } from '../../pipeline/components.js';
import { toRgbImages } from '../../pipeline/postprocess.js';
import { CheckResult, checkImage } from '../shapes/checker.js';
import { CheckSummary, summarizeChecks } from '../shapes/accuracy.js';
import { evaluationPrompts, promptForSpec } from '../shapes/evaluation.js';
import type { RelationSpec } from '../shapes/spec.js';
import type { RelationName } from '../shapes/vocabulary.js';
import { renderScene } from '../shapes/render.js';
import { sampleShapesExample } from '../shapes/dataset.js';
import { writeImageGrid } from '../image-grid.js';
import { reconstruct } from '../reconstruction.js';

export interface PromptEvaluation {
  readonly summary: CheckSummary;
  readonly results: readonly CheckResult[];
  readonly prompts: readonly string[];
  readonly images: readonly RgbImage[];
  readonly secondsPerImage: number;
}

export interface EvaluateOptions {
  readonly steps?: number;
  readonly guidanceScale?: number;
  readonly threads?: number;
  /** Also write the images side by side to this PNG (rows of 8). */
  readonly gridPng?: string;
}

export async function evaluatePrompts(model: string | undefined, o: EvaluateOptions = {}): Promise<PromptEvaluation> {
  const { pipeline } = await loadSanaPipeline(model, { threads: o.threads, keepResident: true });
  const prompts = evaluationPrompts();
  const images: RgbImage[] = [];
  const results: CheckResult[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < prompts.length; i++) {
      const r = await pipeline.run({ prompts: [prompts[i].prompt], seed: 1000 + i, steps: o.steps ?? 20, guidanceScale: o.guidanceScale });
      const image = toRgbImages(r.images)[0];
      images.push(image);
      results.push(checkImage(image, prompts[i].spec));
    }
  } finally {
    await pipeline.release();
  }
  const secondsPerImage = (performance.now() - t0) / 1000 / prompts.length;
  if (o.gridPng) writeImageGrid(path.resolve(o.gridPng), images, 8);
  return { summary: summarizeChecks(results), results, prompts: prompts.map((p) => p.prompt), images, secondsPerImage };
}

const OPPOSITE: Readonly<Record<RelationName, RelationName>> = { 'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above' };

export interface RelationFlipResult {
  /** Relation checks passed with the prompts as written, with the relation word flipped, and with both. */
  readonly asWritten: number;
  readonly flipped: number;
  readonly both: number;
  readonly prompts: number;
}

/**
 * Whether the layout follows the relation's direction, not only its axis: each relation evaluation prompt drawn as
 * written and with its relation flipped ("left of" <-> "right of", "above" <-> "below"), same seed. A model that
 * takes only the axis from the word passes one wording of a pair by chance, rarely both.
 */
export async function relationFlipAgreement(model: string | undefined, o: Pick<EvaluateOptions, 'steps' | 'threads'> = {}): Promise<RelationFlipResult> {
  const { pipeline } = await loadSanaPipeline(model, { threads: o.threads, keepResident: true });
  const all = evaluationPrompts();
  let asWritten = 0;
  let flipped = 0;
  let both = 0;
  let prompts = 0;
  try {
    for (let i = 0; i < all.length; i++) {
      const spec = all[i].spec;
      if (spec.kind !== 'relation') continue;
      const passes: boolean[] = [];
      for (const s of [spec, { ...spec, relation: OPPOSITE[spec.relation] } satisfies RelationSpec]) {
        // the evaluation's seed for this prompt, so the as-written image is the one evaluatePrompts scores
        const r = await pipeline.run({ prompts: [promptForSpec(s)], seed: 1000 + i, steps: o.steps ?? 20 });
        const check = checkImage(toRgbImages(r.images)[0], s).checks.find((c) => c.category === 'relation');
        passes.push(check?.passed === true);
      }
      prompts++;
      asWritten += Number(passes[0]);
      flipped += Number(passes[1]);
      both += Number(passes[0] && passes[1]);
    }
  } finally {
    await pipeline.release();
  }
  return { asWritten, flipped, both, prompts };
}

/** PSNR (dB, [0, 1] images) of the autoencoder on `count` validation-split scenes (not in any training set). */
export async function autoencoderPsnr(vaeDir: string, count = 16, size = 256, threads?: number): Promise<number> {
  const images = Array.from({ length: count }, (_, i) => {
    const rgb = renderScene(sampleShapesExample(99, i, 'validation').scene, size).rgb;
    const x = new Float32Array(3 * size * size);
    for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) x[c * size * size + p] = rgb[3 * p + c] / 127.5 - 1;
    return x;
  });
  const dcae = await Dcae.load(vaeDir, { threads });
  try {
    return (await reconstruct(dcae, images, size)).psnr;
  } finally {
    await dcae.release();
  }
}
