// Finite-difference checks of autodiff: loss = sum(f(inputs) * R) for a fixed random R, the analytic gradient from
// `gradients` against central differences of the same graph run by ONNX Runtime, element by element. The FD
// estimate uses the forward graph only, so it checks the gradient rules, not a second copy of them.

import assert from 'node:assert/strict';
import { Graph, Tensor, gradients, mul, reduceSum } from '../../src/graph/index.js';
import { HostTensor } from '../../src/io/host-tensor.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { nodeBackend } from '../../src/runtime/node-backend.js';
import { Rng } from './random.js';

export interface GradCheckInput {
  readonly shape: readonly number[];
  /** Values (default uniform in [-1.5, 1.5]); keep them away from kinks of non-smooth ops. */
  readonly values?: Float32Array;
  /** Not differentiated (e.g. an index-like or constant-like operand fed as data). */
  readonly constant?: boolean;
}

export interface GradCheckOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  seed?: number;
}

/**
 * Builds `build(graph, inputs)`, differentiates sum(output * R) and compares every gradient element with central
 * differences. Returns the largest error seen, for the test's message.
 */
export async function gradCheck(
  what: string,
  specs: readonly GradCheckInput[],
  build: (g: Graph, xs: Tensor[]) => Tensor,
  options: GradCheckOptions = {},
): Promise<number> {
  const rng = new Rng(options.seed ?? 1234);
  const h = options.h ?? 1e-2;
  const atol = options.atol ?? 3e-3;
  const rtol = options.rtol ?? 2e-2;
  const g = new Graph(`gradcheck_${what}`);
  const xs = specs.map((s, i) => g.input(`x${i}`, 'float32', [...s.shape]));
  const out = build(g, xs);
  const outShape = out.shape as number[];
  const weights = rng.tensor(outShape, -1, 1);
  const loss = reduceSum(mul(out, g.constant(weights, 'R')), outShape.map((_, i) => i), false);
  const wrtIndex = specs.flatMap((s, i) => (s.constant ? [] : [i]));
  const grads = gradients(loss, wrtIndex.map((i) => xs[i]));
  g.output(loss, 'loss');
  grads.forEach((t, k) => g.output(t, `grad${k}`));
  const session = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
  try {
    const feeds: Record<string, HostTensor> = {};
    specs.forEach((s, i) => {
      feeds[`x${i}`] = HostTensor.float32(s.shape, s.values ? Float32Array.from(s.values) : rng.floats(s.shape.reduce((p, d) => p * d, 1), -1.5, 1.5));
    });
    const base = await session.run(feeds);
    const lossAt = async (): Promise<number> => (await session.run(feeds, ['loss'])).loss.data[0] as number;
    let worst = 0;
    for (let k = 0; k < wrtIndex.length; k++) {
      const data = feeds[`x${wrtIndex[k]}`].data as Float32Array;
      const analytic = base[`grad${k}`].data as Float32Array;
      assert.equal(analytic.length, data.length, `${what}: gradient ${k} has ${analytic.length} elements for ${data.length}`);
      for (let e = 0; e < data.length; e++) {
        const keep = data[e];
        data[e] = keep + h;
        const up = await lossAt();
        data[e] = keep - h;
        const down = await lossAt();
        data[e] = keep;
        const numeric = (up - down) / (2 * h);
        const err = Math.abs(numeric - analytic[e]);
        worst = Math.max(worst, err);
        assert.ok(
          err <= atol + rtol * Math.abs(numeric),
          `${what}: d loss / d x${wrtIndex[k]}[${e}] is ${analytic[e]} by autodiff, ${numeric} by central differences`,
        );
      }
    }
    return worst;
  } finally {
    await session.release();
  }
}

/** Values in [lo, hi] with magnitude at least `gap` (away from the kinks of ReLU, |x|, Max at 0). */
export function awayFromZero(n: number, seed: number, gap = 0.1, hi = 1.5): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(gap, hi));
}
