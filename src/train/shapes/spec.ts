// What a prompt promises about an image, in the form the checker tests: the background, each object's colour
// and shape (and size when the prompt states one), and the position, relation or count. Evaluation prompts
// carry one of these; a training scene can be turned into one, so the checker can also be run on sampled scenes.

import type { Scene } from './scene.js';
import type {
  BackgroundName,
  ColorName,
  CountValue,
  PositionName,
  RelationName,
  ShapeName,
  SizeName,
} from './vocabulary.js';

export interface ObjectSpec {
  readonly color: ColorName;
  readonly shape: ShapeName;
  /** Absent when the prompt has no size word: any size then passes. */
  readonly size?: SizeName;
}

export interface SingleSpec {
  readonly kind: 'single';
  readonly background: BackgroundName;
  readonly object: ObjectSpec;
  readonly position: PositionName;
}

/** "subject <relation> reference"; the two colours must differ (the checker finds objects by colour). */
export interface RelationSpec {
  readonly kind: 'relation';
  readonly background: BackgroundName;
  readonly subject: ObjectSpec;
  readonly relation: RelationName;
  readonly reference: ObjectSpec;
}

export interface CountSpec {
  readonly kind: 'count';
  readonly background: BackgroundName;
  readonly object: ObjectSpec;
  readonly count: CountValue;
}

export type ShapesSpec = SingleSpec | RelationSpec | CountSpec;

/** Every object a spec names, subject first. */
export function specObjects(spec: ShapesSpec): readonly ObjectSpec[] {
  return spec.kind === 'relation' ? [spec.subject, spec.reference] : [spec.object];
}

/** The spec a scene was made for, with every size stated (the scene knows them all). */
export function specFromScene(scene: Scene): ShapesSpec {
  const describe = (i: number): ObjectSpec => {
    const { color, shape, size } = scene.objects[i];
    return { color, shape, size };
  };
  if (scene.kind === 'single') return { kind: 'single', background: scene.background, object: describe(0), position: scene.position };
  if (scene.kind === 'relation') {
    return { kind: 'relation', background: scene.background, subject: describe(0), relation: scene.relation, reference: describe(1) };
  }
  return { kind: 'count', background: scene.background, object: describe(0), count: scene.count };
}
