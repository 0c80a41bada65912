// `--device cpu|webgpu|cuda|auto` for every command that runs graphs, and `--precision auto|fp32|fp16` for the
// transformer on it: parsed, probed once, and reported as a plain message (no trace) when the device cannot.
// ref: src/runtime/device.ts

import { Device, DeviceError, parseDevice } from '../runtime/device.js';
import { PRECISION_CHOICES, PrecisionRequest, resolveDevice, resolvePrecision } from '../runtime/device-probe.js';
import { UsageError } from './errors.js';

export const DEVICE_HELP = '--device D                 cpu (default), webgpu, cuda, or auto (a GPU when one works, else the CPU)';
export const PRECISION_HELP =
  '--precision P              the transformer\'s compute: auto (default: fp16 on a GPU that has it, else fp32), fp32, or fp16\n' +
  '                             (fp32 where the reference keeps it: linear attention, softmax, norm statistics)';

export async function deviceFromFlag(value: string | undefined, notice: (message: string) => void): Promise<Device> {
  try {
    return await resolveDevice(value === undefined ? 'cpu' : parseDevice(value), notice);
  } catch (e) {
    if (e instanceof DeviceError) throw new UsageError(e.message);
    throw e;
  }
}

export async function precisionFromFlag(value: string | undefined, device: Device, notice: (message: string) => void): Promise<'float32' | 'float16'> {
  const request = (value ?? 'auto') as PrecisionRequest;
  if (!PRECISION_CHOICES.includes(request)) throw new UsageError(`--precision: expected ${PRECISION_CHOICES.join(', ')}, got "${value}"`);
  try {
    return await resolvePrecision(request, device, notice);
  } catch (e) {
    if (e instanceof DeviceError) throw new UsageError(e.message);
    throw e;
  }
}
