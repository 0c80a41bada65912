// DC-AE channel norms against their formulas evaluated in plain loops: diffusers RMSNorm over channels (weight
// and bias) and eval-mode BatchNorm2d (the "batch_norm" option of decoder_norm_types, which no fixture covers).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { Graph } from '../src/graph/graph.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { DcaeNormType } from '../src/models/dcae/config.js';
import { channelNorm } from '../src/models/dcae/layers.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { assertClose } from './helpers/compare.js';

const [B, C, H, W] = [2, 5, 3, 4];
const values = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));
const params = {
  'n.weight': values(C, (i) => 0.5 + 0.25 * i),
  'n.bias': values(C, (i) => 0.1 * i - 0.2),
  'n.running_mean': values(C, (i) => 0.3 * i - 0.5),
  'n.running_var': values(C, (i) => 0.2 + 0.4 * i),
};
const x = values(B * C * H * W, (i) => Math.sin(i * 0.7) * 2);
const at = (b: number, c: number, p: number) => (b * C + c) * H * W + p;

function expected(type: DcaeNormType): Float32Array {
  const out = new Float32Array(x.length);
  const { 'n.weight': w, 'n.bias': bias, 'n.running_mean': mean, 'n.running_var': variance } = params;
  for (let b = 0; b < B; b++) {
    for (let p = 0; p < H * W; p++) {
      let ms = 0;
      for (let c = 0; c < C; c++) ms += x[at(b, c, p)] ** 2 / C;
      for (let c = 0; c < C; c++) {
        const v = x[at(b, c, p)];
        out[at(b, c, p)] =
          type === 'rms_norm' ? (v / Math.sqrt(ms + 1e-5)) * w[c] + bias[c] : ((v - mean[c]) / Math.sqrt(variance[c] + 1e-5)) * w[c] + bias[c];
      }
    }
  }
  return out;
}

describe('DC-AE channel norms', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dcae-norm-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'norm.safetensors');
  writeSafetensors(file, {
    ...Object.fromEntries(Object.entries(params).map(([k, v]) => [k, HostTensor.float32([C], v)])),
    'n.num_batches_tracked': HostTensor.int64([], [7]),
  });

  for (const type of ['rms_norm', 'batch_norm'] as const) {
    it(type, async () => {
      const g = new Graph();
      const w = new WeightBinder(g, WeightStore.open(file), {
        ignore: (n) => n.endsWith('num_batches_tracked') || (type === 'rms_norm' && n.includes('running_')),
      });
      g.output(channelNorm(w, 'n', g.input('x', 'float32', ['B', C, 'H', 'W']), type), 'y');
      w.finish('norm');
      const s = await nodeBackend.createSession(compileGraph(g), { threads: 1 });
      const { y } = await s.run({ x: HostTensor.float32([B, C, H, W], x) });
      await s.release();
      assertClose(y, expected(type), { atol: 1e-5, rtol: 1e-5 }, type);
    });
  }
});
