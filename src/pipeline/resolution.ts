// Aspect-ratio binning (diffusers' tables, chosen by the transformer's sample_size) and the resize-and-crop back to
// the requested size. ref: SANA.md §7.1

import { HostTensor } from '../io/host-tensor.js';

type BinTable = Readonly<Record<string, readonly [number, number]>>;

const KEYS_33 = [
  '0.25', '0.28', '0.32', '0.33', '0.35', '0.4', '0.42', '0.48', '0.5', '0.52', '0.57', '0.6', '0.68', '0.72', '0.78',
  '0.82', '0.88', '0.94', '1.0', '1.07', '1.13', '1.21', '1.29', '1.38', '1.46', '1.67', '1.75', '2.0', '2.09', '2.4',
  '2.5', '3.0', '4.0',
];
const SIZES_1024: Array<[number, number]> = [
  [512, 2048], [512, 1856], [576, 1792], [576, 1728], [576, 1664], [640, 1600], [640, 1536], [704, 1472], [704, 1408],
  [704, 1344], [768, 1344], [768, 1280], [832, 1216], [832, 1152], [896, 1152], [896, 1088], [960, 1088], [960, 1024],
  [1024, 1024], [1024, 960], [1088, 960], [1088, 896], [1152, 896], [1152, 832], [1216, 832], [1280, 768], [1344, 768],
  [1408, 704], [1472, 704], [1536, 640], [1600, 640], [1728, 576], [2048, 512],
];
const KEYS_40 = [
  '0.25', '0.26', '0.27', '0.28', '0.32', '0.33', '0.35', '0.4', '0.42', '0.48', '0.5', '0.52', '0.57', '0.6', '0.68',
  '0.72', '0.78', '0.82', '0.88', '0.94', '1.0', '1.07', '1.13', '1.21', '1.29', '1.38', '1.46', '1.67', '1.75', '2.0',
  '2.09', '2.4', '2.5', '2.89', '3.0', '3.11', '3.62', '3.75', '3.88', '4.0',
];
const SIZES_2048: Array<[number, number]> = [
  [1024, 4096], [1024, 3968], [1024, 3840], [1024, 3712], [1152, 3584], [1152, 3456], [1152, 3328], [1280, 3200],
  [1280, 3072], [1408, 2944], [1408, 2816], [1408, 2688], [1536, 2688], [1536, 2560], [1664, 2432], [1664, 2304],
  [1792, 2304], [1792, 2176], [1920, 2176], [1920, 2048], [2048, 2048], [2048, 1920], [2176, 1920], [2176, 1792],
  [2304, 1792], [2304, 1664], [2432, 1664], [2560, 1536], [2688, 1536], [2816, 1408], [2944, 1408], [3072, 1280],
  [3200, 1280], [3328, 1152], [3456, 1152], [3584, 1152], [3712, 1024], [3840, 1024], [3968, 1024], [4096, 1024],
];

function table(keys: string[], sizes: Array<[number, number]>, scale: number): BinTable {
  // sizes stay multiples of 32 (the DC-AE's compression); exact for diffusers' own scales
  const snap = (v: number) => Math.max(32, Math.round((v * scale) / 32) * 32);
  return Object.fromEntries(keys.map((k, i) => [k, [snap(sizes[i][0]), snap(sizes[i][1])] as const]));
}

export const ASPECT_RATIO_BINS: Readonly<Record<number, BinTable>> = {
  // sana-ts extension (diffusers has no table for it): the 256 px bins of the bundled default model, the 1024 px
  // table at a quarter of the size, rounded to multiples of 32
  8: table(KEYS_33, SIZES_1024, 0.25),
  16: table(KEYS_33, SIZES_1024, 0.5),
  32: table(KEYS_33, SIZES_1024, 1),
  64: table(KEYS_40, SIZES_2048, 1),
  128: table(KEYS_40, SIZES_2048, 2),
};

/** The (height, width) bin for a request, as diffusers' classify_height_width_bin. */
export function binResolution(sampleSize: number, height: number, width: number): { height: number; width: number } {
  const bins = ASPECT_RATIO_BINS[sampleSize];
  if (!bins) {
    throw new Error(`resolution binning: no table for transformer sample_size ${sampleSize} (tables: 8, 16, 32, 64, 128); use --no-binning`);
  }
  const ratio = height / width;
  let best = '';
  let bestDiff = Infinity;
  for (const key of Object.keys(bins)) {
    const d = Math.abs(Number(key) - ratio);
    if (d < bestDiff) {
      bestDiff = d;
      best = key;
    }
  }
  const [h, w] = bins[best];
  return { height: h, width: w };
}

/** An image tensor [B, C, H, W] at height x width: itself when it already is, else resized and center-cropped. */
export function atSize(images: HostTensor<'float32'>, height: number, width: number): HostTensor<'float32'> {
  return images.shape[2] === height && images.shape[3] === width ? images : resizeAndCrop(images, height, width);
}

/**
 * Resize [B, C, H, W] (float) with bilinear interpolation (align_corners False, no antialias: torch's
 * F.interpolate) so it covers (height, width), then center-crop, as diffusers' resize_and_crop_tensor.
 */
export function resizeAndCrop(images: HostTensor<'float32'>, height: number, width: number): HostTensor<'float32'> {
  const [b, c, h, w] = images.shape;
  if (h === height && w === width) return images;
  const ratio = Math.max(height / h, width / w);
  const newW = Math.trunc(w * ratio);
  const newH = Math.trunc(h * ratio);
  const resized = bilinear(images.data, b * c, h, w, newH, newW);
  const top = Math.floor((newH - height) / 2);
  const left = Math.floor((newW - width) / 2);
  const out = new Float32Array(b * c * height * width);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < height; y++) {
      const src = p * newH * newW + (y + top) * newW + left;
      out.set(resized.subarray(src, src + width), (p * height + y) * width);
    }
  }
  return HostTensor.float32([b, c, height, width], out);
}

/** torch F.interpolate(mode="bilinear", align_corners=False) on planes of [h, w]. */
export function bilinear(src: Float32Array, planes: number, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(planes * outH * outW);
  const scaleY = h / outH;
  const scaleX = w / outW;
  const axis = (i: number, scale: number, size: number) => {
    const s = Math.max((i + 0.5) * scale - 0.5, 0);
    const i0 = Math.min(Math.floor(s), size - 1);
    const i1 = Math.min(i0 + 1, size - 1);
    const l1 = s - i0;
    return { i0, i1, l0: 1 - l1, l1 };
  };
  const ys = Array.from({ length: outH }, (_, y) => axis(y, scaleY, h));
  const xs = Array.from({ length: outW }, (_, x) => axis(x, scaleX, w));
  for (let p = 0; p < planes; p++) {
    const base = p * h * w;
    for (let y = 0; y < outH; y++) {
      const { i0: y0, i1: y1, l0: wy0, l1: wy1 } = ys[y];
      for (let x = 0; x < outW; x++) {
        const { i0: x0, i1: x1, l0: wx0, l1: wx1 } = xs[x];
        out[(p * outH + y) * outW + x] =
          wy0 * (wx0 * src[base + y0 * w + x0] + wx1 * src[base + y0 * w + x1]) +
          wy1 * (wx0 * src[base + y1 * w + x0] + wx1 * src[base + y1 * w + x1]);
      }
    }
  }
  return out;
}

/**
 * The sizes a model generates at natively (its bin table), each once, sorted by the bin's aspect ratio
 * height / width. Small tables map neighbouring ratios to one size (256 x 256 for 0.94, 1.0 and 1.07): it is listed
 * under the ratio nearest its own.
 */
export function binSizes(sampleSize: number): Array<{ width: number; height: number; ratio: number }> {
  const bins = ASPECT_RATIO_BINS[sampleSize];
  if (!bins) return [{ width: sampleSize * 32, height: sampleSize * 32, ratio: 1 }];
  const bySize = new Map<string, { width: number; height: number; ratio: number }>();
  for (const [key, [height, width]] of Object.entries(bins)) {
    const ratio = Number(key);
    const have = bySize.get(`${width}x${height}`);
    const own = height / width;
    if (!have || Math.abs(ratio - own) < Math.abs(have.ratio - own)) bySize.set(`${width}x${height}`, { width, height, ratio });
  }
  return [...bySize.values()].sort((a, b) => a.ratio - b.ratio);
}
