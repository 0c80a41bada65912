// Session open time against graph size: the SANA transformer at the default model's width (D 192) with 7, 14, 28
// and 56 blocks, loaded unpacked from a warm optimized-model cache, so the weights (a few MB) cost nothing and what
// is left is ONNX Runtime resolving and planning the graph. ORT's allocation planner scans its list of freed
// buffers once for every output it plans and reuses a buffer only for a value whose shape it knows; before the
// emitter declared every computed value's shape (onnx-emit.ts, value_info) the list grew with the graph and the open
// faster than the graph: 0.17 / 0.30 / 0.85 / 3.7-5.9 s on a 2-core EPYC, against 0.09 / 0.10 / 0.19 / 0.42 s since.
//
// Usage: npm run build && node dist/bench/graph-size-load.js [--blocks 7,14,28,56] [--runs 3]

import * as fs from 'node:fs';
import * as os from 'node:os';
import { SanaTransformer } from '../src/models/sana/transformer.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { DEFAULT_TRANSFORMER_CONFIG } from '../src/train/default-model/configs.js';
import { initializeSanaTransformer, writeDiffusersComponent } from '../src/train/initialize.js';
import { arg, benchCache, median } from './common.js';

/** A seeded transformer folder with `blocks` blocks (written once under .bench-cache/graph-size/). */
function ensureModel(blocks: number): string {
  const dir = benchCache('graph-size', `blocks-${blocks}`);
  if (fs.existsSync(`${dir}/config.json`)) return dir;
  const config = { ...DEFAULT_TRANSFORMER_CONFIG, num_layers: blocks } as unknown as Record<string, unknown>;
  writeDiffusersComponent(dir, config, initializeSanaTransformer(parseSanaTransformerConfig(config, `${blocks}-block transformer`), 0));
  return dir;
}

async function timedLoad(dir: string): Promise<number> {
  const t = performance.now();
  const model = await SanaTransformer.load(dir, { prepack: false, cacheOptimizedModel: true });
  const s = (performance.now() - t) / 1000;
  await model.release(); // the next load opens new sessions instead of sharing these
  return s;
}

async function main(): Promise<void> {
  const counts = arg('blocks', '7,14,28,56').split(',').map(Number);
  const runs = Number(arg('runs', '3'));
  console.log(`transformer load (caption + denoise graphs, unpacked, warm optimized-model cache), width 192, ${runs} runs each; load average ${os.loadavg()[0].toFixed(2)}`);
  let first: { blocks: number; s: number } | undefined;
  for (const blocks of counts) {
    const dir = ensureModel(blocks);
    await timedLoad(dir); // builds the cache
    const times: number[] = [];
    for (let i = 0; i < runs; i++) times.push(await timedLoad(dir));
    const s = median(times);
    first ??= { blocks, s };
    const ratio = s / first.s;
    const linear = blocks / first.blocks;
    console.log(
      `  ${String(blocks).padStart(3)} blocks: median ${s.toFixed(3)} s [${times.map((t) => t.toFixed(3)).join(', ')}]; ` +
        `${ratio.toFixed(1)}x the ${first.blocks}-block load for ${linear.toFixed(0)}x the blocks (linear ${linear.toFixed(0)}x, quadratic ${(linear * linear).toFixed(0)}x)`,
    );
  }
}

await main();
