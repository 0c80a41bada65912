// A job as it travels through Redis: the resolved request in JSON (the seed as a decimal string, so 64-bit seeds
// survive; image tensors as base64 float32), and the worker's answer (image metadata, sizes, timings; the PNG bytes
// themselves go to their own keys). The worker checks a payload again with the library's request validation, so a
// malformed job is refused as bad input (not retried) with the field named. ref: docs/server.md "Scale-out"

import { HostTensor } from '../io/host-tensor.js';
import { GenerateRequest, RequestError, ResolvedRequest, resolveRequest } from '../pipeline/request.js';
import { JobOutcome } from './job.js';

interface TensorJson {
  shape: number[];
  /** Little-endian float32 values, base64. */
  data: string;
}

export interface JobPayload {
  version: 1;
  request: Record<string, unknown>;
  sampler: string;
  preview: boolean;
  /** The API server's --preview-every, so previews come at the same steps in both modes. */
  previewEvery: number;
}

/** BullMQ's return value of a job: how it ended on the worker. */
export type WorkerResult =
  | ({ status: 'done'; worker: string } & Omit<JobOutcome, 'images'> & { images: Array<Omit<JobOutcome['images'][number], 'png'>> })
  | { status: 'cancelled'; worker: string };

const TENSOR_FIELDS = ['latents', 'image', 'mask', 'controlImage'] as const;

function tensorToJson(t: HostTensor<'float32'>): TensorJson {
  const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { shape: [...t.shape], data: bytes.toString('base64') };
}

function tensorFromJson(v: unknown, field: string): HostTensor<'float32'> {
  const t = v as TensorJson;
  if (typeof t !== 'object' || t === null || !Array.isArray(t.shape) || typeof t.data !== 'string') {
    throw new RequestError(`job payload: ${field} must be {shape, data}`);
  }
  const bytes = Buffer.from(t.data, 'base64');
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== count * 4) throw new RequestError(`job payload: ${field} has ${bytes.byteLength} bytes for shape [${t.shape.join(', ')}]`);
  const data = new Float32Array(count);
  Buffer.from(data.buffer).set(bytes);
  return HostTensor.float32(t.shape, data);
}

export function encodePayload(request: ResolvedRequest, sampler: string, preview: boolean, previewEvery: number): JobPayload {
  const json: Record<string, unknown> = { ...request, seed: String(request.seed) };
  for (const f of TENSOR_FIELDS) if (request[f]) json[f] = tensorToJson(request[f]!);
  for (const [k, v] of Object.entries(json)) if (v === undefined) delete json[k];
  return { version: 1, request: json, sampler, preview, previewEvery };
}

/** The request of a payload, validated again (defaults filled for the model's native size); bad ones throw RequestError. */
export function decodePayload(payload: unknown, nativeSize: number): { request: ResolvedRequest; sampler: string; preview: boolean; previewEvery: number } {
  const p = payload as JobPayload;
  if (typeof p !== 'object' || p === null || p.version !== 1 || typeof p.request !== 'object' || p.request === null) {
    throw new RequestError('job payload: not a sana-ts job (version 1 with a request)');
  }
  if (typeof p.sampler !== 'string' || typeof p.preview !== 'boolean' || !Number.isInteger(p.previewEvery) || p.previewEvery < 0) {
    throw new RequestError('job payload: sampler (string), preview (boolean) and previewEvery (integer >= 0) are required');
  }
  const r: Record<string, unknown> = { ...p.request };
  if (typeof r.seed !== 'string' || !/^\d{1,20}$/.test(r.seed)) throw new RequestError(`job payload: seed must be a decimal string, got ${JSON.stringify(r.seed)}`);
  r.seed = BigInt(r.seed);
  for (const f of TENSOR_FIELDS) if (r[f] !== undefined) r[f] = tensorFromJson(r[f], f);
  return { request: resolveRequest(r as unknown as GenerateRequest, nativeSize), sampler: p.sampler, preview: p.preview, previewEvery: p.previewEvery };
}
