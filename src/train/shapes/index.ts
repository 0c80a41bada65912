// The coloured-shapes dataset and its checker in one import: vocabulary, scene sampling, captions, rendering,
// dataset folders, the held-out evaluation prompts and the procedural checker.

export * from './vocabulary.js';
export { ShapesRng } from './random.js';
export * from './scene.js';
export * from './caption.js';
export * from './spec.js';
export * from './evaluation.js';
export * from './render.js';
export * from './dataset.js';
export * from './components.js';
export * from './shape-fit.js';
export * from './checker.js';
export * from './accuracy.js';
