// Runs one job on its model's resident pipeline: follows the pipeline's steps, stops at the next step when the job
// is cancelled, sends small previews of the image taking shape, and turns the result into PNG files (settings in
// their text chunks, optionally also written to an output folder, atomically).

import * as path from 'node:path';
import { HostTensor } from '../io/host-tensor.js';
import { writeBytesAtomic } from '../io/atomic-write.js';
import { encodePng } from '../io/png.js';
import { imageTextChunks } from '../pipeline/image-metadata.js';
import { toRgbImages } from '../pipeline/postprocess.js';
import { bilinear } from '../pipeline/resolution.js';
import { PipelineResult } from '../pipeline/sana-pipeline.js';
import { Job, JobImage } from './job.js';
import { ServedModel } from './served-model.js';

export interface RunOptions {
  /** A preview every this many steps (0: none). */
  previewEvery: number;
  /** Also write each image to DIR/<job id>-<k>.png. */
  outputDir?: string;
}

/** Largest side of a preview image, px. */
const PREVIEW_SIDE = 256;

/** What running a job needs of its model: the pipeline and the name PNG metadata gives (a worker has no queue). */
export type RunnableModel = Pick<ServedModel, 'pipeline' | 'name'>;

export async function runJob(job: Job, model: RunnableModel, options: RunOptions & { startDetail?: Record<string, unknown> }): Promise<void> {
  job.start(options.startDetail);
  const run = model.pipeline.generate(job.request);
  let result: PipelineResult;
  try {
    for (;;) {
      if (job.cancelRequested) {
        await run.return(undefined as never); // runs the pipeline's finally blocks: nothing stays half-used
        job.cancel();
        return;
      }
      const next = await run.next();
      if (next.done) {
        result = next.value;
        break;
      }
      const e = next.value;
      if (e.type === 'stage') job.setStage(e.stage);
      else if (e.type === 'step') {
        const wantPreview = job.preview && options.previewEvery > 0 && e.step % options.previewEvery === 0 && e.step < e.total;
        job.setStep(e.step, e.seconds, wantPreview && !job.cancelRequested ? await previewDataUrl(model, e.denoised) : undefined);
      }
    }
  } catch (e) {
    job.fail(e instanceof Error ? e.message : String(e), e);
    return;
  }
  const images = encodeImages(job, model, result);
  if (options.outputDir) {
    for (const img of images) writeBytesAtomic(path.join(options.outputDir, `${job.id}-${img.index}.png`), img.png);
  }
  const t = result.timings;
  job.complete({
    images,
    generatedWidth: result.generatedWidth,
    generatedHeight: result.generatedHeight,
    warnings: result.warnings,
    timings: {
      encodeSeconds: t.encodeSeconds,
      denoiseSeconds: t.prepareSeconds + t.stepSeconds.reduce((a, b) => a + b, 0),
      decodeSeconds: t.decodeSeconds,
      totalSeconds: t.totalSeconds,
    },
  });
}

function encodeImages(job: Job, model: RunnableModel, result: PipelineResult): JobImage[] {
  const r = result.request;
  return toRgbImages(result.images).map((img, index) => {
    const text = imageTextChunks({ request: r, index, sampler: job.sampler, model: model.name, width: img.width, height: img.height });
    return { index, prompt: text.prompt, seed: String(r.seed), width: img.width, height: img.height, png: encodePng(img, text) };
  });
}

/** The first image's current clean-latent estimate, decoded and shrunk to a small PNG data URL. */
async function previewDataUrl(model: RunnableModel, denoised: HostTensor<'float32'>): Promise<string> {
  const [, c, h, w] = denoised.shape;
  const first = HostTensor.float32([1, c, h, w], denoised.data.subarray(0, c * h * w)); // [1, C, h, w]
  let image = await model.pipeline.decodeLatents(first); // [1, 3, H, W] in [0, 1]
  const [, , height, width] = image.shape;
  const scale = Math.min(1, PREVIEW_SIDE / Math.max(height, width));
  if (scale < 1) {
    const outH = Math.max(1, Math.round(height * scale));
    const outW = Math.max(1, Math.round(width * scale));
    image = HostTensor.float32([1, 3, outH, outW], bilinear(image.data, 3, height, width, outH, outW)); // [1, 3, outH, outW]
  }
  return `data:image/png;base64,${encodePng(toRgbImages(image)[0]).toString('base64')}`;
}
