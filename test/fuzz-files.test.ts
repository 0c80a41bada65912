// Property-based fuzzing (fast-check, fixed seed, printed) of what a model folder feeds the loaders: safetensors
// files (mutated headers, truncations, appended and inserted bytes, random JSON headers), config files (every
// parser, mutated values and broken text) and tokenizer folders (mutated tokenizer.json / tokenizer_config.json).
// Every input must either load correctly or be refused with our own error naming the file; never a crash, a hang
// or a wrong success. The safetensors oracle is an independent parser of the reference rules; the config oracle
// checks that every value a parser accepted is the one in the file and within its documented range.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { ConfigReader, readJsonFile } from '../src/io/config.js';
import { parseLenientJson } from '../src/io/lenient-json.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { parseDcaeConfig } from '../src/models/dcae/config.js';
import { parseGemma2Config } from '../src/models/gemma2/config.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { parseSchedulerConfig } from '../src/schedulers/scheduler-config.js';
import { GemmaTokenizer } from '../src/text/tokenizer.js';
import { repoRoot } from './helpers/fixtures.js';
import { FUZZ_SEED, assertOwnError, counts, pythonJson, report, tally } from './helpers/fuzz.js';
import { referenceParse } from './helpers/safetensors-reference.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-fuzz-'));
const started = Date.now();
after(() => {
  fs.rmSync(root, { recursive: true, force: true });
  console.log(`${report()}\n(${((Date.now() - started) / 1000).toFixed(1)} s)`);
});
const DEFAULT_MODEL = path.join(repoRoot, 'models', 'default');
const RUNS = { safetensors: 3000, configs: 600, configText: 300, tokenizer: 500 };

// ---------------------------------------------------------------------------------------------------------------
// safetensors

const DTYPE_SIZE: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1, F64: 8, I8: 1 };

const tensorArb = fc
  .record({
    name: fc.oneof(fc.constantFrom('w', 'b', 'a.weight', 'x.bias', '__proto__', 'constructor', ''), fc.string({ maxLength: 6 })),
    dtype: fc.constantFrom(...Object.keys(DTYPE_SIZE)),
    shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
  })
  .chain((t) => {
    const n = t.shape.reduce((p, d) => p * d, 1) * DTYPE_SIZE[t.dtype];
    return fc.uint8Array({ minLength: n, maxLength: n }).map((bytes) => ({ ...t, bytes }));
  });

const layoutArb = fc.record({
  tensors: fc.uniqueArray(tensorArb, { selector: (t) => t.name, maxLength: 5 }),
  metadata: fc.option(fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }), { nil: undefined }),
  pad: fc.nat({ max: 7 }),
});

type Mutation =
  | { kind: 'none' }
  | { kind: 'truncate' | 'flip'; at: number; value: number }
  | { kind: 'append' | 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'length'; delta: number }
  | { kind: 'field'; tensor: number; field: 'dtype' | 'shape' | 'data_offsets' | 'entry'; value: unknown }
  | { kind: 'offsets'; tensor: number; begin: number; end: number }
  | { kind: 'header'; text: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'none' as const }),
  fc.record({ kind: fc.constantFrom('truncate' as const, 'flip' as const), at: fc.nat(), value: fc.nat({ max: 255 }) }),
  fc.record({
    kind: fc.constantFrom('append' as const, 'insert' as const),
    // byte 8 is where the header begins: a byte-order mark or whitespace there is a classic difference of parsers
    at: fc.oneof(fc.nat(), fc.constant(8)),
    bytes: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 9 }), fc.constantFrom(Uint8Array.of(0xef, 0xbb, 0xbf), Uint8Array.of(0x20), Uint8Array.of(0))),
  }),
  fc.record({ kind: fc.constant('length' as const), delta: fc.integer({ min: -9, max: 9 }) }),
  fc.record({
    kind: fc.constant('field' as const),
    tensor: fc.nat(),
    field: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const, 'entry' as const),
    value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('F32', 'I8', 'U16', [0, 0], [2], [-1], [1.5], [2 ** 53, 2])),
  }),
  fc.record({ kind: fc.constant('offsets' as const), tensor: fc.nat(), begin: fc.integer({ min: -3, max: 3 }), end: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ kind: fc.constant('header' as const), text: fc.oneof(fc.json({ maxDepth: 3 }), fc.string({ maxLength: 30 })) }),
);

interface Layout {
  tensors: Array<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }>;
  metadata?: Record<string, string>;
  /** Spaces after the JSON, as writers pad headers to 8 bytes. */
  pad: number;
}

/** A valid file's parts: the tensors laid out one after another in the given order. */
function build(layout: Layout): { header: Record<string, any>; data: Buffer; pad: number } {
  const header: Record<string, any> = {};
  if (layout.metadata) header.__metadata__ = layout.metadata;
  let offset = 0;
  for (const t of layout.tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  return { header, data: Buffer.concat(layout.tensors.map((t) => Buffer.from(t.bytes))), pad: layout.pad };
}

function encode(headerText: string, data: Buffer, pad: number): Buffer {
  const json = Buffer.from(headerText + ' '.repeat(pad), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function mutate(layout: ReturnType<typeof build>, m: Mutation): Buffer {
  const names = Object.keys(layout.header).filter((k) => k !== '__metadata__');
  const pick = (i: number) => names[i % names.length];
  const header = structuredClone(layout.header);
  if (m.kind === 'field' && names.length) {
    const name = pick(m.tensor);
    if (m.field === 'entry') header[name] = m.value;
    else header[name][m.field] = m.value;
  }
  if (m.kind === 'offsets' && names.length) {
    const o = header[pick(m.tensor)].data_offsets;
    header[pick(m.tensor)].data_offsets = [o[0] + m.begin, o[1] + m.end];
  }
  const text = m.kind === 'header' ? m.text : JSON.stringify(header);
  const bytes = encode(text, layout.data, layout.pad);
  const at = (n: number) => n % (bytes.length + 1);
  switch (m.kind) {
    case 'truncate':
      return bytes.subarray(0, at(m.at));
    case 'flip': {
      const out = Buffer.from(bytes);
      if (out.length) out[m.at % out.length] = m.value;
      return out;
    }
    case 'append':
      return Buffer.concat([bytes, m.bytes]);
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at(m.at)), m.bytes, bytes.subarray(at(m.at))]);
    case 'length': {
      const out = Buffer.from(bytes);
      out.writeBigUInt64LE(BigInt(Math.max(0, Number(out.readBigUInt64LE(0)) + m.delta)), 0);
      return out;
    }
    default:
      return bytes;
  }
}

describe('fuzz: safetensors reader against the reference rules', () => {
  test(`${RUNS.safetensors} mutated files (seed ${FUZZ_SEED})`, () => {
    const file = path.join(root, 'fuzz.safetensors');
    fc.assert(
      fc.property(layoutArb, mutationArb, (layout, m) => {
        const bytes = mutate(build(layout), m);
        fs.writeFileSync(file, bytes);
        const ref = referenceParse(bytes);
        let ours: SafetensorsFile;
        try {
          ours = SafetensorsFile.open(file);
        } catch (e) {
          assertOwnError(e, ['SafetensorsError'], `${file}: `);
          assert.ok(!ref.ok, `refused a file the reference reads: ${e.message}`);
          if (!ref.ok && ref.unsupportedDtype) assert.match(e.message, /unsupported dtype|tensor "/);
          tally('safetensors', 'refused');
          return;
        }
        assert.ok(ref.ok, `read a file the reference refuses (${ref.ok ? '' : ref.reason})`);
        assert.deepEqual([...ours.tensors.keys()].sort(), [...ref.tensors.keys()].sort());
        assert.deepEqual(ours.metadata, ref.metadata);
        for (const [name, t] of ref.tensors) {
          const got = ours.read(name);
          assert.deepEqual([...got.shape], [...t.shape], `${name} shape`);
          // the bytes themselves: a shifted tensor is the wrong success this suite is here to catch
          assert.deepEqual(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(t.bytes), `${name} bytes`);
        }
        tally('safetensors', 'loaded');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.safetensors },
    );
    const c = counts.get('safetensors')!;
    assert.ok(c.loaded > RUNS.safetensors / 10 && c.refused > RUNS.safetensors / 10, `both outcomes are exercised: ${JSON.stringify(c)}`);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// configs

const readBase = (rel: string) => JSON.parse(fs.readFileSync(path.join(DEFAULT_MODEL, rel), 'utf8')) as Record<string, unknown>;

type Kind = 'posInt' | 'nonNegInt' | 'positive' | 'finite' | 'bool' | 'unit';
/** Config key -> parsed field and its documented range: what a successful parse must have taken from the file. */
interface ConfigTarget {
  name: string;
  base: Record<string, unknown>;
  parse: (raw: Record<string, unknown>, file: string) => Record<string, unknown>;
  fields: Record<string, [string, Kind]>;
  /** Relations a successful parse must satisfy. */
  invariant?: (parsed: Record<string, any>) => void;
}

const CONFIGS: ConfigTarget[] = [
  {
    name: 'transformer config',
    base: readBase('transformer/config.json'),
    parse: (raw, file) => parseSanaTransformerConfig(raw, file) as unknown as Record<string, unknown>,
    fields: {
      in_channels: ['inChannels', 'posInt'],
      num_attention_heads: ['numAttentionHeads', 'posInt'],
      attention_head_dim: ['attentionHeadDim', 'posInt'],
      num_layers: ['numLayers', 'posInt'],
      num_cross_attention_heads: ['numCrossAttentionHeads', 'posInt'],
      cross_attention_head_dim: ['crossAttentionHeadDim', 'posInt'],
      cross_attention_dim: ['crossAttentionDim', 'posInt'],
      caption_channels: ['captionChannels', 'posInt'],
      sample_size: ['sampleSize', 'posInt'],
      patch_size: ['patchSize', 'posInt'],
      mlp_ratio: ['mlpRatio', 'positive'],
      norm_eps: ['normEps', 'positive'],
      timestep_scale: ['timestepScale', 'positive'],
      dropout: ['dropout', 'unit'],
      guidance_embeds_scale: ['guidanceEmbedsScale', 'finite'],
      attention_bias: ['attentionBias', 'bool'],
      norm_elementwise_affine: ['normElementwiseAffine', 'bool'],
      guidance_embeds: ['guidanceEmbeds', 'bool'],
    },
    invariant: (c) => assert.equal(c.crossAttentionDim, c.numAttentionHeads * c.attentionHeadDim),
  },
  {
    name: 'vae config',
    base: readBase('vae/config.json'),
    parse: (raw, file) => parseDcaeConfig(new ConfigReader(file, raw)) as unknown as Record<string, unknown>,
    fields: {
      in_channels: ['inChannels', 'posInt'],
      latent_channels: ['latentChannels', 'posInt'],
      attention_head_dim: ['attentionHeadDim', 'posInt'],
      scaling_factor: ['scalingFactor', 'finite'],
      encoder_out_shortcut: ['encoderOutShortcut', 'bool'],
      decoder_in_shortcut: ['decoderInShortcut', 'bool'],
    },
    invariant: (c) => {
      assert.equal(c.decoderBlockOutChannels.length, c.encoderBlockOutChannels.length);
      assert.equal(c.spatialCompressionRatio, 2 ** (c.encoderBlockOutChannels.length - 1));
    },
  },
  {
    name: 'text encoder config',
    base: readBase('text_encoder/config.json'),
    parse: (raw, file) => parseGemma2Config(new ConfigReader(file, raw)) as unknown as Record<string, unknown>,
    fields: {
      vocab_size: ['vocabSize', 'posInt'],
      hidden_size: ['hiddenSize', 'posInt'],
      intermediate_size: ['intermediateSize', 'posInt'],
      num_hidden_layers: ['numHiddenLayers', 'posInt'],
      num_attention_heads: ['numAttentionHeads', 'posInt'],
      num_key_value_heads: ['numKeyValueHeads', 'posInt'],
      head_dim: ['headDim', 'posInt'],
      rms_norm_eps: ['rmsNormEps', 'positive'],
      rope_theta: ['ropeTheta', 'finite'],
      query_pre_attn_scalar: ['queryPreAttnScalar', 'finite'],
      pad_token_id: ['padTokenId', 'nonNegInt'],
      bos_token_id: ['bosTokenId', 'nonNegInt'],
      attention_bias: ['attentionBias', 'bool'],
    },
    invariant: (c) => {
      assert.equal(c.numAttentionHeads % c.numKeyValueHeads, 0);
      assert.equal(c.layerTypes.length, c.numHiddenLayers);
    },
  },
  {
    name: 'scheduler config',
    base: readBase('scheduler/scheduler_config.json'),
    parse: (raw, file) => parseSchedulerConfig(pythonJson(raw), file) as unknown as Record<string, unknown>,
    fields: { flow_shift: ['flowShift', 'positive'], num_train_timesteps: ['numTrainTimesteps', 'posInt'] },
  },
];

const DELETE = Symbol('delete');
const valueArb = fc.oneof(
  fc.integer({ min: -3, max: 4096 }),
  fc.constantFrom(0, -1, 1, 2, 3, 4, 7, 16, 2 ** 31, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300, 0.5, 1.5, NaN, Infinity, -Infinity),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer({ min: -1, max: 1100 }), { minLength: 0, maxLength: 8 }),
  fc.array(fc.constantFrom('ResBlock', 'EfficientViTBlock', 'rms_norm', 'batch_norm', 'silu', 'relu', null, 5, [5]), { maxLength: 7 }),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constant(DELETE),
);

function checkField(raw: Record<string, unknown>, parsed: Record<string, unknown>, key: string, [field, kind]: [string, Kind]): void {
  const v = parsed[field];
  const ok = {
    posInt: Number.isSafeInteger(v) && (v as number) >= 1,
    nonNegInt: Number.isSafeInteger(v) && (v as number) >= 0,
    positive: typeof v === 'number' && Number.isFinite(v) && v > 0,
    finite: typeof v === 'number' && Number.isFinite(v),
    unit: typeof v === 'number' && v >= 0 && v < 1,
    bool: typeof v === 'boolean',
  }[kind];
  assert.ok(ok, `config key "${key}" accepted as ${field} = ${String(v)} (must be ${kind})`);
  if (raw[key] !== undefined && raw[key] !== null) assert.equal(v, raw[key], `config key "${key}": parsed ${String(v)}, the file has ${String(raw[key])}`);
}

describe('fuzz: config parsers', () => {
  for (const target of CONFIGS) {
    test(`${target.name}: ${RUNS.configs} mutated configs (seed ${FUZZ_SEED})`, () => {
      const file = `/models/fuzz/${target.name.replace(/ /g, '_')}.json`;
      const keys = [...Object.keys(target.base), ...Object.keys(target.fields), 'unknown_key'];
      const editArb = fc.array(fc.record({ key: fc.constantFrom(...new Set(keys)), value: valueArb }), { minLength: 1, maxLength: 3 });
      fc.assert(
        fc.property(editArb, (edits) => {
          const raw: Record<string, unknown> = structuredClone(target.base);
          for (const { key, value } of edits) {
            if (value === DELETE) delete raw[key];
            else raw[key] = value;
          }
          // through the text a file would hold, so NaN and Infinity arrive as Python writes them
          const parsedRaw = parseLenientJson(pythonJson(raw), file) as Record<string, unknown>;
          let parsed: Record<string, unknown>;
          try {
            parsed = target.parse(parsedRaw, file);
          } catch (e) {
            assertOwnError(e, ['Error', 'ConfigError', 'SchedulerConfigError'], `${file}: `);
            const named = keys.some((k) => e.message.includes(`"${k}"`) || e.message.includes(`${k}[`) || e.message.includes(` ${k} `));
            assert.ok(named, `the message names no config key: ${e.message}`);
            tally(target.name, 'refused');
            return;
          }
          for (const [key, spec] of Object.entries(target.fields)) checkField(parsedRaw, parsed, key, spec);
          target.invariant?.(parsed);
          tally(target.name, 'loaded');
        }),
        { seed: FUZZ_SEED, numRuns: RUNS.configs },
      );
      assert.ok(counts.get(target.name)!.loaded > 0 && counts.get(target.name)!.refused > 0, JSON.stringify(counts.get(target.name)));
    });
  }

  test(`broken config text through readJsonFile: ${RUNS.configText} cases (seed ${FUZZ_SEED})`, () => {
    const dir = path.join(root, 'cfg');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'config.json');
    const base = fs.readFileSync(path.join(DEFAULT_MODEL, 'transformer', 'config.json'), 'utf8');
    const textArb = fc.oneof(
      fc.nat().map((n) => base.slice(0, n % (base.length + 1))),
      fc.tuple(fc.nat(), fc.string({ maxLength: 4 })).map(([n, s]) => base.slice(0, n % base.length) + s + base.slice(n % base.length)),
      fc.json({ maxDepth: 2 }),
      fc.string({ maxLength: 20 }),
      fc.constantFrom('', '{', 'NaN', '{"a": NaN}', '{"a": -Infinity', '[]', 'null', '"x"', '{"a": "\\u0000"}'),
    );
    fc.assert(
      fc.property(textArb, (text) => {
        fs.writeFileSync(file, text);
        let v: Record<string, unknown>;
        try {
          v = readJsonFile(file);
        } catch (e) {
          assertOwnError(e, ['ConfigError', 'LenientJsonError'], `${file}: `);
          tally('config text', 'refused');
          return;
        }
        assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v));
        tally('config text', 'loaded');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.configText },
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------
// tokenizer folders

const TOKENIZER_DIR = path.join(DEFAULT_MODEL, 'tokenizer');
const baseTokenizer = JSON.parse(fs.readFileSync(path.join(TOKENIZER_DIR, 'tokenizer.json'), 'utf8'));
const baseTokenizerConfig = JSON.parse(fs.readFileSync(path.join(TOKENIZER_DIR, 'tokenizer_config.json'), 'utf8'));

const JSON_PATHS: Array<Array<string | number>> = [
  ['model'], ['model', 'type'], ['model', 'vocab'], ['model', 'vocab', '<bos>'], ['model', 'vocab', '<unk>'], ['model', 'vocab', '▁a'],
  ['model', 'merges'], ['model', 'merges', 0], ['model', 'merges', 3], ['model', 'unk_token'], ['model', 'byte_fallback'],
  ['model', 'end_of_word_suffix'], ['model', 'continuing_subword_prefix'], ['added_tokens'], ['added_tokens', 0], ['added_tokens', 2, 'id'],
  ['added_tokens', 1, 'content'], ['added_tokens', 0, 'special'], ['normalizer'], ['normalizer', 'type'], ['normalizer', 'pattern'],
  ['normalizer', 'content'], ['pre_tokenizer'], ['post_processor'], ['post_processor', 'type'], ['post_processor', 'single'],
  ['decoder'], ['decoder', 'type'], ['decoder', 'decoders'], ['decoder', 'decoders', 0],
];
const CONFIG_PATHS = ['pad_token', 'bos_token', 'eos_token', 'add_bos_token', 'add_eos_token', 'tokenizer_class', 'additional_special_tokens', 'clean_up_tokenization_spaces'];

function setPath(obj: any, p: ReadonlyArray<string | number>, value: unknown): void {
  let o = obj;
  for (const k of p.slice(0, -1)) {
    if (typeof o !== 'object' || o === null) return;
    o = o[k];
  }
  if (typeof o !== 'object' || o === null) return;
  const last = p[p.length - 1];
  if (value === DELETE) delete o[last];
  else o[last] = value;
}

const tokenValueArb = fc.oneof(
  fc.constant(DELETE),
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom('<unk>', '<pad>', 'BPE', 'Unigram', 'WordPiece', 'Replace', 'Sequence', 'Metaspace', -1, 1.5, 99999, 2 ** 53, '', null, [], {}, true, 'a b', ['a', 'b']),
);

describe('fuzz: tokenizer folders', () => {
  test(`${RUNS.tokenizer} mutated tokenizer folders (seed ${FUZZ_SEED})`, () => {
    const dir = path.join(root, 'tok');
    fs.mkdirSync(dir);
    const editArb = fc.record({
      json: fc.array(fc.record({ path: fc.constantFrom(...JSON_PATHS), value: tokenValueArb }), { maxLength: 2 }),
      config: fc.array(fc.record({ key: fc.constantFrom(...CONFIG_PATHS), value: tokenValueArb }), { maxLength: 2 }),
      truncate: fc.oneof({ weight: 9, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat() }),
    });
    fc.assert(
      fc.property(editArb, (edit) => {
        const json = structuredClone(baseTokenizer);
        const config = structuredClone(baseTokenizerConfig);
        for (const e of edit.json) setPath(json, e.path, e.value);
        for (const e of edit.config) setPath(config, [e.key], e.value);
        const text = JSON.stringify(json);
        fs.writeFileSync(path.join(dir, 'tokenizer.json'), edit.truncate === null ? text : text.slice(0, edit.truncate % text.length));
        fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
        let tok: GemmaTokenizer;
        try {
          tok = GemmaTokenizer.fromFolder(dir);
        } catch (e) {
          assertOwnError(e, ['TokenizerError', 'ConfigError', 'LenientJsonError'], dir);
          tally('tokenizer', 'refused');
          return;
        }
        // loaded: it encodes real prompts to ids that exist, with its special tokens where they belong
        const ids = Object.values(json.model.vocab as Record<string, number>).concat((json.added_tokens as Array<{ id: number }>).map((t) => t.id));
        const largest = Math.max(...ids);
        const batch = tok.encodeBatch(['a red circle left of a blue square', 'x <bos> 7'], { maxLength: 12 });
        for (const id of batch.inputIds.data as BigInt64Array) assert.ok(id >= 0n && id <= BigInt(largest), `id ${id} outside 0..${largest}`);
        if (tok.addBos) assert.equal(batch.inputIds.data[0], BigInt(tok.bosId));
        tally('tokenizer', 'loaded');
      }),
      { seed: FUZZ_SEED, numRuns: RUNS.tokenizer },
    );
    const c = counts.get('tokenizer')!;
    assert.ok(c.loaded > 0 && c.refused > 0, JSON.stringify(c));
  });
});
