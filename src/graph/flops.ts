// The multiply-add work of a graph with static shapes, counted from its nodes: 2 M N K per matrix product and
// 2 x (kernel taps x input channels per group) per output element of a convolution (ConvTranspose: per input
// element). Element-wise and data-movement ops are not counted, as is usual for GFLOP/s figures. Benchmarks use it
// for training graphs (forward + backward) and inference graphs alike, so their rates compare.

import { Graph, NodeSpec } from './graph.js';

function dims(g: Graph, name: string): number[] | undefined {
  const t = g.tensor(name);
  return t.shape.every((d) => typeof d === 'number') ? (t.shape as number[]) : undefined;
}

const product = (xs: readonly number[]) => xs.reduce((p, d) => p * d, 1);

function nodeFlops(g: Graph, n: NodeSpec): number {
  switch (n.opType) {
    case 'MatMul':
    case 'FusedMatMul':
    case 'Gemm': {
      const y = dims(g, n.outputs[0]);
      const a = dims(g, n.inputs[0]);
      if (!y || !a) return 0;
      const transA = n.opType !== 'MatMul' && n.attributes.transA === 1;
      const k = transA ? a[a.length - 2] : a[a.length - 1];
      return 2 * product(y) * k;
    }
    case 'Conv': {
      const y = dims(g, n.outputs[0]);
      const w = dims(g, n.inputs[1]);
      if (!y || !w) return 0;
      return 2 * product(y) * product(w.slice(1));
    }
    case 'ConvTranspose': {
      const x = dims(g, n.inputs[0]);
      const w = dims(g, n.inputs[1]);
      if (!x || !w) return 0;
      return 2 * product(x) * product(w.slice(1));
    }
    default:
      return 0;
  }
}

/** FLOPs of one run of `graph` (products and convolutions; 0 for nodes with symbolic shapes). */
export function countFlops(graph: Graph): number {
  let total = 0;
  for (const n of graph.nodes) total += nodeFlops(graph, n);
  return total;
}
