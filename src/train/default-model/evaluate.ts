// How well a model draws what the held-out prompts ask for: one image per evaluation prompt (a fixed seed each),
// scored by the procedural checker (colour, shape, size, position, relation, count), plus the autoencoder's PSNR on
// validation-split images it never saw. Used by the default model's test and at the end of `sana train-default`.

import * as path from 'node:path';
import { HostTensor } from '../../io/host-tensor.js';
import { RgbImage, writePng } from '../../io/png.js';
import { Dcae } from '../../models/dcae/model.js';
import { loadSanaPipeline } from '../../pipeline/components.js';
import { toRgbImages } from '../../pipeline/postprocess.js';
import { CheckResult, checkImage } from '../shapes/checker.js';
import { CheckSummary, summarizeChecks } from '../shapes/accuracy.js';
import { evaluationPrompts } from '../shapes/evaluation.js';
import { renderScene } from '../shapes/render.js';
import { sampleShapesExample } from '../shapes/dataset.js';

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
  if (o.gridPng) writeGrid(o.gridPng, images, 8);
  return { summary: summarizeChecks(results), results, prompts: prompts.map((p) => p.prompt), images, secondsPerImage };
}

/** PSNR (dB, [0, 1] images) of the autoencoder on `count` validation-split scenes (not in any training set). */
export async function autoencoderPsnr(vaeDir: string, count = 16, size = 256, threads?: number): Promise<number> {
  const dcae = await Dcae.load(vaeDir, { threads });
  let se = 0;
  let n = 0;
  try {
    for (let i = 0; i < count; i++) {
      const { scene } = sampleShapesExample(99, i, 'validation');
      const rgb = renderScene(scene, size).rgb;
      const x = new Float32Array(3 * size * size);
      for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) x[c * size * size + p] = rgb[3 * p + c] / 127.5 - 1;
      const y = (await dcae.decode(await dcae.encode(HostTensor.float32([1, 3, size, size], x)))).data as Float32Array;
      for (let k = 0; k < x.length; k++) se += ((Math.min(1, Math.max(-1, y[k])) - x[k]) / 2) ** 2;
      n += x.length;
    }
  } finally {
    await dcae.release();
  }
  return 10 * Math.log10(1 / (se / n));
}

function writeGrid(file: string, images: readonly RgbImage[], columns: number): void {
  const { width, height } = images[0];
  const rows = Math.ceil(images.length / columns);
  const rgb = new Uint8Array(columns * width * rows * height * 3);
  images.forEach((im, k) => {
    const ox = (k % columns) * width;
    const oy = Math.floor(k / columns) * height;
    for (let y = 0; y < height; y++) rgb.set(im.rgb.subarray(y * width * 3, (y + 1) * width * 3), ((oy + y) * columns * width + ox) * 3);
  });
  writePng(path.resolve(file), { width: columns * width, height: rows * height, rgb });
}
