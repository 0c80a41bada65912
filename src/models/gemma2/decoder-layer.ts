// One Gemma-2 decoder layer (sandwich norms around attention and the gated GELU MLP) and the (1 + w) RMSNorm.
// ref: SANA.md §4.5

import { Tensor } from '../../graph/graph.js';
import { add, geluTanh, mul } from '../../graph/ops/elementwise.js';
import { rmsNorm } from '../../graph/ops/norm.js';
import { ModelWeights } from '../../nn/model-weights.js';
import { AttentionContext, selfAttention } from './attention.js';
import { Gemma2Config } from './config.js';

/** GemmaRMSNorm: x / sqrt(mean(x^2) + eps) * (1 + w), statistics in float32 (Gemma stores w as an offset from 1). */
export function gemmaRmsNorm(x: Tensor, weights: ModelWeights, name: string, cfg: Gemma2Config): Tensor {
  const w = weights.tensor(`${name}.weight`, [cfg.hiddenSize]);
  return rmsNorm(x, cfg.rmsNormEps, add(w, 1));
}

/** h [B*T, hidden] -> [B*T, hidden] for layer `i`. */
export function decoderLayer(
  h: Tensor,
  i: number,
  cfg: Gemma2Config,
  weights: ModelWeights,
  ctx: AttentionContext,
): Tensor {
  const p = `layers.${i}`;
  const H = cfg.hiddenSize;
  const attnDim = cfg.numAttentionHeads * cfg.headDim;
  const kvDim = cfg.numKeyValueHeads * cfg.headDim;
  const bias = cfg.attentionBias;
  const attn = h.graph.scope('self_attn', () =>
    selfAttention(
      gemmaRmsNorm(h, weights, `${p}.input_layernorm`, cfg),
      cfg,
      {
        q: weights.linear(`${p}.self_attn.q_proj`, attnDim, H, bias),
        k: weights.linear(`${p}.self_attn.k_proj`, kvDim, H, bias),
        v: weights.linear(`${p}.self_attn.v_proj`, kvDim, H, bias),
        o: weights.linear(`${p}.self_attn.o_proj`, H, attnDim, bias),
      },
      ctx,
    ),
  );
  const afterAttn = add(h, gemmaRmsNorm(attn, weights, `${p}.post_attention_layernorm`, cfg));
  const mlp = h.graph.scope('mlp', () => {
    const x = gemmaRmsNorm(afterAttn, weights, `${p}.pre_feedforward_layernorm`, cfg);
    const gate = weights.linear(`${p}.mlp.gate_proj`, cfg.intermediateSize, H)(x);
    const up = weights.linear(`${p}.mlp.up_proj`, cfg.intermediateSize, H)(x);
    return weights.linear(`${p}.mlp.down_proj`, H, cfg.intermediateSize)(mul(geluTanh(gate), up));
  });
  return add(afterAttn, gemmaRmsNorm(mlp, weights, `${p}.post_feedforward_layernorm`, cfg));
}
