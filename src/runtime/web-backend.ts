// onnxruntime-web (WebAssembly; WebGPU where a browser has it). In Node it runs the same wasm build, which is how
// the tests prove that compiled graphs run in the browser flavour. External weights are handed over as bytes
// (onnxruntime-web copies them into its wasm heap, at most 4 GiB for all sessions together).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-web';
import { Backend, CompiledModel, ModelSession, SessionOptions } from './backend.js';
import { OrtTensorCtor } from './convert.js';
import { OrtSession } from './node-backend.js';

export const webBackend: Backend = {
  name: 'onnxruntime-web',
  async createSession(model: CompiledModel, options: SessionOptions = {}): Promise<ModelSession> {
    ort.env.wasm.numThreads = options.threads ?? 1;
    const externalData: Array<{ path: string; data: Uint8Array }> = model.externalFiles.map((file) => ({
      path: file,
      data: new Uint8Array(fs.readFileSync(path.join(model.externalDataFolder!, file))),
    }));
    for (const [file, data] of model.memoryFiles ?? []) externalData.push({ path: file, data });
    const session = await ort.InferenceSession.create(model.bytes, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: options.optimization ?? 'all',
      externalData,
    });
    return new OrtSession(session as never, ort.Tensor as unknown as OrtTensorCtor);
  },
};
