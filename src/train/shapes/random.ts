// A tiny seeded PRNG (xoshiro128**) for the shapes dataset. Only 32-bit integer arithmetic (Math.imul, shifts),
// so a seed draws the same numbers on every machine and JS engine. The generator is keyed by a tuple of 32-bit
// words (stream, seed, index): each word goes through murmur3's fmix32, a bijection, into its own state word, so
// distinct tuples always start from distinct states. That is what keeps the training and validation streams,
// and the examples within one stream, apart. The state transition is a bijection too, so the warm-up steps that
// mix the words together keep distinct starts distinct.

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkWord(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${what}: ${value} is not an integer in [0, 2^32)`);
  }
  return value >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

const WARM_UP_STEPS = 16;

export class ShapesRng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** stream, seed and index are integers in [0, 2^32). */
  constructor(stream: number, seed: number, index = 0) {
    this.s0 = fmix32(checkWord(stream, 'stream') ^ 0x9e3779b9);
    this.s1 = fmix32(checkWord(seed, 'seed') ^ 0x7f4a7c15);
    this.s2 = fmix32(checkWord(index, 'index') ^ 0x94d049bb);
    // A fixed non-zero word: xoshiro's all-zero state is a fixed point, and this word can never make it zero.
    this.s3 = 0xbf58476d;
    // The first outputs depend on s1 alone; stepping (a bijection on the state) mixes all four words first.
    for (let i = 0; i < WARM_UP_STEPS; i++) this.nextUint32();
  }

  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [0, n); the bias of the float product is below 2^-24 for any n used here. */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick: no items to choose from');
    return items[this.int(items.length)];
  }

  chance(p: number): boolean {
    return this.float() < p;
  }
}
