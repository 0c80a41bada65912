// Loading a transformers Gemma-2 folder (config.json + model.safetensors or shards) into a runnable text encoder.
// ref: SANA.md §4.5
//
// Weight keys are those of Gemma2Model; a Gemma2ForCausalLM checkpoint (keys prefixed "model.", plus lm_head.weight)
// is accepted as well, its LM head ignored. Linear weights are used as stored (a bf16 file stays bf16 on disk and
// is cast in the graph; pass noConstantFolding to keep that cast lazy) or quantized at load time to int8 / int4.

import * as path from 'node:path';
import { Graph } from '../../graph/graph.js';
import { HostTensor } from '../../io/host-tensor.js';
import { WeightStore, findWeights } from '../../io/weights.js';
import { ModelWeights, WeightQuantization, denseWeights, quantizedWeights } from '../../nn/model-weights.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { Backend, ModelSession } from '../../runtime/backend.js';
import { compileGraph } from '../../runtime/compile.js';
import { defaultBackend } from '../../runtime/node-backend.js';
import { LoadOptions } from '../component.js';
import { Gemma2Config, readGemma2Config } from './config.js';
import { Gemma2GraphOptions, buildGemma2Graph } from './model.js';

export interface Gemma2LoadOptions extends LoadOptions, Gemma2GraphOptions {
  /** Weight-only quantization of every linear layer (MatMulNBits, made at load time); default 'none'. */
  quantization?: WeightQuantization;
  /** Quantization block size along the input features (default 32). */
  quantBlockSize?: number;
  /** MatMulNBits accuracy level: 4 (default) = int8 activations, fastest; 0 = float32 activations. */
  quantAccuracyLevel?: 0 | 4;
  /** Runtime (default: onnxruntime-node). */
  backend?: Backend;
}

export interface Gemma2Outputs {
  /** [B, T, hidden] float32 after the final norm. */
  readonly lastHiddenState: HostTensor<'float32'>;
  /** Every named output of the graph (last_hidden_state, hidden_states.i with outputHiddenStates). */
  readonly all: Record<string, HostTensor>;
}

export class Gemma2TextEncoder {
  constructor(
    readonly config: Gemma2Config,
    readonly session: ModelSession,
  ) {}

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Encodes input_ids and attention_mask, both int64 [B, T]. */
  async encode(inputIds: HostTensor, attentionMask: HostTensor): Promise<Gemma2Outputs> {
    this.checkInputs(inputIds, attentionMask);
    const all = await this.session.run({ input_ids: inputIds, attention_mask: attentionMask });
    return { lastHiddenState: all.last_hidden_state as HostTensor<'float32'>, all };
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private checkInputs(ids: HostTensor, mask: HostTensor): void {
    const where = `Gemma2 text encoder (${this.config.file})`;
    for (const [name, t] of [['input_ids', ids], ['attention_mask', mask]] as const) {
      if (t.dtype !== 'int64' || t.shape.length !== 2) {
        throw new Error(`${where}: ${name} must be int64 [B, T], got ${t.dtype} [${t.shape.join(', ')}]`);
      }
    }
    if (ids.shape[0] !== mask.shape[0] || ids.shape[1] !== mask.shape[1]) {
      throw new Error(`${where}: input_ids [${ids.shape.join(', ')}] and attention_mask [${mask.shape.join(', ')}] differ in shape`);
    }
    if (ids.shape[1] === 0) throw new Error(`${where}: input_ids has no tokens`);
    const vocab = BigInt(this.config.vocabSize);
    for (const id of ids.data as BigInt64Array) {
      if (id < 0n || id >= vocab) throw new Error(`${where}: token id ${id} is outside the vocabulary [0, ${vocab})`);
    }
  }
}

/** Maps Gemma2Model names to a checkpoint's keys: "model." prefix for Gemma2ForCausalLM checkpoints. */
export function gemma2KeyDialect(store: WeightStore): { keyFor: (name: string) => string; ignore: (key: string) => boolean } {
  const prefixed = !store.has('embed_tokens.weight') && store.has('model.embed_tokens.weight');
  return {
    keyFor: prefixed ? (name) => `model.${name}` : (name) => name,
    ignore: (key) => key === 'lm_head.weight',
  };
}

/** Builds the (uncompiled) graph for a Gemma-2 folder; throws one error listing every weight problem. */
export function buildGemma2FromFolder(dir: string, options: Gemma2LoadOptions = {}): { config: Gemma2Config; graph: Graph } {
  const config = readGemma2Config(path.join(dir, 'config.json'));
  const store = WeightStore.open(findWeights(dir, ['model'], options.variant));
  const binder = new WeightBinder(new Graph('gemma2_text_encoder'), store, gemma2KeyDialect(store));
  const quantization = options.quantization ?? 'none';
  let weights: ModelWeights;
  if (quantization === 'none') weights = denseWeights(binder);
  else if (quantization === 'int8' || quantization === 'int4') {
    weights = quantizedWeights(binder, {
      bits: quantization === 'int8' ? 8 : 4,
      blockSize: options.quantBlockSize,
      accuracyLevel: options.quantAccuracyLevel,
    });
  } else throw new Error(`loadGemma2: option quantization must be 'none', 'int8' or 'int4' (got ${JSON.stringify(quantization)})`);
  const graph = buildGemma2Graph(config, weights, options);
  binder.finish(`Gemma2Model (${dir})`);
  return { config, graph };
}

/** Loads a Gemma-2 text encoder from a transformers folder (e.g. a SANA pipeline's text_encoder/). */
export async function loadGemma2(dir: string, options: Gemma2LoadOptions = {}): Promise<Gemma2TextEncoder> {
  const { config, graph } = buildGemma2FromFolder(dir, options);
  const compiled = compileGraph(graph, { docString: `Gemma2Model from ${dir}` });
  const session = await (options.backend ?? defaultBackend).createSession(compiled, options);
  // quantized weights were copied into the session: let their JavaScript copies go
  graph.memoryFiles.clear();
  return new Gemma2TextEncoder(config, session);
}
