// Names the shape of a found component by fitting each vocabulary shape to it and keeping the best overlap.
// Each template gets the component's area and centroid (both averages over every pixel, so a few stray or
// missing edge pixels barely move them) and is scored by intersection over union with the component. Bounding-box
// ratios (fill, top share) name shapes too, but the box is set by the outermost pixels alone: on a small object
// one noisy edge row moves a square's fill from 1 to 0.88, past any fill threshold that still separates circles.

import type { ImageComponent } from './components.js';
import { SHAPE_DISTANCE } from './render.js';
import { SHAPES, type ShapeName } from './vocabulary.js';

/** Area of each shape as a fraction of its bounding box (side^2). */
export const SHAPE_AREA_FACTOR: Readonly<Record<ShapeName, number>> = {
  circle: Math.PI / 4,
  square: 1,
  triangle: 0.5,
  diamond: 0.5,
};

/**
 * The best template must overlap the component at least this well, else the shape is unknown. Measured on
 * sampled scenes at 256 px: the right template scores above 0.99 (0.94 after a 3x3 blur and +-20 noise; the
 * rest is the half-pixel edge), the closest wrong one (a circle fitted to a diamond or a square, same area and
 * centre) at most 0.85, and a blob that no template explains lower still.
 */
export const MIN_SHAPE_IOU = 0.75;

export type MeasuredShape = ShapeName | 'unknown';

export interface ShapeFit {
  readonly shape: MeasuredShape;
  /** IoU of the best template. */
  readonly iou: number;
  /** Bounding-box side of the best template, as a fraction of the image side: an area-based size estimate. */
  readonly side: number;
  readonly scores: Readonly<Record<ShapeName, number>>;
}

function templateIou(component: ImageComponent, shape: ShapeName, mask: Uint8Array, width: number, height: number): number {
  const side = Math.sqrt(component.area / SHAPE_AREA_FACTOR[shape]);
  const h = side / 2;
  const cx = component.centroidX * width;
  // A triangle's centroid sits a sixth of its height below its bounding-box centre; the others' coincide.
  const cy = component.centroidY * height - (shape === 'triangle' ? side / 6 : 0);
  const distance = SHAPE_DISTANCE[shape];
  const x0 = Math.max(0, Math.floor(cx - h));
  const x1 = Math.min(width - 1, Math.ceil(cx + h));
  const y0 = Math.max(0, Math.floor(cy - h));
  const y1 = Math.min(height - 1, Math.ceil(cy + h));
  let template = 0;
  let both = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      if (distance(x + 0.5 - cx, y + 0.5 - cy, h) > 0) continue;
      template++;
      both += mask[y * width + x];
    }
  }
  return both / (component.area + template - both);
}

/** Fits every shape to the component; `width` and `height` are the image's. */
export function fitShape(component: ImageComponent, width: number, height: number): ShapeFit {
  const mask = new Uint8Array(width * height);
  for (const p of component.pixels) mask[p] = 1;
  const scores = Object.fromEntries(SHAPES.map((s) => [s, templateIou(component, s, mask, width, height)])) as Record<ShapeName, number>;
  let best: ShapeName = SHAPES[0];
  for (const s of SHAPES) if (scores[s] > scores[best]) best = s;
  const imageSide = (width + height) / 2;
  return {
    shape: scores[best] >= MIN_SHAPE_IOU ? best : 'unknown',
    iou: scores[best],
    side: Math.sqrt(component.area / SHAPE_AREA_FACTOR[best]) / imageSide,
    scores,
  };
}
