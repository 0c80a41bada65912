// The contract between compiled graphs and an ONNX Runtime flavour. onnxruntime-node implements it in Node and
// onnxruntime-web in browsers (and in Node for testing); models and the pipeline only see this interface.

import { HostTensor } from '../io/host-tensor.js';

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
}

export interface CompiledModel {
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
  /** Runs the model; returns the requested outputs (default: all). */
  run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface Backend {
  readonly name: string;
  createSession(model: CompiledModel, options?: SessionOptions): Promise<ModelSession>;
}
