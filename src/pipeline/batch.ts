// Batch-axis helpers on host tensors: repeat rows (images per prompt), concatenate (CFG halves), guidance combine.
// ref: SANA.md §7.3

import { HostTensor, TypedArrayFor } from '../io/host-tensor.js';

type AnyHost = HostTensor<'float32'> | HostTensor<'int64'>;

function make<T extends AnyHost>(like: T, shape: number[], data: T['data']): T {
  return new HostTensor(like.dtype, shape, data as TypedArrayFor<T['dtype']>) as T;
}

/** Repeats each batch row `times` times consecutively: [a, b] -> [a, a, b, b] (torch repeat + view). */
export function repeatRows<T extends AnyHost>(t: T, times: number): T {
  if (times === 1) return t;
  const row = t.size / t.shape[0];
  const out = new (t.data.constructor as { new (n: number): T['data'] })(t.size * times);
  for (let r = 0; r < t.shape[0]; r++) {
    const src = t.data.subarray(r * row, (r + 1) * row);
    for (let k = 0; k < times; k++) (out as Float32Array).set(src as Float32Array, (r * times + k) * row);
  }
  return make(t, [t.shape[0] * times, ...t.shape.slice(1)], out);
}

/** Concatenates along the batch axis. */
export function concatBatch<T extends AnyHost>(a: T, b: T): T {
  if (a.shape.slice(1).join() !== b.shape.slice(1).join()) {
    throw new Error(`cannot stack batches of shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
  const out = new (a.data.constructor as { new (n: number): T['data'] })(a.size + b.size);
  (out as Float32Array).set(a.data as Float32Array, 0);
  (out as Float32Array).set(b.data as Float32Array, a.size);
  return make(a, [a.shape[0] + b.shape[0], ...a.shape.slice(1)], out);
}

/** v = v_neg + g * (v_pos - v_neg) over a [negative; positive] batch, in float32 like torch. */
export function classifierFreeGuidance(v: HostTensor<'float32'>, guidanceScale: number): HostTensor<'float32'> {
  const half = v.size / 2;
  const g = Math.fround(guidanceScale);
  const out = new Float32Array(half);
  const d = v.data;
  for (let i = 0; i < half; i++) {
    const uncond = d[i];
    out[i] = uncond + Math.fround(g * Math.fround(d[half + i] - uncond));
  }
  return HostTensor.float32([v.shape[0] / 2, ...v.shape.slice(1)], out);
}
