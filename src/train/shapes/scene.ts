// What a coloured-shapes image contains, and how a training scene is drawn from a seed. A scene is made as one
// of three kinds (a single object at a position, two objects in a relation, or two or three identical objects),
// and its placement is chosen so the caption stays true with room to spare: objects never overlap or touch,
// positions sit well inside the checker's regions, and a relation's axis always dominates the other axis. The
// checker can then demand that every correct render passes.

import type { ShapesRng } from './random.js';
import {
  COLORS,
  COUNTS,
  DEFAULT_BACKGROUND,
  POSITIONS,
  RELATIONS,
  SIZES,
  SIZE_SIDE_RANGE,
  TRAINING_PAIRS,
  type BackgroundName,
  type ColorName,
  type CountValue,
  type PositionName,
  type RelationName,
  type ShapeName,
  type SizeName,
} from './vocabulary.js';

export interface SceneObject {
  readonly color: ColorName;
  readonly shape: ShapeName;
  readonly size: SizeName;
  /** Centre of the bounding box, as fractions of the image width and height (y grows downwards). */
  readonly x: number;
  readonly y: number;
  /** Bounding-box side as a fraction of the image side (see SIZE_SIDE). */
  readonly side: number;
}

interface SceneBase {
  readonly background: BackgroundName;
  readonly objects: readonly SceneObject[];
}

export interface SingleScene extends SceneBase {
  readonly kind: 'single';
  readonly position: PositionName;
}

/** objects[0] is the subject and objects[1] the reference: "objects[0] <relation> objects[1]". */
export interface RelationScene extends SceneBase {
  readonly kind: 'relation';
  readonly relation: RelationName;
}

export interface CountScene extends SceneBase {
  readonly kind: 'count';
  readonly count: CountValue;
}

export type Scene = SingleScene | RelationScene | CountScene;
export type SceneKind = Scene['kind'];

/** Relative share of each scene kind (normalised when sampling). */
export type KindWeights = Readonly<Record<SceneKind, number>>;

// Share of each kind in training: single objects teach colour, shape, size and position, which the other two
// kinds need, so they get the largest share.
export const DEFAULT_KIND_WEIGHTS: KindWeights = { single: 0.4, relation: 0.35, count: 0.25 };

export const SCENE_KINDS: readonly SceneKind[] = ['single', 'relation', 'count'];

/** Checks a weights object: every kind present, finite, >= 0, not all zero. `what` names it in the error. */
export function checkKindWeights(weights: KindWeights, what: string): KindWeights {
  let total = 0;
  for (const kind of SCENE_KINDS) {
    const w = weights[kind];
    if (typeof w !== 'number' || !Number.isFinite(w) || w < 0) throw new RangeError(`${what}: weight of "${kind}" must be a number >= 0, got ${w}`);
    total += w;
  }
  if (!(total > 0)) throw new RangeError(`${what}: at least one kind needs a weight > 0`);
  return weights;
}

/** Probability that a scene keeps the default gray background. */
const GRAY_BACKGROUND_PROBABILITY = 0.7;

/** Free space kept between the image border and any object, and between two objects' bounding boxes. */
export const BORDER_MARGIN = 0.02;
export const OBJECT_GAP = 0.04;

/** Bounds on centre coordinates per position, inside the checker's regions (left: x < 0.4, centre 0.3..0.7). */
const POSITION_NEAR = 0.3;
const CENTER_BAND: readonly [number, number] = [0.42, 0.58];
const CROSS_AXIS_BAND: readonly [number, number] = [0.38, 0.62];

/** Relations: the subject's and the reference's centres stay on their own side of 0.5 by this much. */
const RELATION_SIDE = 0.08;
const RELATION_CROSS_JITTER = 0.08;

const MAX_PLACEMENT_TRIES = 10_000;

/** Coordinates are kept to 1e-4 (a 40th of a pixel at 256 px), which keeps captions.jsonl short to read. */
function quantise(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function sampleSide(rng: ShapesRng, size: SizeName): number {
  const [lo, hi] = SIZE_SIDE_RANGE[size];
  return quantise(rng.uniform(lo, hi));
}

/** The closest a centre may be to the border for this side. */
function edgeLimit(side: number): number {
  return side / 2 + BORDER_MARGIN;
}

function clamp(value: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, value));
}

export function objectsOverlap(a: SceneObject, b: SceneObject, gap = OBJECT_GAP): boolean {
  const reach = (a.side + b.side) / 2 + gap;
  return Math.abs(a.x - b.x) < reach && Math.abs(a.y - b.y) < reach;
}

function sampleKind(rng: ShapesRng, weights: KindWeights): SceneKind {
  const total = SCENE_KINDS.reduce((sum, kind) => sum + weights[kind], 0);
  // one draw scaled to the total: the default weights (sum 1) give the same kinds as before weights were options
  let u = rng.float() * total;
  let last: SceneKind = 'single';
  for (const kind of SCENE_KINDS) {
    if (weights[kind] === 0) continue;
    last = kind;
    if (u < weights[kind]) return kind;
    u -= weights[kind];
  }
  return last;
}

function sampleBackground(rng: ShapesRng, used: readonly ColorName[]): BackgroundName {
  if (rng.chance(GRAY_BACKGROUND_PROBABILITY)) return DEFAULT_BACKGROUND;
  return rng.pick(COLORS.filter((c) => !used.includes(c)));
}

/** A centre coordinate for one position along one axis, or the cross-axis band when the position is not on it. */
function positionRange(position: PositionName, axis: 'x' | 'y', side: number): readonly [number, number] {
  const lo = edgeLimit(side);
  const hi = 1 - lo;
  const near = axis === 'x' ? 'left' : 'top';
  const far = axis === 'x' ? 'right' : 'bottom';
  if (position === near) return [lo, POSITION_NEAR];
  if (position === far) return [1 - POSITION_NEAR, hi];
  if (position === 'center') return CENTER_BAND;
  return [Math.max(lo, CROSS_AXIS_BAND[0]), Math.min(hi, CROSS_AXIS_BAND[1])];
}

function sampleSingle(rng: ShapesRng): SingleScene {
  const { color, shape } = rng.pick(TRAINING_PAIRS);
  const size = rng.pick(SIZES);
  const side = sampleSide(rng, size);
  const position = rng.pick(POSITIONS);
  const [x0, x1] = positionRange(position, 'x', side);
  const [y0, y1] = positionRange(position, 'y', side);
  const object = { color, shape, size, side, x: quantise(rng.uniform(x0, x1)), y: quantise(rng.uniform(y0, y1)) };
  return { kind: 'single', background: sampleBackground(rng, [color]), objects: [object], position };
}

function placeRelation(rng: ShapesRng, relation: RelationName, sideA: number, sideB: number): [number, number, number, number] {
  // The subject is on the "near" side of the axis (left / top) for "left of" and "above", the far side otherwise.
  const subjectNear = relation === 'left of' || relation === 'above';
  const nearSide = subjectNear ? sideA : sideB;
  const farSide = subjectNear ? sideB : sideA;
  const near = rng.uniform(edgeLimit(nearSide), 0.5 - RELATION_SIDE);
  const far = rng.uniform(0.5 + RELATION_SIDE, 1 - edgeLimit(farSide));
  const along: [number, number] = subjectNear ? [near, far] : [far, near];
  const base = rng.uniform(0.3, 0.7);
  const crossA = clamp(base + rng.uniform(-RELATION_CROSS_JITTER, RELATION_CROSS_JITTER), edgeLimit(sideA), 1 - edgeLimit(sideA));
  const crossB = clamp(base + rng.uniform(-RELATION_CROSS_JITTER, RELATION_CROSS_JITTER), edgeLimit(sideB), 1 - edgeLimit(sideB));
  const horizontal = relation === 'left of' || relation === 'right of';
  return horizontal ? [along[0], crossA, along[1], crossB] : [crossA, along[0], crossB, along[1]];
}

function sampleRelation(rng: ShapesRng): RelationScene {
  const a = rng.pick(TRAINING_PAIRS);
  // Distinct colours, so the checker can tell subject from reference by colour alone.
  const b = rng.pick(TRAINING_PAIRS.filter((p) => p.color !== a.color));
  const relation = rng.pick(RELATIONS);
  const sizeA = rng.pick(SIZES);
  const sizeB = rng.pick(SIZES);
  const sideA = sampleSide(rng, sizeA);
  const sideB = sampleSide(rng, sizeB);
  for (let attempt = 0; attempt < MAX_PLACEMENT_TRIES; attempt++) {
    const [xa, ya, xb, yb] = placeRelation(rng, relation, sideA, sideB).map(quantise);
    const subject: SceneObject = { ...a, size: sizeA, side: sideA, x: xa, y: ya };
    const reference: SceneObject = { ...b, size: sizeB, side: sideB, x: xb, y: yb };
    if (objectsOverlap(subject, reference)) continue;
    return { kind: 'relation', background: sampleBackground(rng, [a.color, b.color]), objects: [subject, reference], relation };
  }
  throw new Error(`relation scene: no placement for "${relation}" with sides ${sideA}, ${sideB}`);
}

function sampleCount(rng: ShapesRng): CountScene {
  const { color, shape } = rng.pick(TRAINING_PAIRS);
  const size = rng.pick(SIZES);
  const count = rng.pick(COUNTS);
  for (let attempt = 0; attempt < MAX_PLACEMENT_TRIES; attempt++) {
    const objects: SceneObject[] = [];
    for (let i = 0; i < count; i++) {
      const side = sampleSide(rng, size);
      const lo = edgeLimit(side);
      const candidate = { color, shape, size, side, x: quantise(rng.uniform(lo, 1 - lo)), y: quantise(rng.uniform(lo, 1 - lo)) };
      if (objects.some((o) => objectsOverlap(o, candidate))) break;
      objects.push(candidate);
    }
    if (objects.length === count) {
      return { kind: 'count', background: sampleBackground(rng, [color]), objects, count };
    }
  }
  throw new Error(`count scene: no placement for ${count} ${size} objects`);
}

/** A training or validation scene: never contains a held-out (colour, shape) pair. */
export function sampleScene(rng: ShapesRng, weights: KindWeights = DEFAULT_KIND_WEIGHTS): Scene {
  const kind = sampleKind(rng, weights);
  if (kind === 'single') return sampleSingle(rng);
  if (kind === 'relation') return sampleRelation(rng);
  return sampleCount(rng);
}
