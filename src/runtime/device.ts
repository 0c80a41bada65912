// Where graphs run: the CPU (MLAS), WebGPU (the Dawn provider bundled in onnxruntime-node: Vulkan on Linux, any GPU
// with a Vulkan driver, or SwiftShader's CPU Vulkan for testing), or CUDA (ONNX Runtime's CUDA provider, which
// onnxruntime-node downloads at install time only when asked). The names and the session default; proving a device
// works (the probe) is in device-probe.ts, which needs Node. This module is also bundled for the browser.
// ref: issue "GPU execution" (#14); DESIGN.md §1 (onnxruntime-node bundles a WebGPU EP)


export type Device = 'cpu' | 'webgpu' | 'cuda';
export type DeviceRequest = Device | 'auto';
export const DEVICE_CHOICES: readonly DeviceRequest[] = ['cpu', 'webgpu', 'cuda', 'auto'];

/** A device that was asked for and cannot run graphs here; the message says why and what would fix it. */
export class DeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeviceError';
  }
}

/**
 * The device of sessions whose options name none: SANA_DEVICE (cpu, webgpu or cuda) when set, else the CPU. Lets a
 * whole program or test run move to a GPU without code changes.
 */
export function sessionDevice(device?: Device): Device {
  if (device) return device;
  const env = typeof process === 'undefined' ? undefined : process.env.SANA_DEVICE;
  if (env === undefined || env === '') return 'cpu';
  if (env === 'cpu' || env === 'webgpu' || env === 'cuda') return env;
  throw new DeviceError(`SANA_DEVICE: expected cpu, webgpu or cuda, got "${env}"`);
}

/** ONNX Runtime's execution providers for a device (ORT adds its CPU provider for ops a GPU provider lacks). */
export function executionProviders(requested: Device | undefined): string[] {
  const device = sessionDevice(requested);
  return device === 'webgpu' ? ['webgpu'] : device === 'cuda' ? ['cuda'] : ['cpu'];
}

export function parseDevice(text: string, what = '--device'): DeviceRequest {
  if ((DEVICE_CHOICES as readonly string[]).includes(text)) return text as DeviceRequest;
  throw new DeviceError(`${what}: expected one of ${DEVICE_CHOICES.join(', ')}, got "${text}"`);
}

/** True when Vulkan is pointed at SwiftShader, Chromium's CPU implementation: WebGPU works but is slower than the CPU. */
export function softwareVulkan(): boolean {
  if (typeof process === 'undefined') return false;
  return /swiftshader/i.test(process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES ?? '');
}

