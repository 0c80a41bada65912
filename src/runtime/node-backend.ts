// onnxruntime-node (native CPU execution, MLAS kernels).

import * as ort from 'onnxruntime-node';
import { DType, HostTensor } from '../io/host-tensor.js';
import { capThreads, coreCount } from '../limits.js';
import { Backend, CompiledModel, DeviceTensor, ModelSession, SessionOptions, SessionValue, isDeviceTensor } from './backend.js';
import { OrtTensorCtor, fromOrt, toOrt } from './convert.js';
import { executionProviders, sessionDevice } from './device.js';
import { cachedBackend } from './session-cache.js';
import { cachedModelFile, commitSaved, optimizedModelCacheEvents, planOptimizedModel, saveOptions } from './optimized-model-cache.js';
import * as fs from 'node:fs';

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
    ...(sessionDevice(options.device) !== 'cpu' && options.deviceOutputs?.length
      ? { preferredOutputLocation: Object.fromEntries(options.deviceOutputs.map((name) => [name, 'gpu-buffer'])) }
      : {}),
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
    /** Outputs this session leaves on its GPU (empty on the CPU). */
    private readonly deviceOutputs: ReadonlySet<string> = new Set(),
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  async run(feeds: Readonly<Record<string, SessionValue>>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    const kept = (outputs ?? this.outputNames).filter((n) => this.deviceOutputs.has(n));
    if (kept.length) throw new Error(`outputs ${kept.join(', ')} stay on the device: read them with runMixed`);
    return (await this.runMixed(feeds, outputs)) as Record<string, HostTensor>;
  }

  async runMixed(feeds: Readonly<Record<string, SessionValue>>, outputs?: readonly string[]): Promise<Record<string, SessionValue>> {
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`missing model inputs: ${missing.join(', ')} (the model takes ${this.inputNames.join(', ')})`);
    const ortFeeds: Record<string, unknown> = {};
    for (const name of this.inputNames) {
      const v = feeds[name];
      ortFeeds[name] = isDeviceTensor(v) ? v.handle : toOrt(this.TensorCtor, name, v);
    }
    const result = outputs ? await this.session.run(ortFeeds, outputs) : await this.session.run(ortFeeds);
    const out: Record<string, SessionValue> = {};
    for (const [name, value] of Object.entries(result)) {
      out[name] = this.deviceOutputs.has(name) ? deviceTensor(name, value as OrtDeviceTensor) : fromOrt(name, value as never);
    }
    return out;
  }

  endProfiling(): void {
    this.session.endProfiling?.();
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

interface OrtDeviceTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly location: string;
  dispose(): void;
}

function deviceTensor(name: string, t: OrtDeviceTensor): DeviceTensor {
  if (t.location === 'cpu' || t.location === 'cpu-pinned') throw new Error(`output "${name}" was to stay on the device but came back to the CPU`);
  let disposed = false;
  return {
    location: 'device',
    dtype: t.type as DType,
    shape: [...t.dims],
    handle: t,
    dispose: () => {
      if (!disposed) t.dispose();
      disposed = true;
    },
  };
}

/** The output names of `options.deviceOutputs` a session on `options.device` keeps there. */
export function keptOnDevice(options: SessionOptions): ReadonlySet<string> {
  return new Set(sessionDevice(options.device) !== 'cpu' ? (options.deviceOutputs ?? []) : []);
}

/** The onnxruntime-node version (keys the optimised-model cache). */
const ORT_VERSION = (ort.env as { versions?: Record<string, string> }).versions?.node ?? 'unknown';

/** An ORT session for `bytes`, through the optimised-model cache when asked (CPU sessions only). */
async function createOrtSession(
  model: CompiledModel,
  bytes: Uint8Array,
  options: SessionOptions,
  sessionOptions: Record<string, unknown>,
  useCache: boolean,
): Promise<ort.InferenceSession> {
  const create = (what: Uint8Array | string, o: Record<string, unknown>) => ort.InferenceSession.create(what as never, o as ort.InferenceSession.SessionOptions);
  const label = (model.name ?? 'model').replace(/[^A-Za-z0-9_.-]/g, '_');
  const plan = useCache ? planOptimizedModel(model, options, label, ORT_VERSION) : undefined;
  if (plan?.cached) {
    try {
      const session = await create(cachedModelFile(plan.cached), ortSessionOptions({ ...options, optimization: 'disabled' }, plan.cached));
      optimizedModelCacheEvents.reused++;
      return session;
    } catch {
      // damaged, or its weights changed under it: removed, and the session is made from the graph
      optimizedModelCacheEvents.rebuilt++;
      fs.rmSync(plan.cached, { recursive: true, force: true });
    }
  }
  if (!plan?.save) return create(bytes, sessionOptions);
  const save = saveOptions(plan.save.tmp);
  const extra = sessionOptions.extra as { session: Record<string, string> };
  // severity 3: ORT warns that the saved layout is hardware specific, which the cache key already covers
  const session = await create(bytes, { ...sessionOptions, optimizedModelFilePath: save.optimizedModelFilePath, logSeverityLevel: 3, extra: { ...extra, session: { ...extra.session, ...save.config } } });
  commitSaved(plan.save, label, model, ORT_VERSION);
  optimizedModelCacheEvents.saved++;
  return session;
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
    const session = await createOrtSession(model, bytes, options, sessionOptions, !onGpu);
    return new OrtSession(session as never, ort.Tensor as unknown as OrtTensorCtor, keptOnDevice(options));
  },
};

/** The default runtime for models: onnxruntime-node with sessions shared per compiled graph. */
export const defaultBackend = cachedBackend(nodeBackend);
