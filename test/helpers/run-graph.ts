// Compiles a test graph and runs it once through an ONNX Runtime flavour (one thread: the test machine is shared).

import { Graph } from '../../src/graph/index.js';
import { HostTensor } from '../../src/io/host-tensor.js';
import { Backend, SessionOptions } from '../../src/runtime/backend.js';
import { compileGraph } from '../../src/runtime/compile.js';
import { nodeBackend } from '../../src/runtime/node-backend.js';

export async function runGraph(
  graph: Graph,
  feeds: Record<string, HostTensor>,
  backend: Backend = nodeBackend,
  options: SessionOptions = {},
): Promise<Record<string, HostTensor>> {
  const session = await backend.createSession(compileGraph(graph), { threads: 1, ...options });
  try {
    return await session.run(feeds);
  } finally {
    await session.release();
  }
}

/** Runs a graph once per feed set with ONE session (for graphs with symbolic dimensions). */
export async function runGraphMany(
  graph: Graph,
  feedSets: ReadonlyArray<Record<string, HostTensor>>,
): Promise<Array<Record<string, HostTensor>>> {
  const session = await nodeBackend.createSession(compileGraph(graph), { threads: 1 });
  try {
    const out: Array<Record<string, HostTensor>> = [];
    for (const feeds of feedSets) out.push(await session.run(feeds));
    return out;
  } finally {
    await session.release();
  }
}
