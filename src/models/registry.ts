// The runnable components, by the name `sana run` and the server use for them.

import { ComponentLoader } from './component.js';

export const COMPONENT_NAMES = ['transformer', 'vae-encode', 'vae-decode', 'text-encoder'] as const;
export type ComponentName = (typeof COMPONENT_NAMES)[number];

/** Loaders of the components implemented so far; a name without a loader is not available yet. */
const LOADERS: Partial<Record<ComponentName, ComponentLoader>> = {};

export function isComponentName(name: string): name is ComponentName {
  return (COMPONENT_NAMES as readonly string[]).includes(name);
}

export function componentLoader(name: ComponentName): ComponentLoader | undefined {
  return LOADERS[name];
}
