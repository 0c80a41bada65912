// Proving a device before a model loads: a 2 x 2 MatMul run and checked on it, so a missing adapter or library is
// one clear sentence, not a native trace half-way through a load; `auto` takes the first working GPU and falls
// back to the CPU with a notice.
// ref: issue "GPU execution" (#14); src/runtime/device.ts

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { Graph } from '../graph/graph.js';
import { matmul } from '../graph/ops/linalg.js';
import { transpose } from '../graph/ops/shape-ops.js';
import { HostTensor } from '../io/host-tensor.js';
import { compileGraph } from './compile.js';
// evaluated first: it turns ORT's telemetry off before the first session, which the probe's may be
import './node-backend.js';
import { Device, DeviceError, DeviceRequest, executionProviders, softwareVulkan } from './device.js';

function cudaProviderLibrary(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const dir = path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
    const lib = path.join(dir, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so');
    return fs.existsSync(lib) ? lib : undefined;
  } catch {
    return undefined;
  }
}

const HINTS: Record<Exclude<Device, 'cpu'>, string> = {
  webgpu:
    'ONNX Runtime found no WebGPU adapter (Dawn needs a Vulkan driver and the Vulkan loader, Debian package libvulkan1). ' +
    'Without a GPU, SwiftShader from Debian\'s chromium package works, slowly: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json',
  cuda:
    "ONNX Runtime's CUDA provider is not installed: onnxruntime-node fetches it only when asked " +
    '(npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12, with network access), and it needs CUDA 12 and cuDNN 9 libraries and an NVIDIA driver',
};

const probes = new Map<Device, Promise<string | null>>();

/** null when `device` runs a MatMul correctly, else the reason it cannot. Cached per process. */
export function probeDevice(device: Device): Promise<string | null> {
  let p = probes.get(device);
  if (!p) {
    p = runProbe(device);
    probes.set(device, p);
  }
  return p;
}

async function runProbe(device: Device): Promise<string | null> {
  if (device === 'cuda' && !cudaProviderLibrary()) return HINTS.cuda;
  const g = new Graph('device_probe');
  const a = g.input('a', 'float32', [2, 2]);
  g.output(matmul(a, a), 'y');
  try {
    return await runChecked(device, compileGraph(g).bytes, 'a 2 x 2 MatMul', [7, 10, 15, 22]);
  } catch (e) {
    const tail = readableTail(e);
    return device === 'cpu' ? `the CPU provider failed: ${tail}` : `${HINTS[device]} (${tail})`;
  }
}

/** Runs a probe model on `device` with a = [[1, 2], [3, 4]]: null when y is `expected`, else what it gave. */
async function runChecked(device: Device, bytes: Uint8Array, what: string, expected: readonly number[]): Promise<string | null> {
  // severity 3 (errors only): a failed probe is reported by us, not by ORT's or Dawn's warnings
  const session = await ort.InferenceSession.create(bytes, { executionProviders: executionProviders(device), logSeverityLevel: 3 } as ort.InferenceSession.SessionOptions);
  try {
    const x = HostTensor.float32([2, 2], Float32Array.of(1, 2, 3, 4));
    const out = await session.run({ a: new ort.Tensor('float32', x.data, [2, 2]) });
    const y = out.y.data as Float32Array;
    if (!expected.every((v, i) => y[i] === v)) return `${what} on ${device} gave [${Array.from(y).join(', ')}], expected [${expected.join(', ')}]`;
    return null;
  } finally {
    await session.release();
  }
}

/** The first line of an ORT error without its source path and failed condition. */
function readableTail(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split(/\n/)[0].replace(/^.*?(was false\.|failed\.)\s*/, '').slice(0, 200);
}

const halfProbes = new Map<Device, Promise<string | null>>();

/**
 * null when `device` computes in float16 (a Transpose and a MatMul in half precision, checked), else the reason it
 * cannot: a WebGPU adapter without the shader-f16 feature (SwiftShader has none) refuses float16 programs when they
 * first run, not when the session is made, so only a run tells. Cached per process.
 */
export function probeHalfPrecision(device: Device): Promise<string | null> {
  let p = halfProbes.get(device);
  if (!p) {
    p = runHalfProbe(device);
    halfProbes.set(device, p);
  }
  return p;
}

async function runHalfProbe(device: Device): Promise<string | null> {
  const g = new Graph('half_probe');
  const a = g.input('a', 'float32', [2, 2]);
  g.output(matmul(transpose(a, [1, 0]), a), 'y');
  try {
    return await runChecked(device, compileGraph(g, { halfPrecision: true, portableOps: true }).bytes, 'a float16 MatMul', [10, 14, 14, 20]);
  } catch (e) {
    const text = e instanceof Error ? e.message : String(e);
    if (/requires f16|shader-f16|does not support/i.test(text)) {
      return `this ${device} adapter has no float16 shaders (the shader-f16 feature${softwareVulkan() ? '; SwiftShader has none' : ''})`;
    }
    return `float16 compute failed on ${device}: ${readableTail(e)}`;
  }
}

export type PrecisionRequest = 'auto' | 'fp32' | 'fp16';
export const PRECISION_CHOICES: readonly PrecisionRequest[] = ['auto', 'fp32', 'fp16'];

/**
 * The transformer's compute precision for a request on a resolved device. `auto`: float16 on a GPU that computes
 * it, float32 otherwise (with a notice on a GPU without it). `fp16` where the GPU cannot is a DeviceError; on the
 * CPU it runs, with a notice that it only checks fp16 results there (ONNX Runtime widens most float16 ops on CPUs).
 */
export async function resolvePrecision(request: PrecisionRequest, device: Device, notice: (message: string) => void = () => {}): Promise<'float32' | 'float16'> {
  if (request === 'fp32') return 'float32';
  if (device === 'cpu') {
    if (request === 'auto') return 'float32';
    notice('--precision fp16 on the CPU: ONNX Runtime widens most float16 ops to float32 here, so it is slower than fp32; use it to check fp16 results');
    return 'float16';
  }
  const reason = await probeHalfPrecision(device);
  if (!reason) return 'float16';
  if (request === 'fp16') throw new DeviceError(`--precision fp16: ${reason}; use --precision fp32`);
  notice(`precision: fp32 (${reason})`);
  return 'float32';
}

/**
 * The device to run on for a request. Asking for a GPU that does not work is a DeviceError; `auto` tries CUDA,
 * then WebGPU on a hardware adapter, and otherwise says it uses the CPU.
 */
export async function resolveDevice(request: DeviceRequest = 'cpu', notice: (message: string) => void = () => {}): Promise<Device> {
  if (request === 'cpu') return 'cpu';
  if (request !== 'auto') {
    const reason = await probeDevice(request);
    if (reason) throw new DeviceError(`--device ${request}: ${reason}`);
    if (request === 'webgpu' && softwareVulkan()) notice('WebGPU runs on SwiftShader (a CPU implementation of Vulkan): correct but slower than --device cpu');
    return request;
  }
  const skipped: string[] = [];
  for (const device of ['cuda', 'webgpu'] as const) {
    if (device === 'webgpu' && softwareVulkan()) {
      skipped.push('webgpu: only SwiftShader, a software adapter');
      continue;
    }
    const reason = await probeDevice(device);
    if (!reason) {
      notice(`device: ${device}`);
      return device;
    }
    skipped.push(`${device}: ${reason.split('(')[0].trim()}`);
  }
  notice(`device: cpu (no GPU provider works here: ${skipped.join('; ')})`);
  return 'cpu';
}
