// Rasterises a coloured-shapes scene: flat colours with anti-aliased edges. Each shape is a convex region given
// by a signed distance bound f (in pixels; negative inside). A pixel whose centre is more than half a pixel
// diagonal from the edge is fully inside or outside and is written directly; only edge pixels are 4x4
// supersampled, which keeps the cost near one distance evaluation per pixel of the object's bounding box.
// Only +, *, / and Math.sqrt are used (all exactly rounded in IEEE 754), so a scene renders to the same bytes on
// every machine.

import type { RgbImage } from '../../io/png.js';
import type { Scene, SceneObject } from './scene.js';
import { PALETTE } from './vocabulary.js';

/** Half a pixel diagonal plus a hair: |f| beyond this means the whole pixel is on one side of the edge. */
const FLAT_DISTANCE = 0.7072;
const SUPERSAMPLE = 4;
const INV_SQRT2 = 1 / Math.sqrt(2);
const INV_SQRT5 = 1 / Math.sqrt(5);

/**
 * Signed distance bound of a point (dx, dy) from the shape's centre, half-extent h, all in pixels. For convex
 * polygons the maximum over edge half-planes is exact inside and never more than the true distance outside,
 * which is all the flat-pixel shortcut needs.
 */
export type DistanceBound = (dx: number, dy: number, h: number) => number;

export const SHAPE_DISTANCE: Readonly<Record<SceneObject['shape'], DistanceBound>> = {
  circle: (dx, dy, h) => Math.sqrt(dx * dx + dy * dy) - h,
  square: (dx, dy, h) => Math.max(Math.abs(dx), Math.abs(dy)) - h,
  // Upright isosceles: apex (0, -h), base corners (+-h, h); the slanted edges have normals (+-2, -1) / sqrt(5).
  triangle: (dx, dy, h) => Math.max(dy - h, (2 * Math.abs(dx) - dy - h) * INV_SQRT5),
  diamond: (dx, dy, h) => (Math.abs(dx) + Math.abs(dy) - h) * INV_SQRT2,
};

function drawObject(rgb: Uint8Array, size: number, object: SceneObject): void {
  const distance = SHAPE_DISTANCE[object.shape];
  const [r, g, b] = PALETTE[object.color];
  const cx = object.x * size;
  const cy = object.y * size;
  const h = (object.side * size) / 2;
  const x0 = Math.max(0, Math.floor(cx - h - 1));
  const x1 = Math.min(size - 1, Math.ceil(cx + h + 1));
  const y0 = Math.max(0, Math.floor(cy - h - 1));
  const y1 = Math.min(size - 1, Math.ceil(cy + h + 1));
  const step = 1 / SUPERSAMPLE;
  const samples = SUPERSAMPLE * SUPERSAMPLE;
  for (let py = y0; py <= y1; py++) {
    const dy = py + 0.5 - cy;
    for (let px = x0; px <= x1; px++) {
      const dx = px + 0.5 - cx;
      const f = distance(dx, dy, h);
      let coverage: number;
      if (f <= -FLAT_DISTANCE) coverage = 1;
      else if (f >= FLAT_DISTANCE) continue;
      else {
        let inside = 0;
        for (let sy = 0; sy < SUPERSAMPLE; sy++) {
          const sdy = dy - 0.5 + (sy + 0.5) * step;
          for (let sx = 0; sx < SUPERSAMPLE; sx++) {
            if (distance(dx - 0.5 + (sx + 0.5) * step, sdy, h) <= 0) inside++;
          }
        }
        if (inside === 0) continue;
        coverage = inside / samples;
      }
      const i = (py * size + px) * 3;
      rgb[i] = Math.round(rgb[i] + (r - rgb[i]) * coverage);
      rgb[i + 1] = Math.round(rgb[i + 1] + (g - rgb[i + 1]) * coverage);
      rgb[i + 2] = Math.round(rgb[i + 2] + (b - rgb[i + 2]) * coverage);
    }
  }
}

/** The scene as a size x size RGB image. */
export function renderScene(scene: Scene, size = 256): RgbImage {
  if (!Number.isInteger(size) || size < 8) throw new RangeError(`renderScene: size ${size} must be an integer >= 8`);
  const rgb = new Uint8Array(size * size * 3);
  rgb.set(PALETTE[scene.background]);
  // Doubling copies fill the background in log2(pixels) native copies instead of a per-pixel loop.
  for (let filled = 3; filled < rgb.length; filled *= 2) rgb.copyWithin(filled, 0, Math.min(filled, rgb.length - filled));
  for (const object of scene.objects) drawObject(rgb, size, object);
  return { width: size, height: size, rgb };
}
