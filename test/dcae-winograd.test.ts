// Winograd F(4x4, 3x3) convolution against the direct 3x3 convolution (itself tested against plain loops), and the
// DC-AE with Winograd ResBlocks against the dcae_tiny goldens.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../src/graph/graph.js';
import { conv2d } from '../src/graph/ops/conv.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { loadDcae } from '../src/models/dcae/model.js';
import { winogradConv3x3 } from '../src/models/dcae/winograd.js';
import { assertClose } from './helpers/compare.js';
import { fixturePath, fixtureTensor, loadManifest } from './helpers/fixtures.js';
import { Rng } from './helpers/random.js';
import { runGraph } from './helpers/run-graph.js';

describe('Winograd F(4x4, 3x3)', () => {
  const cases = [
    { name: 'square map, bias', shape: [1, 8, 12, 12], out: 8, bias: true },
    { name: 'batch 2, non-square, fewer outputs, no bias', shape: [2, 16, 8, 20], out: 12, bias: false },
    { name: 'smallest map (4 x 4)', shape: [1, 4, 4, 4], out: 4, bias: true },
  ];
  for (const c of cases) {
    it(`matches the direct convolution: ${c.name}`, async () => {
      const rng = new Rng(11);
      const [, cin] = c.shape;
      const g = new Graph('winograd');
      const x = g.input('x', 'float32', c.shape);
      const weight = g.constant(HostTensor.float32([c.out, cin, 3, 3], rng.floats(c.out * cin * 9, -1, 1)));
      const bias = c.bias ? g.constant(HostTensor.float32([c.out], rng.floats(c.out, -1, 1))) : null;
      g.output(winogradConv3x3(x, weight, bias), 'winograd');
      g.output(conv2d(x, weight, bias, { padding: 1 }), 'direct');
      const input = HostTensor.float32(c.shape, rng.floats(c.shape.reduce((a, b) => a * b, 1), -2, 2));
      const out = await runGraph(g, { x: input });
      assert.deepEqual(out.winograd.shape, [c.shape[0], c.out, c.shape[2], c.shape[3]]);
      // F(4x4, 3x3) rounds more than the direct sum (its transforms scale by up to 8 and 1/24): about 1e-6 of the
      // outputs' RMS here, while a wrong coefficient is an error of order one.
      assertClose(out.winograd, out.direct, { atol: 2e-4, rel_l2: 5e-6 }, c.name);
    });
  }

  it('refuses odd map sizes and kernels that are not 3x3', () => {
    const g = new Graph('bad');
    const w3 = g.constant(HostTensor.float32([4, 4, 3, 3]));
    assert.throws(() => winogradConv3x3(g.input('odd', 'float32', [1, 4, 6, 8]), w3, null), /spatial size 6 must be a multiple of 4/);
    const w5 = g.constant(HostTensor.float32([4, 4, 5, 5]));
    assert.throws(() => winogradConv3x3(g.input('x', 'float32', [1, 4, 8, 8]), w5, null), /must be \[out, 4, 3, 3\]/);
  });
});

describe('DC-AE with Winograd in every ResBlock and eligible up-block (dcae_tiny)', () => {
  const manifest = loadManifest('dcae_tiny');
  const tolerance = (name: string) => manifest.tolerance![name] as { atol: number; rtol: number; rel_l2: number };
  const dir = fixturePath('dcae_tiny', 'component');

  it('encode and decode match the goldens at the manifest tolerance', async () => {
    // The tiny model's ResBlocks have 8 and 16 channels: a threshold of 1 sends all of them, and the
    // decoder's up-blocks into stages 0-2, through Winograd.
    const vae = await loadDcae(dir, { threads: 2, winogradMinChannels: 1 });
    try {
      const latent = await vae.encode(fixtureTensor('dcae_tiny', 'inputs', 'image'));
      assertClose(latent, fixtureTensor('dcae_tiny', 'outputs', 'latent'), tolerance('latent'), 'latent');
      const sample = await vae.decode(fixtureTensor('dcae_tiny', 'inputs', 'latent'));
      assertClose(sample, fixtureTensor('dcae_tiny', 'outputs', 'sample'), tolerance('sample'), 'sample');
    } finally {
      await vae.release();
    }
  });
});
