// The emitted ONNX model declares the type and shape of every value its nodes compute (value_info), as the graph
// builder knows them: ONNX Runtime's allocation planner needs known shapes to reuse buffers, and without them its
// session creation grows faster than the graph (onnx-emit.ts, bench/graph-size-load.ts). Checked on the tiny
// transformer's denoise graph, in float32 and in float16 emission, and on a hand-made graph whose Reshape target is
// computed at run time (where ORT's own inference loses the sizes); the fixture parity tests run the same models.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import onnxProto from 'onnx-proto';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { ONNX_DTYPE, emitModel } from '../src/graph/onnx-emit.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { WeightStore, findWeights } from '../src/io/weights.js';
import { readSanaTransformerConfig } from '../src/models/sana/config.js';
import { buildDenoiseGraph } from '../src/models/sana/graphs.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { fixturePath } from './helpers/fixtures.js';

const { onnx } = onnxProto;

type ValueInfo = onnxProto.onnx.IValueInfoProto;
const dims = (v: ValueInfo) => v.type!.tensorType!.shape!.dim!.map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue)));

describe('value_info of computed values', () => {
  const dir = fixturePath('sana_transformer_tiny', 'component');
  const { graph } = buildDenoiseGraph(readSanaTransformerConfig(dir), WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'])), {});

  it("declares every node output of the denoise graph with the builder's shape and type", () => {
    const model = onnx.ModelProto.decode(emitModel(graph));
    const info = new Map(model.graph!.valueInfo!.map((v) => [v.name!, v]));
    const io = new Set([...model.graph!.input!, ...model.graph!.output!].map((v) => v.name!));
    const computed = model.graph!.node!.flatMap((n) => n.output!).filter((o) => o && !io.has(o));
    assert.ok(computed.length > 100, `${computed.length} computed values`);
    for (const name of computed) {
      const v = info.get(name);
      assert.ok(v, `value ${name} has no value_info`);
      const t = graph.tensor(name);
      assert.deepEqual(dims(v), [...t.shape], `${name}: shape`);
      assert.equal(v.type!.tensorType!.elemType, ONNX_DTYPE[t.dtype], `${name}: element type`);
    }
    // run-time sizes keep the builder's labels, so equal sizes share a dim_param across the graph
    const labels = new Set([...info.values()].flatMap((v) => v.type!.tensorType!.shape!.dim!.map((d) => d.dimParam).filter(Boolean)));
    assert.ok(labels.has('B'), `labels: ${[...labels].join(', ')}`);
  });

  it('leaves the types to ONNX Runtime in float16 emission (values change type there under their own names)', () => {
    const model = onnx.ModelProto.decode(emitModel(graph, { halfPrecision: true }));
    assert.equal(model.graph!.valueInfo!.length, 0);
  });

  it('keeps the sizes a run-time Reshape target hides from ONNX Runtime, and the session runs', async () => {
    // x [B, T, 8] -> flattened [B*T, 8] -> reshaped back through a computed target [B, T, 8] -> + 1
    const g = new Graph('runtime_reshape');
    const x = g.input('x', 'float32', ['B', 'T', 8]);
    const flat = G.reshape(x, [-1, 8]); // [B*T, 8]
    const target = g.node1('Shape', [x], 'int64', [3]); // the run-time [B, T, 8]
    const back = g.node1('Reshape', [flat, target], 'float32', ['B', 'T', 8]); // [B, T, 8]
    g.output(G.add(back, 1), 'y');
    const model = onnx.ModelProto.decode(emitModel(g));
    const restored = model.graph!.valueInfo!.find((v) => v.name === back.name);
    assert.ok(restored, 'the computed-target Reshape output has value_info');
    assert.deepEqual(dims(restored), ['B', 'T', 8]);
    const session = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
    try {
      const data = Float32Array.from({ length: 2 * 3 * 8 }, (_, i) => i);
      const y = (await session.run({ x: HostTensor.float32([2, 3, 8], data) })).y;
      assert.deepEqual(y.shape, [2, 3, 8]);
      assert.deepEqual([...(y.data as Float32Array)], [...data].map((v) => v + 1));
    } finally {
      await session.release();
    }
  });
});
