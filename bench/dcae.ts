// Benchmark: DC-AE f32c32 (dc-ae-f32c32-sana-1.x, SANA.md §3.1) decode with seeded random weights.
//
//   npx tsc -p . && node dist/bench/dcae.js [--size 512] [--runs 3] [--tiled 0] [--prepack 1] [--threads 2]
//                                           [--profile <prefix>] [--torch 1] [--winograd-min 256]
//
// --size N decodes an N x N image (latent N/32); --tiled 1 uses diffusers' tiled decode (512 px tiles, stride
// 448). Run one case per process: peak RSS (process.resourceUsage().maxRSS) covers the whole process. The
// decoder weights (637 MB fp32) are written once to .bench-cache/dcae-f32c32/ (gitignored) and memory-mapped.
//
// Compare with bench/reference/dcae_torch.py (diffusers' decoder in plain PyTorch) run right before or after on the
// same machine: the host's speed drifts by tens of percent between hours, so only back-to-back ratios mean much.
// --torch 1 does that: after our runs it times the reference with the same size, runs and threads (Debian's
// python3-torch, /usr/bin/python3) and prints the speed-up. --winograd-min sets loadDcae's winogradMinChannels
// (Infinity: direct convs only).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Graph, Tensor } from '../src/graph/graph.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { WeightStore } from '../src/io/weights.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { ConfigReader } from '../src/io/config.js';
import { DcaeConfig, parseDcaeConfig } from '../src/models/dcae/config.js';
import { buildDecoder } from '../src/models/dcae/decoder.js';
import { loadDcae } from '../src/models/dcae/model.js';
import { DEFAULT_TILING } from '../src/models/dcae/tiling.js';
import { WINOGRAD_MIN_CHANNELS, stageUsesWinograd, upBlockUsesWinograd } from '../src/models/dcae/winograd.js';
import { arg, rng } from './common.js';

const ROOFLINE_GFLOPS = 450;

const F32C32 = {
  _class_name: 'AutoencoderDC',
  in_channels: 3,
  latent_channels: 32,
  attention_head_dim: 32,
  encoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  decoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  encoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  decoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  encoder_layers_per_block: [2, 2, 2, 3, 3, 3],
  decoder_layers_per_block: [3, 3, 3, 3, 3, 3],
  encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  upsample_block_type: 'interpolate',
  downsample_block_type: 'Conv',
  decoder_norm_types: 'rms_norm',
  decoder_act_fns: 'silu',
  encoder_out_shortcut: true,
  decoder_in_shortcut: true,
  decoder_conv_act_fn: 'relu',
  scaling_factor: 0.41407,
};



/** Records the name and shape of every weight the graph code asks for (the decoder's state dict). */
class ShapeRecorder extends WeightBinder {
  readonly shapes = new Map<string, number[]>();
  override get(name: string, shape: readonly number[]): Tensor {
    this.shapes.set(name, [...shape]);
    return this.graph.input(name, 'float32', shape);
  }
}

function decoderShapes(c: DcaeConfig): Map<string, number[]> {
  const g = new Graph('shapes');
  const rec = new ShapeRecorder(g, WeightStore.fromFiles('none', []));
  buildDecoder(rec, c, g.input('latent', 'float32', ['B', c.latentChannels, 'h', 'w']));
  return rec.shapes;
}

/** Writes config.json and decoder weights (uniform +-sqrt(3/fan_in) weights, norm scales near 1, small biases). */
function ensureCheckpoint(dir: string, c: DcaeConfig): void {
  const weights = path.join(dir, 'diffusion_pytorch_model.safetensors');
  if (fs.existsSync(weights)) return;
  fs.mkdirSync(dir, { recursive: true });
  const random = rng(1234);
  const tensors = new Map<string, HostTensor>();
  for (const [name, shape] of decoderShapes(c)) {
    const n = shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n);
    const isNormScale = shape.length === 1 && /norm[^.]*\.weight$/.test(name);
    const fanIn = shape.length > 1 ? shape.slice(1).reduce((p, d) => p * d, 1) : 1;
    const scale = shape.length > 1 ? Math.sqrt(3 / fanIn) : 0.02;
    for (let i = 0; i < n; i++) data[i] = (isNormScale ? 1 : 0) + (2 * random() - 1) * (isNormScale ? 0.1 : scale);
    tensors.set(name, HostTensor.float32(shape, data));
  }
  writeSafetensors(weights, tensors);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(F32C32, null, 2));
}

/**
 * 2 x multiply-accumulates of every conv, per-pixel linear and attention matmul of the decoder at h x w latent.
 * `executed` counts what our graph runs (the interpolating up-sample conv as four 2x2 phase convs on the
 * low-resolution map, 4/9 of the reference's 3x3 conv on the up-sampled map; Winograd convs, 1/4 of the direct
 * products); otherwise the reference's count.
 */
function decoderFlops(c: DcaeConfig, h: number, w: number, executed = false, winogradMinChannels = WINOGRAD_MIN_CHANNELS): number {
  let macs = 0;
  const conv = (cin: number, cout: number, k: number, groups: number, pixels: number) => {
    macs += (cin / groups) * cout * k * k * pixels;
  };
  const widths = c.decoderBlockOutChannels;
  const stages = widths.length;
  let px = h * w;
  conv(c.latentChannels, widths[stages - 1], 3, 1, px);
  for (let i = stages - 1; i >= 0; i--) {
    const ch = widths[i];
    if (i < stages - 1) {
      px *= 4;
      const phaseConvs = executed && c.upsampleBlockType === 'interpolate';
      const winograd = phaseConvs && upBlockUsesWinograd(i, stages, ch, winogradMinChannels);
      macs += widths[i + 1] * ch * (winograd ? 36 / 16 : phaseConvs ? 4 : 9) * px;
    }
    for (let j = 0; j < c.decoderLayersPerBlock[i]; j++) {
      if (c.decoderBlockTypes[i] === 'ResBlock') {
        if (executed && stageUsesWinograd(i, stages, ch, winogradMinChannels)) {
          macs += 2 * (36 / 16) * ch * ch * px; // Winograd F(4x4, 3x3): 36 channel products per 4x4 outputs (transforms not counted)
        } else {
          conv(ch, ch, 3, 1, px);
          conv(ch, ch, 3, 1, px);
        }
        continue;
      }
      const d = c.attentionHeadDim;
      const heads = ch / d;
      const branches = 1 + c.decoderQkvMultiscales[i].length;
      conv(ch, 3 * ch, 1, 1, px); // q, k, v
      for (const k of c.decoderQkvMultiscales[i]) {
        conv(3 * ch, 3 * ch, k, 3 * ch, px);
        conv(3 * ch, 3 * ch, 1, 3 * heads, px);
      }
      macs += heads * branches * (2 * d * d + d) * px; // v k^T, (v k^T) q, key-sum . q
      conv(branches * ch, ch, 1, 1, px); // to_out
      conv(ch, 8 * ch, 1, 1, px); // conv_inverted
      conv(8 * ch, 8 * ch, 3, 8 * ch, px); // conv_depth
      conv(4 * ch, ch, 1, 1, px); // conv_point
    }
  }
  conv(widths[0], c.inChannels, 3, 1, px);
  return 2 * macs;
}

async function main(): Promise<void> {
  const size = Number(arg('size', '512'));
  const runs = Number(arg('runs', '3'));
  const tiled = arg('tiled', '0') === '1';
  const prepack = arg('prepack', '1') === '1';
  const threads = Number(arg('threads', '2'));
  const profile = process.argv.includes('--profile') ? arg('profile', '/tmp/dcae-profile') : undefined;
  const winogradMinChannels = Number(arg('winograd-min', String(WINOGRAD_MIN_CHANNELS)));
  const dir = path.resolve('.bench-cache', 'dcae-f32c32');
  const config = parseDcaeConfig(new ConfigReader('dc-ae-f32c32 (bench)', F32C32));
  const t0 = performance.now();
  ensureCheckpoint(dir, config);
  if (process.argv.includes('--write-only')) return;
  const t1 = performance.now();
  const vae = await loadDcae(dir, { parts: ['decoder'], threads, prepack, tiling: tiled, profilePrefix: profile, winogradMinChannels });
  const t2 = performance.now();
  const r = config.spatialCompressionRatio;
  const lh = size / r;
  const random = rng(7);
  const latent = HostTensor.float32([1, config.latentChannels, lh, lh], Float32Array.from({ length: config.latentChannels * lh * lh }, () => 2 * random() - 1));
  let flops = decoderFlops(config, lh, lh);
  let executedFlops = decoderFlops(config, lh, lh, true, winogradMinChannels);
  if (tiled && size > DEFAULT_TILING.tileHeight) {
    // Every tile is a separate decode; the tiles overlap, so count each tile's work.
    const tileL = DEFAULT_TILING.tileHeight / r;
    const strideL = DEFAULT_TILING.strideHeight / r;
    const sides: number[] = [];
    for (let i = 0; i < lh; i += strideL) sides.push(Math.min(tileL, lh - i));
    flops = 0;
    executedFlops = 0;
    for (const a of sides) {
      for (const b of sides) {
        flops += decoderFlops(config, a, b);
        executedFlops += decoderFlops(config, a, b, true, winogradMinChannels);
      }
    }
  }
  const times: number[] = [];
  const cpuTimes: number[] = [];
  const loadAtStart = os.loadavg()[0];
  let sample: HostTensor | undefined;
  for (let i = 0; i < runs + 1; i++) {
    const cpu0 = process.cpuUsage();
    const s = performance.now();
    sample = await vae.decode(latent);
    const dt = (performance.now() - s) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    if (i > 0 || runs === 0) {
      times.push(dt);
      cpuTimes.push(cpuS);
    }
    console.log(`  run ${i}${i === 0 ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s wall, ${cpuS.toFixed(2)} s CPU, load ${os.loadavg()[0].toFixed(1)}`);
    if (runs === 0) break;
  }
  await vae.release();
  let finite = true;
  for (const v of sample!.toFloat32()) if (!Number.isFinite(v)) finite = false;
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  const gflops = flops / 1e9 / median;
  console.log(
    JSON.stringify({
      case: `decode ${size}px${tiled ? ' tiled' : ''}`,
      prepack,
      threads,
      output: sample!.shape,
      finite,
      weightsWriteS: +((t1 - t0) / 1000).toFixed(2),
      loadS: +((t2 - t1) / 1000).toFixed(2),
      timesS: times.map((t) => +t.toFixed(2)),
      cpuS: cpuTimes.map((t) => +t.toFixed(2)),
      // Other processes share the 2 cores: a 1-minute load average above ~2 at the start means contended timings.
      loadAvgAtStart: +loadAtStart.toFixed(1),
      medianS: +median.toFixed(2),
      // Effective rates use the reference (diffusers) FLOP count, so they compare with PyTorch's; the executed
      // rate is what the CPU actually did.
      gflop: +(flops / 1e9).toFixed(1),
      gflopPerS: +gflops.toFixed(1),
      rooflinePct: +((100 * gflops) / ROOFLINE_GFLOPS).toFixed(1),
      executedGflop: +(executedFlops / 1e9).toFixed(1),
      executedRooflinePct: +((100 * executedFlops) / 1e9 / median / ROOFLINE_GFLOPS).toFixed(1),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    }),
  );
  if (arg('torch', '0') === '1') {
    if (tiled) throw new Error('--torch 1 compares untiled decodes only');
    const torchS = torchReferenceSeconds(size, runs, threads);
    console.log(JSON.stringify({ case: `decode ${size}px`, torchMedianS: +torchS.toFixed(2), oursMedianS: +median.toFixed(2), speedup: +(torchS / median).toFixed(2) }));
  }
}

/** Times bench/reference/dcae_torch.py with the same settings; returns its median seconds. */
function torchReferenceSeconds(size: number, runs: number, threads: number): number {
  const env = { ...process.env };
  // Debian's torch links OpenBLAS, which rejects the core-type overrides some images set.
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const script = path.resolve('bench', 'reference', 'dcae_torch.py');
  const args = [script, '--bench', String(size), '--runs', String(Math.max(runs, 1)), '--threads', String(threads)];
  const r = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`PyTorch reference failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  const lines = r.stdout.trim().split('\n');
  console.log(`  PyTorch: ${lines[0]}`);
  return (JSON.parse(lines[lines.length - 1]) as { median_s: number }).median_s;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
