// Captions for coloured-shapes scenes, with varied wording. A model trained on one fixed template learns the
// template; a few synonyms and orderings make it attend to the words that matter (colour, shape, size,
// position) instead. Every variant still names each object's colour and shape and the position, relation or
// count the scene was made for, so a caption is always true of its image. Size words may be left out (the
// size is then still in the scene, just not promised by the text).

import type { ShapesRng } from './random.js';
import type { CountScene, RelationScene, Scene, SceneObject, SingleScene } from './scene.js';
import {
  COLORS,
  COUNT_WORDS,
  DEFAULT_BACKGROUND,
  SHAPES,
  SHAPE_PLURALS,
  type PositionName,
  type RelationName,
  type SizeName,
} from './vocabulary.js';

export const SIZE_WORDS: Readonly<Record<SizeName, readonly string[]>> = {
  small: ['small', 'little', 'tiny'],
  large: ['large', 'big'],
};

export const POSITION_PHRASES: Readonly<Record<PositionName, readonly string[]>> = {
  left: ['on the left', 'at the left', 'on the left side', 'on the left side of the image'],
  right: ['on the right', 'at the right', 'on the right side', 'on the right side of the image'],
  top: ['at the top', 'at the top of the image', 'near the top', 'in the upper part of the image'],
  bottom: ['at the bottom', 'at the bottom of the image', 'near the bottom', 'in the lower part of the image'],
  center: ['in the center', 'in the middle', 'in the center of the image', 'in the middle of the image'],
};

export const RELATION_PHRASES: Readonly<Record<RelationName, readonly string[]>> = {
  'left of': ['to the left of', 'left of', 'on the left of'],
  'right of': ['to the right of', 'right of', 'on the right of'],
  above: ['above', 'over'],
  below: ['below', 'under', 'beneath'],
};

/** How often a size word is left out, and how often the default gray background is still mentioned. */
const OMIT_SIZE_PROBABILITY = 0.25;
const MENTION_GRAY_PROBABILITY = 0.2;

/** How often a single-object caption opens with the position ("on the left, a red circle"), by default. */
export const DEFAULT_POSITION_FIRST_PROBABILITY = 0.2;

export interface CaptionOptions {
  /**
   * Probability that a single-object caption names the position first; default DEFAULT_POSITION_FIRST_PROBABILITY.
   * 0 keeps the object before its position in every caption, as relation captions keep the subject before the
   * relation: under a causal text encoder the words after "left" then always belong to what is not on the left.
   * The random draw is made either way, so every other word of every caption stays the same.
   */
  readonly positionFirst?: number;
  /**
   * Probability that an object's colour word is left out ("a circle on the left"); default 0. Captions that name
   * a shape without its colour, or a colour without its shape (omitShape), make the shape word alone decide the
   * shape and the colour word alone the colour, which is what a held-out pair ("a purple triangle") needs: its two
   * words were only ever seen apart. The caption stays true of its image (it promises less).
   */
  readonly omitColor?: number;
  /** Probability that an object's shape word becomes "shape" ("a red shape on the left", "two red shapes"); default 0. */
  readonly omitShape?: number;
}

export function checkCaptionOptions(o: CaptionOptions, where: string): CaptionOptions {
  for (const key of ['positionFirst', 'omitColor', 'omitShape'] as const) {
    const p = o[key];
    if (p !== undefined && !(Number.isFinite(p) && p >= 0 && p <= 1)) {
      throw new RangeError(`${where}: ${key} must be a probability in [0, 1], got ${p}`);
    }
  }
  if ((o.omitColor ?? 0) + (o.omitShape ?? 0) > 1) {
    throw new RangeError(`${where}: omitColor + omitShape must be at most 1 (an object keeps its colour or its shape), got ${o.omitColor} + ${o.omitShape}`);
  }
  return o;
}

/** The words that name an object in one caption: its colour and shape, or one of them (CaptionOptions omit*). */
interface NamedAttributes {
  readonly color: string | null;
  readonly shape: string;
  readonly plural: string;
}

/**
 * Which of the object's attributes the caption names. Draws only when an omit probability is set, so captions made
 * without these options are the ones made before they existed.
 */
function namedAttributes(rng: ShapesRng, object: Pick<SceneObject, 'color' | 'shape'>, o: CaptionOptions): NamedAttributes {
  const full = { color: object.color, shape: object.shape, plural: SHAPE_PLURALS[object.shape] };
  const omitColor = o.omitColor ?? 0;
  const omitShape = o.omitShape ?? 0;
  if (omitColor === 0 && omitShape === 0) return full;
  const u = rng.float();
  if (u < omitColor) return { ...full, color: null };
  if (u < omitColor + omitShape) return { ...full, shape: 'shape', plural: 'shapes' };
  return full;
}

export function withArticle(phrase: string): string {
  return `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

/** "a big red circle" or "a red circle"; sizeWord null leaves the size out, a null colour the colour ("a circle"). */
export function objectPhrase(object: { readonly color: string | null; readonly shape: string }, sizeWord: string | null): string {
  return withArticle([sizeWord, object.color, object.shape].filter((w) => w !== null).join(' '));
}

function sizeWordFor(rng: ShapesRng, size: SizeName): string | null {
  return rng.chance(OMIT_SIZE_PROBABILITY) ? null : rng.pick(SIZE_WORDS[size]);
}

function backgroundPhrase(rng: ShapesRng, scene: Scene): string {
  if (scene.background !== DEFAULT_BACKGROUND) return ` on ${withArticle(scene.background)} background`;
  return rng.chance(MENTION_GRAY_PROBABILITY) ? ` on ${withArticle(DEFAULT_BACKGROUND)} background` : '';
}

function singleCaption(rng: ShapesRng, scene: SingleScene, o: CaptionOptions): string {
  const object = objectPhrase(namedAttributes(rng, scene.objects[0], o), sizeWordFor(rng, scene.objects[0].size));
  const where = rng.pick(POSITION_PHRASES[scene.position]);
  const background = backgroundPhrase(rng, scene);
  // The position first now and then ("on the left, a red circle"), so the object is not always the opening word.
  const positionFirst = rng.chance(o.positionFirst ?? DEFAULT_POSITION_FIRST_PROBABILITY);
  return positionFirst ? `${where}, ${object}${background}` : `${object} ${where}${background}`;
}

function relationCaption(rng: ShapesRng, scene: RelationScene, o: CaptionOptions): string {
  const [subject, reference] = scene.objects;
  const a = objectPhrase(namedAttributes(rng, subject, o), sizeWordFor(rng, subject.size));
  const b = objectPhrase(namedAttributes(rng, reference, o), sizeWordFor(rng, reference.size));
  return `${a} ${rng.pick(RELATION_PHRASES[scene.relation])} ${b}${backgroundPhrase(rng, scene)}`;
}

function countCaption(rng: ShapesRng, scene: CountScene, o: CaptionOptions): string {
  const names = namedAttributes(rng, scene.objects[0], o);
  const sizeWord = sizeWordFor(rng, scene.objects[0].size);
  const words = [COUNT_WORDS[scene.count], sizeWord, names.color, names.plural].filter((w) => w !== null);
  return `${words.join(' ')}${backgroundPhrase(rng, scene)}`;
}

/** A caption for the scene, drawn with rng (pass a generator keyed to the example for determinism). */
export function captionScene(scene: Scene, rng: ShapesRng, options: CaptionOptions = {}): string {
  if (scene.kind === 'single') return singleCaption(rng, scene, options);
  if (scene.kind === 'relation') return relationCaption(rng, scene, options);
  return countCaption(rng, scene, options);
}

/** Words of the relation phrases that name the relation ("left", "over", ...; not "to", "the", "of", "on"). */
export const RELATION_WORDS: readonly string[] = [
  ...new Set(Object.values(RELATION_PHRASES).flatMap((phrases) => phrases.flatMap((p) => p.split(' ')))),
].filter((w) => !['to', 'the', 'of', 'on'].includes(w));

/** Every word (and the comma) a caption of captionScene can contain, whatever its options. */
export const CAPTION_VOCABULARY: readonly string[] = [
  ...new Set([
    'a',
    'an',
    'on',
    'background',
    ',',
    'shape',
    'shapes',
    DEFAULT_BACKGROUND,
    ...COLORS,
    ...SHAPES,
    ...Object.values(SHAPE_PLURALS),
    ...Object.values(COUNT_WORDS),
    ...Object.values(SIZE_WORDS).flat(),
    ...[...Object.values(POSITION_PHRASES), ...Object.values(RELATION_PHRASES)].flat().flatMap((p) => p.split(' ')),
  ]),
];
