// The coloured-shapes dataset: seeded scene and caption sampling, the held-out pairs, the evaluation prompt set,
// the renderer and the dataset folder writer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { decodePng } from '../src/io/png.js';
import { CAPTION_VOCABULARY, POSITION_PHRASES, RELATION_PHRASES, RELATION_WORDS, SIZE_WORDS } from '../src/train/shapes/caption.js';
import { sampleShapesExample, writeShapesDataset, type ShapesSplit } from '../src/train/shapes/dataset.js';
import { evaluationPrompts, promptForSpec, sceneForSpec } from '../src/train/shapes/evaluation.js';
import { ShapesRng } from '../src/train/shapes/random.js';
import { renderScene } from '../src/train/shapes/render.js';
import { BORDER_MARGIN, DEFAULT_KIND_WEIGHTS, objectsOverlap, type Scene } from '../src/train/shapes/scene.js';
import { parseKindWeights } from '../src/cli/make-shapes.js';
import { specObjects } from '../src/train/shapes/spec.js';
import {
  COLORS,
  COUNT_WORDS,
  DEFAULT_BACKGROUND,
  HELD_OUT_PAIRS,
  PALETTE,
  SHAPE_PLURALS,
  SIZE_SIDE_RANGE,
  TRAINING_PAIRS,
  isHeldOut,
} from '../src/train/shapes/vocabulary.js';

function examples(seed: number, count: number, split: ShapesSplit = 'train'): ReturnType<typeof sampleShapesExample>[] {
  return Array.from({ length: count }, (_, i) => sampleShapesExample(seed, i, split));
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'shapes-dataset-'));
}

test('the generator is a fixed function of (stream, seed, index)', () => {
  const rng = new ShapesRng(1, 2, 3);
  // Golden values: a change here changes every dataset written so far.
  assert.deepEqual([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()], [3936704540, 2585084671, 501958605]);
  const other = new ShapesRng(1, 2, 4);
  assert.notEqual(other.nextUint32(), 3936704540);
  assert.throws(() => new ShapesRng(0, -1), /seed: -1/);
  assert.throws(() => new ShapesRng(0, 2 ** 32), /seed/);
});

test('a seed gives the same scene, caption and pixels on every call (golden example)', () => {
  const example = sampleShapesExample(7, 0, 'train');
  assert.deepEqual(example, sampleShapesExample(7, 0, 'train'));
  assert.equal(example.caption, 'a green triangle at the bottom of the image');
  assert.deepEqual(example.scene, {
    kind: 'single',
    background: 'gray',
    objects: [{ color: 'green', shape: 'triangle', size: 'small', side: 0.189, x: 0.535, y: 0.8505 }],
    position: 'bottom',
  });
  assert.equal(zlib.crc32(renderScene(example.scene).rgb).toString(16), 'ace2de07');
  assert.deepEqual(examples(3, 200), examples(3, 200));
});

test('different seeds, indices and splits give different examples', () => {
  const key = (e: { scene: Scene; caption: string }): string => JSON.stringify(e);
  const a = examples(1, 300).map(key);
  const b = examples(2, 300).map(key);
  const v = examples(1, 300, 'validation').map(key);
  assert.equal(new Set(a).size, 300, 'examples within one stream repeat');
  const all = new Set([...a, ...b, ...v]);
  assert.equal(all.size, 900, 'streams of different seeds or splits share examples');
  // The kinds are mixed within a stream, not fixed per seed.
  const kinds = new Set(examples(1, 50).map((e) => e.scene.kind));
  assert.deepEqual([...kinds].sort(), ['count', 'relation', 'single']);
});

test('training and validation scenes never contain a held-out pair, and use every other pair', () => {
  const seen = new Set<string>();
  for (const split of ['train', 'validation'] as const) {
    for (let seed = 0; seed < 5; seed++) {
      for (const { scene } of examples(seed, 1000, split)) {
        for (const o of scene.objects) {
          assert.ok(!isHeldOut(o.color, o.shape), `${split} seed ${seed}: held-out ${o.color} ${o.shape}`);
          seen.add(`${o.color} ${o.shape}`);
        }
      }
    }
  }
  assert.equal(TRAINING_PAIRS.length, 28);
  assert.deepEqual([...seen].sort(), TRAINING_PAIRS.map((p) => `${p.color} ${p.shape}`).sort());
});

test('scenes keep objects inside the image, apart, and within their size bands', () => {
  for (const { scene } of examples(11, 3000)) {
    const { objects } = scene;
    assert.ok(objects.length >= 1 && objects.length <= 3);
    for (const o of objects) {
      const [lo, hi] = SIZE_SIDE_RANGE[o.size];
      assert.ok(o.side >= lo && o.side <= hi, `side ${o.side} outside the ${o.size} band`);
      const reach = o.side / 2 + BORDER_MARGIN - 1e-4;
      assert.ok(o.x >= reach && o.x <= 1 - reach && o.y >= reach && o.y <= 1 - reach, `object leaves the image: ${JSON.stringify(o)}`);
      assert.notEqual(o.color, scene.background, 'object drawn in the background colour');
    }
    for (let i = 0; i < objects.length; i++) {
      for (let j = i + 1; j < objects.length; j++) assert.ok(!objectsOverlap(objects[i], objects[j]), `objects overlap: ${JSON.stringify(scene)}`);
    }
    if (scene.kind === 'relation') assert.notEqual(objects[0].color, objects[1].color);
    if (scene.kind === 'count') {
      assert.equal(objects.length, scene.count);
      assert.ok(objects.every((o) => o.color === objects[0].color && o.shape === objects[0].shape && o.size === objects[0].size));
    }
  }
});

test('every caption names each object, the position, relation or count, and any non-gray background', () => {
  const grayMentions = { yes: 0, no: 0 };
  let omittedSizes = 0;
  for (const { scene, caption } of examples(5, 4000)) {
    assert.match(caption, /^[a-z ,]+$/, `caption not lower-case words: ${caption}`);
    for (const o of scene.objects) {
      assert.ok(caption.includes(o.color), `"${caption}" lacks ${o.color}`);
      const shapeWord = scene.kind === 'count' ? SHAPE_PLURALS[o.shape] : o.shape;
      assert.ok(caption.includes(shapeWord), `"${caption}" lacks ${shapeWord}`);
    }
    const words = caption.split(/[ ,]+/);
    const sizeWords = words.filter((w) => SIZE_WORDS.small.includes(w) || SIZE_WORDS.large.includes(w));
    const statedSizes = new Set(scene.objects.map((o) => o.size));
    for (const w of sizeWords) {
      assert.ok([...statedSizes].some((s) => SIZE_WORDS[s].includes(w)), `"${caption}": size word ${w} matches no object`);
    }
    if (sizeWords.length < (scene.kind === 'relation' ? 2 : 1)) omittedSizes++;
    if (scene.kind === 'single') assert.ok(POSITION_PHRASES[scene.position].some((p) => caption.includes(p)), `"${caption}" lacks ${scene.position}`);
    if (scene.kind === 'relation') {
      const [a, b] = scene.objects;
      const phrase = RELATION_PHRASES[scene.relation].find((p) => caption.includes(` ${p} `));
      assert.ok(phrase !== undefined, `"${caption}" lacks ${scene.relation}`);
      const [before, after] = caption.split(` ${phrase} `);
      assert.ok(before.includes(a.color) && after.includes(b.color), `"${caption}": subject and reference in the wrong order`);
    }
    if (scene.kind === 'count') assert.ok(caption.startsWith(`${COUNT_WORDS[scene.count]} `), `"${caption}" lacks the count`);
    if (scene.background !== DEFAULT_BACKGROUND) {
      assert.ok(caption.endsWith(` ${scene.background} background`), `"${caption}" lacks its ${scene.background} background`);
      assert.ok(scene.objects.every((o) => o.color !== scene.background));
    } else {
      grayMentions[caption.endsWith('on a gray background') ? 'yes' : 'no']++;
    }
  }
  assert.ok(grayMentions.yes > 100 && grayMentions.no > grayMentions.yes, `gray mentions ${JSON.stringify(grayMentions)}`);
  assert.ok(omittedSizes > 400 && omittedSizes < 2500, `${omittedSizes} captions leave a size out`);
  assert.equal(sampleShapesExample(0, 0).caption, sampleShapesExample(0, 0).caption);
});

test('the evaluation prompts: 48 distinct, 16 per kind, each with a held-out pair, in a fixed order', () => {
  const prompts = evaluationPrompts();
  assert.deepEqual(prompts, evaluationPrompts());
  assert.ok(prompts.length >= 48);
  assert.equal(new Set(prompts.map((p) => p.prompt)).size, prompts.length, 'prompts repeat');
  assert.equal(new Set(prompts.map((p) => JSON.stringify(p.spec))).size, prompts.length, 'specs repeat');
  assert.deepEqual(
    prompts.map((p) => p.spec.kind),
    [...Array(16).fill('single'), ...Array(16).fill('relation'), ...Array(16).fill('count')],
  );
  const training = new Set(examples(0, 2000).map((e) => e.caption));
  for (const { prompt, spec } of prompts) {
    const objects = specObjects(spec);
    assert.ok(objects.some((o) => isHeldOut(o.color, o.shape)), `"${prompt}" has no held-out pair`);
    assert.ok(objects.every((o) => o.color !== spec.background), `"${prompt}": an object in the background colour`);
    for (const o of objects) assert.ok(prompt.includes(o.color) && prompt.includes(o.shape), `"${prompt}" does not name ${o.color} ${o.shape}`);
    if (spec.kind === 'single') assert.notEqual(spec.object.size, undefined, `"${prompt}" states no size`);
    if (spec.kind === 'relation') assert.notEqual(spec.subject.color, spec.reference.color);
    assert.equal(promptForSpec(spec), prompt);
    assert.ok(!training.has(prompt), `"${prompt}" is also a training caption`);
  }
  const heldOut = new Set(HELD_OUT_PAIRS.map((p) => `${p.color} ${p.shape}`));
  assert.equal(heldOut.size, 4);
  assert.equal(prompts[0].prompt, 'a small purple triangle on the left');
  assert.equal(prompts[47].prompt, 'three small green diamonds');
});

test('renderScene: background, flat object colour, anti-aliased edges, the triangle points up', () => {
  const scene: Scene = {
    kind: 'single',
    background: 'gray',
    objects: [{ color: 'red', shape: 'triangle', size: 'large', side: 0.5, x: 0.5, y: 0.5 }],
    position: 'center',
  };
  const image = renderScene(scene, 64);
  assert.equal(image.width, 64);
  assert.equal(image.rgb.length, 64 * 64 * 3);
  const at = (x: number, y: number): number[] => [...image.rgb.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
  assert.deepEqual(at(0, 0), [...PALETTE.gray]);
  assert.deepEqual(at(32, 40), [...PALETTE.red]);
  // Near the apex row the triangle is narrow; near the base it is wide.
  const redInRow = (y: number): number => Array.from({ length: 64 }, (_, x) => at(x, y)).filter((p) => p[1] < 80).length;
  assert.ok(redInRow(20) < redInRow(44), `row widths ${redInRow(20)} vs ${redInRow(44)}`);
  // Edge pixels take intermediate values: on a sub-pixel offset the edges cut pixels at many coverages.
  const offset = renderScene({ ...scene, objects: [{ ...scene.objects[0], x: 0.507, y: 0.493 }] }, 64);
  const colours = new Set<string>();
  for (let i = 0; i < offset.rgb.length; i += 3) colours.add(offset.rgb.subarray(i, i + 3).join(','));
  assert.ok(colours.size > 8, `${colours.size} colours: edges are not anti-aliased`);
  assert.throws(() => renderScene(scene, 3), /size 3/);
});

test('renderScene is fast enough for 20,000 images in minutes', () => {
  const scenes = examples(9, 1000).map((e) => e.scene);
  const start = process.hrtime.bigint();
  for (const scene of scenes) renderScene(scene, 256);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rate = scenes.length / seconds;
  console.log(`renderScene: ${rate.toFixed(0)} images/s at 256x256 (20,000 in ${(20_000 / rate).toFixed(1)} s)`);
  assert.ok(rate > 100, `only ${rate.toFixed(0)} images/s`);
});

test('writeShapesDataset writes images and captions.jsonl, byte-identical for identical arguments', () => {
  const root = tempDir();
  try {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    const summary = writeShapesDataset(a, { count: 12, seed: 4, size: 64, split: 'train' });
    writeShapesDataset(b, { count: 12, seed: 4, size: 64, split: 'train' });
    assert.equal(summary.count, 12);
    assert.deepEqual(fs.readdirSync(a).sort(), ['captions.jsonl', 'images']);
    const files = fs.readdirSync(path.join(a, 'images')).sort();
    assert.deepEqual(files, Array.from({ length: 12 }, (_, i) => `${String(i).padStart(5, '0')}.png`));
    const lines = fs.readFileSync(path.join(a, 'captions.jsonl'), 'utf8').split('\n');
    assert.equal(lines.pop(), '', 'captions.jsonl does not end with a newline');
    assert.equal(lines.length, 12);
    lines.forEach((line, i) => {
      const record = JSON.parse(line) as { file: string; caption: string; scene: Scene };
      const expected = sampleShapesExample(4, i, 'train');
      assert.equal(record.file, `images/${String(i).padStart(5, '0')}.png`);
      assert.equal(record.caption, expected.caption);
      assert.deepEqual(record.scene, expected.scene);
      const image = decodePng(fs.readFileSync(path.join(a, record.file)));
      assert.equal(image.width, 64);
      assert.deepEqual(image.rgb, renderScene(expected.scene, 64).rgb, `${record.file}: pixels differ from the scene`);
    });
    for (const f of ['captions.jsonl', ...files.map((f) => `images/${f}`)]) {
      assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), `${f} differs between identical writes`);
    }
    const v = path.join(root, 'v');
    writeShapesDataset(v, { count: 12, seed: 4, size: 64, split: 'validation' });
    assert.notDeepEqual(fs.readFileSync(path.join(v, 'captions.jsonl'), 'utf8'), fs.readFileSync(path.join(a, 'captions.jsonl'), 'utf8'));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('writeShapesDataset refuses a non-empty folder and bad options, and accepts an empty one', () => {
  const root = tempDir();
  try {
    fs.writeFileSync(path.join(root, 'keep.txt'), 'x');
    assert.throws(() => writeShapesDataset(root, { count: 1, seed: 0, split: 'train' }), (e: Error) => e.message.includes(root) && /not empty/.test(e.message));
    assert.deepEqual(fs.readdirSync(root), ['keep.txt'], 'a refused write left files behind');
    const empty = path.join(root, 'empty');
    fs.mkdirSync(empty);
    writeShapesDataset(empty, { count: 2, seed: 1, size: 32, split: 'validation' });
    assert.equal(fs.readdirSync(path.join(empty, 'images')).length, 2);
    assert.throws(() => writeShapesDataset(path.join(root, 'c'), { count: -1, seed: 0, split: 'train' }), /count -1/);
    assert.throws(() => writeShapesDataset(path.join(root, 'd'), { count: 1, seed: 1.5, split: 'train' }), /seed 1.5/);
    assert.throws(() => writeShapesDataset(path.join(root, 'e'), { count: 1, seed: 0, split: 'test' as ShapesSplit }), /split/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('ground-truth scenes of the evaluation specs keep their held-out pairs', () => {
  for (const { spec } of evaluationPrompts()) {
    const scene = sceneForSpec(spec);
    const objects = specObjects(spec);
    assert.ok(scene.objects.some((o) => isHeldOut(o.color, o.shape)));
    for (let i = 0; i < scene.objects.length; i++) {
      for (let j = i + 1; j < scene.objects.length; j++) assert.ok(!objectsOverlap(scene.objects[i], scene.objects[j]));
    }
    for (const o of objects) {
      assert.ok(scene.objects.some((s) => s.color === o.color && s.shape === o.shape && (o.size === undefined || s.size === o.size)));
    }
    assert.ok(COLORS.every((c) => c !== scene.background || !scene.objects.some((o) => o.color === c)));
  }
});

test('kind weights: the defaults give the default data set, other weights shift the mix, bad weights are refused', () => {
  const kinds = (weights: Parameters<typeof sampleShapesExample>[3], n = 400) =>
    Array.from({ length: n }, (_, i) => sampleShapesExample(4, i, 'train', weights).scene.kind);
  // the golden example above, and a whole stream, are unchanged when the default weights are passed explicitly
  assert.deepEqual(examples(7, 50), Array.from({ length: 50 }, (_, i) => sampleShapesExample(7, i, 'train', DEFAULT_KIND_WEIGHTS)));
  const share = (list: string[], kind: string) => list.filter((k) => k === kind).length / list.length;
  const defaults = kinds(undefined);
  assert.ok(Math.abs(share(defaults, 'relation') - 0.35) < 0.07, `default relation share ${share(defaults, 'relation')}`);
  const relationHeavy = kinds({ single: 0.25, relation: 0.5, count: 0.25 });
  assert.ok(Math.abs(share(relationHeavy, 'relation') - 0.5) < 0.07, `relation share ${share(relationHeavy, 'relation')}`);
  assert.deepEqual(new Set(kinds({ single: 0, relation: 3, count: 0 }, 50)), new Set(['relation']));
  assert.deepEqual(new Set(kinds({ single: 0, relation: 1, count: 1 }, 100)), new Set(['relation', 'count']));
  const root = tempDir();
  try {
    assert.throws(() => writeShapesDataset(path.join(root, 'a'), { count: 1, seed: 0, split: 'train', kinds: { single: 0, relation: 0, count: 0 } }), /kinds: at least one kind/);
    assert.throws(() => writeShapesDataset(path.join(root, 'b'), { count: 1, seed: 0, split: 'train', kinds: { single: -1, relation: 1, count: 1 } }), /weight of "single" must be a number >= 0/);
    writeShapesDataset(path.join(root, 'c'), { count: 6, seed: 0, split: 'train', kinds: { single: 0, relation: 0, count: 1 } });
    const lines = fs.readFileSync(path.join(root, 'c', 'captions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.every((l) => l.scene.kind === 'count'), 'a count-only data set');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  assert.deepEqual(parseKindWeights('relation=2, count=1', '--kinds'), { single: 0, relation: 2, count: 1 });
  assert.throws(() => parseKindWeights('relations=2', '--kinds'), /--kinds: unknown kind "relations"/);
  assert.throws(() => parseKindWeights('relation', '--kinds'), /--kinds: expected KIND=WEIGHT/);
  assert.throws(() => parseKindWeights('relation=0', '--kinds'), /at least one kind/);
});

test('caption options: position-first 0 and omitted colours or shapes change only the wording they name', () => {
  const n = 600;
  const withOptions = (captions: Parameters<typeof sampleShapesExample>[4]) =>
    Array.from({ length: n }, (_, i) => sampleShapesExample(4, i, 'train', DEFAULT_KIND_WEIGHTS, captions));
  const plain = withOptions(undefined);
  // no options, empty options and the default probability written out give the default data set
  assert.deepEqual(withOptions({}), plain);
  assert.deepEqual(withOptions({ positionFirst: 0.2, omitColor: 0, omitShape: 0 }), plain);

  // positionFirst 0: every single-object caption starts with its object; other kinds and the scenes are unchanged
  const objectFirst = withOptions({ positionFirst: 0 });
  let reordered = 0;
  for (let i = 0; i < n; i++) {
    assert.deepEqual(objectFirst[i].scene, plain[i].scene);
    const c = objectFirst[i].caption;
    if (plain[i].scene.kind === 'single') {
      assert.match(c, /^an? /, `"${c}" opens with its object`);
      if (plain[i].caption !== c) reordered++;
    } else {
      assert.equal(c, plain[i].caption);
    }
  }
  assert.ok(reordered > 20, `${reordered} captions reordered`);

  // omitted attributes: shares near the requested ones, and what remains is still true of the scene
  const omitted = withOptions({ omitColor: 0.2, omitShape: 0.2 });
  let objects = 0;
  let noColor = 0;
  let noShape = 0;
  for (let i = 0; i < n; i++) {
    const { scene, caption } = omitted[i];
    assert.deepEqual(scene, plain[i].scene);
    const words = caption.split(' ');
    const kept = scene.kind === 'count' ? [scene.objects[0]] : scene.objects;
    for (const o of kept) {
      objects++;
      const hasColor = words.includes(o.color);
      const hasShape = words.includes(o.shape) || words.includes(SHAPE_PLURALS[o.shape]);
      assert.ok(hasColor || hasShape, `"${caption}" names neither the colour nor the shape of a ${o.color} ${o.shape}`);
      if (!hasColor) noColor++;
      if (!hasShape) noShape++;
    }
    for (const w of words) assert.ok(!COLORS.includes(w as never) || scene.objects.some((o) => o.color === w) || w === scene.background, `"${caption}": ${w} is not in the scene`);
  }
  // two objects may share a colour or shape, which hides an omission from this count: the shares are lower bounds
  assert.ok(noColor / objects > 0.12 && noColor / objects < 0.24, `colour left out of ${noColor} / ${objects}`);
  assert.ok(noShape / objects > 0.12 && noShape / objects < 0.24, `shape left out of ${noShape} / ${objects}`);
  assert.ok(omitted.some((e) => / shapes?( |$)/.test(e.caption)), 'some caption says "shape"');

  const root = tempDir();
  try {
    assert.throws(() => writeShapesDataset(path.join(root, 'a'), { count: 1, seed: 0, split: 'train', captions: { positionFirst: 1.5 } }), /positionFirst must be a probability in \[0, 1\], got 1.5/);
    assert.throws(() => writeShapesDataset(path.join(root, 'b'), { count: 1, seed: 0, split: 'train', captions: { omitColor: 0.7, omitShape: 0.5 } }), /omitColor \+ omitShape must be at most 1/);
    assert.ok(!fs.existsSync(path.join(root, 'a')) && !fs.existsSync(path.join(root, 'b')), 'refused options write nothing');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

test('CAPTION_VOCABULARY holds every word of every caption, whatever the options; RELATION_WORDS are the relations\' own words', () => {
  const vocabulary = new Set(CAPTION_VOCABULARY);
  const options = [{}, { positionFirst: 1 }, { omitColor: 0.5, omitShape: 0.5 }];
  let words = 0;
  for (const [k, captions] of options.entries()) {
    for (let i = 0; i < 600; i++) {
      const { caption } = sampleShapesExample(40 + k, i, 'train', DEFAULT_KIND_WEIGHTS, captions);
      for (const w of caption.replace(/,/g, ' , ').split(/\s+/).filter(Boolean)) {
        assert.ok(vocabulary.has(w), `"${w}" of "${caption}"`);
        words++;
      }
    }
  }
  assert.ok(words > 5000, `${words} words checked`);
  assert.deepEqual([...RELATION_WORDS], ['left', 'right', 'above', 'over', 'below', 'under', 'beneath']);
});
