// Issue #17 class 5, no silent garbage image: the output checks of src/pipeline/output-checks.ts, unit by unit and
// through the real pipeline (the bundled model's components, each wrapped in turn to hand back NaN, Infinity or a
// flat image), so that every stage's check is shown to fire, to name its stage, and to stay quiet on a sound run.
// ref: src/pipeline/output-checks.ts

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { DEFAULT_MODEL_DIR, pipelineComponents } from '../src/pipeline/components.js';
import { NonFiniteError, checkFinite, flatImageWarnings } from '../src/pipeline/output-checks.js';
import { PipelineComponents, SanaPipeline } from '../src/pipeline/sana-pipeline.js';

test('checkFinite: refuses NaN, +Infinity and -Infinity anywhere, with the stage and the coordinates; passes the extremes of float32', () => {
  const shape = [2, 3, 4];
  for (const bad of [NaN, Infinity, -Infinity]) {
    for (const at of [0, 13, 23]) {
      const data = new Float32Array(24).fill(0.5);
      data[at] = bad;
      // coordinates of flat index `at` in a [2, 3, 4] array, worked out here by hand from row-major order
      const coords = [Math.floor(at / 12), Math.floor((at % 12) / 4), at % 4];
      assert.throws(
        () => checkFinite(data, 'the stage X', shape),
        (e: unknown) => e instanceof NonFiniteError && e.stage === 'the stage X' && e.message.includes(`${bad} at [${coords.join(', ')}]`) && e.message.startsWith('the stage X'),
      );
    }
  }
  const extremes = Float32Array.from([3.4028234663852886e38, -3.4028234663852886e38, 1.4e-45, -0, 0]);
  assert.doesNotThrow(() => checkFinite(extremes, 'extremes'));
});

test('flatImageWarnings: a one-colour image is flagged (colour named), one 8-bit level of spread is still flat, two are not', () => {
  const img = (fill: (b: number, c: number, p: number) => number) => {
    const data = new Float32Array(2 * 3 * 16);
    for (let b = 0; b < 2; b++) for (let c = 0; c < 3; c++) for (let p = 0; p < 16; p++) data[(b * 3 + c) * 16 + p] = fill(b, c, p);
    return { shape: [2, 3, 4, 4], data };
  };
  // image 0 white, image 1 a gradient: only image 0 is named
  const w = flatImageWarnings(img((b, _c, p) => (b === 0 ? 1 : p / 15)));
  assert.equal(w.length, 1);
  assert.match(w[0], /^image 0 is flat \(every pixel rgb\(255, 255, 255\)\)/);
  assert.match(w[0], /guidance/);
  // spread of exactly 1/255 in one channel: flat; 2/255: not
  assert.equal(flatImageWarnings(img((_b, c, p) => (c === 1 && p === 3 ? 0.5 + 1 / 255 : 0.5))).length, 2);
  assert.equal(flatImageWarnings(img((_b, c, p) => (c === 1 && p === 3 ? 0.5 + 2 / 255 : 0.5))).length, 0);
});

// ---------------------------------------------------------------------------------------------------------------
// through the pipeline

const REQUEST = { prompts: ['a red circle'], steps: 2, seed: 3, width: 64, height: 64, binning: false } as const;

type Corrupt = (data: Float32Array) => void;
const nanAt = (k: number): Corrupt => (d) => void (d[k % d.length] = NaN);
const infAt = (k: number): Corrupt => (d) => void (d[k % d.length] = Infinity);

/** The bundled model's components with one loader's output passed through `corrupt`. */
function corrupted(stage: 'text' | 'transformer' | 'decoder' | 'imageEncoder', corrupt: Corrupt): PipelineComponents {
  const c = pipelineComponents(DEFAULT_MODEL_DIR, { threads: 1 });
  const copy = <T extends HostTensor>(t: T): T => {
    const data = (t.data as Float32Array).slice();
    corrupt(data);
    return new HostTensor(t.dtype, t.shape, data) as T;
  };
  return {
    ...c,
    loadPromptEncoder: async () => {
      const e = await c.loadPromptEncoder();
      if (stage !== 'text') return e;
      return {
        ...e,
        encode: async (...a) => {
          const out = await e.encode(...a);
          return { ...out, promptEmbeds: copy(out.promptEmbeds) };
        },
      };
    },
    loadDenoiser: async () => {
      const d = await c.loadDenoiser();
      if (stage !== 'transformer') return d;
      return { ...d, prepareCaption: d.prepareCaption.bind(d), release: d.release.bind(d), predict: async (...a) => copy(await d.predict(...a)) };
    },
    loadDecoder: async () => {
      const d = await c.loadDecoder();
      if (stage !== 'decoder') return d;
      return { ...d, release: d.release.bind(d), decode: async (...a) => copy(await d.decode(...a)) };
    },
    loadImageEncoder: async () => {
      const e = await c.loadImageEncoder();
      if (stage !== 'imageEncoder') return e;
      return { ...e, encode: async (...a) => copy(await e.encode(...a)) };
    },
  };
}

async function expectStage(components: PipelineComponents, stage: RegExp, extra: object = {}): Promise<void> {
  const pipeline = new SanaPipeline(components);
  await assert.rejects(
    () => pipeline.run({ ...REQUEST, ...extra }),
    (e: unknown) => {
      assert.ok(e instanceof NonFiniteError, `expected a NonFiniteError, got ${String(e)}`);
      assert.match(e.message, stage);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    },
  );
  await pipeline.release();
}

test('NaN or Infinity from each component stops the run with an error naming that component', async () => {
  await expectStage(corrupted('text', nanAt(100)), /^the text encoder's prompt embeddings contain NaN at \[0, /);
  await expectStage(corrupted('transformer', infAt(5)), /^the transformer output at step 1 contain Infinity/);
  // finite rows of opposite sign: the transformer check passes, classifier-free guidance u + 4.5 (c - u) overflows
  const halves: Corrupt = (d) => d.forEach((_, k) => (d[k] = k < d.length / 2 ? 3e38 : -3e38));
  await expectStage(corrupted('transformer', halves), /^the guided velocity at step 1 contain -?Infinity/, { guidanceScale: 4.5 });
  await expectStage(corrupted('decoder', nanAt(77)), /^the VAE decoder output contain NaN/);
  await expectStage(corrupted('decoder', (d) => void (d[d.length - 1] = -Infinity)), /^the VAE decoder output contain -Infinity at \[0, 2, 63, 63\]/);
  const image = HostTensor.float32([1, 3, 64, 64], new Float32Array(3 * 64 * 64).fill(0.5));
  await expectStage(corrupted('imageEncoder', nanAt(0)), /^the VAE encoder output contain NaN at \[0, 0, 0, 0\]/, { image, strength: 0.5 });
});

test("the sampler's own overflow is caught after its step, not passed on: finite but huge velocities of alternating sign", async () => {
  // each output is finite (so the transformer check passes) but the multistep solver's extrapolation overflows float32
  let call = 0;
  const huge: Corrupt = (d) => {
    const sign = call++ % 2 === 0 ? 1 : -1;
    d.fill(sign * 3.0e38);
  };
  await expectStage(corrupted('transformer', huge), /^the sampler's latents after step 2 contain (-?Infinity|NaN)/, { steps: 3, guidanceScale: 1 });
});

test('a flat image is a warning naming the image (event and result), the image is still returned; a sound run warns of nothing', async () => {
  const pipeline = new SanaPipeline(corrupted('decoder', (d) => d.fill(5)));
  const events: string[] = [];
  const it = pipeline.generate({ ...REQUEST, numImagesPerPrompt: 2 });
  let result;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      result = r.value;
      break;
    }
    if (r.value.type === 'warning') events.push(r.value.message);
  }
  const flat = events.filter((w) => /is flat/.test(w));
  assert.deepEqual(flat.map((w) => w.slice(0, 45)), ['image 0 is flat (every pixel rgb(255, 255, 255))', 'image 1 is flat (every pixel rgb(255, 255, 255))'].map((w) => w.slice(0, 45)));
  assert.deepEqual(result.warnings.filter((w) => /is flat/.test(w)), flat);
  assert.equal(result.images.shape[0], 2);
  await pipeline.release();

  // at its native 256 px (at 64 px, 2 x 2 latents, this small model does decode to a flat grey)
  const sound = new SanaPipeline(pipelineComponents(DEFAULT_MODEL_DIR, { threads: 1 }));
  const ok = await sound.run({ prompts: ['a red circle left of a blue square'], steps: 4, seed: 3 });
  assert.deepEqual(ok.warnings, []);
  await sound.release();
});
