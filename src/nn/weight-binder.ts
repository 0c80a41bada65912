// Strict binding of checkpoint tensors to graph weights. Every weight the graph asks for must exist with the
// expected shape, and every checkpoint tensor must be used exactly once; all problems are collected and reported in
// one error. Weights enter the graph as ONNX external data pointing into the safetensors file (no copy), with a
// Cast in the graph when the file dtype differs from the compute dtype.

import * as path from 'node:path';
import { Graph, Tensor } from '../graph/graph.js';
import { cast } from '../graph/ops/shape-ops.js';
import { BYTES_PER_ELEMENT, DType, HostTensor, elementCount } from '../io/host-tensor.js';
import { realWeightPath } from '../io/safetensors.js';
import { WeightLocation, WeightStore } from '../io/weights.js';
import { add } from '../graph/ops/elementwise.js';
import { reshape } from '../graph/ops/shape-ops.js';
import { LoraLayout, LoraSet, loraActivationDelta, loraWeightDelta } from './lora.js';
import { TrainableLora } from './lora-trainable.js';
import type { QuantizedLinear, QuantizedLinearProvider } from './int8-linear.js';

export interface WeightBinderOptions {
  /** dtype the model computes in (float32 on CPU). */
  computeDtype?: DType;
  /** Checkpoint keys that may be present but are not used (e.g. training-only buffers). */
  ignore?: (name: string) => boolean;
  /** Maps a graph weight name to the checkpoint key (for checkpoint dialects, e.g. a "model." prefix). */
  keyFor?: (name: string) => string;
  /**
   * Training: every weight becomes a float32 graph input named by its checkpoint key (fed each step, so an
   * optimizer can change it), instead of external data bound into the session. See `parameters`. A predicate
   * makes only the checkpoint keys it accepts inputs (the rest stay frozen external data, e.g. a frozen encoder).
   */
  asInputs?: boolean | ((key: string) => boolean);
  /** LoRA adapters: added on the activations by the linear layers (loraDelta), or fused into the weights here. */
  lora?: LoraSet;
  /**
   * LoRA fine-tuning: the targeted linear layers gain adapters whose matrices are the graph's float32 inputs (the
   * `parameters`), while the checkpoint's weights stay frozen external data.
   */
  trainableLora?: TrainableLora;
  /** Quantized linear layers (e.g. int8, src/nn/int8-linear.ts) for the layers it chooses; see quantizedLinear. */
  quantizedLinear?: QuantizedLinearProvider;
}

/** A weight bound as a graph input (asInputs): feed the checkpoint tensor's float32 values under `key`. */
export interface BoundParameter {
  /** Checkpoint key = graph input name. */
  readonly key: string;
  /** Shape in the checkpoint. */
  readonly shape: readonly number[];
  /** The graph input, in the view shape the model asked for (same elements, same order). */
  readonly input: Tensor;
}

export class WeightBinder {
  private readonly used = new Set<string>();
  private readonly missing: string[] = [];
  private readonly misShaped: string[] = [];
  private readonly bound = new Map<string, Tensor>();
  private readonly stored = new Map<string, Tensor>();
  private readonly inputs: BoundParameter[] = [];
  private readonly requests = new Map<string, readonly number[]>();
  private readonly computeDtype: DType;

  constructor(
    readonly graph: Graph,
    readonly store: WeightStore,
    private readonly options: WeightBinderOptions = {},
  ) {
    this.computeDtype = options.computeDtype ?? 'float32';
  }

  has(name: string): boolean {
    return this.store.has(this.key(name));
  }

  /**
   * The weight `name` with the expected (checkpoint) shape, as a compute-dtype tensor of the graph. `viewShape`
   * binds the same bytes under another shape with the same element count (e.g. a 1x1 conv kernel [out, in, 1, 1]
   * as a matrix [out, in]), so no Reshape node or folded copy is needed.
   */
  get(name: string, shape: readonly number[], viewShape?: readonly number[]): Tensor {
    const cached = this.bound.get(name);
    if (cached) return cached;
    const raw = this.getStored(name, shape, viewShape);
    let t = raw.dtype === this.computeDtype ? raw : cast(raw, this.computeDtype);
    const lora = this.options.lora;
    if (lora?.fuse && name.endsWith('.weight')) {
      const module = name.slice(0, -'.weight'.length);
      const adapters = lora.adapters(module);
      if (adapters.length) {
        // W + s B A as a constant added to the weight: ONNX Runtime folds it into one initializer at session build
        const view = viewShape ?? shape;
        const delta = loraWeightDelta(adapters, module, view.slice(1).reduce((a, b) => a * b, 1), view[0]);
        t = add(t, reshape(this.graph.constant(delta, `${module}.lora_delta`), [...view]));
      }
    }
    this.bound.set(name, t);
    return t;
  }

  /**
   * The quantized form of the linear layer `prefix` (weight `${prefix}.weight`, checkpoint shape `fileShape`), or
   * undefined when the binder has no quantizer or it leaves this layer dense. Its weight then counts as used.
   */
  quantizedLinear(prefix: string, inF: number, outF: number, fileShape: readonly number[] = [outF, inF]): QuantizedLinear | undefined {
    return this.options.quantizedLinear?.(this, prefix, inF, outF, fileShape);
  }

  /**
   * The unfused LoRA contribution to the linear layer `prefix` on x (undefined without adapters, or when they are
   * fused into the weights).
   */
  loraDelta(prefix: string, x: Tensor, inF: number, outF: number, layout: LoraLayout): Tensor | undefined {
    const trainable = this.options.trainableLora;
    if (trainable) {
      return trainable.delta(prefix, x, inF, outF, layout, (key, shape) => {
        const existing = this.inputs.find((p) => p.key === key);
        if (existing) return existing.input;
        const input = this.graph.input(key, 'float32', shape);
        this.inputs.push({ key, shape, input });
        return input;
      });
    }
    const lora = this.options.lora;
    if (!lora || lora.fuse) return undefined;
    const adapters = lora.adapters(prefix);
    return adapters.length ? loraActivationDelta(adapters, prefix, x, inF, outF, layout) : undefined;
  }

  /**
   * The weight `name` in its file dtype, without a Cast: for ops that only move bytes (Gather of embedding rows),
   * so a bf16 table is never widened as a whole.
   */
  getStored(name: string, shape: readonly number[], viewShape?: readonly number[]): Tensor {
    const cached = this.stored.get(name);
    if (cached) return cached;
    if (viewShape && viewShape.reduce((p, d) => p * d, 1) !== shape.reduce((p, d) => p * d, 1)) {
      throw new Error(`weight ${name}: view ${JSON.stringify(viewShape)} has a different size than ${JSON.stringify(shape)}`);
    }
    const located = this.take(name, shape);
    if (!located) return this.placeholder(name, viewShape ?? shape);
    const asInput = this.options.asInputs;
    if (asInput === true || (typeof asInput === 'function' && asInput(located.info.name))) {
      const input = this.graph.input(located.info.name, 'float32', viewShape ?? shape);
      this.inputs.push({ key: located.info.name, shape, input });
      this.stored.set(name, input);
      return input;
    }
    const { file, info } = located;
    const raw = this.graph.external(name, info.dtype, viewShape ?? info.shape, {
      location: this.graph.externalLocation(realWeightPath(file.path)),
      offset: info.fileOffset,
      length: info.byteLength,
    });
    this.stored.set(name, raw);
    return raw;
  }

  /**
   * Reads the weight `name` into memory (checked and counted like `get`), for weights transformed at load time
   * (e.g. quantized); undefined when it is missing or mis-shaped (then `finish` reports it).
   */
  read(name: string, shape: readonly number[]): HostTensor | undefined {
    const located = this.take(name, shape);
    return located ? located.file.read(located.info.name) : undefined;
  }

  /**
   * Where the weight `name` is stored, counting it as used (checked like `get`); undefined when it is missing or
   * mis-shaped. For weights read piece by piece at load time.
   */
  take(name: string, shape: readonly number[]): WeightLocation | undefined {
    const key = this.key(name);
    this.requests.set(key, [...shape]);
    if (!this.store.has(key)) {
      this.missing.push(`${key} ${JSON.stringify(shape)}`);
      return undefined;
    }
    const location = this.store.get(key);
    const { info } = location;
    this.used.add(key);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      this.misShaped.push(`${key}: file has ${JSON.stringify(info.shape)}, model expects ${JSON.stringify(shape)}`);
      return undefined;
    }
    return location;
  }

  /**
   * Every checkpoint key the model asked for, with the shape it expects, present in the store or not: building a
   * model over an empty store lists the weights a new model needs (initialisation from scratch).
   */
  requested(): ReadonlyMap<string, readonly number[]> {
    return this.requests;
  }

  /** The weights bound as graph inputs (asInputs, or the LoRA adapters being trained), in the order asked for. */
  parameters(): readonly BoundParameter[] {
    return this.inputs;
  }

  /** Dtype of a checkpoint tensor as stored. */
  fileDtype(name: string): DType | undefined {
    const key = this.key(name);
    return this.store.has(key) ? this.store.get(key).info.dtype : undefined;
  }

  /** Throws one error listing every missing, unexpected and mis-shaped tensor. */
  finish(what: string): void {
    WeightBinder.finishAll(what, [this]);
  }

  /**
   * Strict check for a model split over several graphs that share one checkpoint (e.g. a caption graph and a
   * denoise graph): a key is unexpected only when no binder used it. Throws one error for all binders.
   */
  static finishAll(what: string, binders: readonly WeightBinder[]): void {
    if (binders.length === 0) throw new Error(`${what}: no weight binders to check`);
    const store = binders[0].store;
    if (binders.some((b) => b.store !== store)) throw new Error(`${what}: binders read different checkpoints`);
    const used = new Set(binders.flatMap((b) => [...b.used]));
    const missing = [...new Set(binders.flatMap((b) => b.missing))];
    const misShaped = [...new Set(binders.flatMap((b) => b.misShaped))];
    const ignored = (n: string) => binders.some((b) => b.options.ignore?.(n));
    const unexpected = [...store.names()].filter((n) => !used.has(n) && !ignored(n));
    if (!missing.length && !misShaped.length && !unexpected.length) return;
    const lines = [`${what}: the checkpoint ${store.source} does not match the model config`];
    const list = (title: string, items: string[]) => {
      if (!items.length) return;
      lines.push(`  ${title} (${items.length}):`);
      for (const item of items.slice(0, 20)) lines.push(`    ${item}`);
      if (items.length > 20) lines.push(`    ... and ${items.length - 20} more`);
    };
    list('missing', missing);
    list('mis-shaped', misShaped);
    list('unexpected', unexpected.sort());
    throw new Error(lines.join('\n'));
  }

  private key(name: string): string {
    return this.options.keyFor ? this.options.keyFor(name) : name;
  }

  private placeholder(name: string, shape: readonly number[]): Tensor {
    const length = elementCount(shape) * BYTES_PER_ELEMENT[this.computeDtype];
    return this.graph.external(`missing.${name}`, this.computeDtype, shape, { location: 'missing', offset: 0, length });
  }
}
