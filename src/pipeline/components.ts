// Loading a SANA pipeline folder into the pipeline's components (adapters over the model loaders).

import { SessionOptions } from '../runtime/backend.js';
import { SanaPipeline } from './sana-pipeline.js';

export interface LoadedPipeline {
  pipeline: SanaPipeline;
  /** What PNG metadata calls the model: the repo id or folder given. */
  modelName: string;
}

export async function loadSanaPipeline(model: string, _options: SessionOptions & { keepResident?: boolean } = {}): Promise<LoadedPipeline> {
  throw new Error(`cannot load ${model}: the pipeline components are not wired yet`);
}
