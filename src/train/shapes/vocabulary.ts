// The fixed vocabulary of the coloured-shapes dataset: colour names with their sRGB values, shapes, sizes,
// positions, relations, and the (colour, shape) pairs held out from training. The sampler, the renderer, the
// captions, the evaluation prompts and the checker all read these, and trained models learn exactly these words,
// so the names and values are part of the dataset's contract: changing one changes every image and caption.

export const COLORS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white', 'black'] as const;
export type ColorName = (typeof COLORS)[number];

/** The default background is not an object colour, so a gray background never hides an object. */
export const DEFAULT_BACKGROUND = 'gray';
export type BackgroundName = ColorName | typeof DEFAULT_BACKGROUND;

export type Rgb = readonly [number, number, number];

// Chosen so the closest two (yellow/orange) are 81 apart in RGB: uniform noise of +-20 per channel moves a pixel
// at most 20 * sqrt(3) = 34.6, under half of that, so nearest-colour classification of flat regions survives the
// noise a generated image shows. Gray sits 90 from purple, its nearest object colour.
export const PALETTE: Readonly<Record<BackgroundName, Rgb>> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  yellow: [245, 215, 40],
  orange: [245, 135, 30],
  purple: [140, 60, 185],
  white: [245, 245, 245],
  black: [25, 25, 25],
  gray: [128, 128, 128],
};

/** Every name a pixel can be classified as; the index of a name here is its label in the checker. */
export const PALETTE_NAMES: readonly BackgroundName[] = [...COLORS, DEFAULT_BACKGROUND];

export const SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const;
export type ShapeName = (typeof SHAPES)[number];

export const SIZES = ['small', 'large'] as const;
export type SizeName = (typeof SIZES)[number];

/**
 * Nominal side of each size as a fraction of the image side. An object's side is the side of its bounding box
 * for every shape (circle diameter, triangle base and height, diamond diagonal), because that is what the
 * checker can measure without knowing the shape first.
 */
export const SIZE_SIDE: Readonly<Record<SizeName, number>> = { small: 0.17, large: 0.32 };

/** Sampled sides stay within these bands so no small object is ever as big as a large one. */
export const SIZE_SIDE_RANGE: Readonly<Record<SizeName, readonly [number, number]>> = {
  small: [0.15, 0.19],
  large: [0.29, 0.35],
};

export const POSITIONS = ['left', 'right', 'top', 'bottom', 'center'] as const;
export type PositionName = (typeof POSITIONS)[number];

/** "A <relation> B": A is the subject, B the reference object. */
export const RELATIONS = ['left of', 'right of', 'above', 'below'] as const;
export type RelationName = (typeof RELATIONS)[number];

export const COUNTS = [2, 3] as const;
export type CountValue = (typeof COUNTS)[number];

export interface ColorShapePair {
  readonly color: ColorName;
  readonly shape: ShapeName;
}

// One pair per shape and per colour, so every held-out word is still seen in training, just never together:
// the evaluation measures composition, not new vocabulary.
export const HELD_OUT_PAIRS: readonly ColorShapePair[] = [
  { color: 'purple', shape: 'triangle' },
  { color: 'orange', shape: 'circle' },
  { color: 'white', shape: 'square' },
  { color: 'green', shape: 'diamond' },
];

export function isHeldOut(color: ColorName, shape: ShapeName): boolean {
  return HELD_OUT_PAIRS.some((p) => p.color === color && p.shape === shape);
}

/** The 28 pairs training scenes may use, in a fixed order (colour-major). */
export const TRAINING_PAIRS: readonly ColorShapePair[] = COLORS.flatMap((color) =>
  SHAPES.filter((shape) => !isHeldOut(color, shape)).map((shape) => ({ color, shape })),
);

export const SHAPE_PLURALS: Readonly<Record<ShapeName, string>> = {
  circle: 'circles',
  square: 'squares',
  triangle: 'triangles',
  diamond: 'diamonds',
};

export const COUNT_WORDS: Readonly<Record<CountValue, string>> = { 2: 'two', 3: 'three' };
