// ref: SANA.md §7.2 (latent initialisation). The 32-bit Mersenne Twister that PyTorch's CPU generator runs
// (aten/src/ATen/core/MT19937RNGEngine.h): standard MT19937 tempering and twist, seeded with init_genrand on the
// LOW 32 bits of the 64-bit seed. Reproducing torch.randn(generator=...) bit for bit starts here.

const STATE_SIZE = 624;
const SHIFT_SIZE = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;

export class Mt19937 {
  private readonly state = new Uint32Array(STATE_SIZE);
  /** Outputs left before the state has to be regenerated; torch starts at 1 so the first call twists. */
  private left = 1;
  private nextIndex = 0;

  /** `seedLow32` must already be reduced to 32 bits (torch keeps only `seed & 0xffffffff`). */
  constructor(seedLow32: number) {
    if (!Number.isInteger(seedLow32) || seedLow32 < 0 || seedLow32 > 0xffffffff) {
      throw new RangeError(`Mt19937: seed must be an integer in [0, 2^32), got ${seedLow32}`);
    }
    const s = this.state;
    s[0] = seedLow32;
    for (let j = 1; j < STATE_SIZE; j++) {
      const prev = s[j - 1] ^ (s[j - 1] >>> 30);
      // Math.imul keeps the product modulo 2^32, as the uint32 arithmetic in C does.
      s[j] = (Math.imul(1812433253, prev) + j) >>> 0;
    }
  }

  /** Next 32-bit output, as an unsigned integer. */
  nextUint32(): number {
    if (--this.left === 0) this.regenerate();
    let y = this.state[this.nextIndex++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  private regenerate(): void {
    const s = this.state;
    for (let i = 0; i < STATE_SIZE; i++) {
      const next = s[(i + 1) % STATE_SIZE];
      const mixed = (s[i] & UPPER_MASK) | (next & LOWER_MASK);
      s[i] = s[(i + SHIFT_SIZE) % STATE_SIZE] ^ (mixed >>> 1) ^ (next & 1 ? MATRIX_A : 0);
    }
    this.left = STATE_SIZE;
    this.nextIndex = 0;
  }
}
