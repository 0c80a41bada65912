// The bundled default model's architecture: a small SANA (DC-AE f32 autoencoder, linear-attention DiT, seeded
// Gemma-2 text encoder) sized to train on a 2-core CPU and to ship in under 25 MB. Configs are the diffusers /
// transformers config.json contents, so the model loads through the same code as the released checkpoints.
// ref: SANA.md §1.1, §3.1; issue "Training on our engine" (the default model)

/** 256 x 256 images -> 16 x 8 x 8 latents. No full-resolution ResBlocks (empty first stage: conv_in downsamples and
 * conv_out upsamples, as in DC-AE's own f32c32 variants), so training costs little at full resolution. */
export const DEFAULT_VAE_CONFIG = {
  _class_name: 'AutoencoderDC',
  _diffusers_version: '0.32.0',
  in_channels: 3,
  latent_channels: 16,
  attention_head_dim: 32,
  encoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  decoder_block_types: ['ResBlock', 'ResBlock', 'ResBlock', 'EfficientViTBlock', 'EfficientViTBlock', 'EfficientViTBlock'],
  encoder_block_out_channels: [16, 32, 64, 128, 128, 128],
  decoder_block_out_channels: [16, 32, 64, 128, 128, 128],
  encoder_layers_per_block: [0, 1, 1, 1, 1, 1],
  decoder_layers_per_block: [0, 1, 1, 2, 2, 2],
  encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  upsample_block_type: 'interpolate',
  downsample_block_type: 'conv',
  decoder_norm_types: 'rms_norm',
  decoder_act_fns: 'silu',
  encoder_out_shortcut: true,
  decoder_in_shortcut: true,
  decoder_conv_act_fn: 'relu',
  scaling_factor: 1.0,
} as const;

/** The image size the default model generates at. */
export const DEFAULT_IMAGE_SIZE = 256;

/** A 6-block, 192-wide linear DiT on the 8 x 8 latent grid, with the 2-D sin-cos position embedding (as SANA's
 * 2K/4K models) so positions are learnt quickly by a small model. caption_channels = the text encoder's width. */
export const DEFAULT_TRANSFORMER_CONFIG = {
  _class_name: 'SanaTransformer2DModel',
  _diffusers_version: '0.32.0',
  in_channels: 16,
  out_channels: 16,
  num_attention_heads: 6,
  attention_head_dim: 32,
  num_layers: 6,
  num_cross_attention_heads: 6,
  cross_attention_head_dim: 32,
  cross_attention_dim: 192,
  caption_channels: 128,
  mlp_ratio: 2.5,
  dropout: 0.0,
  attention_bias: false,
  sample_size: 8,
  patch_size: 1,
  norm_type: 'ada_norm_single',
  norm_elementwise_affine: false,
  norm_eps: 1e-6,
  interpolation_scale: 1.0,
  guidance_embeds: false,
  qk_norm: null,
  timestep_scale: 1.0,
} as const;

/** Flow-DPM-Solver as SANA's conversion writes it; flow_shift 1 suits the small 8 x 8 x 16 latent. */
export const DEFAULT_SCHEDULER_CONFIG = {
  _class_name: 'DPMSolverMultistepScheduler',
  _diffusers_version: '0.32.0',
  algorithm_type: 'dpmsolver++',
  beta_end: 0.02,
  beta_schedule: 'linear',
  beta_start: 0.0001,
  dynamic_thresholding_ratio: 0.995,
  euler_at_final: false,
  final_sigmas_type: 'zero',
  flow_shift: 1.0,
  lower_order_final: true,
  num_train_timesteps: 1000,
  prediction_type: 'flow_prediction',
  rescale_betas_zero_snr: false,
  sample_max_value: 1.0,
  solver_order: 2,
  solver_type: 'midpoint',
  steps_offset: 0,
  thresholding: false,
  timestep_spacing: 'linspace',
  trained_betas: null,
  use_beta_sigmas: false,
  use_exponential_sigmas: false,
  use_flow_sigmas: true,
  use_karras_sigmas: false,
  use_lu_lambdas: false,
  variance_type: null,
} as const;

export const MODEL_INDEX = {
  _class_name: 'SanaPipeline',
  _diffusers_version: '0.32.0',
  scheduler: ['diffusers', 'DPMSolverMultistepScheduler'],
  text_encoder: ['transformers', 'Gemma2Model'],
  tokenizer: ['transformers', 'GemmaTokenizerFast'],
  transformer: ['diffusers', 'SanaTransformer2DModel'],
  vae: ['diffusers', 'AutoencoderDC'],
} as const;
