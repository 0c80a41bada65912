// A training graph and its session: the model's forward pass with its weights as graph inputs, a scalar loss, and
// the loss's gradient with respect to every weight (src/graph/autodiff), compiled once and run every step with the
// current weights fed in. Weights stay in JavaScript memory between steps, where the optimizer updates them.
// Feeding them costs one copy per step (a few ms for millions of parameters); ONNX Runtime's JS API cannot update
// a session's initializers, so inputs are the only way to change weights without rebuilding the session.

import { Graph, Tensor, gradients } from '../graph/index.js';
import { HostTensor } from '../io/host-tensor.js';
import { WeightStore } from '../io/weights.js';
import { BoundParameter } from '../nn/weight-binder.js';
import { Backend, ModelSession, SessionOptions } from '../runtime/backend.js';
import { compileGraph } from '../runtime/compile.js';
import { nodeBackend } from '../runtime/node-backend.js';

export const LOSS_OUTPUT = 'loss';
export const gradOutputName = (key: string): string => `grad.${key}`;

export interface TrainableGraph {
  readonly graph: Graph;
  /** The weights fed as inputs, by checkpoint key. */
  readonly params: readonly BoundParameter[];
}

/** Marks `loss` (a scalar) and d loss / d weight for every parameter as graph outputs. */
export function addLossAndGradients(graph: Graph, loss: Tensor, params: readonly BoundParameter[]): void {
  if (loss.rank !== 0) throw new Error(`the loss must be a scalar, got shape [${loss.shape.join(', ')}]`);
  const grads = gradients(
    loss,
    params.map((p) => p.input),
  );
  graph.output(loss, LOSS_OUTPUT);
  grads.forEach((grad, i) => graph.output(grad, gradOutputName(params[i].key)));
}

/** float32 copies of the checkpoint's tensors for each parameter (the starting weights). */
export function readParameters(store: WeightStore, params: readonly BoundParameter[]): Map<string, Float32Array> {
  const values = new Map<string, Float32Array>();
  for (const p of params) values.set(p.key, Float32Array.from(store.read(p.key).toFloat32()));
  return values;
}

export interface StepOutputs {
  readonly loss: number;
  /** d loss / d weight by checkpoint key (arrays owned by the caller: clipping may scale them in place). */
  readonly grads: Map<string, Float32Array>;
  /** Every other graph output (predictions, reconstructions). */
  readonly extra: Record<string, HostTensor>;
}

export class TrainSession {
  private constructor(
    private readonly session: ModelSession,
    readonly params: readonly BoundParameter[],
    /** Current weights by checkpoint key; the optimizer updates them in place. */
    readonly values: Map<string, Float32Array>,
  ) {}

  static async create(
    trainable: TrainableGraph,
    values: Map<string, Float32Array>,
    options: SessionOptions & { backend?: Backend } = {},
  ): Promise<TrainSession> {
    for (const p of trainable.params) {
      const v = values.get(p.key);
      const n = p.shape.reduce((a, d) => a * d, 1);
      if (!v || v.length !== n) throw new Error(`parameter ${p.key}: expected ${n} float32 values, got ${v ? v.length : 'none'}`);
    }
    const backend = options.backend ?? nodeBackend;
    const session = await backend.createSession(compileGraph(trainable.graph), options);
    return new TrainSession(session, trainable.params, values);
  }

  /** Forward and backward on one batch: `feeds` are the objective's data inputs (the weights are added here). */
  async run(feeds: Record<string, HostTensor>, extraOutputs: readonly string[] = []): Promise<StepOutputs> {
    const all: Record<string, HostTensor> = { ...feeds };
    for (const p of this.params) all[p.key] = new HostTensor('float32', p.input.shape as number[], this.values.get(p.key)!);
    const names = [LOSS_OUTPUT, ...this.params.map((p) => gradOutputName(p.key)), ...extraOutputs];
    const out = await this.session.run(all, names);
    const grads = new Map<string, Float32Array>();
    for (const p of this.params) grads.set(p.key, out[gradOutputName(p.key)].data as Float32Array);
    const extra: Record<string, HostTensor> = {};
    for (const name of extraOutputs) extra[name] = out[name];
    return { loss: (out[LOSS_OUTPUT].data as Float32Array)[0], grads, extra };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
