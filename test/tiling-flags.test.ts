// Command-line tile geometry: the default stride keeps diffusers' 512 / 448 proportion.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defaultStride, parseTilingFlags } from '../src/cli/tiling-flags.js';

test('the default stride overlaps tiles by an eighth, at least one latent pixel', () => {
  // diffusers' defaults: 512 px tiles every 448 px.
  assert.equal(defaultStride(512), 448);
  assert.equal(defaultStride(1024), 896);
  assert.equal(defaultStride(256), 224);
  assert.equal(defaultStride(64), 32);
  assert.equal(defaultStride(96), 64);
});

test('tile flags give square tiles; none given means no tiling', () => {
  assert.equal(parseTilingFlags(undefined, undefined, '--tile', '--tile-stride'), undefined);
  assert.deepEqual(parseTilingFlags('512', undefined, '--tile', '--tile-stride'), { tileHeight: 512, tileWidth: 512, strideHeight: 448, strideWidth: 448 });
  assert.deepEqual(parseTilingFlags('256', '256', '--tile', '--tile-stride'), { tileHeight: 256, tileWidth: 256, strideHeight: 256, strideWidth: 256 });
  assert.throws(() => parseTilingFlags('abc', undefined, '--tile', '--tile-stride'), /--tile: expected a positive integer, got "abc"/);
  assert.throws(() => parseTilingFlags('512', '0', '--tile', '--tile-stride'), /--tile-stride: expected a positive integer, got "0"/);
});
