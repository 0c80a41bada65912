// The contract between compiled graphs and an ONNX Runtime flavour. onnxruntime-node implements it in Node and
// onnxruntime-web in browsers (and in Node for testing); models and the pipeline only see this interface.

import { DType, HostTensor } from '../io/host-tensor.js';

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionOptions {
  /** Intra-op threads; default: every core. */
  threads?: number;
  /** ONNX Runtime graph optimisation level; default 'all'. */
  optimization?: OptimizationLevel;
  /**
   * Prepack constant weights for the GEMM kernels (a private copy, faster small-M products). Off keeps external
   * weights as a read-only memory mapping of the safetensors file and makes session creation near-instant.
   */
  prepack?: boolean;
  /** Keep casts of fp16/bf16 weights lazy (no fp32 copy at load); ConstantFolding is disabled. */
  noConstantFolding?: boolean;
  /**
   * ORT's CPU memory arena (default on). Off returns freed buffers to the system at once, which lowers the peak of
   * graphs that materialise many large temporaries (e.g. weights cast from 16 bits at run time).
   */
  memoryArena?: boolean;
  /**
   * Where the graph runs (resolved: see runtime/device.ts); default the CPU. GPU providers run the ops they have
   * and ONNX Runtime's CPU provider the rest.
   */
  device?: 'cpu' | 'webgpu' | 'cuda';
  /** Write an ORT profile (JSON) with this file prefix. */
  profilePrefix?: string;
  /**
   * Outputs a GPU session leaves on the device (ONNX Runtime's preferredOutputLocation 'gpu-buffer'), returned by
   * runMixed as DeviceTensors that later runs on the same device take without a copy: the caption keys and values,
   * made once per image and read by every step. Ignored on the CPU.
   */
  deviceOutputs?: readonly string[];
  /**
   * Save ONNX Runtime's optimised graph on the first CPU session and open that afterwards (optimized-model-cache.ts):
   * for models whose session creation folds much from the weights (the DC-AE). 'auto': for models with at least
   * 64 MB of weights (small ones load in milliseconds anyway). Default off.
   */
  cacheOptimizedModel?: boolean | 'auto';
}

/**
 * A tensor left on the device by a GPU session (SessionOptions.deviceOutputs). JavaScript cannot read it: it is fed
 * to sessions on the same device, and disposed when no longer needed (onnxruntime-node 1.30 aborts the process when
 * such a tensor is downloaded, so nothing here ever downloads one).
 */
export interface DeviceTensor {
  readonly location: 'device';
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** The runtime's own tensor object. */
  readonly handle: unknown;
  dispose(): void;
}

export type SessionValue = HostTensor | DeviceTensor;

export function isDeviceTensor(v: SessionValue | undefined): v is DeviceTensor {
  return v !== undefined && !(v instanceof HostTensor) && (v as DeviceTensor).location === 'device';
}

export interface CompiledModel {
  /** The graph's name (labels cache files). */
  readonly name?: string;
  /** ModelProto bytes. */
  readonly bytes: Uint8Array;
  /** The same model in standard ONNX ops only (no CPU contrib ops), for GPU providers; emitted when asked. */
  readonly portableBytes?: () => Uint8Array;
  /** Folder that external-data locations are relative to (the weights' real folder), if any. */
  readonly externalDataFolder?: string;
  /** External-data file names (relative to externalDataFolder) the model references. */
  readonly externalFiles: readonly string[];
  /** In-memory external-data files (location -> bytes); ONNX Runtime copies them at session creation. */
  readonly memoryFiles?: ReadonlyMap<string, Uint8Array>;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface ModelSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs the model; returns the requested outputs (default: all), none of which may be a device output. */
  run(feeds: Readonly<Record<string, SessionValue>>, outputs?: readonly string[]): Promise<Record<string, HostTensor>>;
  /** As run, with the session's device outputs (SessionOptions.deviceOutputs, on a GPU) as DeviceTensors. */
  runMixed(feeds: Readonly<Record<string, SessionValue>>, outputs?: readonly string[]): Promise<Record<string, SessionValue>>;
  release(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  /** True when its kernels refuse zero-sized tensors (ORT's WebGPU kernels), so graphs must avoid them. */
  readonly rejectsZeroSizedTensors?: boolean;
  createSession(model: CompiledModel, options?: SessionOptions): Promise<ModelSession>;
}
