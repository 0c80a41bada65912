// Training throughput of the bundled default model's two trainable parts, on random-initialised weights in their
// real configs: one optimizer step's forward + backward (the training graph) against the forward alone run as an
// inference graph on the same shapes (weights bound into the session, as `sana generate` runs them). Prints
// samples/s, effective GFLOP/s of each (products and convolutions, counted from the graphs), the training rate as a
// share of the inference rate, the optimizer's time, and peak RSS.
//
//   node dist/bench/train.js [--part transformer|vae|both] [--batch N] [--steps N] [--threads N]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Graph } from '../src/graph/graph.js';
import { countFlops } from '../src/graph/flops.js';
import { HostTensor } from '../src/io/host-tensor.js';
import { WeightStore, findWeights } from '../src/io/weights.js';
import { parseDcaeConfig } from '../src/models/dcae/config.js';
import { buildDecoder } from '../src/models/dcae/decoder.js';
import { buildEncoder } from '../src/models/dcae/encoder.js';
import { parseSanaTransformerConfig } from '../src/models/sana/config.js';
import { sincosPositionTable } from '../src/models/sana/embeddings.js';
import { captionSide, denoiseSide } from '../src/models/sana/graphs.js';
import { ConfigReader } from '../src/io/config.js';
import { WeightBinder } from '../src/nn/weight-binder.js';
import { compileGraph } from '../src/runtime/compile.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { buildDcaeReconstructionGraph } from '../src/train/dcae-objective.js';
import { DEFAULT_TRANSFORMER_CONFIG, DEFAULT_VAE_CONFIG } from '../src/train/default-model/configs.js';
import { buildFlowMatchingGraph } from '../src/train/flow-matching-objective.js';
import { initializeDcae, initializeSanaTransformer, writeDiffusersComponent } from '../src/train/initialize.js';
import { AdamW } from '../src/train/optimizer.js';
import { TrainSession, TrainableGraph, readParameters } from '../src/train/train-graph.js';
import { ROOFLINE_GFLOPS, arg, benchCache, median, peakRssMiB, rng } from './common.js';

const part = arg('part', 'both');
const steps = Number(arg('steps', '6'));
const threads = Number(arg('threads', '2'));

function random(shape: number[], seed: number): HostTensor<'float32'> {
  const r = rng(seed);
  return HostTensor.float32(shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1));
}

async function timeRuns(run: () => Promise<unknown>, n: number): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return median(times);
}

interface Case {
  name: string;
  batch: number;
  trainable: TrainableGraph;
  store: WeightStore;
  feeds: Record<string, HostTensor>;
  inference: Graph;
  inferenceFeeds: Record<string, HostTensor>;
}

async function measure(c: Case): Promise<Record<string, unknown>> {
  const trainFlops = countFlops(c.trainable.graph);
  const inferFlops = countFlops(c.inference);
  const session = await TrainSession.create(c.trainable, readParameters(c.store, c.trainable.params), { threads });
  const optimizer = new AdamW();
  let adamMs = 0;
  const stepMs = await timeRuns(async () => {
    const out = await session.run(c.feeds);
    const t = performance.now();
    optimizer.update(session.values, out.grads, 1e-4);
    adamMs = performance.now() - t;
  }, steps);
  await session.release();
  const inference = await nodeBackend.createSession(compileGraph(c.inference), { threads });
  const inferMs = await timeRuns(() => inference.run(c.inferenceFeeds), steps);
  await inference.release();
  const trainRate = trainFlops / (stepMs * 1e6);
  const inferRate = inferFlops / (inferMs * 1e6);
  const params = c.trainable.params.reduce((p, q) => p + q.shape.reduce((a, b) => a * b, 1), 0);
  const result = {
    part: c.name,
    batch: c.batch,
    parameters: params,
    stepMs: +stepMs.toFixed(1),
    samplesPerS: +((c.batch * 1000) / stepMs).toFixed(1),
    optimizerMs: +adamMs.toFixed(1),
    trainGflopPerStep: +(trainFlops / 1e9).toFixed(2),
    trainGflopPerS: +trainRate.toFixed(1),
    trainRooflinePct: +((100 * trainRate) / ROOFLINE_GFLOPS).toFixed(1),
    inferenceMs: +inferMs.toFixed(1),
    inferenceGflopPerS: +inferRate.toFixed(1),
    trainShareOfInferenceRate: +(trainRate / inferRate).toFixed(2),
    peakRssMiB: Math.round(peakRssMiB()),
  };
  console.log(
    `${c.name}: batch ${c.batch}, ${(params / 1e6).toFixed(2)} M parameters: step ${stepMs.toFixed(0)} ms (${result.samplesPerS} samples/s; AdamW ${adamMs.toFixed(0)} ms), ` +
      `${result.trainGflopPerStep} GFLOP/step = ${result.trainGflopPerS} GFLOP/s (${result.trainRooflinePct}% of ${ROOFLINE_GFLOPS}); inference forward ${inferMs.toFixed(0)} ms = ` +
      `${result.inferenceGflopPerS} GFLOP/s; training at ${(100 * result.trainShareOfInferenceRate).toFixed(0)}% of the inference rate; peak RSS ${result.peakRssMiB} MiB`,
  );
  return result;
}

function transformerCase(): Case {
  const batch = Number(arg('batch', '32'));
  const raw = DEFAULT_TRANSFORMER_CONFIG as unknown as Record<string, unknown>;
  const config = parseSanaTransformerConfig(raw, 'default transformer');
  const dir = benchCache('train-transformer');
  if (!fs.existsSync(path.join(dir, 'config.json'))) writeDiffusersComponent(dir, raw, initializeSanaTransformer(config, 0));
  const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model']));
  const [c, h, w, tokens] = [config.inChannels, config.sampleSize, config.sampleSize, 16];
  const trainable = buildFlowMatchingGraph(config, store, { batch, height: h, width: w, tokens });
  const feeds = {
    x0: random([batch, c, h, w], 1),
    noise: random([batch, c, h, w], 2),
    sigmas: HostTensor.float32([batch], Float32Array.from({ length: batch }, (_, i) => (i + 0.5) / batch)),
    encoder_hidden_states: random([batch, tokens, config.captionChannels], 3),
    encoder_attention_mask: HostTensor.int64([batch, tokens], new Array(batch * tokens).fill(1)),
  };
  // the same forward as an inference graph: weights bound as external data
  const g = new Graph('transformer_forward');
  const binder = new WeightBinder(g, store);
  const latent = g.input('latent', 'float32', [batch, c, h, w]);
  const side = captionSide(binder, config, g.input('caption', 'float32', [batch, tokens, config.captionChannels]), g.input('mask', 'int64', [batch, tokens]));
  const positions = g.constant(sincosPositionTable(config, h, w), 'pos'); // [N, D]
  g.output(denoiseSide(binder, config, { latent, timestep: g.input('t', 'float32', [batch]), positions, maskBias: side.maskBias, crossKv: side.crossKv }), 'sample');
  const inferenceFeeds = { latent: feeds.x0, caption: feeds.encoder_hidden_states, mask: feeds.encoder_attention_mask, t: HostTensor.float32([batch], new Float32Array(batch).fill(500)) };
  return { name: 'transformer', batch, trainable, store, feeds, inference: g, inferenceFeeds };
}

function vaeCase(): Case {
  const batch = Number(arg('batch', '8'));
  const crop = Number(arg('crop', '128'));
  const raw = DEFAULT_VAE_CONFIG as unknown as Record<string, unknown>;
  const config = parseDcaeConfig(new ConfigReader('default vae', raw));
  const dir = benchCache('train-vae');
  if (!fs.existsSync(path.join(dir, 'config.json'))) writeDiffusersComponent(dir, raw, initializeDcae(config, 0));
  const store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model']));
  const trainable = buildDcaeReconstructionGraph(config, store, { batch, height: crop, width: crop });
  const image = random([batch, 3, crop, crop], 4);
  const g = new Graph('vae_forward');
  const binder = new WeightBinder(g, store);
  const x = g.input('image', 'float32', [batch, 3, crop, crop]);
  g.output(buildDecoder(binder, config, buildEncoder(binder, config, x, undefined, Infinity), undefined, Infinity), 'recon');
  return { name: `vae (${crop} px crops)`, batch, trainable, store, feeds: { image }, inference: g, inferenceFeeds: { image } };
}

const results: Record<string, unknown>[] = [];
if (part === 'transformer' || part === 'both') results.push(await measure(transformerCase()));
if (part === 'vae' || part === 'both') results.push(await measure(vaeCase()));
console.log(JSON.stringify(results));
