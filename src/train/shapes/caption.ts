// Captions for coloured-shapes scenes, with varied wording. A model trained on one fixed template learns the
// template; a few synonyms and orderings make it attend to the words that matter (colour, shape, size,
// position) instead. Every variant still names each object's colour and shape and the position, relation or
// count the scene was made for, so a caption is always true of its image. Size words may be left out (the
// size is then still in the scene, just not promised by the text).

import type { ShapesRng } from './random.js';
import type { CountScene, RelationScene, Scene, SceneObject, SingleScene } from './scene.js';
import {
  COUNT_WORDS,
  DEFAULT_BACKGROUND,
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

export function withArticle(phrase: string): string {
  return `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

/** "big red circle" or "red circle"; sizeWord null leaves the size out. */
export function objectPhrase(object: Pick<SceneObject, 'color' | 'shape'>, sizeWord: string | null): string {
  return withArticle([sizeWord, object.color, object.shape].filter((w) => w !== null).join(' '));
}

function sizeWordFor(rng: ShapesRng, size: SizeName): string | null {
  return rng.chance(OMIT_SIZE_PROBABILITY) ? null : rng.pick(SIZE_WORDS[size]);
}

function backgroundPhrase(rng: ShapesRng, scene: Scene): string {
  if (scene.background !== DEFAULT_BACKGROUND) return ` on ${withArticle(scene.background)} background`;
  return rng.chance(MENTION_GRAY_PROBABILITY) ? ` on ${withArticle(DEFAULT_BACKGROUND)} background` : '';
}

function singleCaption(rng: ShapesRng, scene: SingleScene): string {
  const object = objectPhrase(scene.objects[0], sizeWordFor(rng, scene.objects[0].size));
  const where = rng.pick(POSITION_PHRASES[scene.position]);
  const background = backgroundPhrase(rng, scene);
  // The position first now and then ("on the left, a red circle"), so the object is not always the opening word.
  return rng.chance(0.2) ? `${where}, ${object}${background}` : `${object} ${where}${background}`;
}

function relationCaption(rng: ShapesRng, scene: RelationScene): string {
  const [subject, reference] = scene.objects;
  const a = objectPhrase(subject, sizeWordFor(rng, subject.size));
  const b = objectPhrase(reference, sizeWordFor(rng, reference.size));
  return `${a} ${rng.pick(RELATION_PHRASES[scene.relation])} ${b}${backgroundPhrase(rng, scene)}`;
}

function countCaption(rng: ShapesRng, scene: CountScene): string {
  const { color, shape, size } = scene.objects[0];
  const sizeWord = sizeWordFor(rng, size);
  const words = [COUNT_WORDS[scene.count], sizeWord, color, SHAPE_PLURALS[shape]].filter((w) => w !== null);
  return `${words.join(' ')}${backgroundPhrase(rng, scene)}`;
}

/** A caption for the scene, drawn with rng (pass a generator keyed to the example for determinism). */
export function captionScene(scene: Scene, rng: ShapesRng): string {
  if (scene.kind === 'single') return singleCaption(rng, scene);
  if (scene.kind === 'relation') return relationCaption(rng, scene);
  return countCaption(rng, scene);
}
