// sana-ts: the library's public API. The CLI and the server use only what is exported here.

export { HostTensor } from './io/host-tensor.js';
export type { DType } from './io/host-tensor.js';
export { SafetensorsFile, readSafetensors, writeSafetensors } from './io/safetensors.js';
export { WeightStore, findWeights } from './io/weights.js';
export { encodePng, decodePng, writePng } from './io/png.js';
export type { RgbImage } from './io/png.js';

export { DEFAULT_MODEL_DIR, loadSanaPipeline, pipelineComponents } from './pipeline/components.js';
export type { LoadPipelineOptions, LoadedPipeline } from './pipeline/components.js';
export { SanaPipeline } from './pipeline/sana-pipeline.js';
export type { PipelineEvent, PipelineResult, PipelineTimings, GivenEmbeddings } from './pipeline/sana-pipeline.js';
export type { GenerateRequest } from './pipeline/request.js';
export { RequestError } from './pipeline/request.js';
export { resolvePipelineFolder, hubCacheDir } from './pipeline/model-folder.js';
export { binResolution, ASPECT_RATIO_BINS } from './pipeline/resolution.js';
export { toRgbImages } from './pipeline/postprocess.js';
export { TorchGenerator, torchRandn, torchRand, randnTensor } from './random/torch-rng.js';

export { FlowDpmSolver } from './schedulers/flow-dpm-solver.js';
export { FlowMatchEuler } from './schedulers/flow-euler.js';
export type { FlowScheduler } from './schedulers/flow-scheduler.js';
export { createScheduler, readSchedulerConfig } from './schedulers/scheduler-config.js';

export { SanaTransformer } from './models/sana/transformer.js';
export { readSanaTransformerConfig } from './models/sana/config.js';
export { Dcae, loadDcae } from './models/dcae/model.js';
export { loadGemma2, Gemma2TextEncoder } from './models/gemma2/loader.js';
export { componentLoader, COMPONENT_NAMES } from './models/registry.js';
export type { ComponentRunner, LoadOptions } from './models/component.js';

export { GemmaTokenizer } from './text/tokenizer.js';
export { encodePrompts } from './text/prompt-encoding.js';
export { complexHumanInstruction } from './text/complex-human-instruction.js';

export { nodeBackend, defaultBackend } from './runtime/node-backend.js';
export type { Backend, ModelSession, SessionOptions } from './runtime/backend.js';

// training
export { gradients } from './graph/autodiff/gradients.js';
export { AdamW, clipGradNorm, learningRate, WeightEma } from './train/optimizer.js';
export type { AdamWOptions, LearningRateSchedule } from './train/optimizer.js';
export { TrainSession, readParameters } from './train/train-graph.js';
export { buildFlowMatchingGraph } from './train/flow-matching-objective.js';
export { buildDcaeReconstructionGraph } from './train/dcae-objective.js';
export { trainVae } from './train/vae-trainer.js';
export type { VaeTrainOptions } from './train/vae-trainer.js';
export { trainTransformer } from './train/transformer-trainer.js';
export type { TransformerTrainOptions } from './train/transformer-trainer.js';
export { TrainableLora, DEFAULT_LORA_TARGETS } from './nn/lora-trainable.js';
export type { LoraTrainingSpec } from './nn/lora-trainable.js';
export { trainDefaultModel } from './train/default-model/recipe.js';
export { readCaptionFolder, DataFolderError } from './train/caption-folder.js';
export { writeShapesDataset, evaluationPrompts, checkImage, summarizeChecks } from './train/shapes/index.js';
