// safetensors read/write. The reader parses and validates only the header; tensor bytes are read on demand with
// positioned reads, so multi-GB files are never loaded into one JS buffer (fs.readFileSync stops at 2 GiB).
// Format: u64-LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?},
// then the data area; offsets are relative to the data area.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { BYTES_PER_ELEMENT, DType, HostTensor, TypedArrayFor, elementCount } from './host-tensor.js';
import { writeFileAtomic } from './atomic-write.js';

const DTYPE_FROM_CODE: Record<string, DType> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  U8: 'uint8',
  BOOL: 'bool',
};
const CODE_FROM_DTYPE: Record<DType, string> = Object.fromEntries(
  Object.entries(DTYPE_FROM_CODE).map(([code, dtype]) => [dtype, code]),
) as Record<DType, string>;

/** Largest header we accept; real checkpoints have headers of a few hundred KiB. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

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

  static open(filePath: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(filePath, 'r');
    } catch (e) {
      throw new SafetensorsError(filePath, `cannot open: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    try {
      const fileSize = fs.fstatSync(fd).size;
      if (fileSize < 8) throw new SafetensorsError(filePath, `truncated: ${fileSize} bytes, a header needs at least 8`);
      const lenBuf = Buffer.alloc(8);
      fs.readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
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
      const headerBuf = Buffer.alloc(n);
      fs.readSync(fd, headerBuf, 0, n, 8);
      let header: unknown;
      try {
        header = JSON.parse(headerBuf.toString('utf8'));
      } catch (e) {
        throw new SafetensorsError(filePath, `invalid header JSON: ${(e as Error).message}`);
      }
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

function parseHeader(
  file: string,
  header: unknown,
  dataBytes: number,
  dataStart: number,
): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError(file, 'invalid header: expected a JSON object');
  }
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  const spans: Array<{ name: string; begin: number; end: number }> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null) throw new SafetensorsError(file, `tensor "${name}": entry is not an object`);
    const dtype = DTYPE_FROM_CODE[String(e.dtype)];
    if (!dtype) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": unknown or unsupported dtype "${String(e.dtype)}" (supported: ${Object.keys(DTYPE_FROM_CODE).join(', ')})`,
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
    const expected = elementCount(shape) * BYTES_PER_ELEMENT[dtype];
    if (end - begin !== expected) {
      throw new SafetensorsError(
        file,
        `tensor "${name}": shape [${shape.join(', ')}] of ${String(e.dtype)} needs ${expected} bytes but data_offsets span ${end - begin}`,
      );
    }
    spans.push({ name, begin, end });
    tensors.set(name, { name, dtype, shape, fileOffset: dataStart + begin, byteLength: end - begin });
  }
  spans.sort((a, b) => a.begin - b.begin);
  let last: { name: string; begin: number; end: number } | undefined;
  for (const cur of spans) {
    if (cur.end === cur.begin) continue; // empty tensors occupy no bytes
    if (last && cur.begin < last.end) {
      throw new SafetensorsError(
        file,
        `tensors "${last.name}" [${last.begin}, ${last.end}] and "${cur.name}" [${cur.begin}, ${cur.end}] overlap`,
      );
    }
    if (!last || cur.end > last.end) last = cur;
  }
  return { tensors, metadata };
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
    header[name] = { dtype: CODE_FROM_DTYPE[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + len] };
    offset += len;
  }
  const headerBytes = encodeHeader(header);
  writeFileAtomic(filePath, (fd) => {
    fs.writeSync(fd, headerBytes);
    for (const [, t] of entries) {
      fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
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
  writeFileAtomic(filePath, (fd) => {
    fs.writeSync(fd, headerBytes);
    tensors.forEach((t, i) => {
      let written = 0;
      t.write((bytes) => {
        written += bytes.byteLength;
        if (written > lengths[i]) throw new Error(`writeSafetensorsStreamed ${filePath}: tensor "${t.name}" emitted more than its ${lengths[i]} bytes`);
        let done = 0;
        while (done < bytes.byteLength) done += fs.writeSync(fd, bytes, done, bytes.byteLength - done);
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
