// Prompt encoding against the end-to-end fixture (diffusers SanaPipeline.encode_prompt with the tiny Gemma-2 and
// toy tokenizer), and the prompt window on the REAL Gemma-2 tokenizer.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadGemma2 } from '../src/models/gemma2/loader.js';
import { complexHumanInstruction, complexHumanInstructionLines } from '../src/text/complex-human-instruction.js';
import { encodePrompts, preparePrompts, preprocessPrompt } from '../src/text/prompt-encoding.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest, repoRoot } from './helpers/fixtures.js';

const fixture = 'sana_pipeline_tiny_e2e';
const model = fixturePath(fixture, 'model');
const realTokenizerDir = path.join(repoRoot, 'node_modules', '@lenml', 'tokenizer-gemma2', 'models');

/** The fixtures README rule for float tensors: atol 1e-4 x max(1, max|ref|), rtol 1e-4, rel_l2 1e-5. */
function defaultTolerance(ref: HostTensor) {
  let max = 0;
  for (const v of ref.toFloat32()) max = Math.max(max, Math.abs(v));
  return { atol: 1e-4 * Math.max(1, max), rtol: 1e-4, rel_l2: 1e-5 };
}

function ints(t: HostTensor): number[] {
  return Array.from(t.data as BigInt64Array, Number);
}

const prompt = loadManifest(fixture).call as { prompt: string; negative_prompt: string; max_sequence_length: number };

test('instruction text: diffusers lines equal the fixture\'s instruction lines; nvlabs differs only in quotes', () => {
  const cases = JSON.parse(fs.readFileSync(fixturePath(fixture, 'tokenizer_cases.json'), 'utf8')).cases as Array<{ cls: string; text: string }>;
  const lines = cases.filter((c) => c.cls === 'chi_line').map((c) => c.text);
  assert.deepEqual(lines, [...complexHumanInstructionLines('diffusers')]);
  assert.ok(cases.some((c) => c.cls === 'chi' && c.text === complexHumanInstruction('diffusers')));
  const nv = complexHumanInstructionLines('nvlabs');
  assert.ok(nv[0].includes('generate an "Enhanced prompt" that'));
  assert.deepEqual(nv.slice(1), lines.slice(1));
  assert.ok(lines[7] === 'User Prompt: ');
});

test('preprocessing: diffusers lower-cases and strips; nvlabs keeps case and cuts size flags', () => {
  assert.equal(preprocessPrompt('  A Cat\n', 'diffusers'), 'a cat');
  assert.equal(preprocessPrompt('  A Cat --ar 16:9', 'nvlabs'), 'A Cat');
  assert.equal(preprocessPrompt('A Cat --hw 512:768 --other', 'nvlabs'), 'A Cat');
  assert.equal(preprocessPrompt('A --arch B', 'nvlabs'), 'A --arch B');
});

test('e2e fixture: token ids and masks (prompt with instruction, negative) are exact', () => {
  const tok = GemmaTokenizer.fromFolder(path.join(model, 'tokenizer'));
  const p = preparePrompts(prompt.prompt, { negative: prompt.negative_prompt, maxSequenceLength: prompt.max_sequence_length }, tok);
  assert.equal(p.instructionIds, loadManifest(fixture).complex_human_instruction_tokens);
  assert.deepEqual(ints(p.prompt.inputIds), ints(fixtureTensor(fixture, 'intermediates', 'prompt.input_ids')));
  assert.deepEqual(ints(p.prompt.attentionMask), ints(fixtureTensor(fixture, 'intermediates', 'prompt.attention_mask')));
  assert.deepEqual(ints(p.negative.inputIds), ints(fixtureTensor(fixture, 'intermediates', 'negative.input_ids')));
  assert.deepEqual(ints(p.negative.attentionMask), ints(fixtureTensor(fixture, 'intermediates', 'negative.attention_mask')));
  assert.deepEqual(p.warnings, []);
});

test('e2e fixture: text encoder outputs and the caption embeddings/mask the transformer gets', async () => {
  const tok = GemmaTokenizer.fromFolder(path.join(model, 'tokenizer'));
  const encoder = await loadGemma2(path.join(model, 'text_encoder'), { threads: 1 });
  // the raw encoder outputs first (where a mismatch would start)
  for (const which of ['prompt', 'negative']) {
    const out = await encoder.encode(
      fixtureTensor(fixture, 'intermediates', `${which}.input_ids`),
      fixtureTensor(fixture, 'intermediates', `${which}.attention_mask`),
    );
    const ref = fixtureTensor(fixture, 'intermediates', `${which}.last_hidden_state`);
    assertClose(out.lastHiddenState, ref, defaultTolerance(ref), `${which}.last_hidden_state`);
  }
  const base = { negative: prompt.negative_prompt, maxSequenceLength: prompt.max_sequence_length };
  const enc = await encodePrompts(prompt.prompt, { ...base, trimPadding: false }, tok, encoder);
  // transformer_in.* hold the CFG batch [negative; prompt]
  const states = fixtureTensor(fixture, 'intermediates', 'transformer_in.encoder_hidden_states');
  const masks = fixtureTensor(fixture, 'intermediates', 'transformer_in.encoder_attention_mask');
  const half = states.size / 2;
  const negRef = HostTensor.float32([1, 300, 32], (states.data as Float32Array).slice(0, half));
  const posRef = HostTensor.float32([1, 300, 32], (states.data as Float32Array).slice(half));
  assertClose(enc.negativePromptEmbeds, negRef, defaultTolerance(negRef), 'negative_prompt_embeds');
  assertClose(enc.promptEmbeds, posRef, defaultTolerance(posRef), 'prompt_embeds');
  assert.deepEqual([...ints(enc.negativePromptAttentionMask), ...ints(enc.promptAttentionMask)], ints(masks));

  // trimmed (the default): the same values at every unmasked position, zeros at the padding
  const trimmed = await encodePrompts(prompt.prompt, base, tok, encoder);
  for (const [got, ref, mask] of [
    [trimmed.promptEmbeds, posRef, trimmed.promptAttentionMask],
    [trimmed.negativePromptEmbeds, negRef, trimmed.negativePromptAttentionMask],
  ] as const) {
    const m = ints(mask);
    const keep = (v: Float32Array, pad: number) => Array.from(v, (x, i) => (m[Math.floor(i / 32)] === 1 ? x : pad));
    assertClose(keep(got.data, 0), keep(ref.data as Float32Array, 0), defaultTolerance(ref), 'trimmed, unmasked positions');
  }
  for (const [got, mask] of [
    [trimmed.promptEmbeds, trimmed.promptAttentionMask],
    [trimmed.negativePromptEmbeds, trimmed.negativePromptAttentionMask],
  ] as const) {
    const m = ints(mask);
    assert.ok(Array.from(got.data).every((x, i) => m[Math.floor(i / 32)] === 1 || x === 0), 'zeros at padding positions');
  }
  assert.deepEqual([...ints(trimmed.negativePromptAttentionMask), ...ints(trimmed.promptAttentionMask)], ints(masks));
  await encoder.release();
});

test('nvlabs dialect: the negative mask is the positive prompt\'s mask; the instruction uses double quotes', async () => {
  const tok = GemmaTokenizer.fromFolder(path.join(model, 'tokenizer'));
  const encoder = await loadGemma2(path.join(model, 'text_encoder'), { threads: 1 });
  const enc = await encodePrompts('A Cat', { dialect: 'nvlabs', maxSequenceLength: 16 }, tok, encoder);
  assert.deepEqual(ints(enc.negativePromptAttentionMask), ints(enc.promptAttentionMask));
  assert.ok(ints(enc.promptAttentionMask).filter((m) => m === 1).length > 1);
  const d = preparePrompts('A Cat', { maxSequenceLength: 16 }, tok);
  const n = preparePrompts('A Cat', { dialect: 'nvlabs', maxSequenceLength: 16 }, tok);
  assert.notDeepEqual(ints(d.prompt.inputIds), ints(n.prompt.inputIds));
  await encoder.release();
});

test('REAL Gemma-2 tokenizer: the instruction ends in a lone "▁" and the prompt starts at position 1 of the 300 kept', () => {
  const tok = GemmaTokenizer.fromFolder(realTokenizerDir);
  const chi = tok.encode(complexHumanInstruction('diffusers'));
  assert.equal(tok.idToToken(chi[chi.length - 1]), '▁');
  const p = preparePrompts('A cat holding a sign that says Hello World', {}, tok);
  const lengthAll = p.instructionIds + 300 - 2;
  assert.equal(p.prompt.inputIds.shape[1], lengthAll);
  assert.equal(p.selectIndex.length, 300);
  const kept = p.selectIndex.map((i) => Number(p.prompt.inputIds.data[i]));
  const keptMask = p.selectIndex.map((i) => Number(p.prompt.attentionMask.data[i]));
  // BOS, then the lower-cased prompt's words, each carrying the space before it, then padding
  const words = ['▁a', '▁cat', '▁holding', '▁a', '▁sign', '▁that', '▁says', '▁hello', '▁world'];
  assert.equal(kept[0], 2);
  assert.deepEqual(kept.slice(1, 1 + words.length).map((id) => tok.idToToken(id)), words);
  assert.deepEqual(kept.slice(1 + words.length), new Array(300 - 1 - words.length).fill(0));
  assert.deepEqual(keptMask, [...new Array(1 + words.length).fill(1), ...new Array(300 - 1 - words.length).fill(0)]);
  assert.deepEqual(p.warnings, []);
});

test('REAL Gemma-2 tokenizer: a prompt longer than the window is truncated to 299 tokens with a warning', () => {
  const tok = GemmaTokenizer.fromFolder(realTokenizerDir);
  const long = Array.from({ length: 400 }, (_, i) => (i % 2 ? 'cat' : 'dog')).join(' ');
  const seen: string[] = [];
  const p = preparePrompts(long, { onWarning: (w) => seen.push(w) }, tok);
  const kept = p.selectIndex.map((i) => tok.idToToken(Number(p.prompt.inputIds.data[i])));
  assert.equal(kept[0], '<bos>');
  // "dog cat dog ..." lower-cased: the first word absorbs the instruction's "▁", then 298 more of the 400 words
  assert.deepEqual(kept.slice(1), Array.from({ length: 299 }, (_, i) => (i % 2 ? '▁cat' : '▁dog')));
  assert.ok(p.selectIndex.every((i) => p.prompt.attentionMask.data[i] === 1n));
  assert.equal(seen.length, 1);
  assert.match(seen[0], /prompt 0: 101 token\(s\) beyond the 299 that fit after the instruction were dropped/);
});

test('option errors name the option', () => {
  const tok = GemmaTokenizer.fromFolder(path.join(model, 'tokenizer'));
  assert.throws(() => preparePrompts(['a', 'b'], { negative: ['x'] }, tok), /option negative has 1 entries for 2 prompts/);
  assert.throws(() => preparePrompts('a', { maxSequenceLength: 1 }, tok), /option maxSequenceLength must be an integer >= 2/);
  assert.throws(() => preparePrompts('a', { dialect: 'other' as never }, tok), /option dialect must be/);
});
