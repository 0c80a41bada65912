// Inpainting: which latent cells are kept, the per-step blend of the kept region with the start image noised to
// the step's time (diffusers' SD3/Flux inpainting), and the kept pixels put back exactly after decoding.
// The method: a latent cell (32 x 32 pixels) is repainted if any of its pixels has mask > 0.5; after every step,
// x = keep * noised(image latents, t_next) + (1 - keep) * x; after decoding, pixels with mask <= 0.5 are the input
// image's own, so the unmasked region is preserved bit for bit.

import { HostTensor } from '../io/host-tensor.js';
import { atSize } from './resolution.js';

/** 1 where a latent cell is kept, 0 where it is repainted, repeated over channels and images: [N, C, h, w]. */
export function keptLatentCells(mask: HostTensor<'float32'>, size: { height: number; width: number }, latentShape: number[]): Float32Array {
  const m = atSize(mask, size.height, size.width);
  const [n, c, h, w] = latentShape;
  const cell = size.height / h;
  const plane = new Float32Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let repaint = false;
      for (let dy = 0; dy < cell && !repaint; dy++) {
        const row = (y * cell + dy) * size.width + x * cell;
        for (let dx = 0; dx < cell; dx++) {
          if (m.data[row + dx] > 0.5) {
            repaint = true;
            break;
          }
        }
      }
      plane[y * w + x] = repaint ? 0 : 1;
    }
  }
  const out = new Float32Array(n * c * h * w);
  for (let p = 0; p < n * c; p++) out.set(plane, p * h * w);
  return out;
}

/** keep * known + (1 - keep) * x. */
export function blend(x: Float32Array, known: Float32Array, keep: Float32Array): Float32Array {
  return x.map((v, k) => (keep[k] ? known[k] : v));
}

/** images [N, 3, H, W] in [0, 1] with every pixel whose mask is <= 0.5 taken from the start image. */
export function pasteKeptPixels(images: HostTensor<'float32'>, image: HostTensor<'float32'>, mask: HostTensor<'float32'>): HostTensor<'float32'> {
  const [n, c, h, w] = images.shape;
  const src = atSize(image, h, w);
  const m = atSize(mask, h, w);
  const out = images.data.slice();
  const plane = h * w;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) if (m.data[p] <= 0.5) out[(b * c + ch) * plane + p] = src.data[ch * plane + p];
    }
  }
  return HostTensor.float32(images.shape, out);
}
