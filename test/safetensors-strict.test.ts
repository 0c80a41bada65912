// Class 3 of issue 17, strict safetensors: the data area ends exactly at the end of the file and the tensors tile it
// without gaps or overlaps, as the reference parser requires; otherwise an error names the file and the tensor. Our
// writer's files (every dtype, empty tensors, metadata, streamed, sharded) satisfy the reference rules, checked by an
// independent parser (test/helpers/safetensors-reference.ts).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, test } from 'node:test';
import { HostTensor } from '../src/io/host-tensor.js';
import { SafetensorsError, SafetensorsFile, readSafetensors, writeSafetensors, writeSafetensorsStreamed } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { encodeReference, referenceParse } from './helpers/safetensors-reference.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-strict-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let counter = 0;
const tmpFile = (name = 'x.safetensors') => {
  const d = path.join(root, `c${++counter}`);
  fs.mkdirSync(d);
  return path.join(d, name);
};

/** Two float32 tensors a = [1, 2], b = [3, 4, 5], laid out a then b, as bytes we build here. */
function twoTensors(): { header: Record<string, unknown>; data: Buffer } {
  const data = Buffer.alloc(20);
  [1, 2, 3, 4, 5].forEach((v, i) => data.writeFloatLE(v, 4 * i));
  return {
    header: { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [3], data_offsets: [8, 20] } },
    data,
  };
}

function fileFrom(header: unknown, data: Buffer, headerText?: string): Buffer {
  const json = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

function expectRefused(bytes: Buffer, ...parts: string[]): void {
  const file = tmpFile();
  fs.writeFileSync(file, bytes);
  assert.equal(referenceParse(bytes).ok, false, 'the reference refuses it too');
  assert.throws(
    () => SafetensorsFile.open(file),
    (e: Error) => {
      assert.ok(e instanceof SafetensorsError, `our error type: ${e.name}`);
      assert.ok(e.message.startsWith(`${file}: `), `names the file: ${e.message}`);
      for (const p of parts) assert.ok(e.message.includes(p), `mentions ${p}: ${e.message}`);
      assert.doesNotMatch(e.message, /\n\s+at /, 'no stack trace');
      return true;
    },
  );
}

describe('the data area is tiled exactly', () => {
  test('the untouched file reads (the mutations below are the only difference)', () => {
    const { header, data } = twoTensors();
    const file = tmpFile();
    fs.writeFileSync(file, fileFrom(header, data));
    assert.deepEqual(Array.from(readSafetensors(file).get('b')!.data as Float32Array), [3, 4, 5]);
  });

  test('bytes appended after the last tensor', () => {
    const { header, data } = twoTensors();
    expectRefused(fileFrom(header, Buffer.concat([data, Buffer.from([0, 0, 0, 0])])), '4 bytes after the last tensor "b" [8, 20]');
  });

  test('bytes inserted between two tensors (b would otherwise be read shifted)', () => {
    const { data } = twoTensors();
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [3], data_offsets: [12, 24] } };
    const shifted = Buffer.concat([data.subarray(0, 8), Buffer.alloc(4), data.subarray(8)]);
    expectRefused(fileFrom(header, shifted), '4 bytes between tensors "a" [0, 8] and "b" [12, 24]');
  });

  test('bytes before the first tensor', () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectRefused(fileFrom(header, Buffer.alloc(12)), "first 4 bytes belong to no tensor", '"a" [4, 12]');
  });

  test('overlapping tensors name both', () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } };
    expectRefused(fileFrom(header, Buffer.alloc(12)), '"a" [0, 8]', '"b" [4, 12]', 'overlap');
  });

  test('two tensors on the same bytes overlap', () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
    expectRefused(fileFrom(header, Buffer.alloc(8)), 'overlap');
  });

  test('data but no tensors', () => {
    expectRefused(fileFrom({ __metadata__: { a: 'b' } }, Buffer.alloc(3)), 'no tensors but 3 bytes');
  });

  test('dtype x shape must equal the span', () => {
    const header = { a: { dtype: 'F16', shape: [2], data_offsets: [0, 8] } };
    expectRefused(fileFrom(header, Buffer.alloc(8)), 'tensor "a"', 'needs 4 bytes', 'span 8');
  });

  test('element counts beyond 2^53 are computed exactly, and unsafe dimensions are refused', () => {
    const unsafe = { a: { dtype: 'U8', shape: [2 ** 53 + 2, 1], data_offsets: [0, 8] } };
    expectRefused(fileFrom(unsafe, Buffer.alloc(8)), 'tensor "a"', 'shape');
    const huge = { b: { dtype: 'U8', shape: [2 ** 30, 2 ** 30], data_offsets: [0, 8] } };
    expectRefused(fileFrom(huge, Buffer.alloc(8)), 'tensor "b"', 'needs 1152921504606846976 bytes');
  });
});

describe('the header itself, as the reference reads it', () => {
  test('not UTF-8', () => {
    const json = Buffer.concat([Buffer.from('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "'), Buffer.from([0xff]), Buffer.from('": "x"}')]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    expectRefused(Buffer.concat([len, json, Buffer.alloc(1)]), 'not UTF-8');
  });

  test('whitespace or a byte-order mark before the object', () => {
    expectRefused(fileFrom(null, Buffer.alloc(0), ' {}'), 'does not start with "{"');
    expectRefused(fileFrom(null, Buffer.alloc(0), '\uFEFF{}'), 'invalid header JSON');
  });

  test('__metadata__ must map strings to strings', () => {
    expectRefused(fileFrom({ __metadata__: { step: 3 } }, Buffer.alloc(0)), '__metadata__ key "step" must be a string');
    expectRefused(fileFrom({ __metadata__: [1] }, Buffer.alloc(0)), '__metadata__ must be an object of strings');
  });

  test('a folder or a FIFO given as a weight file is refused at once (no hang, no EISDIR)', () => {
    const dir = path.join(root, `dir${++counter}.safetensors`);
    fs.mkdirSync(dir);
    assert.throws(() => SafetensorsFile.open(dir), (e: Error) => e instanceof SafetensorsError && e.message === `${dir}: is a folder, not a safetensors file`);
    const fifo = path.join(root, `fifo${++counter}.safetensors`);
    execFileSync('mkfifo', [fifo]);
    const t0 = Date.now();
    assert.throws(() => SafetensorsFile.open(fifo), (e: Error) => e.message === `${fifo}: is a FIFO (named pipe), not a safetensors file`);
    assert.ok(Date.now() - t0 < 2000);
  });
});

describe('zero-sized tensors follow the reference: allowed, with an empty span where the tiling is', () => {
  test('at the start, between tensors and at the end', () => {
    const data = Buffer.alloc(8);
    data.writeFloatLE(7, 0);
    data.writeFloatLE(8, 4);
    const header = {
      z0: { dtype: 'F32', shape: [0], data_offsets: [0, 0] },
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      z1: { dtype: 'I64', shape: [3, 0], data_offsets: [4, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      z2: { dtype: 'BF16', shape: [0, 5], data_offsets: [8, 8] },
    };
    const bytes = fileFrom(header, data);
    assert.equal(referenceParse(bytes).ok, true);
    const file = tmpFile();
    fs.writeFileSync(file, bytes);
    const t = readSafetensors(file);
    assert.deepEqual(t.get('z1')!.shape, [3, 0]);
    assert.equal(t.get('z1')!.data.length, 0);
    assert.deepEqual(Array.from(t.get('b')!.data as Float32Array), [8]);
  });

  test('an empty span away from the tiling point is refused, as the reference does', () => {
    const header = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } };
    expectRefused(fileFrom(header, Buffer.alloc(8)), '"a" [0, 8]', '"z" [4, 4]', 'overlap');
  });
});

describe('our writers produce files the reference accepts, and what it reads back is what was written', () => {
  const tensors = {
    f32: HostTensor.float32([2, 3], [1.5, -2, 3.25, 0, 1e-30, -1e30]),
    f16: new HostTensor('float16', [3], Uint16Array.of(0x3c00, 0xc000, 0x7bff)),
    bf16: new HostTensor('bfloat16', [2, 1], Uint16Array.of(0x3f80, 0x4049)),
    i64: HostTensor.int64([3], [-5n, 0n, 42n]),
    i32: new HostTensor('int32', [2], Int32Array.of(-2147483648, 7)),
    u8: new HostTensor('uint8', [4], Uint8Array.of(0, 1, 128, 255)),
    bool: new HostTensor('bool', [3], Uint8Array.of(1, 0, 1)),
    empty: HostTensor.float32([0, 4], []),
    scalar: HostTensor.float32([], [7]),
  };
  const bytesOf = (t: HostTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

  test('writeSafetensors', () => {
    const file = tmpFile();
    writeSafetensors(file, tensors, { format: 'pt' });
    const ref = referenceParse(fs.readFileSync(file));
    assert.ok(ref.ok, ref.ok ? '' : ref.reason);
    assert.deepEqual(ref.metadata, { format: 'pt' });
    for (const [name, t] of Object.entries(tensors)) assert.deepEqual(ref.tensors.get(name)!.bytes, bytesOf(t), name);
  });

  test('writeSafetensorsStreamed, in the given order, pieces of any size', () => {
    const file = tmpFile();
    const streamed = Object.entries(tensors).reverse().map(([name, t]) => ({
      name,
      dtype: t.dtype,
      shape: t.shape,
      write: (emit: (b: Uint8Array) => void) => {
        const b = bytesOf(t);
        for (let i = 0; i < b.length; i += 3) emit(b.subarray(i, i + 3));
      },
    }));
    writeSafetensorsStreamed(file, streamed);
    const ref = referenceParse(fs.readFileSync(file));
    assert.ok(ref.ok, ref.ok ? '' : ref.reason);
    for (const [name, t] of Object.entries(tensors)) assert.deepEqual(ref.tensors.get(name)!.bytes, bytesOf(t), name);
  });

  test('a tensor whose data does not fit its dtype is refused before anything is written', () => {
    const file = tmpFile();
    const wrong = { dtype: 'float16', shape: [2], data: new Float32Array(2) } as unknown as HostTensor;
    assert.throws(() => writeSafetensors(file, { w: wrong }), /tensor "w" \(float16 \[2\]\) has 8 data bytes, expected 4/);
    assert.equal(fs.existsSync(file), false);
  });

  test('sharded checkpoints written by us load through the index, each shard strict', () => {
    const dir = path.dirname(tmpFile());
    writeSafetensors(path.join(dir, 'model-00001-of-00002.safetensors'), { a: tensors.f32, b: tensors.i64 });
    writeSafetensors(path.join(dir, 'model-00002-of-00002.safetensors'), { c: tensors.bf16 });
    const weightMap = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };
    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const store = WeightStore.open(index);
    assert.deepEqual(Array.from(store.read('c').data as Uint16Array), [0x3f80, 0x4049]);
    // a shard with appended bytes makes the whole load fail, naming that shard
    fs.appendFileSync(path.join(dir, 'model-00002-of-00002.safetensors'), Buffer.alloc(2));
    assert.throws(() => WeightStore.open(index), (e: Error) => e.message.includes('model-00002-of-00002.safetensors: 2 bytes after the last tensor "c"'));
  });

  test('a file the reference encoder lays out differently (unsorted names, no padding) reads the same bytes', () => {
    const file = tmpFile();
    const bytes = encodeReference([
      { name: 'z', dtype: 'U8', shape: [3], bytes: Uint8Array.of(9, 8, 7) },
      { name: 'a', dtype: 'F32', shape: [1], bytes: new Uint8Array(Float32Array.of(2.5).buffer) },
    ]);
    fs.writeFileSync(file, bytes);
    const back = readSafetensors(file);
    assert.deepEqual(Array.from(back.get('z')!.data as Uint8Array), [9, 8, 7]);
    assert.deepEqual(Array.from(back.get('a')!.data as Float32Array), [2.5]);
  });
});
