// Text to image in the page: the library's SanaPipeline over a model folder in the in-memory file system, on
// onnxruntime-web. WebGPU where the browser offers an adapter, wasm otherwise (SIMD always; threads only where the
// page is cross-origin isolated, since they need SharedArrayBuffer). Components load when a stage needs them and are
// released after it, as in Node (SanaPipeline without keepResident), so the peak is the largest stage.
// ref: DESIGN.md §1 (onnxruntime-web), §6 (GPU path on SwiftShader: no shader-f16)

import * as ort from 'onnxruntime-web';
import { encodePng } from '../../io/png.js';
import { HostTensor } from '../../io/host-tensor.js';
import { pipelineComponents } from '../../pipeline/components.js';
import { imageTextChunks } from '../../pipeline/image-metadata.js';
import { toRgbImages } from '../../pipeline/postprocess.js';
import { GenerateRequest } from '../../pipeline/request.js';
import { PipelineEvent, PipelineResult, SanaPipeline } from '../../pipeline/sana-pipeline.js';
import { WebExecutionProvider, createWebBackend } from '../../runtime/web-backend.js';

export interface RuntimeChoice {
  readonly executionProvider: WebExecutionProvider;
  readonly threads: number;
  /** Compute precision: float32 everywhere today (see `note`). */
  readonly precision: 'fp32';
  /** The adapter lacks shader-f16: 16-bit weights are widened to float32 before WebGPU sees them. */
  readonly widenHalfWeights: boolean;
  /** A sentence for the page: what runs where, and why. */
  readonly note: string;
}

/**
 * Picks the execution provider: `wanted` 'auto' takes WebGPU when navigator.gpu gives an adapter. fp16 needs the
 * adapter's shader-f16 feature and a float16 graph; the graphs compute in float32 today, so WebGPU runs fp32 (and
 * SwiftShader, the software adapter of headless test runs, has no shader-f16 at all).
 */
export async function chooseRuntime(wanted: 'auto' | WebExecutionProvider): Promise<RuntimeChoice> {
  // set before the first session: onnxruntime-web fetches its .wasm from here (copied by the build)
  ort.env.wasm.wasmPaths = new URL('ort/', location.href).href;
  const isolated = globalThis.crossOriginIsolated === true;
  const threads = isolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  const threadNote = isolated ? `${threads} threads (cross-origin isolated)` : '1 thread (not cross-origin isolated, so no SharedArrayBuffer)';
  if (wanted !== 'wasm') {
    const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<{ features: Set<string>; info?: { vendor?: string; architecture?: string; description?: string } } | null> } }).gpu;
    const adapter = gpu ? await gpu.requestAdapter().catch(() => null) : null;
    if (adapter) {
      const f16 = adapter.features.has('shader-f16');
      const name = [adapter.info?.vendor, adapter.info?.architecture, adapter.info?.description].filter(Boolean).join(' ') || 'unknown adapter';
      return {
        executionProvider: 'webgpu',
        threads,
        precision: 'fp32',
        widenHalfWeights: !f16,
        note: `WebGPU (${name}), fp32${f16 ? ' (the adapter has shader-f16; the graphs are float32 for now)' : ' (the adapter has no shader-f16: fp16 weights widened to fp32)'}; ops WebGPU lacks run on wasm with ${threadNote}`,
      };
    }
    if (wanted === 'webgpu') throw new Error('WebGPU was asked for (?ep=webgpu) but this browser offers no WebGPU adapter');
  }
  return { executionProvider: 'wasm', threads, precision: 'fp32', widenHalfWeights: false, note: `WebAssembly (SIMD), fp32, ${threadNote}` };
}

export interface GeneratedImage {
  readonly png: Uint8Array;
  readonly width: number;
  readonly height: number;
  readonly result: PipelineResult;
}

/** The pipeline over `folder`, on the chosen runtime; components load per stage and are released after it. */
export function webPipeline(folder: string, runtime: RuntimeChoice): SanaPipeline {
  const backend = createWebBackend({ executionProvider: runtime.executionProvider, widenHalfWeights: runtime.widenHalfWeights });
  return new SanaPipeline(pipelineComponents(folder, { backend, threads: runtime.threads }));
}

/** Runs one request; `onEvent` sees every pipeline event (stages, steps with latents for previews). */
export async function generateImage(
  pipeline: SanaPipeline,
  request: GenerateRequest,
  modelName: string,
  onEvent: (e: PipelineEvent) => Promise<void> | void,
): Promise<GeneratedImage> {
  const it = pipeline.generate(request);
  let result: PipelineResult;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      result = r.value;
      break;
    }
    await onEvent(r.value);
  }
  const image = toRgbImages(result.images)[0];
  const text = imageTextChunks({ request: result.request, index: 0, sampler: pipeline.samplerName(result.request.sampler), model: modelName, width: image.width, height: image.height });
  return { png: new Uint8Array(encodePng(image, text)), width: image.width, height: image.height, result };
}

/** A step's clean-latent estimate decoded to a PNG (the decoder loads for it and is released after). */
export async function previewPng(pipeline: SanaPipeline, denoised: HostTensor<'float32'>): Promise<Uint8Array> {
  const [, c, h, w] = denoised.shape;
  const first = HostTensor.float32([1, c, h, w], denoised.data.subarray(0, c * h * w)); // [1, C, h, w]
  const image = await pipeline.decodeLatents(first); // [1, 3, H, W] in [0, 1]
  return new Uint8Array(encodePng(toRgbImages(image)[0]));
}
