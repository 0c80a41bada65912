// A model the server keeps loaded: its pipeline (resident between requests), what the page and /api/models show
// about it, and its queue.

import * as path from 'node:path';
import { DEFAULT_MODEL_DIR, DEFAULT_MODEL_NAME, LoadPipelineOptions, loadSanaPipeline } from '../pipeline/components.js';
import { binSizes } from '../pipeline/resolution.js';
import { SanaPipeline } from '../pipeline/sana-pipeline.js';
import { JobQueue } from './job-queue.js';

export interface ModelSpec {
  /** Name clients use ("model" field); default: "default" for the bundled model, else the folder's name. */
  id?: string;
  /** Pipeline folder or Hugging Face repo id; default: the bundled model. */
  source?: string;
}

export interface ServedModel {
  readonly id: string;
  readonly name: string;
  readonly pipeline: SanaPipeline;
  readonly width: number;
  readonly height: number;
  readonly sampler: string;
  readonly sizes: ReadonlyArray<{ width: number; height: number; ratio: number }>;
  queue: JobQueue;
}

/** "NAME=DIR" or "DIR" (a repo id "org/name" keeps its slash and has no "=") into a spec. */
export function parseModelSpec(text: string): ModelSpec {
  const eq = text.indexOf('=');
  if (eq > 0) return { id: text.slice(0, eq), source: text.slice(eq + 1) };
  return { source: text };
}

export function modelId(spec: ModelSpec): string {
  if (spec.id) return spec.id;
  if (!spec.source) return 'default';
  return path.basename(path.resolve(spec.source));
}

/**
 * Loads the pipeline and all its weights now, so the first request does not wait for them; `preload: false` reads
 * only the configs (an API server whose jobs run on Redis workers validates requests but never generates).
 */
export async function loadServedModel(
  spec: ModelSpec,
  options: LoadPipelineOptions,
  queue: (id: string) => JobQueue,
  preload = true,
): Promise<ServedModel> {
  const id = modelId(spec);
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id)) {
    throw new Error(`model name "${id}": use 1-64 letters, digits, ".", "_" or "-" (give NAME=DIR to choose one)`);
  }
  const { pipeline, modelName } = await loadSanaPipeline(spec.source ?? DEFAULT_MODEL_DIR, { ...options, keepResident: true });
  if (preload) await pipeline.preload();
  const c = pipeline.components;
  const native = c.transformer.sampleSize * c.vae.compression;
  return {
    id,
    name: spec.source ? modelName : DEFAULT_MODEL_NAME,
    pipeline,
    width: native,
    height: native,
    sampler: pipeline.samplerName(),
    sizes: binSizes(c.transformer.sampleSize),
    queue: queue(id),
  };
}
