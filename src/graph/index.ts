// The graph builder: symbolic tensors, op builders with build-time shape/dtype checks, ONNX emission.
export { Graph, Tensor } from './graph.js';
export type { AttrValue, ExternalData, InitializerSpec, NodeSpec } from './graph.js';
export { emitModel, DEFAULT_OPSET, ONNX_DTYPE } from './onnx-emit.js';
export type { EmitOptions } from './onnx-emit.js';
export * from './shape.js';
export * from './ops/elementwise.js';
export * from './ops/shape-ops.js';
export * from './ops/linalg.js';
export * from './ops/conv.js';
export * from './ops/norm.js';
export { scalarLike } from './ops/check.js';
export { gradients, differentiableOps } from './autodiff/gradients.js';
export type { GradientOptions } from './autodiff/gradients.js';
export { AutodiffError } from './autodiff/context.js';
