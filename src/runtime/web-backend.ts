// onnxruntime-web (WebAssembly; WebGPU where a browser has it). In Node it runs the same wasm build, which is how
// the tests prove that compiled graphs run in the browser flavour, and how they get the browser's exact numbers
// (test/browser-page.test.ts). External weights are handed over as bytes (onnxruntime-web copies them into its wasm
// heap, at most 4 GiB for all sessions together). In the page, `node:fs` is the page's in-memory model folder
// (src/web/shims/fs.ts), so this one file serves Node and the browser.
// ref: DESIGN.md §1 (onnxruntime-web externalData), §2 (runtime flavours)

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-web';
import { Backend, CompiledModel, ModelSession, SessionOptions } from './backend.js';
import { OrtTensorCtor } from './convert.js';
import { OrtSession } from './node-backend.js';
import { prepareForWebGpu } from './webgpu-model.js';

export type WebExecutionProvider = 'wasm' | 'webgpu';

export interface WebBackendOptions {
  /** 'webgpu' runs what it can on the GPU; ONNX Runtime puts ops WebGPU lacks on wasm (default 'wasm'). */
  executionProvider?: WebExecutionProvider;
  /**
   * Widen float16/bfloat16 weights to float32 before ONNX Runtime sees them (exact): for WebGPU adapters without
   * shader-f16, on which any 16-bit tensor fails (src/runtime/webgpu-model.ts).
   */
  widenHalfWeights?: boolean;
}

/** An onnxruntime-web backend on one execution provider. */
export function createWebBackend(backendOptions: WebBackendOptions = {}): Backend {
  const ep = backendOptions.executionProvider ?? 'wasm';
  return {
    name: `onnxruntime-web (${ep})`,
    rejectsZeroSizedTensors: ep === 'webgpu',
    async createSession(model: CompiledModel, options: SessionOptions = {}): Promise<ModelSession> {
      // the thread count is global to onnxruntime-web and fixed once its wasm has started
      ort.env.wasm.numThreads = options.threads ?? 1;
      const readExternal = (file: string) => new Uint8Array(fs.readFileSync(path.join(model.externalDataFolder!, file)));
      if (ep === 'webgpu') {
        // standard ops only (FusedMatMul as Transpose + MatMul), so no node falls back to the wasm CPU provider
        const portable = model.portableBytes ? { ...model, bytes: model.portableBytes() } : model;
        model = prepareForWebGpu(portable, readExternal, { widenHalf: backendOptions.widenHalfWeights ?? false });
      }
      const externalData: Array<{ path: string; data: Uint8Array }> = model.externalFiles.map((file) => ({
        path: file,
        data: readExternal(file),
      }));
      for (const [file, data] of model.memoryFiles ?? []) externalData.push({ path: file, data });
      const session = await ort.InferenceSession.create(model.bytes, {
        executionProviders: [ep],
        graphOptimizationLevel: options.optimization ?? 'all',
        externalData,
      });
      return new OrtSession(session as never, ort.Tensor as unknown as OrtTensorCtor);
    },
  };
}

/** onnxruntime-web on wasm (SIMD; threads as `threads` says). */
export const webBackend: Backend = createWebBackend();
