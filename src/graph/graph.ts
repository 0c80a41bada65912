// The graph under construction: symbolic tensors, nodes, initializers (inline constants and external weights that
// point into safetensors files), graph inputs and outputs. Op builders in ./ops create nodes through `Graph.node`,
// after checking shapes and dtypes themselves; emission to ONNX lives in ./onnx-emit.ts.

import * as nodePath from 'node:path';
import { BYTES_PER_ELEMENT, DType, HostTensor, elementCount } from '../io/host-tensor.js';
import { Shape, formatShape } from './shape.js';

export type AttrValue = number | string | number[] | string[] | { float: number } | { floats: number[] } | HostTensor;

export interface NodeSpec {
  readonly opType: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttrValue>>;
  readonly name: string;
  readonly domain?: string;
}

export interface ExternalData {
  /** File name relative to the graph's external-data folder. */
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

export interface InitializerSpec {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data?: HostTensor;
  readonly external?: ExternalData;
}

export class Tensor {
  constructor(
    readonly graph: Graph,
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}${formatShape(this.shape)}`;
  }
}

export class Graph {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: InitializerSpec[] = [];
  readonly inputs: Tensor[] = [];
  readonly outputs: Tensor[] = [];
  /** Folder holding every external-data file this graph references (one folder per graph, as ORT requires). */
  externalDataFolder?: string;
  /** In-memory external-data files (location -> bytes), see `inMemory`. */
  readonly memoryFiles = new Map<string, Uint8Array>();
  private readonly usedNames = new Set<string>();
  private counter = 0;
  private scopeStack: string[] = [];
  private readonly constCache = new Map<string, Tensor>();
  private readonly sharedCache = new Map<string, Tensor>();
  /** Every tensor by name (inputs, initializers, node outputs): what autodiff reads shapes and dtypes from. */
  private readonly byName = new Map<string, Tensor>();
  /** Inline initializer values by name, so graph transforms can read constant operands (axes, pads, shapes). */
  private readonly constValues = new Map<string, HostTensor>();
  /** Nodes that compute in float32 even when the graph is emitted for half precision (see keepFloat32). */
  readonly float32Nodes = new Set<string>();
  private float32Depth = 0;

  constructor(readonly name = 'sana_ts_graph') {}

  /** Runs `build` with `prefix` added to the names of nodes it creates (readable names in profiles and errors). */
  scope<T>(prefix: string, build: () => T): T {
    this.scopeStack.push(prefix);
    try {
      return build();
    } finally {
      this.scopeStack.pop();
    }
  }

  /**
   * Runs `build` with every node it creates marked to stay float32 when the graph is emitted in half precision:
   * the parts the reference keeps in fp32 (linear-attention products and division, softmax, the sinusoidal
   * embedding; SANA.md §1.9). No effect on a float32 emission.
   */
  keepFloat32<T>(build: () => T): T {
    this.float32Depth++;
    try {
      return build();
    } finally {
      this.float32Depth--;
    }
  }

  uniqueName(base: string): string {
    const scoped = this.scopeStack.length ? `${this.scopeStack.join('.')}.${base}` : base;
    let name = scoped;
    while (this.usedNames.has(name)) name = `${scoped}_${++this.counter}`;
    this.usedNames.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: Shape): Tensor {
    if (this.usedNames.has(name)) throw new Error(`graph input "${name}" is defined twice`);
    this.usedNames.add(name);
    const t = this.register(new Tensor(this, name, dtype, shape));
    this.inputs.push(t);
    return t;
  }

  /** Marks `t` as a graph output under `name` (an Identity node renames it when needed). */
  output(t: Tensor, name: string): Tensor {
    this.checkOwn(t, 'output');
    let out = t;
    if (t.name !== name) {
      if (this.usedNames.has(name)) throw new Error(`graph output name "${name}" is already used`);
      this.usedNames.add(name);
      this.nodes.push({ opType: 'Identity', inputs: [t.name], outputs: [name], attributes: {}, name: `${name}_identity` });
      out = this.register(new Tensor(this, name, t.dtype, t.shape));
    }
    this.outputs.push(out);
    return out;
  }

  /** An inline constant (small tensors: shapes, scalars, test weights). Identical constants are shared. */
  constant(value: HostTensor, name = 'const'): Tensor {
    const key = constantKey(value);
    const cached = key ? this.constCache.get(key) : undefined;
    if (cached) return cached;
    const uname = this.uniqueName(name);
    this.initializers.push({ name: uname, dtype: value.dtype, shape: [...value.shape], data: value });
    this.constValues.set(uname, value);
    const t = this.register(new Tensor(this, uname, value.dtype, [...value.shape]));
    if (key) this.constCache.set(key, t);
    return t;
  }

  scalar(value: number, dtype: 'float32' | 'int64' = 'float32'): Tensor {
    return dtype === 'int64'
      ? this.constant(HostTensor.int64([], [value]), 'scalar_i64')
      : this.constant(HostTensor.float32([], [value]), 'scalar');
  }

  /**
   * One tensor per `key` for the whole graph: what `make` builds the first time is reused after. For run-time size
   * vectors (reshape targets) keyed by their dimension labels, which name the same sizes wherever they appear.
   */
  shared(key: string, make: () => Tensor): Tensor {
    let t = this.sharedCache.get(key);
    if (!t) {
      t = make();
      this.sharedCache.set(key, t);
    }
    return t;
  }

  int64s(values: readonly number[]): Tensor {
    return this.constant(HostTensor.int64([values.length], [...values]), 'ints');
  }

  floats(shape: readonly number[], values: readonly number[] | Float32Array): Tensor {
    return this.constant(HostTensor.float32(shape, Float32Array.from(values)), 'floats');
  }

  /**
   * The external-data location (relative to externalDataFolder) of the file at `realPath`, adapting the folder:
   * the first file sets it; a file outside it moves the folder up to the common ancestor and rewrites the
   * locations already given (ORT takes one folder per session and refuses ".." and absolute locations), so a
   * graph may read a checkpoint and a cache file kept elsewhere (e.g. int8 weights in ~/.cache/sana-ts).
   */
  externalLocation(realPath: string): string {
    const dir = nodePath.dirname(realPath);
    if (this.externalDataFolder === undefined) this.externalDataFolder = dir;
    const inside = (folder: string) => {
      const rel = nodePath.relative(folder, realPath);
      return rel && !rel.startsWith('..') && !nodePath.isAbsolute(rel) ? rel : undefined;
    };
    let rel = inside(this.externalDataFolder);
    if (rel === undefined) {
      let ancestor = this.externalDataFolder;
      while (inside(ancestor) === undefined && nodePath.dirname(ancestor) !== ancestor) ancestor = nodePath.dirname(ancestor);
      const old = this.externalDataFolder;
      this.initializers.forEach((init, i) => {
        if (!init.external || this.memoryFiles.has(init.external.location)) return;
        const location = nodePath.relative(ancestor, nodePath.join(old, init.external.location));
        this.initializers[i] = { ...init, external: { ...init.external, location } };
      });
      this.externalDataFolder = ancestor;
      rel = inside(ancestor)!;
    }
    return rel;
  }

  /** A weight whose bytes stay in a file; ONNX Runtime maps or reads them at session creation. */
  external(name: string, dtype: DType, shape: readonly number[], data: ExternalData): Tensor {
    const expected = elementCount(shape);
    if (data.length !== expected * BYTES_PER_ELEMENT[dtype]) {
      throw new Error(`external weight "${name}": ${dtype}${formatShape(shape)} needs ${expected * BYTES_PER_ELEMENT[dtype]} bytes, got ${data.length}`);
    }
    const uname = this.uniqueName(name);
    this.initializers.push({ name: uname, dtype, shape: [...shape], external: data });
    return this.register(new Tensor(this, uname, dtype, [...shape]));
  }

  /**
   * A weight whose bytes JavaScript holds (e.g. quantized at load time), handed to ONNX Runtime at session creation
   * as an in-memory external-data file: protobuf caps a model at 2 GB, so large generated weights cannot be inlined.
   * onnxruntime-node copies them at session creation (test/quantize-nbits.test.ts checks it), so they may be
   * dropped once the session exists.
   */
  inMemory(name: string, value: HostTensor): Tensor {
    const uname = this.uniqueName(name);
    const d = value.data;
    const location = `${uname}.bin`;
    this.memoryFiles.set(location, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    this.initializers.push({
      name: uname,
      dtype: value.dtype,
      shape: [...value.shape],
      external: { location, offset: 0, length: d.byteLength },
    });
    return this.register(new Tensor(this, uname, value.dtype, [...value.shape]));
  }

  /**
   * Adds a node. Op builders call this after validating inputs; `outputs` gives each result's dtype and shape.
   */
  node(
    opType: string,
    inputs: ReadonlyArray<Tensor | null>,
    outputs: ReadonlyArray<{ dtype: DType; shape: Shape }>,
    attributes: Record<string, AttrValue> = {},
    domain?: string,
  ): Tensor[] {
    for (const t of inputs) if (t) this.checkOwn(t, opType);
    const nodeName = this.uniqueName(opType);
    const outTensors = outputs.map((o, i) =>
      this.register(new Tensor(this, outputs.length === 1 ? nodeName : `${nodeName}:${i}`, o.dtype, o.shape)),
    );
    for (const t of outTensors) this.usedNames.add(t.name);
    if (this.float32Depth > 0) this.float32Nodes.add(nodeName);
    this.nodes.push({
      opType,
      inputs: inputs.map((t) => (t ? t.name : '')),
      outputs: outTensors.map((t) => t.name),
      attributes,
      name: nodeName,
      domain,
    });
    return outTensors;
  }

  node1(
    opType: string,
    inputs: ReadonlyArray<Tensor | null>,
    dtype: DType,
    shape: Shape,
    attributes: Record<string, AttrValue> = {},
    domain?: string,
  ): Tensor {
    return this.node(opType, inputs, [{ dtype, shape }], attributes, domain)[0];
  }

  /** The tensor called `name` in this graph, or undefined when there is none. */
  find(name: string): Tensor | undefined {
    return this.byName.get(name);
  }

  /** The tensor called `name` in this graph. */
  tensor(name: string): Tensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`graph ${this.name}: no tensor named "${name}"`);
    return t;
  }

  /** The value of an inline constant, or undefined when `t` is not one. */
  constantValue(t: Tensor): HostTensor | undefined {
    return t.graph === this ? this.constValues.get(t.name) : undefined;
  }

  private register(t: Tensor): Tensor {
    this.byName.set(t.name, t);
    return t;
  }

  private checkOwn(t: Tensor, op: string): void {
    if (t.graph !== this) throw new Error(`${op}: tensor ${t.name} belongs to another graph`);
  }
}


function constantKey(value: HostTensor): string | undefined {
  if (value.size > 64) return undefined;
  const data = value.dtype === 'int64' ? Array.from(value.data as BigInt64Array, String) : Array.from(value.data as ArrayLike<number>);
  return `${value.dtype}|${value.shape.join(',')}|${data.join(',')}`;
}
