// safetensors read/write. The reader parses and validates only the header; tensor bytes are read on demand with
// positioned reads, so multi-GB files are never loaded into one JS buffer (fs.readFileSync stops at 2 GiB).
// Format: u64-LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?},
// then the data area; offsets are relative to the data area.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { BYTES_PER_ELEMENT, DType, HostTensor, TypedArrayFor, elementCount } from './host-tensor.js';
import { writeFileAtomic } from './atomic-write.js';
import { describeKind } from './contained-path.js';

const DTYPE_FROM_CODE: Record<string, DType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  I8: 'int8',
  BOOL: 'bool',
};
const CODE_FROM_DTYPE: Record<DType, string> = Object.fromEntries(
  Object.entries(DTYPE_FROM_CODE).map(([code, dtype]) => [dtype, code]),
) as Record<DType, string>;

/** Largest header the reference parser accepts (huggingface/safetensors MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsError extends Error {
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Byte offset of the tensor's first byte from the start of the FILE (8 + header length + data_offsets[0]). */
  readonly fileOffset: number;
  readonly byteLength: number;
}

export class SafetensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly dataStart: number;
  readonly fileSize: number;

  private constructor(
    readonly path: string,
    tensors: Map<string, TensorInfo>,
    metadata: Record<string, string>,
    dataStart: number,
    fileSize: number,
  ) {
    this.tensors = tensors;
    this.metadata = metadata;
    this.dataStart = dataStart;
    this.fileSize = fileSize;
  }

  /**
   * Opens a file and checks its header as strictly as the reference parser (huggingface/safetensors) does: a UTF-8
   * JSON object after the length, each tensor's dtype x shape equal to its byte span, and the tensors tiling the
   * data area from its first byte to the end of the file, with no gap, overlap or trailing byte. Anything else would
   * let a tensor be read from the wrong bytes.
   */
  static open(filePath: string): SafetensorsFile {
    let fd: number;
    try {
      // non-blocking, so that a FIFO given as a weight file is refused below instead of blocking the open
      fd = fs.openSync(filePath, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch (e) {
      throw new SafetensorsError(filePath, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new SafetensorsError(filePath, `is ${describeKind(st)}, not a safetensors file`);
      const fileSize = st.size;
      if (fileSize < 8) throw new SafetensorsError(filePath, `truncated: ${fileSize} bytes, a header needs at least 8`);
      const headerLen = readExactly(fd, filePath, 8, 0).readBigUInt64LE(0);
      if (headerLen > BigInt(fileSize - 8)) {
        throw new SafetensorsError(
          filePath,
          `header length ${headerLen} runs past the end of the file (${fileSize} bytes): truncated or not a safetensors file`,
        );
      }
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new SafetensorsError(filePath, `header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes`);
      }
      const n = Number(headerLen);
      const header = parseHeaderJson(filePath, readExactly(fd, filePath, n, 8));
      const dataStart = 8 + n;
      const { tensors, metadata } = parseHeader(filePath, header, fileSize - dataStart, dataStart);
      return new SafetensorsFile(filePath, tensors, metadata, dataStart, fileSize);
    } finally {
      fs.closeSync(fd);
    }
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.path, `no tensor named "${name}"`);
    return info;
  }

  /** Reads one tensor's bytes into a fresh, aligned typed array. */
  read(name: string): HostTensor {
    const info = this.info(name);
    const bytes = new Uint8Array(info.byteLength);
    const fd = fs.openSync(this.path, 'r');
    try {
      let done = 0;
      while (done < info.byteLength) {
        const chunk = Math.min(info.byteLength - done, 1 << 30);
        const got = fs.readSync(fd, bytes, done, chunk, info.fileOffset + done);
        if (got <= 0) throw new SafetensorsError(this.path, `tensor "${name}": unexpected end of file`);
        done += got;
      }
    } finally {
      fs.closeSync(fd);
    }
    return new HostTensor(info.dtype, info.shape, typedView(info.dtype, bytes.buffer) as TypedArrayFor<DType>);
  }

  /** Reads rows [start, start + count) of a tensor's first axis (large tables read piece by piece). */
  readRows(name: string, start: number, count: number): HostTensor {
    const info = this.info(name);
    const rows = info.shape[0];
    if (info.shape.length === 0 || !(start >= 0 && count >= 0 && start + count <= rows)) {
      throw new SafetensorsError(this.path, `tensor "${name}" [${info.shape.join(', ')}]: rows [${start}, ${start + count}) are out of range`);
    }
    const rowBytes = rows ? info.byteLength / rows : 0;
    const bytes = new Uint8Array(count * rowBytes);
    const fd = fs.openSync(this.path, 'r');
    try {
      let done = 0;
      while (done < bytes.length) {
        const got = fs.readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), info.fileOffset + start * rowBytes + done);
        if (got <= 0) throw new SafetensorsError(this.path, `tensor "${name}": unexpected end of file`);
        done += got;
      }
    } finally {
      fs.closeSync(fd);
    }
    return new HostTensor(info.dtype, [count, ...info.shape.slice(1)], typedView(info.dtype, bytes.buffer) as TypedArrayFor<DType>);
  }

  readAll(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const name of this.tensors.keys()) out.set(name, this.read(name));
    return out;
  }
}

function readExactly(fd: number, file: string, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const got = fs.readSync(fd, buf, done, length - done, position + done);
    if (got <= 0) throw new SafetensorsError(file, `unexpected end of file at byte ${position + done}`);
    done += got;
  }
  return buf;
}

function parseHeaderJson(file: string, bytes: Buffer): Record<string, unknown> {
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text (the reference reads it as a character, and refuses it)
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(file, 'invalid header: not UTF-8 text');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(file, `invalid header JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(file, 'invalid header: expected a JSON object');
  }
  // the reference parser also refuses whitespace before the object
  if (!text.startsWith('{')) throw new SafetensorsError(file, 'invalid header: it does not start with "{"');
  return header as Record<string, unknown>;
}

interface Span {
  readonly name: string;
  readonly begin: number;
  readonly end: number;
}

function parseHeader(
  file: string,
  header: Record<string, unknown>,
  dataBytes: number,
  dataStart: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const spans: Span[] = [];
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, entry);
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new SafetensorsError(file, `tensor "${name}": entry is not an object`);
    const dtype = typeof e.dtype === 'string' && Object.hasOwn(DTYPE_FROM_CODE, e.dtype) ? DTYPE_FROM_CODE[e.dtype] : undefined;
    if (!dtype) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": unknown or unsupported dtype ${JSON.stringify(e.dtype) ?? 'undefined'} (supported: ${Object.keys(DTYPE_FROM_CODE).join(', ')})`,
      );
    }
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new SafetensorsError(file, `tensor "${name}": shape must be a list of non-negative integers`);
    }
    const offsets = e.data_offsets;
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[1] < offsets[0]
    ) {
      throw new SafetensorsError(file, `tensor "${name}": data_offsets must be [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": data_offsets [${begin}, ${end}] leave the data area of ${dataBytes} bytes (truncated file?)`,
      );
    }
    const shape = e.shape as number[];
    // exact even for shapes whose element count exceeds 2^53 (a float product could round onto the span)
    const expected = shape.reduce((p, d) => p * BigInt(d), 1n) * BigInt(BYTES_PER_ELEMENT[dtype]);
    if (BigInt(end - begin) !== expected) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": shape [${shape.join(', ')}] of ${e.dtype} needs ${expected} bytes but data_offsets span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    tensors.set(name, { name, dtype, shape, fileOffset: dataStart + begin, byteLength: end - begin });
  }
  checkTiling(file, spans, dataBytes);
  return { tensors, metadata };
}

/** `__metadata__`: absent, null, or an object of strings (the reference parser reads it as a string map). */
function parseMetadata(file: string, entry: unknown): Record<string, string> {
  if (entry === null) return {};
  if (typeof entry !== 'object' || Array.isArray(entry)) throw new SafetensorsError(file, '__metadata__ must be an object of strings');
  for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new SafetensorsError(file, `__metadata__ key "${k}" must be a string (got ${v === null ? 'null' : typeof v})`);
  }
  return entry as Record<string, string>;
}

/**
 * Tensors sorted by (begin, end) must each begin where the previous one ended, from 0 to the end of the data area
 * (the reference's Metadata::validate and its MetadataIncompleteBuffer check). Empty tensors take an empty span at
 * that point.
 */
function checkTiling(file: string, spans: Span[], dataBytes: number): void {
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let last: Span | undefined;
  const at = (s: Span) => `"${s.name}" [${s.begin}, ${s.end}]`;
  for (const cur of spans) {
    if (cur.begin < cursor) throw new SafetensorsError(file, `tensors ${at(last!)} and ${at(cur)} overlap`);
    if (cur.begin > cursor) {
      throw new SafetensorsError(
        file,
        last
          ? `${cur.begin - cursor} bytes between tensors ${at(last)} and ${at(cur)} belong to no tensor (inserted bytes or a bad offset)`
          : `the data area's first ${cur.begin} bytes belong to no tensor (tensor ${at(cur)} is the first)`,
      );
    }
    cursor = cur.end;
    last = cur;
  }
  if (cursor !== dataBytes) {
    throw new SafetensorsError(
      file,
      last
        ? `${dataBytes - cursor} bytes after the last tensor ${at(last)} belong to no tensor (the data area is ${dataBytes} bytes; bytes appended?)`
        : `the header lists no tensors but ${dataBytes} bytes of data follow it`,
    );
  }
}

function typedView(dtype: DType, buffer: ArrayBuffer): TypedArrayFor<DType> {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buffer);
    case 'int64':
      return new BigInt64Array(buffer);
    case 'int32':
      return new Int32Array(buffer);
    default:
      return new Uint8Array(buffer);
  }
}

/** Reads every tensor of a (small) safetensors file. */
export function readSafetensors(filePath: string): Map<string, HostTensor> {
  return SafetensorsFile.open(filePath).readAll();
}

/**
 * Writes tensors to a safetensors file atomically (temporary name, then rename), in name order, with the header
 * padded to a multiple of 8 bytes so every tensor is 8-byte aligned.
 */
export function writeSafetensors(
  filePath: string,
  tensors: ReadonlyMap<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): void {
  const entries: Array<[string, HostTensor]> = (
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)
  ).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const len = t.data.byteLength;
    // the file must satisfy the strict reader: every span exactly dtype x shape
    const expected = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
    if (!CODE_FROM_DTYPE[t.dtype] || len !== expected) {
      throw new Error(`writeSafetensors ${filePath}: tensor "${name}" (${t.dtype} [${t.shape.join(', ')}]) has ${len} data bytes, expected ${expected}`);
    }
    header[name] = { dtype: CODE_FROM_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + len] };
    offset += len;
  }
  const headerBytes = encodeHeader(header);
  writeFileAtomic(filePath, (out) => {
    out.write(headerBytes);
    for (const [, t] of entries) {
      const data = t.data;
      out.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  });
}

/** A tensor written piece by piece: `write` must emit exactly dtype x shape bytes, in order. */
export interface StreamedTensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  write(emit: (bytes: Uint8Array) => void): void;
}

/**
 * Writes a safetensors file whose tensors are produced one after another (in the given order, not sorted), so a
 * file far larger than memory can be made with only one piece in memory at a time. Atomic like writeSafetensors;
 * a tensor that emits the wrong number of bytes aborts the write (nothing is left behind).
 */
export function writeSafetensorsStreamed(filePath: string, tensors: readonly StreamedTensor[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  const lengths: number[] = [];
  for (const t of tensors) {
    if (t.name in header) throw new Error(`writeSafetensorsStreamed ${filePath}: tensor "${t.name}" listed twice`);
    const len = elementCount(t.shape) * BYTES_PER_ELEMENT[t.dtype];
    header[t.name] = { dtype: CODE_FROM_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + len] };
    lengths.push(len);
    offset += len;
  }
  const headerBytes = encodeHeader(header);
  writeFileAtomic(filePath, (out) => {
    out.write(headerBytes);
    tensors.forEach((t, i) => {
      let written = 0;
      t.write((bytes) => {
        written += bytes.byteLength;
        if (written > lengths[i]) throw new Error(`writeSafetensorsStreamed ${filePath}: tensor "${t.name}" emitted more than its ${lengths[i]} bytes`);
        out.write(bytes);
      });
      if (written !== lengths[i]) {
        throw new Error(`writeSafetensorsStreamed ${filePath}: tensor "${t.name}" emitted ${written} bytes, its shape needs ${lengths[i]}`);
      }
    });
  });
}

/** u64-LE length + JSON header padded with spaces to a multiple of 8 bytes (so tensors stay 8-byte aligned). */
function encodeHeader(header: Record<string, unknown>): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return out;
}

/** Real path of a weight file: ONNX Runtime refuses external data reached through links that leave the folder. */
export function realWeightPath(filePath: string): string {
  return fs.realpathSync(path.resolve(filePath));
}
