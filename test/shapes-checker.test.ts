// The procedural shapes checker: correct renders pass (also with noise and blur), deliberately wrong images fail
// the attribute that is wrong, and results aggregate into per-category accuracy.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RgbImage } from '../src/io/png.js';
import { formatCheckSummary, summarizeChecks } from '../src/train/shapes/accuracy.js';
import { checkImage, type CheckCategory, type CheckResult } from '../src/train/shapes/checker.js';
import { findComponents } from '../src/train/shapes/components.js';
import { sampleShapesExample } from '../src/train/shapes/dataset.js';
import { evaluationPrompts, sceneForSpec } from '../src/train/shapes/evaluation.js';
import { ShapesRng } from '../src/train/shapes/random.js';
import { renderScene } from '../src/train/shapes/render.js';
import type { Scene, SceneObject } from '../src/train/shapes/scene.js';
import { specFromScene, specObjects, type ShapesSpec } from '../src/train/shapes/spec.js';
import { COLORS, type ColorName, type ShapeName } from '../src/train/shapes/vocabulary.js';

const SIZE = 256;

/** Uniform integer noise in [-amplitude, amplitude] on every channel, clamped to 0..255. */
function withNoise(image: RgbImage, amplitude: number, seed: number): RgbImage {
  const rng = new ShapesRng(0x6e6f, seed);
  const rgb = new Uint8Array(image.rgb.length);
  for (let i = 0; i < rgb.length; i++) {
    rgb[i] = Math.min(255, Math.max(0, image.rgb[i] + (rng.nextUint32() % (2 * amplitude + 1)) - amplitude));
  }
  return { ...image, rgb };
}

/** A (2r+1)^2 box blur with clamped borders, as a horizontal then a vertical pass. */
function blurred(image: RgbImage, r: number): RgbImage {
  const { width, height } = image;
  const rows = new Float32Array(image.rgb.length);
  const out = new Uint8Array(image.rgb.length);
  const taps = 2 * r + 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let d = -r; d <= r; d++) sum += image.rgb[(y * width + Math.min(width - 1, Math.max(0, x + d))) * 3 + c];
        rows[(y * width + x) * 3 + c] = sum / taps;
      }
    }
  }
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let d = -r; d <= r; d++) sum += rows[(Math.min(height - 1, Math.max(0, y + d)) * width + x) * 3 + c];
        out[(y * width + x) * 3 + c] = Math.round(sum / taps);
      }
    }
  }
  return { width, height, rgb: out };
}

function failedCategories(result: CheckResult): CheckCategory[] {
  return [...new Set(result.checks.filter((c) => !c.passed).map((c) => c.category))].sort();
}

function check(scene: Scene, spec: ShapesSpec): CheckResult {
  return checkImage(renderScene(scene, SIZE), spec);
}

function recolour(scene: Scene, change: (o: SceneObject, i: number) => Partial<SceneObject>): Scene {
  return { ...scene, objects: scene.objects.map((o, i) => ({ ...o, ...change(o, i) })) };
}

const SHAPE_SWAP: Readonly<Record<ShapeName, ShapeName>> = { triangle: 'diamond', diamond: 'triangle', circle: 'square', square: 'circle' };

const prompts = evaluationPrompts();

test('ground-truth renders of all evaluation prompts score 100%', () => {
  const results = prompts.map(({ spec }) => check(sceneForSpec(spec), spec));
  const summary = summarizeChecks(results);
  console.log(`ground truth of ${prompts.length} evaluation prompts:\n${formatCheckSummary(summary)}`);
  results.forEach((r, i) => assert.ok(r.passed, `"${prompts[i].prompt}": ${JSON.stringify(r.checks.filter((c) => !c.passed))}`));
  assert.equal(summary.images.accuracy, 1);
  // Every category is exercised.
  for (const c of ['color', 'shape', 'size', 'position', 'relation', 'count'] as const) assert.ok(summary.categories[c].total >= 16, c);
});

test('renders of 1,000 sampled training scenes all pass, plain, noisy (+-20) and blurred (3x3)', () => {
  const results: Record<string, CheckResult[]> = { plain: [], noise: [], blur: [], 'blur+noise': [] };
  for (let i = 0; i < 1000; i++) {
    const { scene } = sampleShapesExample(21, i);
    const spec = specFromScene(scene);
    const image = renderScene(scene, SIZE);
    results.plain.push(checkImage(image, spec));
    if (i % 5 === 0) {
      results.noise.push(checkImage(withNoise(image, 20, i), spec));
      const soft = blurred(image, 1);
      results.blur.push(checkImage(soft, spec));
      results['blur+noise'].push(checkImage(withNoise(soft, 20, i), spec));
    }
  }
  for (const [name, list] of Object.entries(results)) {
    const failures = list.filter((r) => !r.passed);
    assert.equal(failures.length, 0, `${name}: ${failures.length} fail, e.g. ${JSON.stringify(failures[0]?.checks.filter((c) => !c.passed))}`);
  }
});

test('evaluation ground truth survives +-20 noise, a 3x3 blur, and both', () => {
  for (const [i, { prompt, spec }] of prompts.entries()) {
    const image = renderScene(sceneForSpec(spec), SIZE);
    for (const [name, variant] of [
      ['noise', withNoise(image, 20, i)],
      ['blur', blurred(image, 1)],
      ['blur+noise', withNoise(blurred(image, 1), 20, i)],
    ] as const) {
      const result = checkImage(variant, spec);
      assert.ok(result.passed, `"${prompt}" with ${name}: ${JSON.stringify(result.checks.filter((c) => !c.passed))}`);
    }
  }
});

test('a wrong colour fails the colour check', () => {
  for (const { prompt, spec } of prompts) {
    const scene = sceneForSpec(spec);
    const used = new Set<string>([spec.background, ...scene.objects.map((o) => o.color)]);
    const other = COLORS.find((c) => !used.has(c)) as ColorName;
    // Recolour the first object only: for counts all copies share it, so recolour them all.
    const wrong = recolour(scene, (_, i) => (i === 0 || spec.kind === 'count' ? { color: other } : {}));
    const failed = failedCategories(check(wrong, spec));
    assert.ok(failed.includes('color'), `"${prompt}" in ${other}: failed ${failed.join(', ')}`);
  }
});

test('swapped shapes (triangle <-> diamond, circle <-> square) fail the shape check, and only it', () => {
  for (const { prompt, spec } of prompts) {
    const wrong = recolour(sceneForSpec(spec), (o) => ({ shape: SHAPE_SWAP[o.shape] }));
    assert.deepEqual(failedCategories(check(wrong, spec)), ['shape'], `"${prompt}" with swapped shapes`);
  }
});

test('the wrong size fails the size check', () => {
  for (const { prompt, spec } of prompts) {
    const scene = sceneForSpec(spec);
    if (specObjects(spec).every((o) => o.size === undefined)) continue;
    const wrong = recolour(scene, (o) => (o.size === 'large' ? { size: 'small', side: 0.17 } : { size: 'large', side: 0.3 }));
    assert.ok(failedCategories(check(wrong, spec)).includes('size'), `"${prompt}" at the other size`);
  }
});

test('the opposite position fails the position check', () => {
  const opposite = { left: [0.75, 0.5], right: [0.25, 0.5], top: [0.5, 0.75], bottom: [0.5, 0.25], center: [0.2, 0.8] } as const;
  for (const { prompt, spec } of prompts) {
    if (spec.kind !== 'single') continue;
    const [x, y] = opposite[spec.position];
    const wrong = recolour(sceneForSpec(spec), () => ({ x, y }));
    assert.deepEqual(failedCategories(check(wrong, spec)), ['position'], `"${prompt}" moved to (${x}, ${y})`);
  }
});

test('a mirrored relation fails the relation check', () => {
  for (const { prompt, spec } of prompts) {
    if (spec.kind !== 'relation') continue;
    const scene = sceneForSpec(spec);
    const [a, b] = scene.objects;
    const swapped = { ...scene, objects: [{ ...a, x: b.x, y: b.y }, { ...b, x: a.x, y: a.y }] };
    assert.deepEqual(failedCategories(check(swapped, spec)), ['relation'], `"${prompt}" mirrored`);
  }
});

test('a count with one object missing, or one extra, fails the count check', () => {
  for (const { prompt, spec } of prompts) {
    if (spec.kind !== 'count') continue;
    const scene = sceneForSpec(spec);
    const missing = { ...scene, objects: scene.objects.slice(1) };
    assert.deepEqual(failedCategories(check(missing, spec)), ['count'], `"${prompt}" with one missing`);
    const extra = { ...scene, objects: [...scene.objects, { ...scene.objects[0], size: 'small' as const, side: 0.12, x: 0.9, y: 0.9 }] };
    assert.ok(failedCategories(check(extra, spec)).includes('count'), `"${prompt}" with one extra`);
  }
});

test('a blank image fails every check', () => {
  for (const { prompt, spec } of prompts) {
    const blank = { ...sceneForSpec(spec), objects: [] };
    const result = check(blank, spec);
    assert.ok(result.checks.length >= 3);
    assert.ok(result.checks.every((c) => !c.passed), `"${prompt}" blank: ${JSON.stringify(result.checks.filter((c) => c.passed))}`);
  }
});

test('blended edges do not become objects: no orange ring around red on yellow, no purple around red on blue', () => {
  for (const background of ['yellow', 'blue'] as const) {
    const scene: Scene = {
      kind: 'single',
      background,
      objects: [{ color: 'red', shape: 'circle', size: 'large', side: 0.32, x: 0.5, y: 0.5 }],
      position: 'center',
    };
    // A 5x5 blur widens the blend into a ring of 500+ pixels, which the noise-area filter alone would keep.
    const components = findComponents(blurred(renderScene(scene, SIZE), 2), background);
    assert.deepEqual(components.map((c) => c.color), ['red'], `on ${background}`);
    assert.ok(checkImage(blurred(renderScene(scene, SIZE), 2), specFromScene(scene)).passed);
  }
});

test('noise alone is not an object', () => {
  const scene: Scene = { kind: 'single', background: 'gray', objects: [], position: 'center' };
  assert.deepEqual(findComponents(withNoise(renderScene(scene, SIZE), 20, 5), 'gray'), []);
});

test('specs the checker cannot judge are refused', () => {
  const image = renderScene({ kind: 'single', background: 'gray', objects: [], position: 'center' }, 32);
  const object = { color: 'red', shape: 'circle' } as const;
  assert.throws(() => checkImage(image, { kind: 'single', background: 'red', object, position: 'left' }), /red background/);
  assert.throws(() => checkImage(image, { kind: 'relation', background: 'gray', subject: object, relation: 'above', reference: { color: 'red', shape: 'square' } }), /two colours/);
});

test('summarizeChecks and formatCheckSummary count per category, per check and per image', () => {
  const results: CheckResult[] = [
    { passed: true, components: [], checks: [{ category: 'color', passed: true, detail: '' }, { category: 'count', passed: true, detail: '' }] },
    { passed: false, components: [], checks: [{ category: 'color', passed: true, detail: '' }, { category: 'count', passed: false, detail: '' }] },
    { passed: false, components: [], checks: [{ category: 'shape', passed: false, detail: '' }] },
  ];
  const summary = summarizeChecks(results);
  assert.deepEqual(summary.categories.color, { passed: 2, total: 2, accuracy: 1 });
  assert.deepEqual(summary.categories.count, { passed: 1, total: 2, accuracy: 0.5 });
  assert.deepEqual(summary.categories.shape, { passed: 0, total: 1, accuracy: 0 });
  assert.ok(Number.isNaN(summary.categories.relation.accuracy));
  assert.deepEqual(summary.checks, { passed: 3, total: 5, accuracy: 0.6 });
  assert.deepEqual(summary.images, { passed: 1, total: 3, accuracy: 1 / 3 });
  const table = formatCheckSummary(summary);
  assert.match(table, /^count\s+50\.0%\s+1 \/ 2/m);
  assert.match(table, /^relation\s+-\s+0 \/ 0/m);
  assert.match(table, /^images\s+33\.3%\s+1 \/ 3/m);
  assert.equal(table.split('\n').length, 9);
});
