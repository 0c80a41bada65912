// `--device cpu|webgpu|cuda|auto` for every command that runs graphs: parsed, probed once, and reported as a plain
// message (no trace) when the device cannot run here.
// ref: src/runtime/device.ts

import { Device, DeviceError, parseDevice } from '../runtime/device.js';
import { resolveDevice } from '../runtime/device-probe.js';
import { UsageError } from './errors.js';

export const DEVICE_HELP = '--device D                 cpu (default), webgpu, cuda, or auto (a GPU when one works, else the CPU)';

export async function deviceFromFlag(value: string | undefined, notice: (message: string) => void): Promise<Device> {
  try {
    return await resolveDevice(value === undefined ? 'cpu' : parseDevice(value), notice);
  } catch (e) {
    if (e instanceof DeviceError) throw new UsageError(e.message);
    throw e;
  }
}
