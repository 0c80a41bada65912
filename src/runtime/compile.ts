// Graph -> CompiledModel: ONNX bytes plus where its external weights live.

import { Graph } from '../graph/graph.js';
import { EmitOptions, emitModel } from '../graph/onnx-emit.js';
import { CompiledModel } from './backend.js';

export function compileGraph(graph: Graph, options: EmitOptions = {}): CompiledModel {
  if (graph.outputs.length === 0) throw new Error(`graph ${graph.name} has no outputs`);
  const externalFiles = [
    ...new Set(graph.initializers.flatMap((i) => (i.external && !graph.memoryFiles.has(i.external.location) ? [i.external.location] : []))),
  ];
  if (externalFiles.length && !graph.externalDataFolder) {
    throw new Error(`graph ${graph.name} references external weights but has no external-data folder`);
  }
  return {
    name: graph.name,
    bytes: emitModel(graph, options),
    portableBytes: () => emitModel(graph, { ...options, portableOps: true }),
    externalDataFolder: externalFiles.length ? graph.externalDataFolder : undefined,
    externalFiles,
    memoryFiles: graph.memoryFiles,
    inputNames: graph.inputs.map((t) => t.name),
    outputNames: graph.outputs.map((t) => t.name),
  };
}
