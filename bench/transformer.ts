// Benchmark: one classifier-free-guidance step (batch 2) of the real Sana-600M transformer (D 1152, 28 layers,
// 36 x 32 linear heads, 16 x 72 cross heads, caption 2304, mlp 2.5) with seeded random weights, on the denoise
// graph with cached caption K/V, at 512 px (latent 16 x 16) and 1024 px (32 x 32) with 300 caption tokens.
//
//   npx tsc -p . && node dist/bench/transformer.js [--res 512,1024] [--runs 3] [--threads 2] [--prepack 1]
//                                                  [--caption full,short] [--profile <prefix>] [--int8]
//
// --int8: the int8 transformer (per-channel int8 weights, per-token int8 activations; quantized once into
// .bench-cache/sana-600m/.sana-ts-cache/) is loaded next to the fp32 one and each step is timed on both, back to
// back, with the cosine similarity of the two outputs of the same step (same latents, timestep and caption);
// --int8-activations per-tensor: the fused com.microsoft DynamicQuantizeMatMul instead of per-token scales.
//
// The weights (2.4 GB fp32) are written once to .bench-cache/sana-600m/ (gitignored) and memory-mapped after.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HostTensor } from '../src/io/host-tensor.js';
import { SanaTransformerConfig, parseSanaTransformerConfig, sanaDims } from '../src/models/sana/config.js';
import { SanaTransformer } from '../src/models/sana/transformer.js';
import { arg, rng } from './common.js';

const ROOFLINE_GFLOPS = 450;
const CAPTION_TOKENS = 300;
const BATCH = 2;

const SANA_600M = {
  _class_name: 'SanaTransformer2DModel',
  in_channels: 32,
  out_channels: 32,
  num_attention_heads: 36,
  attention_head_dim: 32,
  num_layers: 28,
  num_cross_attention_heads: 16,
  cross_attention_head_dim: 72,
  cross_attention_dim: 1152,
  caption_channels: 2304,
  mlp_ratio: 2.5,
  dropout: 0.0,
  attention_bias: false,
  sample_size: 32,
  patch_size: 1,
  norm_elementwise_affine: false,
  norm_eps: 1e-6,
  interpolation_scale: null,
  guidance_embeds: false,
  qk_norm: null,
};



/** Every tensor name and shape of the diffusers state dict for this config. */
function stateDictShapes(c: SanaTransformerConfig): Map<string, number[]> {
  const { inner: d, ffnHidden: hf, crossInner: dc } = sanaDims(c);
  const m = new Map<string, number[]>();
  const lin = (p: string, o: number, i: number, bias = true) => {
    m.set(`${p}.weight`, [o, i]);
    if (bias) m.set(`${p}.bias`, [o]);
  };
  m.set('patch_embed.proj.weight', [d, c.inChannels, c.patchSize, c.patchSize]);
  m.set('patch_embed.proj.bias', [d]);
  lin('time_embed.emb.timestep_embedder.linear_1', d, 256);
  lin('time_embed.emb.timestep_embedder.linear_2', d, d);
  lin('time_embed.linear', 6 * d, d);
  lin('caption_projection.linear_1', d, c.captionChannels);
  lin('caption_projection.linear_2', d, d);
  m.set('caption_norm.weight', [d]);
  m.set('scale_shift_table', [2, d]);
  lin('proj_out', c.patchSize * c.patchSize * c.outChannels, d);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer_blocks.${i}`;
    m.set(`${p}.scale_shift_table`, [6, d]);
    for (const x of ['q', 'k', 'v']) lin(`${p}.attn1.to_${x}`, d, d, false);
    lin(`${p}.attn1.to_out.0`, d, d);
    lin(`${p}.attn2.to_q`, dc, d);
    lin(`${p}.attn2.to_k`, dc, d);
    lin(`${p}.attn2.to_v`, dc, d);
    lin(`${p}.attn2.to_out.0`, d, dc);
    m.set(`${p}.ff.conv_inverted.weight`, [2 * hf, d, 1, 1]);
    m.set(`${p}.ff.conv_inverted.bias`, [2 * hf]);
    m.set(`${p}.ff.conv_depth.weight`, [2 * hf, 1, 3, 3]);
    m.set(`${p}.ff.conv_depth.bias`, [2 * hf]);
    m.set(`${p}.ff.conv_point.weight`, [d, hf, 1, 1]);
  }
  return m;
}

/** Streams seeded random fp32 tensors (uniform, std 0.02; norm weights around 1) into a safetensors file. */
function writeRandomCheckpoint(file: string, shapes: Map<string, number[]>): void {
  const names = [...shapes.keys()].sort();
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const n of names) {
    const bytes = shapes.get(n)!.reduce((p, d) => p * d, 1) * 4;
    header[n] = { dtype: 'F32', shape: shapes.get(n), data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeSync(fd, len);
  fs.writeSync(fd, Buffer.from(json));
  const rand = rng(1234);
  const a = 0.02 * Math.sqrt(3);
  for (const n of names) {
    const count = shapes.get(n)!.reduce((p, d) => p * d, 1);
    const data = new Float32Array(count);
    const centre = n.endsWith('norm.weight') ? 1 : 0;
    for (let i = 0; i < count; i++) data[i] = centre + (2 * rand() - 1) * a;
    fs.writeSync(fd, new Uint8Array(data.buffer));
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

function ensureCheckpoint(dir: string): void {
  const weights = path.join(dir, 'diffusion_pytorch_model.safetensors');
  if (fs.existsSync(weights)) return;
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(SANA_600M, null, 2));
  const config = parseSanaTransformerConfig(SANA_600M, 'bench config');
  console.log(`writing seeded random Sana-600M weights to ${weights} (once) ...`);
  const t0 = performance.now();
  writeRandomCheckpoint(weights, stateDictShapes(config));
  console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** FLOPs of one denoise-graph run (2 x M x N x K per product; depthwise conv 2 x 9 per output element). */
function denoiseFlops(c: SanaTransformerConfig, batch: number, tokens: number, captionTokens: number): number {
  const { inner: d, ffnHidden: hf, crossInner: dc, outTokenChannels } = sanaDims(c);
  const m = batch * tokens;
  const h = c.numAttentionHeads;
  const hd = c.attentionHeadDim;
  const selfAttn = 4 * 2 * m * d * d + 2 * (2 * batch * h * (hd + 1) * hd * tokens);
  const cross = 2 * (2 * m * d * dc) + 2 * (2 * batch * tokens * captionTokens * dc);
  const ffn = 2 * m * d * 2 * hf + 2 * m * 2 * hf * 9 + 2 * m * hf * d;
  const edges = 2 * m * c.inChannels * d + 2 * m * d * outTokenChannels;
  return c.numLayers * (selfAttn + cross + ffn) + edges;
}

function captionFlops(c: SanaTransformerConfig, batch: number, captionTokens: number): number {
  const { inner: d, crossInner: dc } = sanaDims(c);
  const m = batch * captionTokens;
  return 2 * m * (c.captionChannels * d + d * d) + c.numLayers * 2 * (2 * m * d * dc);
}

function randomTensor(shape: number[], seed: number): HostTensor {
  const r = rng(seed);
  const n = shape.reduce((p, d) => p * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box-Muller: latents and caption features are roughly standard normal
    const u = Math.max(r(), 1e-12);
    const v = r();
    const rad = Math.sqrt(-2 * Math.log(u));
    data[i] = rad * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) data[i + 1] = rad * Math.sin(2 * Math.PI * v);
  }
  return HostTensor.float32(shape, data);
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const dir = path.resolve('.bench-cache', 'sana-600m');
  ensureCheckpoint(dir);
  if (process.argv.includes('--write-only')) return;
  const resolutions = arg('res', '512,1024').split(',').map(Number);
  const runs = Number(arg('runs', '3'));
  const threads = Number(arg('threads', '2'));
  const prepack = arg('prepack', '1') !== '0';
  const profile = process.argv.includes('--profile') ? arg('profile', 'sana-transformer-profile') : undefined;

  const t0 = performance.now();
  const model = await SanaTransformer.load(dir, { threads, prepack, profilePrefix: profile });
  const loadS = (performance.now() - t0) / 1000;
  const c = model.config;
  let int8: SanaTransformer | undefined;
  if (process.argv.includes('--int8')) {
    const t8 = performance.now();
    const activations = arg('int8-activations', 'per-token') as 'per-token' | 'per-tensor';
    int8 = await SanaTransformer.load(dir, { threads, prepack, quantization: 'int8', int8Activations: activations });
    console.log(`int8 activations: ${activations}`);
    console.log(`int8 transformer: load ${((performance.now() - t8) / 1000).toFixed(2)} s (${int8.weightCache!.created ? 'quantized and cached now' : 'from the cache'}: ${path.basename(int8.weightCache!.file)})`);
  }
  const load = os.loadavg()[0];
  console.log(`Sana-600M transformer (random weights), threads ${threads}, prepack ${prepack ? 'on' : 'off'}, load ${loadS.toFixed(2)} s`);
  console.log(`machine load average at start: ${load.toFixed(2)} on ${os.availableParallelism()} cores${load > 0.5 ? ' (busy: timings are inflated)' : ''}`);

  const caption = randomTensor([BATCH, CAPTION_TOKENS, c.captionChannels], 7);
  // "full": all 300 tokens are real (worst case); "short": a CFG pair as the pipeline makes it for a short prompt
  // (negative "" = 1 token, prompt = 30 tokens), whose all-padding tail encodeCaption trims.
  const captionCases = arg('caption', 'full,short').split(',');
  for (const which of captionCases) {
    const valid = which === 'full' ? [CAPTION_TOKENS, CAPTION_TOKENS] : [1, 30];
    const maskData = new BigInt64Array(BATCH * CAPTION_TOKENS);
    for (let b = 0; b < BATCH; b++) for (let t = 0; t < CAPTION_TOKENS; t++) maskData[b * CAPTION_TOKENS + t] = t < valid[b] ? 1n : 0n;
    const mask = HostTensor.int64([BATCH, CAPTION_TOKENS], maskData);
    const tc = performance.now();
    const handle = await model.encodeCaption(caption, mask);
    const captionS = (performance.now() - tc) / 1000;
    const kept = handle.tokens;
    const cf = captionFlops(c, BATCH, kept);
    console.log(`[${which} caption: ${kept} of ${CAPTION_TOKENS} tokens kept] caption graph (once per image): ${captionS.toFixed(3)} s, ${(cf / 1e9).toFixed(1)} GFLOP`);

    for (const res of resolutions) {
      const side = res / 32;
      const latents = randomTensor([BATCH, c.inChannels, side, side], res);
      const timestep = HostTensor.float32([BATCH], [999, 999]);
      await model.denoise(latents, timestep, handle); // warm-up (first run allocates and plans)
      if (int8) await int8.denoise(latents, timestep, handle); // the caption graph is the same float32 one
      const times: number[] = [];
      const cpuTimes: number[] = [];
      const times8: number[] = [];
      const cpuTimes8: number[] = [];
      const cosines: number[] = [];
      const timed = async (m: SanaTransformer, wall: number[], cpuUsed: number[]) => {
        const t = performance.now();
        const cpu = process.cpuUsage();
        const out = await m.denoise(latents, timestep, handle);
        wall.push((performance.now() - t) / 1000);
        const used = process.cpuUsage(cpu);
        cpuUsed.push((used.user + used.system) / 1e6);
        if (!out.toFloat32().every(Number.isFinite)) throw new Error('non-finite output');
        return out.toFloat32();
      };
      for (let i = 0; i < runs; i++) {
        const ref = await timed(model, times, cpuTimes);
        if (int8) cosines.push(cosine(await timed(int8, times8, cpuTimes8), ref));
      }
      const med = median(times);
      const flops = denoiseFlops(c, BATCH, side * side, kept);
      const gflops = flops / 1e9 / med;
      console.log(
        `  ${res} px (latent ${side}x${side}), CFG batch ${BATCH}: median ${med.toFixed(3)} s of ${runs} [${times.map((t) => t.toFixed(3)).join(', ')}], ` +
          `${(flops / 1e9).toFixed(0)} GFLOP, ${gflops.toFixed(0)} GFLOP/s = ${((100 * gflops) / ROOFLINE_GFLOPS).toFixed(0)}% of ${ROOFLINE_GFLOPS}; ` +
          `CPU ${median(cpuTimes).toFixed(2)} s/step (a contention check: CPU time near threads x wall time means the cores were ours)`,
      );
      if (int8) {
        const med8 = median(times8);
        console.log(
          `  ${res} px int8: median ${med8.toFixed(3)} s [${times8.map((t) => t.toFixed(3)).join(', ')}], CPU ${median(cpuTimes8).toFixed(2)} s/step; ` +
            `speed ${(med / med8).toFixed(2)}x fp32 by wall, ${(median(cpuTimes) / median(cpuTimes8)).toFixed(2)}x by CPU time; ` +
            `cosine of the step output to fp32: min ${Math.min(...cosines).toFixed(6)}`,
        );
      }
    }
  }
  await model.release();
  await int8?.release();
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024 / 1024).toFixed(2)} GiB`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
