// onnxruntime-node (native CPU execution, MLAS kernels).

import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { HostTensor } from '../io/host-tensor.js';
import { Backend, CompiledModel, ModelSession, SessionOptions } from './backend.js';
import { OrtTensorCtor, fromOrt, toOrt } from './convert.js';
import { executionProviders, sessionDevice } from './device.js';
import { cachedBackend } from './session-cache.js';

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export function ortSessionOptions(options: SessionOptions, externalDataFolder?: string): Record<string, unknown> {
  const session: Record<string, string> = {};
  if (options.prepack === false) session.disable_prepacking = '1';
  if (externalDataFolder) session.model_external_initializers_file_folder_path = externalDataFolder;
  const extra: Record<string, unknown> = { session };
  if (options.noConstantFolding) extra.optimization = { disable_specified_optimizers: 'ConstantFolding' };
  return {
    executionProviders: executionProviders(options.device),
    intraOpNumThreads: options.threads ?? defaultThreads(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: options.optimization ?? 'all',
    enableCpuMemArena: options.memoryArena ?? true,
    enableProfiling: options.profilePrefix !== undefined,
    profileFilePrefix: options.profilePrefix,
    extra,
  };
}

export class OrtSession implements ModelSession {
  constructor(
    private readonly session: {
      inputNames: readonly string[];
      outputNames: readonly string[];
      run(feeds: Record<string, unknown>, fetches?: readonly string[]): Promise<Record<string, unknown>>;
      release(): Promise<void>;
      endProfiling?(): void;
    },
    private readonly TensorCtor: OrtTensorCtor,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`missing model inputs: ${missing.join(', ')} (the model takes ${this.inputNames.join(', ')})`);
    const ortFeeds: Record<string, unknown> = {};
    for (const name of this.inputNames) ortFeeds[name] = toOrt(this.TensorCtor, name, feeds[name]);
    const result = outputs ? await this.session.run(ortFeeds, outputs) : await this.session.run(ortFeeds);
    const out: Record<string, HostTensor> = {};
    for (const [name, value] of Object.entries(result)) out[name] = fromOrt(name, value as never);
    return out;
  }

  endProfiling(): void {
    this.session.endProfiling?.();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

export const nodeBackend: Backend = {
  name: 'onnxruntime-node',
  async createSession(model: CompiledModel, options: SessionOptions = {}): Promise<ModelSession> {
    const sessionOptions = ortSessionOptions(options, model.externalDataFolder);
    if (model.memoryFiles?.size) {
      sessionOptions.externalData = [...model.memoryFiles].map(([path, data]) => ({ path, data }));
    }
    const onGpu = sessionDevice(options.device) !== 'cpu';
    const bytes = onGpu && model.portableBytes ? model.portableBytes() : model.bytes;
    const session = await ort.InferenceSession.create(bytes, sessionOptions as ort.InferenceSession.SessionOptions);
    return new OrtSession(session as never, ort.Tensor as unknown as OrtTensorCtor);
  },
};

/** The default runtime for models: onnxruntime-node with sessions shared per compiled graph. */
export const defaultBackend = cachedBackend(nodeBackend);
