// Session creation for a ~3 GB fp32 checkpoint: a chain of big linear layers whose weights are bound as external
// data straight from the safetensors file. Reports creation time and peak RSS per mode (prepack off / on), each
// mode in its own child process so that maxRSS belongs to that mode alone. Targets: creation < 5 s, peak RSS
// < 1.3x the file size.
//
// Usage: npm run build && node dist/bench/session-load.js [--layers 36] [--modes off,on]

import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as G from '../src/graph/index.js';
import { Graph } from '../src/graph/index.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeFileAtomic } from '../src/io/atomic-write.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { benchCache, fillRandom, peakRssMiB, timeMs, arg } from './common.js';

const D = 4608; // each layer's weight is [D, D] fp32 = 81 MiB


const LAYERS = Number(arg('layers', '36'));
const weightName = (i: number) => `layers.${i}.weight`;

/** Writes the checkpoint once, one layer at a time (never the whole file in memory), atomically. */
function ensureCheckpoint(): string {
  const file = benchCache(`session-load-${LAYERS}x${D}x${D}.safetensors`);
  if (fs.existsSync(file)) return file;
  const layerBytes = D * D * 4;
  const header: Record<string, unknown> = {};
  for (let i = 0; i < LAYERS; i++) {
    header[weightName(i)] = { dtype: 'F32', shape: [D, D], data_offsets: [i * layerBytes, (i + 1) * layerBytes] };
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const need = LAYERS * layerBytes;
  const free = freeBytes(benchCache());
  if (free !== undefined && free < need * 1.2) throw new Error(`${benchCache()}: ${free} bytes free, need ${need}`);
  console.log(`writing ${file} (${(need / 2 ** 30).toFixed(2)} GiB) ...`);
  const layer = new Float32Array(D * D);
  writeFileAtomic(file, (out) => {
    out.write(len);
    out.write(json);
    for (let i = 0; i < LAYERS; i++) {
      // small weights keep activations bounded through the chain
      fillRandom(layer, i + 1).forEach((v, k, a) => (a[k] = v * 0.03));
      out.write(new Uint8Array(layer.buffer));
    }
  });
  return file;
}

function freeBytes(dir: string): number | undefined {
  try {
    const out = execFileSync('df', ['-k', '--output=avail', dir], { encoding: 'utf8' });
    return Number(out.trim().split('\n').pop()) * 1024;
  } catch {
    return undefined;
  }
}

/** Child: build, compile, create the session (timed), run once (timed), report JSON on stdout. */
async function child(file: string, prepack: boolean): Promise<void> {
  const t0 = process.hrtime.bigint();
  const g = new Graph('session_load');
  const wb = new WeightBinder(g, WeightStore.open(file));
  let x = g.input('x', 'float32', ['M', D]);
  for (let i = 0; i < LAYERS; i++) x = G.linear(x, wb.get(weightName(i), [D, D])); // [M, D]
  wb.finish('session-load bench');
  g.output(x, 'y');
  const model = compileGraph(g);
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let session!: Awaited<ReturnType<typeof nodeBackend.createSession>>;
  const createMs = await timeMs(async () => {
    session = await nodeBackend.createSession(model, { prepack });
  });
  const rssAfterCreate = peakRssMiB();
  const feeds = { x: HostTensor.float32([8, D], fillRandom(new Float32Array(8 * D), 3)) };
  const firstRunMs = await timeMs(() => session.run(feeds));
  const secondRunMs = await timeMs(() => session.run(feeds));
  await session.release();
  console.log(JSON.stringify({ prepack, buildMs, createMs, rssAfterCreate, firstRunMs, secondRunMs, rssPeak: peakRssMiB() }));
}

async function main(): Promise<void> {
  const file = ensureCheckpoint();
  const fileMiB = fs.statSync(file).size / 2 ** 20;
  console.log(`checkpoint ${file}: ${fileMiB.toFixed(0)} MiB, ${LAYERS} linear layers [${D}x${D}] fp32`);
  const modes = arg('modes', 'off,on').split(',');
  for (const mode of modes) {
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', file, '--prepack', mode, '--layers', String(LAYERS)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) {
      console.log(`prepack ${mode}: child failed (status ${r.status}, signal ${r.signal}): ${r.stderr.slice(-2000)}`);
      continue;
    }
    const m = JSON.parse(line);
    const ratio = m.rssPeak / fileMiB;
    console.log(
      `prepack ${mode.padEnd(3)}: graph build+compile ${m.buildMs.toFixed(0)} ms, session creation ${m.createMs.toFixed(0)} ms ` +
        `(target < 5000: ${m.createMs < 5000 ? 'ok' : 'MISSED'}), peak RSS after creation ${m.rssAfterCreate.toFixed(0)} MiB, ` +
        `first run (M=8) ${m.firstRunMs.toFixed(0)} ms, second ${m.secondRunMs.toFixed(0)} ms, ` +
        `peak RSS ${m.rssPeak.toFixed(0)} MiB = ${ratio.toFixed(2)}x file (target < 1.3: ${ratio < 1.3 ? 'ok' : 'MISSED'})`,
    );
  }
}

if (process.argv.includes('--child')) {
  await child(arg('child', ''), arg('prepack', 'off') === 'on');
} else {
  await main();
}
