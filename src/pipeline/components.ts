// Loading a SANA pipeline folder into the pipeline's components: adapters over the Gemma-2 prompt encoder, the SANA
// transformer (caption keys/values computed once per batch) and DC-AE. Configs are read up front so sizes are
// checked before any weights load; each component's weights load only when the pipeline asks for it.
// ref: SANA.md §0

import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostTensor } from '../io/host-tensor.js';
import { WeightStore, findWeights } from '../io/weights.js';
import { checkLayerCount } from '../nn/layer-count.js';
import { readDcaeConfig } from '../models/dcae/config.js';
import { Dcae, DcaeLoadOptions } from '../models/dcae/model.js';
import { readGemma2Config } from '../models/gemma2/config.js';
import { Gemma2LoadOptions, loadGemma2 } from '../models/gemma2/loader.js';
import { readSanaTransformerConfig } from '../models/sana/config.js';
import { CaptionHandle, SanaTransformer, TransformerPrecision, TransformerQuantization, releaseCaption } from '../models/sana/transformer.js';
import { Backend, SessionOptions } from '../runtime/backend.js';
import { readSchedulerConfig } from '../schedulers/scheduler-config.js';
import { PromptDialect } from '../text/complex-human-instruction.js';
import { encodePrompts } from '../text/prompt-encoding.js';
import { GemmaTokenizer } from '../text/tokenizer.js';
import { resolvePipelineFolder } from './model-folder.js';
import { SanaControlNet } from '../models/sana/controlnet.js';
import { LoraFileSpec, LoraSet } from '../nn/lora.js';
import { CaptionCache, Denoiser, LatentDecoder, PromptEncoder } from './ports.js';
import { PipelineComponents, PipelineOptions, SanaPipeline } from './sana-pipeline.js';
import { sessionDevice } from '../runtime/device.js';
import { AUTO_MIN_WEIGHT_BYTES } from '../runtime/optimized-model-cache.js';

export interface LoadPipelineOptions extends SessionOptions, PipelineOptions {
  /** Prompt handling: diffusers (default) or the original NVlabs code (SANA.md §10). */
  dialect?: PromptDialect;
  /** Weight-only quantization of the text encoder's linear layers. */
  textQuantization?: Gemma2LoadOptions['quantization'];
  /** The transformer's linear layers in int8 (SanaTransformer quantization; quantized once into the weight cache). */
  transformerQuantization?: TransformerQuantization;
  /** The transformer's compute precision (SanaTransformer precision): float32 (default) or float16 for GPUs. */
  transformerPrecision?: TransformerPrecision;
  /** Tiled VAE decode (bounded memory for large images): true for diffusers' 512/448 px tiles. */
  vaeTiling?: DcaeLoadOptions['tiling'];
  /** Weight variant to prefer (fp16, bf16). */
  variant?: string;
  /** LoRA files for the transformer, each with a strength; fused into the weights with loraFuse. */
  loras?: readonly LoraFileSpec[];
  loraFuse?: boolean;
  /** The ONNX Runtime flavour the components run on (default: onnxruntime-node; the web page passes onnxruntime-web). */
  backend?: Backend;
}

export interface LoadedPipeline {
  pipeline: SanaPipeline;
  /** What PNG metadata calls the model: the repo id or folder given. */
  modelName: string;
}

/** Builds the pipeline's components for a model folder or a repo id in the local Hugging Face cache. */
export function pipelineComponents(model: string, options: LoadPipelineOptions = {}): PipelineComponents {
  const folder = resolvePipelineFolder(model);
  const dirs = folder.components;
  const transformerConfig = readSanaTransformerConfig(dirs.transformer);
  checkTransformerLayersEarly(dirs.transformer, transformerConfig.numLayers, options.variant);
  const vaeConfig = readDcaeConfig(path.join(dirs.vae, 'config.json'));
  const textDir = dirs.text_encoder;
  const tokenizerDir = dirs.tokenizer;
  const textConfig = textDir ? readGemma2Config(path.join(textDir, 'config.json')) : undefined;
  const session: SessionOptions & { backend?: Backend } = {
    threads: options.threads,
    optimization: options.optimization,
    prepack: options.prepack,
    device: options.device,
    backend: options.backend,
  };
  return {
    schedulerConfig: readSchedulerConfig(dirs.scheduler),
    transformer: {
      sampleSize: transformerConfig.sampleSize,
      latentChannels: transformerConfig.inChannels,
      captionChannels: transformerConfig.captionChannels,
      numLayers: transformerConfig.numLayers,
      timestepScale: transformerConfig.timestepScale,
      guidanceEmbeds: transformerConfig.guidanceEmbeds,
      guidanceEmbedsScale: transformerConfig.guidanceEmbedsScale,
    },
    vae: {
      latentChannels: vaeConfig.latentChannels,
      scalingFactor: vaeConfig.scalingFactor,
      compression: vaeConfig.spatialCompressionRatio,
    },
    textHiddenSize: textConfig ? textConfig.hiddenSize : null,
    async loadPromptEncoder() {
      if (!textDir || !tokenizerDir || !textConfig) {
        throw new Error(`model ${folder.root} has no text encoder and tokenizer: give prompt embeddings instead of prompts`);
      }
      const tokenizer = GemmaTokenizer.fromFolder(tokenizerDir);
      // A one-shot run encodes once, so folding 16-bit weights to float32 at load (~20 s for Gemma-2-2B) does not pay.
      // It maps a float32 copy widened once into the weight cache (Gemma-2-2B: 9.3 GB; load 0.3 s, then each encode
      // reads weights as they are), or, when no cache folder has room, casts in the graph at every run (15-27 s per
      // encode of Gemma-2-2B, said in a warning), without the memory arena so each cast copy is freed at once.
      // A resident pipeline (a server) folds once at load instead.
      const oneShot = !options.keepResident;
      const cpu = sessionDevice(options.device) !== 'webgpu';
      const int8 = options.textQuantization === 'int8';
      const encoder = await loadGemma2(textDir, {
        ...session,
        // A one-shot int8 encoder is not prepacked: ORT's MatMulInteger packing of Gemma-2-2B takes ~10 s at load
        // (12.8 s against 2.7 s) and saves ~0.2 s per encode (0.105 s against 0.31 s for a cached prompt); integer
        // products are exact, so both give the same bits (test/pipeline-text-int8.test.ts)
        prepack: session.prepack ?? (oneShot && int8 ? false : undefined),
        variant: options.variant,
        quantization: options.textQuantization,
        // int8 through the integer GEMM (per-channel weights x per-token activations): measured on Gemma-2-2B at 16
        // tokens 0.25 s against 0.78 s with weight-only MatMulNBits and 0.87 s in float32 (bench/text-encoder.ts)
        integerGemm: int8,
        float32Cache: oneShot && cpu && (options.textQuantization ?? 'none') === 'none' && worthAFloat32Cache(textDir, options.variant) ? 'auto' : false,
        // casts of 16-bit weights left in the graph (no float32 cache) run lazily, layer by layer, in a one-shot run;
        // WebGPU adapters may lack shader-f16, so there they are folded on the CPU at load
        lazyCasts: oneShot && cpu,
        // the instruction's keys/values computed once (and kept beside the weight cache), prompts run alone after it
        prefixCache: true,
      });
      return gemmaPromptEncoder(tokenizer, encoder, textConfig.hiddenSize, options.dialect ?? 'diffusers');
    },
    async loadDenoiser() {
      const lora = options.loras?.length ? new LoraSet(options.loras, options.loraFuse) : undefined;
      // A one-shot SANA-Sprint run (1-4 steps) does not prepack: Sana-600M loads in 0.37-0.40 s unpacked against 1.65 s
      // prepacked (2-core EPYC), and its steps are only ~8% slower (see the transformer's session options)
      const fewSteps = !options.keepResident && folder.pipelineClass.startsWith('SanaSprint');
      const transformer = await SanaTransformer.load(dirs.transformer, {
        ...session,
        prepack: session.prepack ?? (fewSteps ? false : undefined),
        variant: options.variant,
        lora,
        quantization: options.transformerQuantization,
        precision: options.transformerPrecision,
      });
      return sanaDenoiser(transformer);
    },
    async loadDecoder() {
      const dcae = await Dcae.load(dirs.vae, { ...session, variant: options.variant, parts: ['decoder'], tiling: options.vaeTiling });
      return dcaeDecoder(dcae);
    },
    hasControlNet: Boolean(dirs.controlnet),
    async loadControlNet() {
      if (!dirs.controlnet) throw new Error(`model ${folder.root} has no controlnet component (a SanaControlNetPipeline folder has one)`);
      const net = await SanaControlNet.load(dirs.controlnet, { ...session, variant: options.variant });
      return {
        async prepareCaption(embeds, mask) {
          const handle = await net.encodeCaption(embeds, mask);
          return { handle, release() {} } as CaptionCache;
        },
        residuals: (latents, timestep, control, scale, caption) =>
          net.blockSamples(latents, timestep, control, scale, (caption as CaptionCache & { handle: CaptionHandle }).handle),
        release: () => net.release(),
      };
    },
    async loadImageEncoder() {
      const dcae = await Dcae.load(dirs.vae, { ...session, variant: options.variant, parts: ['encoder'], tiling: options.vaeTiling });
      return {
        encode: async (images, onNotice) => (await dcae.encode(images, undefined, onNotice)) as HostTensor<'float32'>,
        release: () => dcae.release(),
      };
    },
  };
}

/**
 * Whether a text encoder is big enough for its float32 cache to pay: below the optimised-model cache's threshold
 * (64 MiB of weights, e.g. the bundled default model's 1 MB encoder) widening at run time costs milliseconds, and a
 * cache file would only add a write beside the model. Unreadable weights are left to the load to report.
 */
function worthAFloat32Cache(dir: string, variant?: string): boolean {
  try {
    return WeightStore.open(findWeights(dir, ['model'], variant)).byteSize() >= AUTO_MIN_WEIGHT_BYTES;
  } catch {
    return false;
  }
}

/**
 * The transformer loads after the text encoder has run (seconds to minutes for Gemma-2-2B), so a config whose
 * num_layers the checkpoint does not have is checked here, from the weights' header alone, before any work. A
 * weights file that cannot be found or read is left to the load, which says so in its own words.
 */
function checkTransformerLayersEarly(dir: string, numLayers: number, variant?: string): void {
  let store: WeightStore;
  try {
    store = WeightStore.open(findWeights(dir, ['diffusion_pytorch_model'], variant));
  } catch {
    return;
  }
  checkLayerCount(store, 'transformer_blocks', numLayers, path.join(dir, 'config.json'), 'num_layers');
}

/**
 * The bundled default model: a small SANA trained by `sana train-default` on the coloured-shapes data set (256 px;
 * models/default in the package).
 */
export const DEFAULT_MODEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'models', 'default');
export const DEFAULT_MODEL_NAME = 'sana-ts/default (coloured shapes, 256 px)';

/** Loads a pipeline folder or cached repo id; with no model, the bundled default model. */
export async function loadSanaPipeline(model?: string, options: LoadPipelineOptions = {}): Promise<LoadedPipeline> {
  const folder = model ?? DEFAULT_MODEL_DIR;
  const pipeline = new SanaPipeline(pipelineComponents(folder, options), { keepResident: options.keepResident });
  return { pipeline, modelName: model ?? DEFAULT_MODEL_NAME };
}

function gemmaPromptEncoder(
  tokenizer: GemmaTokenizer,
  encoder: Awaited<ReturnType<typeof loadGemma2>>,
  hiddenSize: number,
  dialect: PromptDialect,
): PromptEncoder {
  // what the load chose differently from the usual (e.g. no room for the float32 cache), said once, with the first encode
  let loadNotices = [...encoder.loadNotices];
  return {
    hiddenSize,
    async encode(prompts, negativePrompt, { maxSequenceLength }) {
      const e = await encodePrompts(prompts, { negative: negativePrompt, maxSequenceLength, dialect }, tokenizer, encoder);
      const warnings = [...loadNotices, ...e.warnings];
      loadNotices = [];
      return {
        promptEmbeds: e.promptEmbeds,
        promptMask: e.promptAttentionMask,
        negativeEmbeds: e.negativePromptEmbeds,
        negativeMask: e.negativePromptAttentionMask,
        warnings,
      };
    },
    release: () => encoder.release(),
  };
}

function sanaDenoiser(transformer: SanaTransformer): Denoiser {
  const c = transformer.config;
  return {
    latentChannels: c.inChannels,
    captionChannels: c.captionChannels,
    sampleSize: c.sampleSize,
    timestepScale: c.timestepScale,
    numLayers: c.numLayers,
    guidanceEmbeds: c.guidanceEmbeds,
    guidanceEmbedsScale: c.guidanceEmbedsScale,
    async prepareCaption(embeds, mask): Promise<CaptionCache & { handle: CaptionHandle }> {
      const handle = await transformer.encodeCaption(embeds, mask);
      // on a GPU the caption's keys and values stay on the device for the batch's steps: freed here
      return { handle, release: () => releaseCaption(handle) };
    },
    async predict(latents, timestep, caption, extras = {}) {
      const handle = (caption as CaptionCache & { handle: CaptionHandle }).handle;
      const out = await transformer.denoise(latents, timestep, handle, extras.guidance, {
        perturbed: extras.perturbed,
        blockResiduals: extras.blockResiduals,
      });
      return out as HostTensor<'float32'>;
    },
    release: () => transformer.release(),
  };
}

function dcaeDecoder(dcae: Dcae): LatentDecoder {
  return {
    latentChannels: dcae.config.latentChannels,
    scalingFactor: dcae.config.scalingFactor,
    decode: async (latents, onTile, onNotice) => (await dcae.decode(latents, onTile, onNotice)) as HostTensor<'float32'>,
    release: () => dcae.release(),
  };
}
