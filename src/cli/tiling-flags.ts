// Command-line tile geometry for the DC-AE (square tiles): a tile size and an optional stride, both in image pixels.
// ref: SANA.md §3.6

import { DcaeTiling } from '../models/dcae/tiling.js';
import { UsageError } from './errors.js';
import { parsePositiveInt } from './arg-values.js';

/** Every released SANA VAE (DC-AE f32c32) has a compression ratio of 32; tiles must cover whole latent pixels. */
const RATIO = 32;

/**
 * The stride when only the size is given: diffusers' 512 / 448 proportion (an overlap of one eighth, at least one
 * latent pixel), so `--tile 1024` blends over 128 px.
 */
export function defaultStride(tile: number): number {
  return tile - Math.max(RATIO, Math.floor(tile / 8 / RATIO) * RATIO);
}

/**
 * Parses `sizeFlag` / `strideFlag` values. Returns undefined when neither is given; a stride alone is an error,
 * since tiling is turned on by naming the tile size.
 */
export function parseTilingFlags(
  size: string | undefined,
  stride: string | undefined,
  sizeFlag: string,
  strideFlag: string,
): DcaeTiling | undefined {
  if (size === undefined) {
    if (stride !== undefined) throw new UsageError(`${strideFlag} needs ${sizeFlag} (the tile size)`);
    return undefined;
  }
  const tile = parsePositiveInt(size, sizeFlag);
  if (tile % RATIO !== 0 || tile < 2 * RATIO) {
    throw new UsageError(`${sizeFlag}: expected a multiple of ${RATIO} pixels, at least ${2 * RATIO}, got ${tile}`);
  }
  const step = stride === undefined ? defaultStride(tile) : parsePositiveInt(stride, strideFlag);
  if (step % RATIO !== 0 || step > tile) {
    throw new UsageError(`${strideFlag}: expected a multiple of ${RATIO} pixels no larger than the tile (${tile}), got ${step}`);
  }
  return { tileHeight: tile, tileWidth: tile, strideHeight: step, strideWidth: step };
}
