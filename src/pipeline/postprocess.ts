// Decoded images to 8-bit RGB: (x / 2 + 0.5).clamp(0, 1), then round(x * 255) with NumPy's round-half-to-even in
// float32, as diffusers' postprocess + numpy_to_pil.
// ref: SANA.md §7.5

import { HostTensor } from '../io/host-tensor.js';
import { RgbImage } from '../io/png.js';

/** [B, 3, H, W] in [-1, 1] -> [B, 3, H, W] in [0, 1] (the pipeline's "pt" output). */
export function denormalize(images: HostTensor<'float32'>): HostTensor<'float32'> {
  const out = new Float32Array(images.size);
  const src = images.data;
  for (let i = 0; i < src.length; i++) {
    const v = src[i] * 0.5 + 0.5;
    out[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return HostTensor.float32(images.shape, out);
}

/** [B, 3, H, W] in [0, 1] -> one interleaved RGB image per batch row. */
export function toRgbImages(images01: HostTensor<'float32'>): RgbImage[] {
  const [b, c, h, w] = images01.shape;
  if (c !== 3) throw new Error(`expected 3 image channels, got ${c}`);
  const plane = h * w;
  const result: RgbImage[] = [];
  for (let n = 0; n < b; n++) {
    const rgb = new Uint8Array(plane * 3);
    const base = n * 3 * plane;
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) rgb[p * 3 + ch] = roundHalfEven(Math.fround(images01.data[base + ch * plane + p] * 255));
    }
    result.push({ width: w, height: h, rgb });
  }
  return result;
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}
