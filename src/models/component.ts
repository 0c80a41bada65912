// What every runnable model component offers to `sana run`, the pipeline and the server: named tensors in,
// named tensors out (the names of ../shared/fixtures/README.md), with validation of what comes in.

import { HostTensor } from '../io/host-tensor.js';
import { SessionOptions } from '../runtime/backend.js';

export interface ComponentRunner {
  /** Component kind, e.g. "transformer". */
  readonly kind: string;
  /** Required input tensor names. */
  readonly inputNames: readonly string[];
  /** Optional input tensor names. */
  readonly optionalInputNames?: readonly string[];
  run(inputs: Record<string, HostTensor>): Promise<Record<string, HostTensor>>;
  release(): Promise<void>;
}

export interface LoadOptions extends SessionOptions {
  /** Weight file variant to prefer ("fp16", "bf16"); default: the plain file, then fp16, then bf16. */
  variant?: string;
}

export type ComponentLoader = (dir: string, options?: LoadOptions) => Promise<ComponentRunner>;
