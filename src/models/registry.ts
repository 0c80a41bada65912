// The runnable components, by the name `sana run` and the server use for them.

import { ComponentLoader } from './component.js';
import { loadVaeDecode, loadVaeEncode } from './dcae/component.js';
import { loadTextEncoderComponent } from './gemma2/component.js';
import { loadTransformerComponent } from './sana/component.js';

export const COMPONENT_NAMES = ['transformer', 'vae-encode', 'vae-decode', 'text-encoder'] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

const LOADERS: Record<ComponentName, ComponentLoader> = {
  transformer: loadTransformerComponent,
  'vae-encode': loadVaeEncode,
  'vae-decode': loadVaeDecode,
  'text-encoder': loadTextEncoderComponent,
};

export function isComponentName(name: string): name is ComponentName {
  return (COMPONENT_NAMES as readonly string[]).includes(name);
}

export function componentLoader(name: ComponentName): ComponentLoader {
  return LOADERS[name];
}
