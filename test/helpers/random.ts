// A tiny seeded PRNG (mulberry32) so op tests use the same "random" inputs on every run and every machine.

import { HostTensor, elementCount } from '../../src/io/host-tensor.js';

export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor((hi - lo) * this.next());
  }

  floats(n: number, lo = -2, hi = 2): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  tensor(shape: readonly number[], lo = -2, hi = 2): HostTensor<'float32'> {
    return HostTensor.float32(shape, this.floats(elementCount(shape), lo, hi));
  }
}
