// onnxruntime-node (native CPU execution, MLAS kernels).

import * as ort from 'onnxruntime-node';
import { HostTensor } from '../io/host-tensor.js';
import { capThreads, coreCount } from '../limits.js';
import { Backend, CompiledModel, ModelSession, SessionOptions } from './backend.js';
import { OrtTensorCtor, fromOrt, toOrt } from './convert.js';
import { executionProviders, sessionDevice } from './device.js';
import { cachedBackend } from './session-cache.js';

// ONNX Runtime's POSIX telemetry matches regular expressions against the process command line with libstdc++'s
// recursive std::regex when the first environment is created: a command line of ~50 kB (a long prompt given as an
// argument) overflows the native stack there and the process dies with SIGSEGV before any model runs. Turning the
// telemetry off (read by ORT at that moment, which is the first session, after this module is evaluated) removes
// the code path. A value the user set is kept.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

export function defaultThreads(): number {
  return coreCount();
}

export function ortSessionOptions(options: SessionOptions, externalDataFolder?: string): Record<string, unknown> {
  const session: Record<string, string> = {};
  if (options.prepack === false) session.disable_prepacking = '1';
  if (externalDataFolder) session.model_external_initializers_file_folder_path = externalDataFolder;
  const extra: Record<string, unknown> = { session };
  if (options.noConstantFolding) extra.optimization = { disable_specified_optimizers: 'ConstantFolding' };
  return {
    executionProviders: executionProviders(options.device),
    // more threads than cores only contend; the CLI says so when it caps a flag (src/limits.ts)
    intraOpNumThreads: capThreads(options.threads, 'option threads').threads,
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
