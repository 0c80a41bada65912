// The evaluation prompt set: 48 prompts, each naming at least one held-out (colour, shape) pair, so a model can
// only get them right by composing words it learned separately. 16 single objects with size and position, 16
// two-object relations and 16 counts, in a fixed order, with canonical wording (the first synonym of each
// phrase) so scores do not depend on which paraphrase a prompt happened to use. sceneForSpec renders a
// prompt's ground truth with objects placed well inside every checker region, which is how the checker proves
// that a correct image passes.

import { objectPhrase, withArticle } from './caption.js';
import type { Scene, SceneObject } from './scene.js';
import type { CountSpec, ObjectSpec, RelationSpec, ShapesSpec, SingleSpec } from './spec.js';
import {
  COUNT_WORDS,
  DEFAULT_BACKGROUND,
  HELD_OUT_PAIRS,
  POSITIONS,
  RELATIONS,
  SHAPE_PLURALS,
  SIZES,
  SIZE_SIDE,
  type BackgroundName,
  type ColorName,
  type ColorShapePair,
  type PositionName,
  type RelationName,
  type SizeName,
} from './vocabulary.js';

export interface EvaluationPrompt {
  readonly prompt: string;
  readonly spec: ShapesSpec;
}

const CANONICAL_POSITION: Readonly<Record<PositionName, string>> = {
  left: 'on the left',
  right: 'on the right',
  top: 'at the top',
  bottom: 'at the bottom',
  center: 'in the center',
};

const CANONICAL_RELATION: Readonly<Record<RelationName, string>> = {
  'left of': 'to the left of',
  'right of': 'to the right of',
  above: 'above',
  below: 'below',
};

/** Backgrounds tried in order for prompts that ask for one; the first colour no object uses is taken. */
const BACKGROUND_CHOICES: readonly ColorName[] = ['black', 'blue', 'yellow', 'red', 'white'];

/** The object each held-out pair is related to, per relation (training pairs, colours unlike the held-out one). */
const RELATION_PARTNERS: readonly (readonly ColorShapePair[])[] = [
  [
    { color: 'red', shape: 'circle' },
    { color: 'blue', shape: 'square' },
    { color: 'yellow', shape: 'diamond' },
    { color: 'white', shape: 'circle' },
  ],
  [
    { color: 'blue', shape: 'triangle' },
    { color: 'green', shape: 'square' },
    { color: 'black', shape: 'diamond' },
    { color: 'red', shape: 'square' },
  ],
  [
    { color: 'red', shape: 'triangle' },
    { color: 'black', shape: 'circle' },
    { color: 'blue', shape: 'diamond' },
    { color: 'yellow', shape: 'circle' },
  ],
  [
    { color: 'yellow', shape: 'square' },
    { color: 'purple', shape: 'circle' },
    { color: 'red', shape: 'triangle' },
    { color: 'blue', shape: 'circle' },
  ],
];

function pickBackground(rotation: number, used: readonly ColorName[]): BackgroundName {
  for (let i = 0; i < BACKGROUND_CHOICES.length; i++) {
    const color = BACKGROUND_CHOICES[(rotation + i) % BACKGROUND_CHOICES.length];
    if (!used.includes(color)) return color;
  }
  return DEFAULT_BACKGROUND;
}

function backgroundSuffix(background: BackgroundName): string {
  return background === DEFAULT_BACKGROUND ? '' : ` on ${withArticle(background)} background`;
}

function phrase(object: ObjectSpec): string {
  return objectPhrase(object, object.size ?? null);
}

/** The canonical prompt for a spec. */
export function promptForSpec(spec: ShapesSpec): string {
  const background = backgroundSuffix(spec.background);
  if (spec.kind === 'single') return `${phrase(spec.object)} ${CANONICAL_POSITION[spec.position]}${background}`;
  if (spec.kind === 'relation') {
    return `${phrase(spec.subject)} ${CANONICAL_RELATION[spec.relation]} ${phrase(spec.reference)}${background}`;
  }
  const { color, shape, size } = spec.object;
  const words = [COUNT_WORDS[spec.count], size, color, SHAPE_PLURALS[shape]].filter((w) => w !== undefined);
  return `${words.join(' ')}${background}`;
}

function singleSpecs(): SingleSpec[] {
  return HELD_OUT_PAIRS.flatMap((pair, k) =>
    [0, 1, 2, 3].map((j): SingleSpec => ({
      kind: 'single',
      background: j === 3 ? pickBackground(k, [pair.color]) : DEFAULT_BACKGROUND,
      object: { ...pair, size: SIZES[(k + j) % 2] },
      position: POSITIONS[(4 * k + j) % POSITIONS.length],
    })),
  );
}

function relationSpecs(): RelationSpec[] {
  return HELD_OUT_PAIRS.flatMap((pair, k) =>
    RELATIONS.map((relation, j): RelationSpec => {
      const partner = RELATION_PARTNERS[k][j];
      // Sizes stated on a quarter of them, so size words are tested in relations too.
      const statedSizes = (k + j) % 4 === 0;
      const held: ObjectSpec = statedSizes ? { ...pair, size: 'large' } : pair;
      const other: ObjectSpec = statedSizes ? { ...partner, size: 'small' } : partner;
      // The held-out pair is the subject in half of them and the reference in the other half.
      const heldIsSubject = j % 2 === k % 2;
      return {
        kind: 'relation',
        background: (k + j) % 4 === 2 ? pickBackground(k + j, [pair.color, partner.color]) : DEFAULT_BACKGROUND,
        subject: heldIsSubject ? held : other,
        relation,
        reference: heldIsSubject ? other : held,
      };
    }),
  );
}

function countSpecs(): CountSpec[] {
  const variants: readonly { count: 2 | 3; size?: SizeName; colored: boolean }[] = [
    { count: 2, colored: false },
    { count: 3, colored: true },
    { count: 2, size: 'large', colored: false },
    { count: 3, size: 'small', colored: false },
  ];
  return HELD_OUT_PAIRS.flatMap((pair, k) =>
    variants.map((v): CountSpec => ({
      kind: 'count',
      background: v.colored ? pickBackground(k + 1, [pair.color]) : DEFAULT_BACKGROUND,
      object: v.size === undefined ? { ...pair } : { ...pair, size: v.size },
      count: v.count,
    })),
  );
}

/** The 48 evaluation prompts: 16 single, then 16 relation, then 16 count; the same list on every call. */
export function evaluationPrompts(): EvaluationPrompt[] {
  const specs: ShapesSpec[] = [...singleSpecs(), ...relationSpecs(), ...countSpecs()];
  return specs.map((spec) => ({ prompt: promptForSpec(spec), spec }));
}

const CANONICAL_CENTRE: Readonly<Record<PositionName, readonly [number, number]>> = {
  left: [0.25, 0.5],
  right: [0.75, 0.5],
  top: [0.5, 0.25],
  bottom: [0.5, 0.75],
  center: [0.5, 0.5],
};

/** Subject and reference centres per relation: 0.46 apart on the axis, level on the other. */
const CANONICAL_RELATION_CENTRES: Readonly<Record<RelationName, readonly [readonly [number, number], readonly [number, number]]>> = {
  'left of': [[0.27, 0.5], [0.73, 0.5]],
  'right of': [[0.73, 0.5], [0.27, 0.5]],
  above: [[0.5, 0.27], [0.5, 0.73]],
  below: [[0.5, 0.73], [0.5, 0.27]],
};

const CANONICAL_COUNT_CENTRES: Readonly<Record<2 | 3, readonly (readonly [number, number])[]>> = {
  2: [[0.27, 0.5], [0.73, 0.5]],
  3: [[0.22, 0.28], [0.78, 0.28], [0.5, 0.74]],
};

function placed(object: ObjectSpec, [x, y]: readonly [number, number]): SceneObject {
  // An unstated size is drawn large: any size satisfies the prompt, and large objects are the easiest to see.
  const size = object.size ?? 'large';
  return { color: object.color, shape: object.shape, size, side: SIZE_SIDE[size], x, y };
}

/** A ground-truth scene for a spec, with every object unambiguously where the spec says. */
export function sceneForSpec(spec: ShapesSpec): Scene {
  if (spec.kind === 'single') {
    return { kind: 'single', background: spec.background, objects: [placed(spec.object, CANONICAL_CENTRE[spec.position])], position: spec.position };
  }
  if (spec.kind === 'relation') {
    const [a, b] = CANONICAL_RELATION_CENTRES[spec.relation];
    return { kind: 'relation', background: spec.background, objects: [placed(spec.subject, a), placed(spec.reference, b)], relation: spec.relation };
  }
  const objects = CANONICAL_COUNT_CENTRES[spec.count].map((centre) => placed(spec.object, centre));
  return { kind: 'count', background: spec.background, objects, count: spec.count };
}
