// float16 / bfloat16 conversions against hand-known bit patterns (IEEE 754 binary16; bfloat16 = top half of
// binary32), with round-to-nearest-even at the halfway points.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { HostTensor, floatToBfloat16, floatToHalf, halfToFloat, toFloat32Array } from '../src/io/host-tensor.js';

const hex = (v: number) => `0x${v.toString(16).padStart(4, '0')}`;

describe('float16', () => {
  const known: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [1 / 3, 0x3555],
    [0.1, 0x2e66],
  ];
  test('encodes known values', () => {
    for (const [v, bits] of known) assert.equal(hex(floatToHalf(v)), hex(bits), `floatToHalf(${v})`);
  });
  test('decodes known values', () => {
    for (const [v, bits] of known) {
      if (v === 1 / 3 || v === 0.1) continue; // rounded encodings
      assert.ok(Object.is(halfToFloat(bits), v), `halfToFloat(${hex(bits)}) = ${halfToFloat(bits)}, expected ${v}`);
    }
    assert.equal(halfToFloat(0x3555), 1365 / 4096);
    assert.equal(halfToFloat(0x2e66), 1638 / 16384);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  });
  test('rounds to nearest, ties to even; overflows to infinity; NaN stays NaN', () => {
    assert.equal(hex(floatToHalf(1 + 2 ** -11)), '0x3c00', 'tie between 0x3c00 and 0x3c01 goes to even');
    assert.equal(hex(floatToHalf(1 + 3 * 2 ** -11)), '0x3c02', 'tie between 0x3c01 and 0x3c02 goes to even');
    assert.equal(hex(floatToHalf(1 + 2 ** -11 + 2 ** -20)), '0x3c01', 'just above the tie rounds up');
    assert.equal(hex(floatToHalf(65519)), '0x7bff', 'below the overflow tie');
    assert.equal(hex(floatToHalf(65520)), '0x7c00', 'the tie above 65504 rounds to infinity');
    assert.equal(hex(floatToHalf(1e6)), '0x7c00');
    assert.equal(hex(floatToHalf(2 ** -25)), '0x0000', 'half the smallest subnormal ties to zero');
    assert.equal(hex(floatToHalf(3 * 2 ** -25)), '0x0002', '1.5 subnormal units ties to even (2)');
    assert.equal(hex(floatToHalf(2 ** -26)), '0x0000');
    assert.equal(hex(floatToHalf(-(2 ** -24))), '0x8001');
    assert.equal(hex(floatToHalf(2047 * 2 ** -25)), '0x0400', 'subnormal rounding carries into the smallest normal');
    assert.equal(floatToHalf(NaN) & 0x7c00, 0x7c00);
    assert.notEqual(floatToHalf(NaN) & 0x03ff, 0);
  });
  test('HostTensor float16 -> float32', () => {
    const t = new HostTensor('float16', [4], Uint16Array.of(0x3c00, 0xc000, 0x0001, 0x7bff));
    assert.deepEqual(Array.from(toFloat32Array(t)), [1, -2, 2 ** -24, 65504]);
  });
});

describe('bfloat16', () => {
  test('encodes known values', () => {
    const known: Array<[number, number]> = [
      [0, 0x0000],
      [1, 0x3f80],
      [-2, 0xc000],
      [Math.PI, 0x4049], // 3.140625 (pi's f32 0x40490fdb rounds down)
      [0.1, 0x3dcd], // f32 0x3dcccccd rounds up
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [3.3895313892515355e38, 0x7f7f], // largest finite bf16
    ];
    for (const [v, bits] of known) assert.equal(hex(floatToBfloat16(v)), hex(bits), `floatToBfloat16(${v})`);
  });
  test('rounds to nearest, ties to even; NaN stays a quiet NaN', () => {
    assert.equal(hex(floatToBfloat16(1 + 2 ** -8)), '0x3f80', 'tie to even (down)');
    assert.equal(hex(floatToBfloat16(1 + 3 * 2 ** -8)), '0x3f82', 'tie to even (up)');
    assert.equal(hex(floatToBfloat16(1 + 2 ** -8 + 2 ** -20)), '0x3f81', 'above the tie');
    const nan = floatToBfloat16(NaN);
    assert.equal(nan & 0x7f80, 0x7f80);
    assert.notEqual(nan & 0x7f, 0);
  });
  test('HostTensor bfloat16 -> float32 is the bits shifted into the high half', () => {
    const t = new HostTensor('bfloat16', [3], Uint16Array.of(0x3f80, 0x4049, 0xbf00));
    assert.deepEqual(Array.from(toFloat32Array(t)), [1, 3.140625, -0.5]);
  });
});
