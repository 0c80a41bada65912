// Reverse-mode automatic differentiation on the graph IR: appends to a graph the nodes that compute the gradient
// of a scalar loss with respect to chosen tensors (parameters fed as graph inputs), one rule per ONNX op. The
// backward pass is ordinary ONNX, run by ONNX Runtime like any other graph (its training API left the JS packages
// in 2024). ref: DESIGN.md §6 ("Training needs our own autodiff"); the idea as in tinygrad's gradient.py.
//
// Only nodes on a path from some `wrt` tensor to the loss are differentiated; a tensor read by several nodes gets
// the sum of their contributions. Integer and boolean tensors (shapes, indices, masks) carry no gradient.

import { Tensor } from '../graph.js';
import { formatShape } from '../shape.js';
import { dimsCompatible } from '../shape.js';
import { scalarLike } from '../ops/check.js';
import { add } from '../ops/elementwise.js';
import { expand } from '../ops/shape-ops.js';
import { AutodiffError, GradContext, GradRule, dimsOf, zerosLike } from './context.js';
import { CONV_RULES } from './conv-rules.js';
import { ELEMENTWISE_RULES } from './elementwise-rules.js';
import { LINALG_RULES } from './linalg-rules.js';
import { NORM_RULES } from './norm-rules.js';
import { SHAPE_RULES } from './shape-rules.js';

const RULES: Readonly<Record<string, GradRule>> = {
  ...ELEMENTWISE_RULES,
  ...LINALG_RULES,
  ...CONV_RULES,
  ...NORM_RULES,
  ...SHAPE_RULES,
};

const DIFFERENTIABLE = new Set(['float32', 'float16', 'bfloat16']);

/** Op types that have a gradient rule (for tests and error messages). */
export function differentiableOps(): string[] {
  return Object.keys(RULES).sort();
}

export interface GradientOptions {
  /** d loss / d loss; default ones of the loss's shape. */
  seed?: Tensor;
}

/**
 * Adds to loss's graph the gradient of `loss` with respect to each of `wrt` and returns them in order. A `wrt`
 * tensor that does not reach the loss gets zeros.
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[], options: GradientOptions = {}): Tensor[] {
  const g = loss.graph;
  for (const t of wrt) {
    if (t.graph !== g) throw new AutodiffError(`autodiff: ${t.name} belongs to another graph than the loss`);
    if (!DIFFERENTIABLE.has(t.dtype)) throw new AutodiffError(`autodiff: cannot differentiate with respect to ${t.name} of dtype ${t.dtype}`);
  }
  if (!DIFFERENTIABLE.has(loss.dtype)) throw new AutodiffError(`autodiff: the loss ${loss.name} has dtype ${loss.dtype}`);

  // Forward: which tensors depend on some wrt tensor.
  const live = new Set(wrt.map((t) => t.name));
  const nodes = g.nodes.slice(); // the forward nodes, in topological (creation) order
  for (const node of nodes) {
    if (!node.inputs.some((name) => name && live.has(name))) continue;
    for (const out of node.outputs) if (DIFFERENTIABLE.has(g.tensor(out).dtype)) live.add(out);
  }
  if (!live.has(loss.name)) {
    return g.scope('grad', () => wrt.map((t) => zerosLike(t)));
  }

  // Backward: which of those the loss reads.
  const needed = new Set([loss.name]);
  const relevant: number[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!node.outputs.some((o) => needed.has(o))) continue;
    const liveInputs = node.inputs.filter((name) => name && live.has(name));
    if (!liveInputs.length) continue;
    relevant.push(i);
    for (const name of liveInputs) needed.add(name);
  }

  const contributions = new Map<string, Tensor[]>();
  const contribute = (name: string, grad: Tensor) => {
    const list = contributions.get(name);
    if (list) list.push(grad);
    else contributions.set(name, [grad]);
  };
  const total = (name: string): Tensor | undefined => {
    const list = contributions.get(name);
    if (!list || !list.length) return undefined;
    const sum = list.length === 1 ? list[0] : list.length === 2 ? add(list[0], list[1]) : g.node1('Sum', list, list[0].dtype, list[0].shape);
    contributions.set(name, [sum]);
    return sum;
  };

  return g.scope('grad', () => {
    contribute(loss.name, options.seed ?? expand(scalarLike(loss, 1), dimsOf(loss)));
    for (const index of relevant) {
      const node = nodes[index];
      const gradOutputs = node.outputs.map((o) => total(o));
      if (gradOutputs.every((x) => x === undefined)) continue;
      const rule = RULES[node.opType];
      if (!rule) {
        throw new AutodiffError(`autodiff: no gradient rule for op ${node.opType} (node "${node.name}"); ops with rules: ${differentiableOps().join(', ')}`);
      }
      const inputs = node.inputs.map((name) => (name ? g.tensor(name) : null));
      const ctx: GradContext = {
        node,
        inputs,
        outputs: node.outputs.map((o) => g.tensor(o)),
        gradOutputs,
        needs: node.inputs.map((name) => Boolean(name) && needed.has(name) && live.has(name)),
      };
      const grads = g.scope(node.name, () => rule(ctx));
      ctx.needs.forEach((need, i) => {
        const grad = grads[i];
        if (!need || !grad) return;
        checkGradShape(node.name, node.opType, inputs[i]!, grad);
        contribute(inputs[i]!.name, grad);
      });
    }
    return wrt.map((t) => total(t.name) ?? zerosLike(t));
  });
}

function checkGradShape(nodeName: string, op: string, x: Tensor, grad: Tensor): void {
  const ok =
    grad.dtype === x.dtype && grad.rank === x.rank && grad.shape.every((d, i) => dimsCompatible(d, x.shape[i]));
  if (!ok) {
    throw new AutodiffError(
      `autodiff: the ${op} rule of "${nodeName}" gave ${grad.dtype}${formatShape(grad.shape)} for input ${x.name} ${x.dtype}${formatShape(x.shape)}`,
    );
  }
}
