// Tiled encode/decode with diffusers AutoencoderDC semantics: overlapping tiles run one after another through the
// same model, each tile is blended in place with its (already blended) upper and left neighbours over a linear
// ramp, then cropped to the stride and placed. Memory stays bounded by one tile's activations. ref: SANA.md §3.6

import { HostTensor } from '../../io/host-tensor.js';

/** Tile geometry in image pixels (diffusers tile_sample_min_* and tile_sample_stride_*). */
export interface DcaeTiling {
  readonly tileHeight: number;
  readonly tileWidth: number;
  readonly strideHeight: number;
  readonly strideWidth: number;
}

/** diffusers' defaults: 512 px tiles every 448 px (64 px blended overlap). */
export const DEFAULT_TILING: DcaeTiling = { tileHeight: 512, tileWidth: 512, strideHeight: 448, strideWidth: 448 };

export function resolveTiling(t: Partial<DcaeTiling> | boolean | undefined, ratio: number): DcaeTiling | undefined {
  if (t === undefined || t === false) return undefined;
  const full = { ...DEFAULT_TILING, ...(t === true ? {} : t) };
  for (const [key, v] of Object.entries(full)) {
    if (!Number.isInteger(v) || v <= 0 || v % ratio !== 0) {
      throw new Error(`DC-AE tiling: ${key} = ${v} must be a positive multiple of the compression ratio ${ratio}`);
    }
  }
  if (full.strideHeight > full.tileHeight || full.strideWidth > full.tileWidth) {
    throw new Error(`DC-AE tiling: the stride (${full.strideHeight} x ${full.strideWidth}) must not exceed the tile (${full.tileHeight} x ${full.tileWidth})`);
  }
  return full;
}

/** Tile placement for one run: sizes in the input's and the output's pixel units. */
export interface TilePlan {
  /** Tile size and stride on the input (latent pixels for decode, image pixels for encode). */
  readonly tileIn: readonly [number, number];
  readonly strideIn: readonly [number, number];
  /** Blended overlap and kept part of each output tile. */
  readonly blend: readonly [number, number];
  readonly keep: readonly [number, number];
  /** Final output height and width (the concatenated rows are cropped to it, as diffusers' tiled_encode). */
  readonly outSize: readonly [number, number];
}

/** diffusers tiled_decode: latent tiles of tile/r every stride/r, blended over tile - stride image pixels. */
export function decodePlan(t: DcaeTiling, ratio: number, latentH: number, latentW: number): TilePlan {
  return {
    tileIn: [t.tileHeight / ratio, t.tileWidth / ratio],
    strideIn: [t.strideHeight / ratio, t.strideWidth / ratio],
    blend: [t.tileHeight - t.strideHeight, t.tileWidth - t.strideWidth],
    keep: [t.strideHeight, t.strideWidth],
    outSize: [latentH * ratio, latentW * ratio],
  };
}

/** diffusers tiled_encode: image tiles every stride, blended over (tile - stride)/r latent pixels. */
export function encodePlan(t: DcaeTiling, ratio: number, imageH: number, imageW: number): TilePlan {
  return {
    tileIn: [t.tileHeight, t.tileWidth],
    strideIn: [t.strideHeight, t.strideWidth],
    blend: [t.tileHeight / ratio - t.strideHeight / ratio, t.tileWidth / ratio - t.strideWidth / ratio],
    keep: [t.strideHeight / ratio, t.strideWidth / ratio],
    outSize: [Math.floor(imageH / ratio), Math.floor(imageW / ratio)],
  };
}

/** Called after each tile with the number of tiles done and the total (large decodes take minutes). */
export type TileProgress = (done: number, total: number) => void;

/** Runs `model` on each tile of x [B, C, H, W] in row-major order and assembles the blended result. */
export async function runTiled(
  x: HostTensor,
  plan: TilePlan,
  model: (tile: HostTensor) => Promise<HostTensor>,
  onTile?: TileProgress,
): Promise<HostTensor> {
  const [, , height, width] = x.shape;
  const rowStarts = starts(height, plan.strideIn[0]);
  const colStarts = starts(width, plan.strideIn[1]);
  const total = rowStarts.length * colStarts.length;
  let done = 0;
  let out: HostTensor<'float32'> | undefined;
  let above: HostTensor[] = [];
  let y = 0;
  for (const i of rowStarts) {
    const row: HostTensor[] = [];
    let x0 = 0;
    let keptH = 0;
    for (const [jIndex, j] of colStarts.entries()) {
      const tile = float32(await model(crop(x, i, i + plan.tileIn[0], j, j + plan.tileIn[1])));
      if (above.length) blendVertical(above[jIndex], tile, plan.blend[0]);
      if (jIndex > 0) blendHorizontal(row[jIndex - 1], tile, plan.blend[1]);
      row.push(tile);
      const [b, c, th, tw] = tile.shape;
      out ??= HostTensor.float32([b, c, plan.outSize[0], plan.outSize[1]]);
      keptH = Math.min(th, plan.keep[0]);
      paste(out, tile, y, x0, keptH, Math.min(tw, plan.keep[1]));
      x0 += Math.min(tw, plan.keep[1]);
      onTile?.(++done, total);
    }
    above = row;
    y += keptH;
  }
  if (!out) throw new Error('runTiled: empty input');
  return out;
}

function starts(size: number, stride: number): number[] {
  const s: number[] = [];
  for (let i = 0; i < size; i += stride) s.push(i);
  return s;
}

function float32(t: HostTensor): HostTensor<'float32'> {
  if (t.dtype !== 'float32') throw new Error(`runTiled: tiles must be float32, got ${t.dtype}`);
  return t as HostTensor<'float32'>;
}

/** x[:, :, y0:y1, x0:x1] with the end clamped to the tensor, as Python slicing does. */
export function crop(t: HostTensor, y0: number, y1: number, x0: number, x1: number): HostTensor<'float32'> {
  const [b, c, h, w] = t.shape;
  const src = float32(t).data;
  const ye = Math.min(y1, h);
  const xe = Math.min(x1, w);
  const oh = ye - y0;
  const ow = xe - x0;
  const dst = new Float32Array(b * c * oh * ow);
  for (let p = 0; p < b * c; p++) {
    for (let yy = 0; yy < oh; yy++) {
      const from = (p * h + y0 + yy) * w + x0;
      dst.set(src.subarray(from, from + ow), (p * oh + yy) * ow);
    }
  }
  return HostTensor.float32([b, c, oh, ow], dst);
}

/** Writes tile[:, :, :keepH, :keepW] into out at (y0, x0), clipped to out's extent. */
function paste(out: HostTensor<'float32'>, tile: HostTensor<'float32'>, y0: number, x0: number, keepH: number, keepW: number): void {
  const [b, c, oh, ow] = out.shape;
  const [, , th, tw] = tile.shape;
  const rows = Math.min(keepH, oh - y0);
  const cols = Math.min(keepW, ow - x0);
  for (let p = 0; p < b * c; p++) {
    for (let yy = 0; yy < rows; yy++) {
      const from = (p * th + yy) * tw;
      out.data.set(tile.data.subarray(from, from + cols), (p * oh + y0 + yy) * ow + x0);
    }
  }
}

/**
 * diffusers blend_v, in place on b: for y < e = min(a.h, b.h, extent),
 * b[y] = a[a.h - e + y] * (1 - y/e) + b[y] * (y/e).
 */
export function blendVertical(a: HostTensor, b: HostTensor, extent: number): void {
  const [nb, c, ah, aw] = a.shape;
  const [, , bh, bw] = b.shape;
  if (aw !== bw) throw new Error(`blendVertical: widths differ (${aw} vs ${bw})`);
  const e = Math.min(ah, bh, extent);
  const ad = float32(a).data;
  const bd = float32(b).data;
  for (let y = 0; y < e; y++) {
    const wa = Math.fround(1 - y / e);
    const wb = Math.fround(y / e);
    for (let p = 0; p < nb * c; p++) {
      const ar = (p * ah + ah - e + y) * aw;
      const br = (p * bh + y) * bw;
      for (let x = 0; x < bw; x++) bd[br + x] = ad[ar + x] * wa + bd[br + x] * wb;
    }
  }
}

/**
 * diffusers blend_h, in place on b: for x < e = min(a.w, b.w, extent),
 * b[:, x] = a[:, a.w - e + x] * (1 - x/e) + b[:, x] * (x/e).
 */
export function blendHorizontal(a: HostTensor, b: HostTensor, extent: number): void {
  const [nb, c, ah, aw] = a.shape;
  const [, , bh, bw] = b.shape;
  if (ah !== bh) throw new Error(`blendHorizontal: heights differ (${ah} vs ${bh})`);
  const e = Math.min(aw, bw, extent);
  const ad = float32(a).data;
  const bd = float32(b).data;
  for (let x = 0; x < e; x++) {
    const wa = Math.fround(1 - x / e);
    const wb = Math.fround(x / e);
    for (let p = 0; p < nb * c; p++) {
      for (let y = 0; y < bh; y++) {
        const ai = (p * ah + y) * aw + aw - e + x;
        const bi = (p * bh + y) * bw + x;
        bd[bi] = ad[ai] * wa + bd[bi] * wb;
      }
    }
  }
}
