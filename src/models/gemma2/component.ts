// The `text-encoder` component: Gemma2Model.forward on named tensors (input_ids, attention_mask int64 [B, T] ->
// last_hidden_state [B, T, hidden], plus hidden_states.i with the outputHiddenStates debug option).
// ref: SANA.md §4.5

import { HostTensor } from '../../io/host-tensor.js';
import { ComponentLoader, ComponentRunner } from '../component.js';
import { Gemma2LoadOptions, loadGemma2 } from './loader.js';

export const loadTextEncoderComponent: ComponentLoader = async (dir, options = {}): Promise<ComponentRunner> => {
  const encoder = await loadGemma2(dir, options as Gemma2LoadOptions);
  return {
    kind: 'text-encoder',
    inputNames: ['input_ids', 'attention_mask'],
    async run(inputs: Record<string, HostTensor>) {
      for (const name of ['input_ids', 'attention_mask']) {
        if (!inputs[name]) throw new Error(`text-encoder: missing input "${name}" (int64 [B, T])`);
      }
      return (await encoder.encode(inputs.input_ids, inputs.attention_mask)).all;
    },
    release: () => encoder.release(),
  };
};
