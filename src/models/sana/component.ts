// The `transformer` component for `sana run transformer` and the pipeline: named tensors in and out (names of
// ../shared/fixtures/README.md).

import { HostTensor } from '../../io/host-tensor.js';
import { ComponentLoader, ComponentRunner, LoadOptions } from '../component.js';
import { SanaTransformer } from './transformer.js';

export const loadTransformerComponent: ComponentLoader = async (dir: string, options?: LoadOptions): Promise<ComponentRunner> => {
  const model = await SanaTransformer.load(dir, options);
  const inputNames = ['hidden_states', 'encoder_hidden_states', 'encoder_attention_mask', 'timestep'];
  if (model.config.guidanceEmbeds) inputNames.push('guidance');
  return {
    kind: 'transformer',
    inputNames,
    async run(inputs: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
      const missing = inputNames.filter((n) => !inputs[n]);
      if (missing.length) throw new Error(`transformer: missing input(s) ${missing.join(', ')} (takes ${inputNames.join(', ')})`);
      const sample = await model.forward({
        hidden_states: inputs.hidden_states,
        encoder_hidden_states: inputs.encoder_hidden_states,
        encoder_attention_mask: inputs.encoder_attention_mask,
        timestep: inputs.timestep,
        guidance: inputs.guidance,
      });
      return { sample };
    },
    release: () => model.release(),
  };
};
