// The settings a generated PNG carries in its text chunks, the same from `sana generate` and the server, so that
// any image says how to make it again. ref: SANA.md §7

import { ResolvedRequest } from './request.js';

export interface ImageMetadataInput {
  request: ResolvedRequest;
  /** Index of the image among the request's prompts x images per prompt. */
  index: number;
  sampler: string;
  model: string;
  width: number;
  height: number;
}

export function imageTextChunks(m: ImageMetadataInput): Record<string, string> {
  const r = m.request;
  return {
    prompt: r.prompts[Math.floor(m.index / r.numImagesPerPrompt)],
    negative_prompt: r.negativePrompt,
    seed: r.latents ? 'latents from file' : String(r.seed),
    steps: String(r.steps),
    guidance: String(r.guidanceScale),
    sampler: m.sampler,
    model: m.model,
    size: `${m.width}x${m.height}`,
    software: 'sana-ts',
  };
}
