// The shapes model's word tokenizer and seeded Gemma-2 text encoder: the tokenizer JSON as @huggingface/tokenizers
// and GemmaTokenizer read it, the folder through the real loading path (readGemma2Config, loadGemma2,
// encodePrompts), determinism of the seeded weights, and that the embeddings tell captions apart.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { readSafetensors } from '../src/io/safetensors.js';
import { readGemma2Config } from '../src/models/gemma2/config.js';
import { loadGemma2 } from '../src/models/gemma2/loader.js';
import { complexHumanInstruction } from '../src/text/complex-human-instruction.js';
import { encodePrompts } from '../src/text/prompt-encoding.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { inverseFrequencies } from '../src/models/gemma2/rotary.js';
import {
  POSITIONAL_HEADS,
  SeededGemma2Options,
  minimumNormSolution,
  positionalHeadBiases,
  seededGemma2Config,
  writeSeededGemma2,
  writeShapesTokenizer,
  writeTokenizerFolder,
} from '../src/train/text-encoder/tiny-gemma.js';
import {
  SHAPES_CAPTION_WORDS,
  SHAPES_TOKENIZER_WORDS,
  buildShapesTokenizer,
  buildWordTokenizer,
} from '../src/train/text-encoder/word-tokenizer.js';
import { relationMarkerTokens } from '../src/train/default-model/relation-marker.js';

const UNK = 3;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiny-te-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

const tokenizerDir = path.join(root, 'tokenizer');
const files = writeShapesTokenizer(tokenizerDir);
const tok = GemmaTokenizer.fromFolder(tokenizerDir);
const instruction = complexHumanInstruction('diffusers');
const hidden = 128;

/** A text encoder folder for `options` (seed, init choices) with the shapes vocabulary. */
function encoderFolder(name: string, options: Partial<SeededGemma2Options> = {}): string {
  const dir = path.join(root, name);
  writeSeededGemma2(dir, { seed: 0, vocabSize: files.vocabSize, ...options });
  return dir;
}

function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}

/** Prompt embeddings [B, L, hidden] through the pipeline's encodePrompts, with the row/position accessor. */
async function embed(dir: string, prompts: string[], maxSequenceLength = 16) {
  const encoder = await loadGemma2(dir, { threads: 1 });
  try {
    const out = await encodePrompts(prompts, { maxSequenceLength }, tok, encoder);
    const at = (b: number, pos: number) => out.promptEmbeds.data.subarray((b * maxSequenceLength + pos) * hidden, (b * maxSequenceLength + pos + 1) * hidden);
    return { out, at };
  } finally {
    await encoder.release();
  }
}

test('every caption word is one token, after a space and at the start of a text', () => {
  const bad: string[] = [];
  for (const w of SHAPES_CAPTION_WORDS) {
    const spaced = tok.textIds(` ${w}`);
    const bare = tok.textIds(w);
    if (spaced.length !== 1 || tok.idToToken(spaced[0]) !== `▁${w}`) bad.push(`" ${w}" -> ${spaced.map((i) => tok.idToToken(i)).join('|')}`);
    if (bare.length !== 1 || tok.idToToken(bare[0]) !== w) bad.push(`"${w}" -> ${bare.map((i) => tok.idToToken(i)).join('|')}`);
  }
  assert.deepEqual(bad, []);
  const caption = 'a red circle left of a blue square';
  assert.deepEqual(tok.encode(caption).map((i) => tok.idToToken(i)), ['<bos>', 'a', '▁red', '▁circle', '▁left', '▁of', '▁a', '▁blue', '▁square']);
  // in the pipeline the caption follows the instruction's "User Prompt: ": its trailing "▁" joins the first word
  const withInstruction = tok.encode(instruction + caption);
  const alone = tok.encode(instruction);
  assert.equal(tok.idToToken(alone[alone.length - 1]), '▁', 'the instruction alone ends with a lone "▁" (SANA.md §4.3)');
  assert.deepEqual(withInstruction.slice(0, alone.length - 1), alone.slice(0, -1));
  assert.deepEqual(withInstruction.slice(alone.length - 1).map((i) => tok.idToToken(i)), caption.split(' ').map((w) => `▁${w}`));
});

test('@huggingface/tokenizers reads tokenizer.json as written: same ids as GemmaTokenizer, ids in vocabulary order', () => {
  const json: { model: { vocab: Record<string, number>; merges: Array<[string, string]> } } = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8'));
  const config: Record<string, unknown> = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), 'utf8'));
  const rebuilt = buildShapesTokenizer();
  assert.deepEqual({ ...json }, rebuilt.tokenizerJson, 'the file is the built JSON, and building is deterministic');
  assert.deepEqual({ ...config }, rebuilt.tokenizerConfigJson);
  const raw = new Tokenizer(json, config);
  const text = 'two small green triangles above a big yellow diamond';
  assert.deepEqual(raw.encode(text).ids, tok.encode(text));
  assert.deepEqual(['<pad>', '<eos>', '<bos>', '<unk>', '<0x00>', '<0xFF>'].map((t) => raw.token_to_id(t)), [0, 1, 2, 3, 4, 259]);
  const vocab = json.model.vocab;
  assert.equal(Object.keys(vocab).length, files.vocabSize);
  assert.deepEqual(Object.values(vocab).sort((a, b) => a - b), [...Array(files.vocabSize).keys()], 'ids are 0..N-1 with no gap');
  for (const [a, b] of json.model.merges) assert.ok(a + b in vocab && a in vocab && b in vocab, `merge ${a} ${b}`);
  const text2 = fs.readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), 'utf8');
  assert.match(text2, /"model_max_length": 1000000000000000019884624838656,/);
  assert.equal(config.tokenizer_class, 'GemmaTokenizerFast');
  assert.equal(config.padding_side, 'right');
  assert.deepEqual([tok.addBos, tok.addEos, tok.padId, tok.bosId, tok.eosId], [true, false, 0, 2, 1]);
});

test('text outside the vocabulary round-trips through characters and byte fallback, never <unk>', () => {
  const texts = ['1234567890', '3 red circles and 12 squares', '😀🎨 a red 🔴', '日本語のテキスト', 'Привет мир', 'مرحبا', 'naïve café', 'tab\there\nnewline  two  spaces', 'x'.repeat(40), ' leading and trailing '];
  for (const text of texts) {
    const ids = tok.textIds(text);
    assert.ok(!ids.includes(UNK), `${JSON.stringify(text)} has no <unk>`);
    assert.equal(tok.decode(ids), text, `${JSON.stringify(text)} round-trips`);
  }
  assert.deepEqual(tok.textIds('😀').map((i) => tok.idToToken(i)), ['<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
  assert.deepEqual(tok.textIds(' 42').map((i) => tok.idToToken(i)), ['▁4', '2'], 'digits split one per token, as Gemma does');
});

test('the complex human instruction tokenizes compactly', () => {
  const ids = tok.encode(instruction);
  assert.ok(ids.length * 4 < instruction.length, `${ids.length} ids for ${instruction.length} characters`);
  assert.ok(!ids.includes(UNK));
  // every word after a space is one token
  for (const m of instruction.matchAll(/ ([A-Za-z]+(?:-[a-z]+)*)/g)) assert.equal(tok.textIds(` ${m[1]}`).length, 1, m[1]);
  console.log(`instruction: ${instruction.length} characters -> ${ids.length} ids; vocabulary ${files.vocabSize} ids (${SHAPES_TOKENIZER_WORDS.length} words)`);
});

test('buildWordTokenizer: a word list becomes whole-word tokens whose merges never join across a space', () => {
  const built = buildWordTokenizer(['foo', 'foobar', 'bar'], { bareWords: ['bar'] });
  const dir = path.join(root, 'small-tokenizer');
  writeTokenizerFolder(dir, built);
  const small = GemmaTokenizer.fromFolder(dir);
  const tokens = (s: string) => small.textIds(s).map((i) => small.idToToken(i));
  assert.deepEqual(tokens(' foo foobar bar'), ['▁foo', '▁foobar', '▁bar']);
  assert.deepEqual(tokens('bar foo'), ['bar', '▁foo']);
  assert.deepEqual(tokens(' foob'), ['▁foob'], 'intermediate pieces are tokens');
  assert.deepEqual(tokens(' fooz'), ['▁foo', 'z'], 'an unlisted word: longest listed prefix, then characters');
  assert.deepEqual(tokens('oo'), ['o', 'o'], 'no merge outside a word start');
  assert.equal(built.vocabSize, 4 + 256 + 95 + 94 + 9, 'specials, bytes, ASCII + ▁, ▁c, then f-o-o-b-a-r pieces and b-a-r');
  assert.throws(() => buildWordTokenizer(['two words']), /must not contain whitespace/);
  assert.throws(() => buildWordTokenizer(['']), /non-empty string/);
});

test('the folder loads through readGemma2Config, loadGemma2 and encodePrompts: [1, 300, 128], finite', async () => {
  const dir = encoderFolder('te-default');
  const cfg = readGemma2Config(path.join(dir, 'config.json'));
  assert.deepEqual(
    [cfg.vocabSize, cfg.hiddenSize, cfg.numHiddenLayers, cfg.numAttentionHeads, cfg.numKeyValueHeads, cfg.headDim, cfg.intermediateSize],
    [files.vocabSize, 128, 2, 4, 2, 32, 256],
  );
  assert.deepEqual([cfg.queryPreAttnScalar, cfg.attnLogitSoftcapping, cfg.slidingWindow, cfg.rmsNormEps, cfg.ropeTheta], [32, 50, 4096, 1e-6, 10000]);
  const configText = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
  for (const line of ['"architectures": [\n    "Gemma2Model"\n  ]', '"rms_norm_eps": 1e-06', '"rope_theta": 10000.0', '"final_logit_softcapping": 30.0', '"torch_dtype": "float32"']) {
    assert.ok(configText.includes(line), `config.json has ${line}`);
  }

  const loadStart = performance.now();
  const encoder = await loadGemma2(dir, { threads: 1 });
  const loadMs = performance.now() - loadStart;
  const prompt = 'A red circle left of a blue square on a yellow background';
  await encodePrompts(prompt, {}, tok, encoder); // warm-up run
  const runs = 5;
  const start = performance.now();
  let out = await encodePrompts(prompt, {}, tok, encoder);
  for (let i = 1; i < runs; i++) out = await encodePrompts(prompt, {}, tok, encoder);
  const encodeMs = (performance.now() - start) / runs;
  await encoder.release();
  console.log(`text encoder: load ${loadMs.toFixed(0)} ms; one prompt with the instruction (${tok.encode(instruction).length - 1 + 12} tokens) + empty negative: ${encodeMs.toFixed(1)} ms`);

  assert.deepEqual([...out.promptEmbeds.shape], [1, 300, hidden]);
  assert.deepEqual([...out.negativePromptEmbeds.shape], [1, 300, hidden]);
  assert.ok(out.promptEmbeds.data.every(Number.isFinite) && out.negativePromptEmbeds.data.every(Number.isFinite));
  const mask = Array.from(out.promptAttentionMask.data, Number);
  assert.equal(mask.reduce((a, b) => a + b, 0), 1 + 12, 'BOS + one token per word of the (lower-cased) prompt');
  // the last hidden state is RMS-normalised (norm weight 0 = scale 1): RMS 1 at every real token
  for (let p = 0; p < 13; p++) {
    const v = out.promptEmbeds.data.subarray(p * hidden, (p + 1) * hidden);
    const rms = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / hidden);
    assert.ok(Math.abs(rms - 1) < 1e-3, `RMS at position ${p}: ${rms}`);
  }
});

test('the same seed writes identical files; another seed other weights', () => {
  const a = encoderFolder('seed-a', { seed: 7 });
  const b = encoderFolder('seed-b', { seed: 7 });
  const c = encoderFolder('seed-c', { seed: 8 });
  for (const f of ['config.json', 'model.safetensors']) assert.ok(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f);
  const wa = readSafetensors(path.join(a, 'model.safetensors'));
  const wc = readSafetensors(path.join(c, 'model.safetensors'));
  assert.deepEqual([...wa.keys()].sort(), [...wc.keys()].sort());
  for (const name of ['embed_tokens.weight', 'layers.0.self_attn.q_proj.weight', 'layers.1.mlp.down_proj.weight']) {
    assert.notDeepEqual(wa.get(name)!.data, wc.get(name)!.data, name);
  }
  const embedding = wa.get('embed_tokens.weight')!.data as Float32Array;
  assert.ok(embedding.subarray(0, hidden).every((x) => x === 0), 'the <pad> row is zero');
  let sq = 0;
  for (let i = hidden; i < embedding.length; i++) sq += embedding[i] * embedding[i];
  const std = Math.sqrt(sq / (embedding.length - hidden));
  assert.ok(Math.abs(std - 1 / Math.sqrt(hidden)) < 0.003, `embedding std ${std}`);
  assert.ok((wa.get('layers.0.input_layernorm.weight')!.data as Float32Array).every((x) => x === 0), 'RMSNorm offsets are zero');
});

test('transformersInit: normal(0, 0.02) everywhere, no attention biases', () => {
  const dir = encoderFolder('plain', { transformersInit: true });
  const w = readSafetensors(path.join(dir, 'model.safetensors'));
  assert.ok(![...w.keys()].some((k) => k.endsWith('.bias')));
  assert.equal(readGemma2Config(path.join(dir, 'config.json')).attentionBias, false);
  const e = w.get('embed_tokens.weight')!.data as Float32Array;
  const std = Math.sqrt(e.reduce((a, x) => a + x * x, 0) / (e.length - hidden));
  assert.ok(Math.abs(std - 0.02) < 0.001, `embedding std ${std}`);
  assert.equal(seededGemma2Config({ seed: 0, vocabSize: 10, positionalHeads: false }).attention_bias, false);
});

test('positional heads: the q/k bias logits peak at each head\'s offset d0 (RoPE arithmetic)', () => {
  const config = seededGemma2Config({ seed: 0, vocabSize: files.vocabSize });
  const { q, k } = positionalHeadBiases(config);
  const D = config.head_dim as number;
  const half = D / 2;
  const theta = inverseFrequencies(D, config.rope_theta as number);
  /** rope(x) at position p on the pairs (j, j + D/2) as transformers applies it */
  const rope = (x: Float32Array, p: number) => {
    const out = new Float64Array(D);
    for (let j = 0; j < half; j++) {
      const c = Math.cos(p * theta[j]);
      const s = Math.sin(p * theta[j]);
      out[j] = x[j] * c - x[j + half] * s;
      out[j + half] = x[j + half] * c + x[j] * s;
    }
    return out;
  };
  const groups = (config.num_attention_heads as number) / (config.num_key_value_heads as number);
  const queryPos = 220;
  for (let h = 0; h < (config.num_attention_heads as number); h++) {
    const spec = POSITIONAL_HEADS[h % POSITIONAL_HEADS.length];
    const qr = rope(q.subarray(h * D, (h + 1) * D), queryPos);
    const kv = Math.floor(h / groups);
    const logits = Array.from({ length: queryPos + 1 }, (_, d) => {
      const kr = rope(k.subarray(kv * D, (kv + 1) * D), queryPos - d);
      return qr.reduce((a, x, i) => a + x * kr[i], 0) / Math.sqrt(config.query_pre_attn_scalar as number);
    });
    const best = logits.indexOf(Math.max(...logits));
    assert.ok(Math.abs(best - spec.d0) <= 0.5, `${spec.name}: peak at distance ${best}, want ${spec.d0}`);
    const far = logits.slice(40);
    assert.ok(Math.max(...logits) - far.reduce((a, b) => a + b, 0) / far.length > spec.strength * 0.8, `${spec.name}: peak stands out`);
  }
});

test('different captions give different embeddings at the words they change, and the same ones before', async () => {
  const prompts = ['a red circle left of a blue square', 'a blue circle left of a red square'];
  // ▁a ▁red ▁circle ▁left ▁of ▁a ▁blue ▁square at positions 1..8 (0 = BOS)
  const { at } = await embed(encoderFolder('te-context'), prompts);
  assert.deepEqual(at(0, 1), at(1, 1), 'identical prefix, identical states (causal)');
  const circle = cosineDistance(at(0, 3), at(1, 3));
  const square = cosineDistance(at(0, 8), at(1, 8));
  const colour = cosineDistance(at(0, 2), at(1, 2));
  console.log(`cosine distance, swapped colours: at "red"/"blue" ${colour.toFixed(3)}, at "circle" ${circle.toFixed(3)}, at "square" ${square.toFixed(3)}`);
  assert.ok(colour > 0.2, `the colour word itself differs: ${colour}`);
  assert.ok(circle > 0.05, `"circle" knows its colour: ${circle}`);
  assert.ok(square > 0.05, `"square" knows its colour: ${square}`);

  // what the default init buys: with transformers' plain init the last shape hardly knows its colour
  const plain = await embed(encoderFolder('te-plain', { transformersInit: true }), prompts);
  const plainSquare = cosineDistance(plain.at(0, 8), plain.at(1, 8));
  console.log(`same with transformersInit: at "square" ${plainSquare.toExponential(2)}`);
  assert.ok(plainSquare < square / 10, `plain init ${plainSquare} vs default ${square}`);
});

test('composable: position-only attention and no MLP branch, with the plain seeded draws everywhere else', () => {
  const plain = readSafetensors(path.join(encoderFolder('te-plain-draws', { seed: 7 }), 'model.safetensors'));
  const composable = readSafetensors(path.join(encoderFolder('te-composable-draws', { seed: 7, composable: true }), 'model.safetensors'));
  assert.deepEqual([...composable.keys()].sort(), [...plain.keys()].sort());
  for (const [name, t] of composable) {
    const data = t.data as Float32Array;
    if (/\.(q|k)_proj\.weight$/.test(name)) assert.ok(data.every((x) => Object.is(x, 0)), `${name} is +0`);
    else if (name.endsWith('post_feedforward_layernorm.weight')) assert.ok(data.every((x) => x === -1), `${name} is -1 (scale 1 + -1 = 0)`);
    else assert.deepEqual(data, plain.get(name)!.data, `${name} as drawn by the plain seeded encoder`);
  }
  assert.throws(() => seededGemma2Config({ seed: 0, vocabSize: 10, composable: true, transformersInit: true }), /composable/);
  assert.throws(() => seededGemma2Config({ seed: 0, vocabSize: 10, composable: true, queryKeyStd: 0.02 }), /queryKeyStd must be 0/);
});

test('composable features add up: f(c s) = f(c circle) + f(red s) - f(red circle) far more closely than the plain seeded encoder\'s', async () => {
  const colors = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'white', 'black'];
  const shapes = ['circle', 'square', 'triangle', 'diamond'];
  const prompts = colors.flatMap((c) => shapes.map((s) => `a ${c} ${s} on the left`));
  const positions = 6; // the caption's last six tokens, where the colour and the shape meet: ▁red ▁circle ▁on ▁the ▁left
  const maxSequenceLength = 32;
  /** median over the 21 analogies (colour != red, shape != circle) of |f - prediction| / |f - f(red circle)| */
  const analogyError = async (dir: string) => {
    const encoder = await loadGemma2(dir, { threads: 1 });
    let out;
    try {
      out = await encodePrompts(prompts, { maxSequenceLength }, tok, encoder);
    } finally {
      await encoder.release();
    }
    const mask = out.promptAttentionMask.data;
    const features = prompts.map((_, b) => {
      let last = 0;
      for (let p = 0; p < maxSequenceLength; p++) if (Number(mask[b * maxSequenceLength + p]) === 1) last = p;
      return out.promptEmbeds.data.slice((b * maxSequenceLength + last + 1 - positions) * hidden, (b * maxSequenceLength + last + 1) * hidden); // [positions * hidden]
    });
    const f = (c: string, s: string) => features[colors.indexOf(c) * shapes.length + shapes.indexOf(s)];
    const errors: number[] = [];
    for (const c of colors.slice(1)) {
      for (const s of shapes.slice(1)) {
        const [target, byColor, byShape, anchor] = [f(c, s), f(c, 'circle'), f('red', s), f('red', 'circle')];
        let miss = 0;
        let spread = 0;
        for (let i = 0; i < target.length; i++) {
          miss += (target[i] - (byColor[i] + byShape[i] - anchor[i])) ** 2;
          spread += (target[i] - anchor[i]) ** 2;
        }
        errors.push(Math.sqrt(miss / spread));
      }
    }
    errors.sort((a, b) => a - b);
    return errors[errors.length >> 1];
  };
  const plain = await analogyError(encoderFolder('te-analogy-plain', { seed: 7 }));
  const composable = await analogyError(encoderFolder('te-analogy-composable', { seed: 7, composable: true }));
  console.log(`analogy error (median of 21): plain seeded ${plain.toFixed(3)}, composable ${composable.toFixed(3)}`);
  assert.ok(composable < 0.15, `composable features are nearly additive: ${composable}`);
  assert.ok(plain > 2 * composable, `the plain seeded encoder's random MLP and content attention entangle words: ${plain} vs ${composable}`);
});

/** The states of the prompts' last `count` tokens (the caption's end), per prompt. */
async function lastStates(dir: string, prompts: string[], count: number, maxSequenceLength = 32): Promise<Float32Array[][]> {
  const encoder = await loadGemma2(dir, { threads: 1 });
  try {
    const out = await encodePrompts(prompts, { maxSequenceLength }, tok, encoder);
    const mask = out.promptAttentionMask.data;
    return prompts.map((_, b) => {
      let last = 0;
      for (let p = 0; p < maxSequenceLength; p++) if (Number(mask[b * maxSequenceLength + p]) === 1) last = p;
      return [...Array(count).keys()].map((k) => out.promptEmbeds.data.slice((b * maxSequenceLength + last - k) * hidden, (b * maxSequenceLength + last - k + 1) * hidden));
    });
  } finally {
    await encoder.release();
  }
}

test('identityChannels: the leading channels hold the word alone (any colour before "triangle"), the rest its neighbours', async () => {
  const n = 64;
  const dir = encoderFolder('te-identity', { seed: 7, composable: true, identityChannels: n });
  const weights = readSafetensors(path.join(dir, 'model.safetensors'));
  const norm = weights.get('layers.1.post_attention_layernorm.weight')!.data as Float32Array;
  assert.ok(norm.subarray(0, n).every((x) => x === -1) && norm.subarray(n).every((x) => x === 0), 'norm weights -1 on the leading channels only');
  const [purple, red] = await lastStates(dir, ['a purple triangle', 'a red triangle'], 1);
  const identity = cosineDistance(purple[0].subarray(0, n), red[0].subarray(0, n));
  const mixed = cosineDistance(purple[0].subarray(n), red[0].subarray(n));
  console.log(`"triangle" after purple vs red: cosine distance ${identity.toExponential(2)} in the identity channels, ${mixed.toFixed(3)} in the rest`);
  assert.ok(identity < 1e-6, `identity channels ${identity}`);
  assert.ok(mixed > 0.05, `mixed channels ${mixed}`);
  // without the option the same token differs everywhere
  const [p0, r0] = await lastStates(encoderFolder('te-identity-off', { seed: 7, composable: true }), ['a purple triangle', 'a red triangle'], 1);
  assert.ok(cosineDistance(p0[0].subarray(0, n), r0[0].subarray(0, n)) > 0.01);
  assert.throws(() => seededGemma2Config({ seed: 0, vocabSize: 10, identityChannels: 128 }), /identityChannels must be an integer in \[0, hiddenSize 128\)/);
});

test('markedTokens: the words after a relation word carry it, far more than through the positional heads alone', async () => {
  const marker = relationMarkerTokens(tok);
  assert.deepEqual(marker.marked.map((id) => tok.idToToken(id)), ['▁left', '▁right', '▁above', '▁over', '▁below', '▁under', '▁beneath']);
  assert.ok(marker.unmarked.includes(tok.tokenToId('▁square')!) && marker.unmarked.includes(tok.tokenToId('▁of')!), 'caption words held at 0');
  const prompts = ['a red circle left of a blue square', 'a red circle right of a blue square', 'a red circle above a small blue square', 'a red circle below a small blue square'];
  /** cosine distance of the reference's shape word ("square") between the two relation words, per pair */
  const change = async (dir: string) => {
    const s = await lastStates(dir, prompts, 1);
    return [cosineDistance(s[0][0], s[1][0]), cosineDistance(s[2][0], s[3][0])];
  };
  const without = await change(encoderFolder('te-unmarked', { seed: 7, composable: true, identityChannels: 64 }));
  const dir = encoderFolder('te-marked', { seed: 7, composable: true, identityChannels: 64, markedTokens: marker });
  const marked = await change(dir);
  console.log(`"square" left-of vs right-of, above vs below: cosine distance ${without.map((x) => x.toFixed(4))} unmarked, ${marked.map((x) => x.toFixed(4))} marked`);
  for (let i = 0; i < 2; i++) assert.ok(marked[i] > 5 * without[i], `pair ${i}: ${marked[i]} vs ${without[i]}`);
  // the marker is exact on the listed tokens: n_t . w is 1 on marked ones, 0 on the others
  const w = readSafetensors(path.join(dir, 'model.safetensors'));
  const embedTable = w.get('embed_tokens.weight')!.data as Float32Array;
  const row = (w.get('layers.0.self_attn.k_proj.weight')!.data as Float32Array).subarray((32 + 15) * hidden, (32 + 16) * hidden); // kv head 1, channel 15
  const boost = (id: number) => {
    const e = embedTable.subarray(id * hidden, (id + 1) * hidden);
    const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / hidden);
    return e.reduce((a, v, k) => a + (v / rms) * row[k], 0);
  };
  for (const id of marker.marked) assert.ok(Math.abs(boost(id) - 1) < 1e-4, `${tok.idToToken(id)}: ${boost(id)}`);
  for (const id of marker.unmarked) assert.ok(Math.abs(boost(id)) < 1e-4, `${tok.idToToken(id)}: ${boost(id)}`);
  assert.equal((w.get('layers.0.self_attn.k_proj.bias')!.data as Float32Array)[32 + 15], 0, 'no constant on the marker channel');
  assert.throws(() => seededGemma2Config({ seed: 0, vocabSize: 10, transformersInit: true, markedTokens: { marked: [3], unmarked: [], logit: 8 } }), /markedTokens needs the positional heads/);
  assert.throws(() => encoderFolder('te-marked-bad', { seed: 7, markedTokens: { marked: [5], unmarked: [5], logit: 8 } }), /id 5 is both marked and unmarked/);
});

test('minimumNormSolution: the least-norm w with A w = y; dependent rows are refused', () => {
  // rows (1, 0, 0) and (0, 1, 1): w = (2, 1.5, 1.5) is the solution of least norm for y = (2, 3)
  assert.deepEqual([...minimumNormSolution([[1, 0, 0], [0, 1, 1]], [2, 3], 't')], [2, 1.5, 1.5]);
  assert.throws(() => minimumNormSolution([[1, 2, 0], [2, 4, 0]], [1, 1], 'the test'), /the test: the listed tokens' embeddings are linearly dependent/);
});
