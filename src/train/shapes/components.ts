// Finds coloured objects in an image for the shapes checker: every pixel is labelled with its nearest palette
// colour (or "unknown" when none is close), same-label pixels are joined into 4-connected components, and each
// component is measured (area, centroid, and for diagnostics its bounding-box fill and top-half share; shape-fit.ts
// names the shape). Components that are noise are dropped, and so are thin rings: an anti-aliased or blurred
// edge between two colours can look like a third (red on yellow blends to orange, red on blue to purple),
// forming a ring a few pixels wide around an object. Requiring a "core" (pixels whose whole 5x5 neighbourhood
// has their label) rejects any structure under 5 pixels wide, while every real object has hundreds of core pixels.

import type { RgbImage } from '../../io/png.js';
import { PALETTE, PALETTE_NAMES, type BackgroundName } from './vocabulary.js';

export const UNKNOWN_LABEL = 255;

export interface ComponentOptions {
  /**
   * Pixels farther than this from every palette colour (RGB distance) are unknown. 60: well above the 34.6 that
   * +-20 noise per channel can add to a flat colour, and under the ~80 at which blends of two palette colours
   * start to sit between colours, so most edge blends become unknown and separate objects.
   */
  readonly maxColorDistance?: number;
  /** Components smaller than this fraction of the image are noise. 0.002: 131 pixels at 256 px, a small
   *  triangle is about 900. */
  readonly minAreaFraction?: number;
  /** Chebyshev radius of the core neighbourhood (2: 5x5, so rings up to 4 pixels wide have no core). */
  readonly coreRadius?: number;
  /** A component needs at least this fraction of the image as core pixels (at least 4 pixels). */
  readonly minCoreFraction?: number;
}

export const DEFAULT_COMPONENT_OPTIONS: Required<ComponentOptions> = {
  maxColorDistance: 60,
  minAreaFraction: 0.002,
  coreRadius: 2,
  minCoreFraction: 0.0005,
};

export interface ImageComponent {
  readonly color: BackgroundName;
  readonly area: number;
  readonly coreArea: number;
  /** Bounding box in pixels, inclusive. */
  readonly minX: number;
  readonly maxX: number;
  readonly minY: number;
  readonly maxY: number;
  /** Centroid of the pixels' centres, as fractions of width and height. */
  readonly centroidX: number;
  readonly centroidY: number;
  /** Bounding-box side as a fraction of the image side: the mean of its width and height. */
  readonly side: number;
  /** Area over bounding-box area. */
  readonly fill: number;
  /** Share of the area above the bounding box's horizontal midline. */
  readonly topFraction: number;
  /** The component's pixels as indices y * width + x, for fitting shapes to it. */
  readonly pixels: Int32Array;
}

/** Per pixel, the index into PALETTE_NAMES of its nearest colour, or UNKNOWN_LABEL. */
export function classifyPixels(image: RgbImage, maxColorDistance = DEFAULT_COMPONENT_OPTIONS.maxColorDistance): Uint8Array {
  const { width, height, rgb } = image;
  if (rgb.length !== width * height * 3) throw new RangeError(`image: ${width}x${height} RGB needs ${width * height * 3} bytes, got ${rgb.length}`);
  const palette = PALETTE_NAMES.map((name) => PALETTE[name]);
  const maxSquared = maxColorDistance * maxColorDistance;
  const labels = new Uint8Array(width * height);
  // Images have few distinct colours (flat regions), so a one-entry cache skips most distance searches.
  let lastKey = -1;
  let lastLabel = UNKNOWN_LABEL;
  for (let p = 0, i = 0; p < labels.length; p++, i += 3) {
    const r = rgb[i];
    const g = rgb[i + 1];
    const b = rgb[i + 2];
    const key = (r << 16) | (g << 8) | b;
    if (key !== lastKey) {
      let best = UNKNOWN_LABEL;
      let bestSquared = maxSquared;
      for (let c = 0; c < palette.length; c++) {
        const [pr, pg, pb] = palette[c];
        const d = (r - pr) * (r - pr) + (g - pg) * (g - pg) + (b - pb) * (b - pb);
        if (d <= bestSquared) {
          bestSquared = d;
          best = c;
        }
      }
      lastKey = key;
      lastLabel = best;
    }
    labels[p] = lastLabel;
  }
  return labels;
}

/** 1 where the pixel's (2r+1) x (2r+1) neighbourhood lies inside the image and shares its label. */
function coreMask(labels: Uint8Array, width: number, height: number, r: number): Uint8Array {
  const horizontal = new Uint8Array(labels.length);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    let start = 0;
    while (start < width) {
      let end = start;
      while (end + 1 < width && labels[row + end + 1] === labels[row + start]) end++;
      for (let x = start + r; x <= end - r; x++) horizontal[row + x] = 1;
      start = end + 1;
    }
  }
  const core = new Uint8Array(labels.length);
  for (let y = r; y < height - r; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (horizontal[p] === 0) continue;
      let ok = 1;
      for (let d = -r; d <= r && ok; d++) {
        const q = p + d * width;
        if (horizontal[q] === 0 || labels[q] !== labels[p]) ok = 0;
      }
      core[p] = ok;
    }
  }
  return core;
}

/**
 * The objects in an image: components of every label except `background` and unknown that pass the noise and
 * core filters, largest first.
 */
export function findComponents(image: RgbImage, background: BackgroundName, options: ComponentOptions = {}): ImageComponent[] {
  const opts = { ...DEFAULT_COMPONENT_OPTIONS, ...options };
  const { width, height } = image;
  const labels = classifyPixels(image, opts.maxColorDistance);
  const core = coreMask(labels, width, height, opts.coreRadius);
  const backgroundLabel = PALETTE_NAMES.indexOf(background);
  const minArea = Math.max(1, Math.round(opts.minAreaFraction * width * height));
  const minCore = Math.max(4, Math.round(opts.minCoreFraction * width * height));
  const seen = new Uint8Array(labels.length);
  const queue = new Int32Array(labels.length);
  const imageSide = (width + height) / 2;
  const found: ImageComponent[] = [];
  for (let start = 0; start < labels.length; start++) {
    const label = labels[start];
    if (seen[start] || label === UNKNOWN_LABEL || label === backgroundLabel) continue;
    seen[start] = 1;
    queue[0] = start;
    let head = 0;
    let tail = 1;
    let coreArea = 0;
    let sumX = 0;
    let sumY = 0;
    let minX = width;
    let maxX = -1;
    let minY = height;
    let maxY = -1;
    while (head < tail) {
      const p = queue[head++];
      const x = p % width;
      const y = (p - x) / width;
      coreArea += core[p];
      sumX += x;
      sumY += y;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
      // Written out rather than through a helper closure: this loop is most of the checker's time.
      if (x > 0 && seen[p - 1] === 0 && labels[p - 1] === label) {
        seen[p - 1] = 1;
        queue[tail++] = p - 1;
      }
      if (x + 1 < width && seen[p + 1] === 0 && labels[p + 1] === label) {
        seen[p + 1] = 1;
        queue[tail++] = p + 1;
      }
      if (y > 0 && seen[p - width] === 0 && labels[p - width] === label) {
        seen[p - width] = 1;
        queue[tail++] = p - width;
      }
      if (y + 1 < height && seen[p + width] === 0 && labels[p + width] === label) {
        seen[p + width] = 1;
        queue[tail++] = p + width;
      }
    }
    const area = tail;
    if (area < minArea || coreArea < minCore) continue;
    // Pixel rows are compared by their centres; a row straddling the midline (odd height) counts half.
    const twiceMid = minY + maxY + 1;
    let top = 0;
    for (let k = 0; k < area; k++) {
      const twiceCentre = 2 * Math.floor(queue[k] / width) + 1;
      if (twiceCentre < twiceMid) top += 1;
      else if (twiceCentre === twiceMid) top += 0.5;
    }
    const w = maxX - minX + 1;
    const h = maxY - minY + 1;
    found.push({
      color: PALETTE_NAMES[label],
      area,
      coreArea,
      minX,
      maxX,
      minY,
      maxY,
      centroidX: (sumX / area + 0.5) / width,
      centroidY: (sumY / area + 0.5) / height,
      side: (w + h) / 2 / imageSide,
      fill: area / (w * h),
      topFraction: top / area,
      pixels: queue.slice(0, area),
    });
  }
  return found.sort((a, b) => b.area - a.area);
}
