// torch.randn / torch.rand / diffusers randn_tensor against the torch_randn fixture, compared bit for bit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostTensor } from '../src/io/host-tensor.js';
import { Mt19937 } from '../src/random/mt19937.js';
import { TorchGenerator, randnTensor, torchRand, torchRandn } from '../src/random/torch-rng.js';
import { avx2LogF32, avx2SinCosF32, fmaF32 } from '../src/random/avx2-mathfun-f32.js';
import { fixtureTensor, loadManifest, loadTensors } from './helpers/fixtures.js';

const FIXTURE = 'torch_randn';

interface RngEntry {
  tensor: string;
  fn: string;
  seed?: number;
  seeds?: number[];
  shape?: number[];
  shapes?: number[][];
}

function assertSameBits(actual: HostTensor, expected: HostTensor, what: string): void {
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  const a = actual.data as Float32Array;
  const e = expected.data as Float32Array;
  assert.equal(expected.dtype, 'float32', `${what}: fixture dtype`);
  const aBits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const eBits = new Uint32Array(e.buffer, e.byteOffset, e.length);
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < eBits.length; i++) {
    if (aBits[i] !== eBits[i]) {
      mismatches++;
      if (first < 0) first = i;
    }
  }
  const firstMismatch = `first at ${first}: ${a[first]} vs ${e[first]}`;
  assert.equal(mismatches, 0, `${what}: ${mismatches} of ${eBits.length} elements differ, ${firstMismatch}`);
}

const manifest = loadManifest(FIXTURE);
const entries = manifest.entries as RngEntry[];
const covered = new Set<string>();

function expectTensor(name: string): HostTensor {
  covered.add(name);
  return fixtureTensor(FIXTURE, 'outputs', name);
}

test('mt19937 matches the C++ standard check value (default seed 5489, 10000th output 4123659995)', () => {
  const engine = new Mt19937(5489);
  let value = 0;
  for (let i = 0; i < 10000; i++) value = engine.nextUint32();
  assert.equal(value, 4123659995);
});

test('fmaF32 rounds once, also where a float64 sum lands on a float32 tie', () => {
  // (1 + 2^-16)(1 - 2^-16) = 1 - 2^-32, so the exact sum is 2^24 + 3 - 2^-32: just below the tie between
  // 2^24 + 2 and 2^24 + 4. Rounding through float64 gives exactly 2^24 + 3, which ties-to-even would send up.
  const a = 1 + 2 ** -16;
  const b = 1 - 2 ** -16;
  assert.equal(fmaF32(a, b, 2 ** 24 + 2), 2 ** 24 + 2);
  assert.equal(fmaF32(-a, b, -(2 ** 24 + 2)), -(2 ** 24 + 2));
  assert.equal(fmaF32(3, 5, 7), 22);
});

test('avx2 log and sincos give the exact values at 1 and 0', () => {
  assert.equal(avx2LogF32(1), 0);
  assert.deepEqual(avx2SinCosF32(0), [0, 1]);
});

for (const entry of entries.filter((e) => e.fn === 'randn')) {
  test(`torch.randn seed ${entry.seed} shape [${entry.shape}] is bit-exact`, () => {
    const actual = torchRandn(entry.shape!, new TorchGenerator(entry.seed!));
    assertSameBits(actual, expectTensor(entry.tensor), entry.tensor);
  });
}

for (const entry of entries.filter((e) => e.fn === 'rand')) {
  test(`torch.rand seed ${entry.seed} shape [${entry.shape}] is bit-exact`, () => {
    const actual = torchRand(entry.shape!, new TorchGenerator(entry.seed!));
    assertSameBits(actual, expectTensor(entry.tensor), entry.tensor);
  });
}

test('diffusers randn_tensor with one generator per batch row is bit-exact', () => {
  const entry = entries.find((e) => e.fn.startsWith('diffusers.utils.torch_utils.randn_tensor'));
  assert.ok(entry, 'manifest lists the randn_tensor case');
  const actual = randnTensor(entry.shape!, entry.seeds!);
  assertSameBits(actual, expectTensor(entry.tensor), entry.tensor);
});

test('two draws in a row from one generator carry the state over', () => {
  const entry = entries.find((e) => e.fn === 'randn twice on one generator');
  assert.ok(entry, 'manifest lists the two-draws case');
  const generator = new TorchGenerator(entry.seed!);
  const [base] = entry.tensor.split('|');
  const stem = base.slice(0, base.lastIndexOf('.'));
  const first = torchRandn(entry.shapes![0], generator);
  const second = torchRandn(entry.shapes![1], generator);
  assertSameBits(first, expectTensor(`${stem}.first`), `${stem}.first`);
  assertSameBits(second, expectTensor(`${stem}.second`), `${stem}.second`);
});

test('manual_seed resets the engine and the cached normal sample', () => {
  // Seven elements take the scalar path, which leaves a cached sample behind; reseeding must forget it.
  const generator = new TorchGenerator(123);
  torchRandn([7], generator);
  generator.manualSeed(0);
  assertSameBits(torchRandn([7], generator), fixtureTensor(FIXTURE, 'outputs', 'randn.seed0.7'), 'reseeded draw');
});

test('only the low 32 bits of a 64-bit seed matter, as in torch', () => {
  const seed = (1n << 40n) + 42n;
  assertSameBits(
    torchRandn([1, 4, 3, 5], new TorchGenerator(seed)),
    fixtureTensor(FIXTURE, 'outputs', 'randn.seed42.1x4x3x5'),
    'seed 2^40 + 42',
  );
  const wideSeed = (1n << 63n) + 1234n;
  assertSameBits(
    randnTensor([1, 32, 16, 16], wideSeed),
    fixtureTensor(FIXTURE, 'outputs', 'randn.seed1234.1x32x16x16'),
    'seed 2^63 + 1234',
  );
});

test('randnTensor with a single seed (or a list of one) draws the whole tensor from one generator', () => {
  const expected = fixtureTensor(FIXTURE, 'outputs', 'randn.seed42.2x32x32x32');
  assertSameBits(randnTensor([2, 32, 32, 32], 42), expected, 'single seed');
  assertSameBits(randnTensor([2, 32, 32, 32], [42n]), expected, 'list of one seed');
});

test('bad seeds and shapes are rejected with the argument named', () => {
  assert.throws(() => new TorchGenerator(2 ** 60), /not a safe integer/);
  assert.throws(() => new TorchGenerator(1n << 64n), /outside \[-2\^63, 2\^64\)/);
  assert.throws(() => new TorchGenerator(1.5), /seed/);
  assert.throws(() => randnTensor([2, 4], [1, 2, 3]), /randnTensor: got 3 seeds/);
  assert.throws(() => randnTensor([2, -1], 0), /randnTensor: shape/);
  assert.throws(() => randnTensor([2, 4], [1, 2 ** 60]), /seeds\[1\]/);
});

test('every tensor of the torch_randn fixture is checked', () => {
  const all = [...loadTensors(FIXTURE, 'outputs').keys()].sort();
  const missing = all.filter((name) => !covered.has(name));
  assert.deepEqual(missing, [], 'fixture tensors without a test');
});
