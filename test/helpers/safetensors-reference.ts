// An independent strict safetensors parser for the tests, written from the rules of the reference implementation
// (huggingface/safetensors, safetensors/src/tensor.rs: read_metadata and Metadata::validate), not from ours:
//   - u64-LE header length N <= 100,000,000 and 8 + N <= file size;
//   - the header is UTF-8, starts with "{", and is a JSON object; "__metadata__", when present, maps strings to strings;
//   - every other entry has a dtype, a shape of non-negative integers and data_offsets [s, e];
//   - sorted by (s, e), each tensor begins where the previous one ended, starting at 0, with e - s equal to
//     elements x dtype size, and the last end equals the size of the data area.
// JavaScript numbers limit integers to 2^53 (the reference takes usize); no test file comes near that.
// Dtypes the reference knows but sana-ts does not read are reported as such, so tests can tell the two apart.

export const SANA_DTYPES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, I8: 1, BOOL: 1 };
const OTHER_DTYPES: Record<string, number> = { I16: 2, U16: 2, U32: 4, U64: 8, F64: 8, F8_E5M2: 1, F8_E4M3: 1 };

export interface ReferenceTensor {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** The tensor's bytes, sliced from the file. */
  readonly bytes: Buffer;
}

export type ReferenceResult =
  | { readonly ok: true; readonly tensors: ReadonlyMap<string, ReferenceTensor>; readonly metadata: Record<string, string> }
  | { readonly ok: false; readonly reason: string; readonly unsupportedDtype?: boolean };

export function referenceParse(file: Buffer): ReferenceResult {
  const fail = (reason: string, unsupportedDtype = false): ReferenceResult => ({ ok: false, reason, unsupportedDtype });
  if (file.length < 8) return fail('HeaderTooSmall');
  const n = file.readBigUInt64LE(0);
  if (n > 100_000_000n) return fail('HeaderTooLarge');
  if (8n + n > BigInt(file.length)) return fail('InvalidHeaderLength');
  const headerBytes = file.subarray(8, 8 + Number(n));
  let text: string;
  try {
    // like Rust's str::from_utf8: a byte-order mark is a character, not something to drop
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail('InvalidHeader');
  }
  if (!text.startsWith('{')) return fail('InvalidHeaderStart');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return fail('InvalidHeaderDeserialization');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('InvalidHeaderDeserialization');
  let metadata: Record<string, string> = {};
  const entries: Array<{ name: string; dtype: string; shape: number[]; s: number; e: number }> = [];
  let unsupported = false;
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (value === null) continue;
      if (typeof value !== 'object' || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
        return fail('InvalidHeaderDeserialization: __metadata__');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`InvalidHeaderDeserialization: ${name}`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    const isUsize = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (typeof dtype !== 'string' || !(Object.hasOwn(SANA_DTYPES, dtype) || Object.hasOwn(OTHER_DTYPES, dtype))) {
      return fail(`InvalidHeaderDeserialization: dtype of ${name}`);
    }
    if (!Object.hasOwn(SANA_DTYPES, dtype)) unsupported = true;
    if (!Array.isArray(shape) || !shape.every(isUsize)) return fail(`InvalidHeaderDeserialization: shape of ${name}`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isUsize)) return fail(`InvalidHeaderDeserialization: offsets of ${name}`);
    entries.push({ name, dtype, shape: shape as number[], s: offsets[0] as number, e: offsets[1] as number });
  }
  entries.sort((a, b) => a.s - b.s || a.e - b.e);
  const dataStart = 8 + Number(n);
  let start = 0;
  const tensors = new Map<string, ReferenceTensor>();
  for (const t of entries) {
    if (t.s !== start || t.e < t.s) return fail(`InvalidOffset(${t.name})`);
    start = t.e;
    const size = Object.hasOwn(SANA_DTYPES, t.dtype) ? SANA_DTYPES[t.dtype] : OTHER_DTYPES[t.dtype];
    const nbytes = t.shape.reduce((p, d) => p * BigInt(d), 1n) * BigInt(size);
    if (BigInt(t.e - t.s) !== nbytes) return fail('TensorInvalidInfo');
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, bytes: file.subarray(dataStart + t.s, dataStart + t.e) });
  }
  if (start + dataStart !== file.length) return fail('MetadataIncompleteBuffer');
  if (unsupported) return fail('unsupported dtype', true);
  return { ok: true, tensors, metadata };
}

/** A safetensors file from tensors given as (dtype, shape, bytes), laid out in the given order, no padding. */
export function encodeReference(
  tensors: ReadonlyArray<{ name: string; dtype: string; shape: readonly number[]; bytes: Uint8Array }>,
  metadata?: Record<string, string>,
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...tensors.map((t) => Buffer.from(t.bytes))]);
}
