// Graph bookkeeping and ONNX emission: scoped names, shared constants, output renaming, ownership and size checks.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import onnxProto from 'onnx-proto';
import * as G from '../src/graph/index.js';
import { DEFAULT_OPSET, Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { compileGraph } from '../src/runtime/compile.js';

describe('Graph', () => {
  test('scope prefixes node names; identical small constants are shared', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const y = g.scope('blocks.0', () => g.scope('attn', () => G.relu(x)));
    assert.equal(y.name, 'blocks.0.attn.Relu');
    assert.equal(g.int64s([1, 2]), g.int64s([1, 2]));
    assert.notEqual(g.int64s([1, 2]), g.int64s([2, 1]));
    assert.equal(g.scalar(1), g.scalar(1));
  });

  test('outputs are renamed with an Identity; name clashes and foreign tensors are errors', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [2]);
    const y = g.output(G.neg(x), 'y');
    assert.equal(y.name, 'y');
    assert.equal(g.nodes.at(-1)?.opType, 'Identity');
    assert.throws(() => g.output(G.abs(x), 'y'), /graph output name "y" is already used/);
    assert.throws(() => g.input('x', 'float32', [1]), /graph input "x" is defined twice/);
    const other = new Graph();
    assert.throws(() => G.add(x, other.input('z', 'float32', [2])), /Add: tensor z belongs to another graph/);
  });

  test('external weights check their byte length; compile needs outputs and an external-data folder', () => {
    const g = new Graph('m');
    assert.throws(() => g.external('w', 'float32', [2, 3], { location: 'f', offset: 0, length: 20 }), /external weight "w": float32\[2, 3\] needs 24 bytes, got 20/);
    assert.throws(() => compileGraph(g), /graph m has no outputs/);
    const w = g.external('w', 'bfloat16', [2, 3], { location: 'f.safetensors', offset: 8, length: 12 });
    g.output(G.cast(w, 'float32'), 'y');
    assert.throws(() => compileGraph(g), /graph m references external weights but has no external-data folder/);
  });

  test('emitted ModelProto: opset, dim_params, external data entries', () => {
    const g = new Graph('m');
    g.externalDataFolder = '/tmp';
    const x = g.input('x', 'float32', ['B', 3]);
    const w = g.external('w', 'float32', [3, 3], { location: 'f.safetensors', offset: 80, length: 36 });
    g.output(G.matmul(x, w), 'y');
    g.constant(HostTensor.float32([1], [5]), 'c');
    const model = compileGraph(g);
    const proto = onnxProto.onnx.ModelProto.decode(model.bytes);
    assert.equal(Number(proto.opsetImport.find((o) => o.domain === '')?.version), DEFAULT_OPSET);
    assert.deepEqual(proto.graph?.input?.[0].type?.tensorType?.shape?.dim?.map((d) => d.dimParam || Number(d.dimValue)), ['B', 3]);
    const init = proto.graph!.initializer!.find((i) => i.name === 'w')!;
    assert.equal(init.dataLocation, onnxProto.onnx.TensorProto.DataLocation.EXTERNAL);
    assert.deepEqual(
      Object.fromEntries(init.externalData!.map((e) => [e.key, e.value])),
      { location: 'f.safetensors', offset: '80', length: '36' },
    );
    assert.deepEqual(model.externalFiles, ['f.safetensors']);
    assert.deepEqual(model.inputNames, ['x']);
    assert.deepEqual(model.outputNames, ['y']);
  });

  test('the emitted model keeps only the nodes and initializers its outputs need', () => {
    const g = new Graph('m');
    const x = g.input('x', 'float32', ['B', 'N', 4]);
    const unusedSize = G.dimOf(x, 1); // a Shape and a Gather nobody reads
    const unusedScale = G.mul(x, g.scalar(3)); // a node and its constant, unread
    const y = g.output(G.relu(G.reshape(x, [G.dimOf(x, 0), G.dimOf(x, 1), 2, 2])), 'y');
    assert.ok(unusedSize && unusedScale && y);
    const proto = onnxProto.onnx.ModelProto.decode(compileGraph(g).bytes);
    assert.deepEqual(proto.graph!.node!.map((n) => n.opType), ['Reshape', 'Relu', 'Identity']); // the Identity names the output
    const read = new Set(proto.graph!.node!.flatMap((n) => n.input ?? []));
    assert.deepEqual(proto.graph!.initializer!.map((i) => i.name ?? '').filter((n) => !read.has(n)), [], 'unread initializers');
    assert.equal(proto.graph!.initializer!.length, 1); // the reshape target [0, 0, 2, 2]
    assert.ok(g.nodes.length > 2, 'the builder made the unread nodes, the emitter left them out');
  });
});
