// Scores an image against a shapes spec by measuring it, the way GenEval scores object composition but without
// a detector model: objects are found by colour (components.ts), shapes and sizes by fitting templates
// (shape-fit.ts), and position, relation and count from the components' centroids and number. Every spec yields
// the same list of checks whatever the image holds (a missing object fails its shape, size and position checks
// rather than dropping them), so accuracies over many images share one denominator per category.

import type { RgbImage } from '../../io/png.js';
import { findComponents, type ComponentOptions, type ImageComponent } from './components.js';
import { fitShape, type ShapeFit } from './shape-fit.js';
import { specObjects, type ObjectSpec, type ShapesSpec } from './spec.js';
import { COLORS, PALETTE_NAMES, type PositionName, type RelationName, type SizeName } from './vocabulary.js';

export type CheckCategory = 'color' | 'shape' | 'size' | 'position' | 'relation' | 'count';
export const CHECK_CATEGORIES: readonly CheckCategory[] = ['color', 'shape', 'size', 'position', 'relation', 'count'];

export interface AttributeCheck {
  readonly category: CheckCategory;
  readonly passed: boolean;
  readonly detail: string;
}

export interface CheckResult {
  /** All checks passed. */
  readonly passed: boolean;
  readonly checks: readonly AttributeCheck[];
  /** Every object found in the image, largest first (for diagnostics). */
  readonly components: readonly ImageComponent[];
}

/**
 * Sides below this fraction of the image are small. Sampled sides are 0.15..0.19 (small) and 0.29..0.35 (large);
 * 0.245 is the midpoint of the nominal 0.17 and 0.32, and is 13 pixels from either band at 256 px. The side is
 * the fitted shape's (from the area), which a ragged edge moves far less than the bounding box.
 */
export const SMALL_MAX_SIDE = 0.245;

/**
 * Centroid regions per position (fractions of the image); centre is a box in both axes. The sampler keeps
 * centres at most 0.3 from the named edge and within 0.42..0.58 for centre; the tightest case, a large triangle
 * at the top (its centroid is side / 6 below its box centre), still lands at y <= 0.36, 10 pixels inside at 256.
 */
export const POSITION_LIMITS = { nearMax: 0.4, farMin: 0.6, centerMin: 0.3, centerMax: 0.7 } as const;

/**
 * A relation needs the subject's centroid this far beyond the reference's along the axis. Sampled relations put
 * the centres at least 0.19 apart on the axis (they may not overlap, and the other axis differs by <= 0.16), so
 * correct renders clear 0.05 by far; it only stops side-by-side objects from counting as above or below.
 */
export const RELATION_MARGIN = 0.05;

export function classifySize(side: number): SizeName {
  return side < SMALL_MAX_SIDE ? 'small' : 'large';
}

export function positionHolds(position: PositionName, x: number, y: number): boolean {
  const p = POSITION_LIMITS;
  switch (position) {
    case 'left':
      return x < p.nearMax;
    case 'right':
      return x > p.farMin;
    case 'top':
      return y < p.nearMax;
    case 'bottom':
      return y > p.farMin;
    case 'center':
      return x >= p.centerMin && x <= p.centerMax && y >= p.centerMin && y <= p.centerMax;
  }
}

export function relationHolds(relation: RelationName, subject: ImageComponent, reference: ImageComponent): boolean {
  switch (relation) {
    case 'left of':
      return subject.centroidX < reference.centroidX - RELATION_MARGIN;
    case 'right of':
      return subject.centroidX > reference.centroidX + RELATION_MARGIN;
    case 'above':
      return subject.centroidY < reference.centroidY - RELATION_MARGIN;
    case 'below':
      return subject.centroidY > reference.centroidY + RELATION_MARGIN;
  }
}

const fmt = (v: number): string => v.toFixed(2);
const centroid = (c: ImageComponent): string => `(${fmt(c.centroidX)}, ${fmt(c.centroidY)})`;

function describe(object: ObjectSpec): string {
  return [object.size, object.color, object.shape].filter((w) => w !== undefined).join(' ');
}

function measured(c: ImageComponent, fit: ShapeFit): string {
  const scores = Object.entries(fit.scores).map(([shape, iou]) => `${shape} ${fmt(iou)}`).join(' ');
  return `IoU ${scores}; side ${fmt(fit.side)}, centroid ${centroid(c)}, fill ${fmt(c.fill)}, top ${fmt(c.topFraction)}`;
}

/** Colour, shape and (if stated) size checks of one spec object against the components of its colour. */
function objectChecks(object: ObjectSpec, found: readonly ImageComponent[], image: RgbImage, checks: AttributeCheck[]): void {
  const what = describe(object);
  if (found.length === 0) {
    checks.push({ category: 'color', passed: false, detail: `${what}: no ${object.color} object found` });
    checks.push({ category: 'shape', passed: false, detail: `${what}: no ${object.color} object to measure` });
    if (object.size !== undefined) checks.push({ category: 'size', passed: false, detail: `${what}: no ${object.color} object to measure` });
    return;
  }
  checks.push({ category: 'color', passed: true, detail: `${what}: ${found.length} ${object.color} object(s), largest ${found[0].area} px` });
  const fits = found.map((c) => fitShape(c, image.width, image.height));
  checks.push({
    category: 'shape',
    passed: fits.every((f) => f.shape === object.shape),
    detail: `${what}: measured ${fits.map((f) => f.shape).join(', ')} (${found.map((c, i) => measured(c, fits[i])).join('; ')})`,
  });
  if (object.size !== undefined) {
    const sizes = fits.map((f) => classifySize(f.side));
    checks.push({
      category: 'size',
      passed: sizes.every((s) => s === object.size),
      detail: `${what}: measured ${sizes.join(', ')} (side ${fits.map((f) => fmt(f.side)).join(', ')}; small < ${SMALL_MAX_SIDE})`,
    });
  }
}

function validateSpec(spec: ShapesSpec): void {
  if (!PALETTE_NAMES.includes(spec.background)) throw new RangeError(`spec: unknown background ${JSON.stringify(spec.background)}`);
  for (const o of specObjects(spec)) {
    if (!COLORS.includes(o.color)) throw new RangeError(`spec: unknown object colour ${JSON.stringify(o.color)}`);
    if (o.color === spec.background) throw new RangeError(`spec: a ${o.color} object on a ${spec.background} background cannot be seen`);
  }
  if (spec.kind === 'relation' && spec.subject.color === spec.reference.color) {
    throw new RangeError(`spec: a relation needs two colours to tell its objects apart, both are ${spec.subject.color}`);
  }
}

/** Checks an image against a spec; every check of the spec is reported, passed or not. */
export function checkImage(image: RgbImage, spec: ShapesSpec, options: ComponentOptions = {}): CheckResult {
  validateSpec(spec);
  const components = findComponents(image, spec.background, options);
  const ofColor = (color: string): ImageComponent[] => components.filter((c) => c.color === color);
  const checks: AttributeCheck[] = [];
  if (spec.kind === 'single') {
    // The largest component of the colour is the object; smaller ones are stray blobs a position cannot judge.
    const found = ofColor(spec.object.color).slice(0, 1);
    objectChecks(spec.object, found, image, checks);
    const c = found[0];
    checks.push(
      c === undefined
        ? { category: 'position', passed: false, detail: `${spec.position}: no ${spec.object.color} object` }
        : {
            category: 'position',
            passed: positionHolds(spec.position, c.centroidX, c.centroidY),
            detail: `${spec.position}: centroid ${centroid(c)}`,
          },
    );
  } else if (spec.kind === 'relation') {
    const subject = ofColor(spec.subject.color).slice(0, 1);
    const reference = ofColor(spec.reference.color).slice(0, 1);
    objectChecks(spec.subject, subject, image, checks);
    objectChecks(spec.reference, reference, image, checks);
    const what = `${describe(spec.subject)} ${spec.relation} ${describe(spec.reference)}`;
    const [a, b] = [subject[0], reference[0]];
    checks.push(
      a === undefined || b === undefined
        ? { category: 'relation', passed: false, detail: `${what}: an object is missing` }
        : {
            category: 'relation',
            passed: relationHolds(spec.relation, a, b),
            detail: `${what}: centroids ${centroid(a)} vs ${centroid(b)}, margin ${RELATION_MARGIN}`,
          },
    );
  } else {
    const found = ofColor(spec.object.color);
    objectChecks(spec.object, found, image, checks);
    checks.push({
      category: 'count',
      passed: found.length === spec.count,
      detail: `${spec.count} expected, ${found.length} ${spec.object.color} object(s) found`,
    });
  }
  return { passed: checks.every((c) => c.passed), checks, components };
}
