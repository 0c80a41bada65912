// The GPU path on this CPU-only machine: onnxruntime-node's WebGPU provider (Dawn) over SwiftShader, the CPU
// Vulkan that Debian's chromium ships. The end-to-end pipeline fixture (tokenizer, Gemma-2, 20 transformer steps,
// DC-AE decode) matches diffusers within the manifest's tolerances on it, the transformer's nodes really run on
// the WebGPU provider (ONNX Runtime's profile says which provider ran each node), and device selection, fallback
// and the errors for missing devices are what a user reads.
// SwiftShader has no shader-f16, so float16 compute cannot run here: the tests check that it is refused cleanly (or
// skipped with a notice by --precision auto); float16 numbers are checked on the CPU provider
// (test/half-precision.test.ts) and on a real GPU by bench/gpu.sh.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { SanaTransformer, releaseCaption } from '../src/models/sana/transformer.js';
import { isDeviceTensor } from '../src/runtime/backend.js';
import { assertClose } from './helpers/compare.js';
import { loadSanaPipeline } from '../src/pipeline/components.js';
import { DeviceError, executionProviders, parseDevice, sessionDevice } from '../src/runtime/device.js';
import { probeDevice, probeHalfPrecision, resolveDevice, resolvePrecision } from '../src/runtime/device-probe.js';
import { nodeBackend } from '../src/runtime/node-backend.js';
import { fixturePath, fixtureTensor } from './helpers/fixtures.js';
import { assertMatchesFixture, e2eFixtureRequest } from './helpers/pipeline-parity.js';

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
// before the first WebGPU session: the Vulkan loader reads it when Dawn creates its instance
if (!process.env.VK_ICD_FILENAMES) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
const CLI = path.resolve('dist/src/cli/main.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sana-webgpu-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));

describe('WebGPU (SwiftShader) and device selection', () => {
  it('finds a WebGPU adapter here (chromium and libvulkan1 installed by .ci/run)', async () => {
    assert.ok(fs.existsSync(SWIFTSHADER_ICD), `${SWIFTSHADER_ICD} (Debian's chromium package) is missing`);
    assert.equal(await probeDevice('webgpu'), null);
  });

  it('sana_pipeline_tiny_e2e on WebGPU: per-step latents and the image match diffusers within the manifest tolerances', async () => {
    const fixture = 'sana_pipeline_tiny_e2e';
    const { pipeline } = await loadSanaPipeline(fixturePath(fixture, 'model'), { device: 'webgpu' });
    const result = await assertMatchesFixture(fixture, pipeline, e2eFixtureRequest());
    await pipeline.release();
    assert.deepEqual(result.images.shape, [1, 3, 256, 192]);
  });

  it("the transformer's nodes run on the WebGPU provider, not on the CPU fallback", async () => {
    const fixture = 'sana_transformer_tiny';
    const prefix = path.join(root, 'profile');
    const t = await SanaTransformer.load(fixturePath(fixture, 'component'), { device: 'webgpu', profilePrefix: prefix, backend: nodeBackend });
    const input = (n: string) => fixtureTensor(fixture, 'inputs', n);
    await t.forward({
      hidden_states: input('hidden_states'),
      encoder_hidden_states: input('encoder_hidden_states'),
      encoder_attention_mask: input('encoder_attention_mask'),
      timestep: input('timestep'),
    });
    const sessions = t as unknown as { denoiseSession: { endProfiling(): void } };
    sessions.denoiseSession.endProfiling();
    await t.release();
    // the caption session profiles too but is not ended: its file stays empty
    const files = fs.readdirSync(root).filter((f) => f.startsWith('profile') && f.endsWith('.json') && fs.statSync(path.join(root, f)).size > 0);
    assert.ok(files.length >= 1, 'ONNX Runtime wrote a profile');
    const providers = new Map<string, number>();
    for (const f of files) {
      const events = JSON.parse(fs.readFileSync(path.join(root, f), 'utf8')) as { cat: string; args?: { provider?: string; op_name?: string } }[];
      for (const e of events) {
        if (e.cat !== 'Node' || !e.args?.provider) continue;
        const key = `${e.args.provider} ${e.args.op_name}`;
        providers.set(key, (providers.get(key) ?? 0) + 1);
      }
    }
    // ORT keeps int64 shape arithmetic (Shape/Gather/Concat/Slice) on the CPU on purpose; every op that computes
    // on activations must be on the GPU (FusedMatMul, a CPU contrib op, is emitted as Transpose + MatMul there)
    const compute = /^(MatMul|Gemm|FusedMatMul|Conv|LayerNormalization|SimplifiedLayerNormalization|RMSNormalization|Softmax|Relu|Div|Pad|Split|Transpose)$/;
    const onCpu = [...providers].filter(([k]) => k.startsWith('CPUExecutionProvider ') && compute.test(k.split(' ')[1]));
    assert.deepEqual(onCpu, [], `compute nodes on the CPU fallback; all: ${JSON.stringify([...providers])}`);
    assert.ok((providers.get('WebGpuExecutionProvider MatMul') ?? 0) + (providers.get('WebGpuExecutionProvider Gemm') ?? 0) > 10, JSON.stringify([...providers]));
  });

  it("the caption's keys and values stay on the device for every step (no upload per step); on the CPU they are host tensors", async () => {
    const fixture = 'sana_transformer_tiny';
    const input = (n: string) => fixtureTensor(fixture, 'inputs', n);
    const reference = fixtureTensor(fixture, 'outputs', 'sample');
    for (const device of ['webgpu', 'cpu'] as const) {
      const t = await SanaTransformer.load(fixturePath(fixture, 'component'), { device, backend: nodeBackend });
      const caption = await t.encodeCaption(input('encoder_hidden_states'), input('encoder_attention_mask'));
      const values = Object.values(caption.tensors);
      assert.equal(values.length, 1 + 2 * t.config.numLayers, 'mask bias + a key and a value per block');
      assert.ok(values.every((v) => isDeviceTensor(v) === (device === 'webgpu')), `${device}: ${values.map((v) => (isDeviceTensor(v) ? 'device' : 'host')).join(', ')}`);
      for (let step = 0; step < 3; step++) {
        assertClose(await t.denoise(input('hidden_states'), input('timestep'), caption), reference, { atol: 1e-5 }, `${device} step ${step + 1}`);
      }
      releaseCaption(caption);
      releaseCaption(caption); // a second release is harmless
      await t.release();
    }
  });

  it('device selection: cpu by default, SANA_DEVICE, auto skips a software adapter, CUDA absent is a clear error', async () => {
    assert.deepEqual(executionProviders(undefined), ['cpu']);
    assert.deepEqual(executionProviders('webgpu'), ['webgpu']);
    assert.equal(await resolveDevice('cpu'), 'cpu');
    const notices: string[] = [];
    assert.equal(await resolveDevice('webgpu', (m) => notices.push(m)), 'webgpu');
    assert.match(notices.join('\n'), /SwiftShader .*slower than --device cpu/);
    notices.length = 0;
    assert.equal(await resolveDevice('auto', (m) => notices.push(m)), 'cpu');
    assert.match(notices.join('\n'), /device: cpu \(no GPU provider works here: cuda: .*webgpu: only SwiftShader/);
    await assert.rejects(resolveDevice('cuda'), (e: Error) => e instanceof DeviceError && /--device cuda: ONNX Runtime's CUDA provider is not installed/.test(e.message));
    assert.throws(() => parseDevice('gpu'), /--device: expected one of cpu, webgpu, cuda, auto, got "gpu"/);
    const saved = process.env.SANA_DEVICE;
    try {
      process.env.SANA_DEVICE = 'webgpu';
      assert.equal(sessionDevice(), 'webgpu');
      assert.equal(sessionDevice('cpu'), 'cpu', 'an explicit device wins');
      process.env.SANA_DEVICE = 'tpu';
      assert.throws(() => sessionDevice(), /SANA_DEVICE: expected cpu, webgpu or cuda, got "tpu"/);
    } finally {
      if (saved === undefined) delete process.env.SANA_DEVICE;
      else process.env.SANA_DEVICE = saved;
    }
  });

  it('float16 on an adapter without shader-f16: fp16 is a clear error, auto falls back to fp32 with a notice', async () => {
    assert.match((await probeHalfPrecision('webgpu')) ?? '', /this webgpu adapter has no float16 shaders \(the shader-f16 feature; SwiftShader has none\)/);
    await assert.rejects(resolvePrecision('fp16', 'webgpu'), (e: unknown) => e instanceof DeviceError && /^--precision fp16: this webgpu adapter has no float16 shaders.*use --precision fp32$/.test(e.message));
    const notices: string[] = [];
    assert.equal(await resolvePrecision('auto', 'webgpu', (m) => notices.push(m)), 'float32');
    assert.match(notices.join('\n'), /^precision: fp32 \(this webgpu adapter has no float16 shaders/);
  });

  it('sana generate --device: no adapter, no CUDA and a bad name are one-line errors before any model loads', () => {
    const cases: [Record<string, string>, string[], RegExp][] = [
      [{}, ['--device', 'webgpu', '--precision', 'fp16'], /--precision fp16: this webgpu adapter has no float16 shaders/],
      [{}, ['--precision', 'fp8'], /--precision: expected auto, fp32, fp16, got "fp8"/],
      [{ VK_ICD_FILENAMES: path.join(root, 'no-such-icd.json') }, ['--device', 'webgpu'], /--device webgpu: ONNX Runtime found no WebGPU adapter .*libvulkan1.*VK_ICD_FILENAMES=/],
      [{}, ['--device', 'cuda'], /--device cuda: ONNX Runtime's CUDA provider is not installed.*cuda12/],
      [{}, ['--device', 'gpu'], /--device: expected one of cpu, webgpu, cuda, auto/],
    ];
    for (const [env, args, message] of cases) {
      const r = spawnSync(process.execPath, [CLI, 'generate', 'a red circle', '-o', path.join(root, 'x.png'), ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
      });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      // the Vulkan loader and Dawn may print their own warnings first (native stderr); ours is the last line
      const ours = r.stderr.trimEnd().split('\n').at(-1)!;
      assert.match(ours, /^sana generate: /);
      assert.match(ours, message);
      assert.doesNotMatch(ours, /onnxruntime_src|\.cc:\d+/, 'no ONNX Runtime source paths');
      assert.doesNotMatch(r.stderr, /\n\s+at .*\.js:\d+/, 'no JavaScript stack trace');
      assert.ok(!fs.existsSync(path.join(root, 'x.png')));
    }
  });
});
