// SanaTransformerBlock: AdaLN-modulated linear self-attention, un-modulated cross-attention, and the Mix-FFN
// (GLUMBConv) on the token grid; and the final modulated norm + projection.
// ref: SANA.md §1.4, §1.7, §1.2 step 6

import { Tensor } from '../../graph/graph.js';
import { add, mul, silu, sub } from '../../graph/ops/elementwise.js';
import { conv2d } from '../../graph/ops/conv.js';
import { layerNorm } from '../../graph/ops/norm.js';
import { linear } from '../../graph/ops/linalg.js';
import { SymDim, dimOf, mulDims, reshape, split, transpose, unsqueeze } from '../../graph/ops/shape-ops.js';
import { WeightBinder } from '../../nn/weight-binder.js';
import { linearTokens } from './layers.js';
import { CrossKeyValue, crossAttention, identitySelfAttention, linearSelfAttention, localName } from './attention.js';
import { SanaTransformerConfig, sanaDims } from './config.js';

export interface BlockContext {
  /** [B, 6D] from the time embedding. */
  readonly modulation: Tensor;
  readonly crossKv: CrossKeyValue;
  /** [B, 1, 1, T] additive caption mask bias. */
  readonly maskBias: Tensor;
  /** Token grid size. */
  readonly h: SymDim;
  readonly w: SymDim;
  /** PAG in this block: [B, 1, 1], 1 for the rows whose self-attention map is the identity. */
  readonly perturbedRows?: Tensor;
}

/** table [k, D] + emb reshaped [B, k, D], split into k tensors [B, 1, D]. */
function modulationRows(table: Tensor, emb: Tensor, rows: number, dim: number): Tensor[] {
  const perBatch = reshape(emb, [dimOf(emb, 0), rows, dim]); // [B, k, D]
  return split(add(table, perBatch), 1, new Array<number>(rows).fill(1)); // k x [B, 1, D]
}

/** LayerNorm (affine only where given) then x * (1 + scale) + shift. */
function modulatedNorm(x: Tensor, eps: number, shift: Tensor, scale: Tensor, affine?: { weight: Tensor; bias: Tensor }): Tensor {
  return add(mul(layerNorm(x, eps, affine?.weight, affine?.bias), add(scale, 1)), shift);
}

/**
 * GLUMBConv on modulated tokens [B, N, D]: 1x1 expand, SiLU, 3x3 depthwise, GLU gate, 1x1 project -> [B, N, D].
 * The 1x1 convs are token-major Gemms (prepacked weights, bias fused); only the depthwise conv sees NCHW, and ONNX
 * Runtime folds the two Transposes around it into its NCHWc reorders, so the layout change costs no extra pass.
 */
function mixFfn(w: WeightBinder, config: SanaTransformerConfig, prefix: string, x: Tensor, h: SymDim, wd: SymDim): Tensor {
  const { inner, ffnHidden } = sanaDims(config);
  const wide = 2 * ffnHidden;
  return w.graph.scope(localName(prefix), () => {
    const b = dimOf(x, 0);
    const n = mulDims(h, wd);
    const expanded = silu(linearTokens(w, `${prefix}.conv_inverted`, x, inner, wide, true, [wide, inner, 1, 1])); // [B, N, 2Hf]
    const grid = transpose(reshape(expanded, [b, h, wd, wide]), [0, 3, 1, 2]); // [B, h, w, 2Hf] -> [B, 2Hf, h, w]
    const depthW = w.get(`${prefix}.conv_depth.weight`, [wide, 1, 3, 3]);
    const depth = conv2d(grid, depthW, w.get(`${prefix}.conv_depth.bias`, [wide]), { padding: 1, groups: wide }); // [B, 2Hf, h, w]
    const tokens = reshape(transpose(depth, [0, 2, 3, 1]), [b, n, wide]); // [B, h, w, 2Hf] -> [B, N, 2Hf]
    const [value, gate] = split(tokens, 2, [ffnHidden, ffnHidden]); // 2 x [B, N, Hf]
    const gated = mul(value, silu(gate)); // [B, N, Hf]
    return linearTokens(w, `${prefix}.conv_point`, gated, ffnHidden, inner, false, [inner, ffnHidden, 1, 1]); // [B, N, D]
  });
}

/** One transformer block on x [B, N, D]. */
export function sanaBlock(w: WeightBinder, config: SanaTransformerConfig, index: number, x: Tensor, ctx: BlockContext): Tensor {
  const { inner } = sanaDims(config);
  const prefix = `transformer_blocks.${index}`;
  return w.graph.scope(prefix, () => {
    const table = w.get(`${prefix}.scale_shift_table`, [6, inner]);
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = modulationRows(table, ctx.modulation, 6, inner);
    const eps = config.normEps;

    const attnIn = modulatedNorm(x, eps, shiftMsa, scaleMsa);
    let attended = linearSelfAttention(w, config, `${prefix}.attn1`, attnIn);
    if (ctx.perturbedRows) {
      // rows are either perturbed (1) or not (0): x (1 - m) + y m picks one of the two exactly
      const identity = identitySelfAttention(w, config, `${prefix}.attn1`, attnIn);
      attended = add(mul(attended, sub(1, ctx.perturbedRows)), mul(identity, ctx.perturbedRows));
    }
    let hidden = add(x, mul(gateMsa, attended));

    hidden = add(hidden, crossAttention(w, config, `${prefix}.attn2`, hidden, ctx.crossKv, ctx.maskBias));

    // norm2 carries an affine weight and bias only with norm_elementwise_affine (no released model sets it)
    const affine = config.normElementwiseAffine
      ? { weight: w.get(`${prefix}.norm2.weight`, [inner]), bias: w.get(`${prefix}.norm2.bias`, [inner]) }
      : undefined;
    const ffnIn = modulatedNorm(hidden, eps, shiftMlp, scaleMlp, affine);
    return add(hidden, mul(gateMlp, mixFfn(w, config, `${prefix}.ff`, ffnIn, ctx.h, ctx.w)));
  });
}

/** norm_out: LayerNorm modulated by scale_shift_table [2, D] + the embedded timestep [B, D] (rows: shift, scale). */
export function finalNorm(w: WeightBinder, config: SanaTransformerConfig, x: Tensor, embedded: Tensor): Tensor {
  const { inner } = sanaDims(config);
  return w.graph.scope('norm_out', () => {
    const table = w.get('scale_shift_table', [2, inner]);
    const [shift, scale] = split(add(table, unsqueeze(embedded, [1])), 1, [1, 1]); // 2 x [B, 1, D]
    return modulatedNorm(x, 1e-6, shift, scale);
  });
}

