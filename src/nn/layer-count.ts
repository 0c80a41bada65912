// A config's layer count checked against the checkpoint before a graph is built: the blocks are built one by one
// and bound to weights after, so a config claiming more layers than the file holds (num_layers: 100000 over a
// 6-block checkpoint) used to build for minutes and gigabytes before the strict binder could say what is missing.
// The checkpoint's own tensor names give its layer count in one pass over the header's keys.
// ref: issue #17 class 4 ("layer counts that the checkpoint does not have"); src/nn/weight-binder.ts

import { WeightStore, WeightsError } from '../io/weights.js';

/** Distinct block indices K among tensor names containing `<container>.K.` (e.g. "transformer_blocks.5.attn1..."). */
export function layerIndices(names: Iterable<string>, container: string): Set<number> {
  const pattern = new RegExp(`(?:^|\\.)${container.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)\\.`);
  const found = new Set<number>();
  for (const name of names) {
    const m = pattern.exec(name);
    if (m) found.add(Number(m[1]));
  }
  return found;
}

/**
 * Throws a WeightsError naming the config file and key when the config asks for more layers than the checkpoint
 * has under `container` (blocks 0..count-1 must all be there). Fewer is left to the strict binder, which names
 * the unused tensors.
 */
export function checkLayerCount(store: WeightStore, container: string, count: number, configFile: string, key: string): void {
  // a store without tensors is the initializer's shape recorder (src/train/initialize.ts), which has no layers to
  // compare with; a checkpoint file that holds nothing is refused by the strict binder
  if (store.size === 0) return;
  const found = layerIndices(store.names(), container);
  const absent: number[] = [];
  for (let k = 0; k < count && absent.length < 4; k++) if (!found.has(k)) absent.push(k);
  if (absent.length === 0) return;
  throw new WeightsError(
    `${configFile}: config key "${key}" is ${count}, but ${store.source} has ${found.size} ${container} (no ${container}.${absent[0]}); ` +
      'the config does not belong to these weights',
  );
}
