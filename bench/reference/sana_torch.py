"""Plain-PyTorch re-implementation of the diffusers `SanaTransformer2DModel` forward (SANA.md sections 1 and 2).

Purpose: the same-machine "PyTorch reference" timing of one denoising step for bench/pipeline.ts. diffusers is
not installed here, so this file rebuilds the transformer module-for-module (same parameter names, so a diffusers
safetensors file loads strictly) and computes what diffusers computes: PatchEmbed (1x1 conv, no positional
embedding for the 512/1024 px models), AdaLayerNormSingle (256-channel cos|sin sinusoid in fp32, MLP, SiLU,
Linear to 6D), caption projection (Linear, GELU-tanh, Linear) then caption_norm RMSNorm, and per block the ReLU
linear self-attention upcast to fp32 with the ones-row trick (SanaLinearAttnProcessor2_0), the cross-attention
through F.scaled_dot_product_attention with the additive (1 - mask) * -10000 bias repeated per head
(SanaAttnProcessor2_0), and the Mix-FFN GLUMBConv on the (B, D, h, w) map. Nothing is fused or optimised beyond
what diffusers does, because the point is to time what the reference does.

torch 1.13 (Debian's) has no F.scaled_dot_product_attention; there the math form softmax(q k^T / sqrt(d) + bias) v
is used, which is what the fixtures' generator shimmed in for the same torch.

Run with the Debian python (the default `python3` shim has no torch):
  PY="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3"
  $PY bench/reference/sana_torch.py --check /work/shared/fixtures/sana_transformer_tiny   # vs diffusers goldens
  $PY bench/reference/sana_torch.py --bench 512 --runs 3 --threads 2   # one CFG step of Sana-600M at 512 px
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from dcae_torch import blas_library, compare, init_random, read_safetensors

# The real Sana_600M_512px transformer config (SANA.md 1.1; the 1024 px model differs only in sample_size 32).
SANA_600M_512 = {
    "in_channels": 32, "out_channels": 32, "num_attention_heads": 36, "attention_head_dim": 32, "num_layers": 28,
    "num_cross_attention_heads": 16, "cross_attention_head_dim": 72, "cross_attention_dim": 1152,
    "caption_channels": 2304, "mlp_ratio": 2.5, "attention_bias": False, "sample_size": 16, "patch_size": 1,
    "norm_elementwise_affine": False, "norm_eps": 1e-6, "interpolation_scale": None, "guidance_embeds": False,
    "qk_norm": None,
}
MAX_SEQUENCE_LENGTH = 300  # SanaPipeline's max_sequence_length: the caption the transformer sees


def timestep_sinusoid(t, channels=256, max_period=10000):
    """diffusers get_timestep_embedding(flip_sin_to_cos=True, downscale_freq_shift=0), fp32: [cos | sin]."""
    half = channels // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class MLP2(nn.Module):
    """linear_1 -> activation -> linear_2 (diffusers TimestepEmbedding and PixArtAlphaTextProjection)."""

    def __init__(self, cin, hidden, act):
        super().__init__()
        self.linear_1 = nn.Linear(cin, hidden)
        self.act = act
        self.linear_2 = nn.Linear(hidden, hidden)

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class TimestepEmbeddings(nn.Module):  # PixArtAlphaCombinedTimestepSizeEmbeddings without additional conditions
    def __init__(self, dim):
        super().__init__()
        self.timestep_embedder = MLP2(256, dim, nn.SiLU())

    def forward(self, t, dtype):
        return self.timestep_embedder(timestep_sinusoid(t).to(dtype))


class AdaLayerNormSingle(nn.Module):
    """Returns (6D modulation for every block, the embedded timestep e used by the final layer)."""

    def __init__(self, dim):
        super().__init__()
        self.emb = TimestepEmbeddings(dim)
        self.silu = nn.SiLU()
        self.linear = nn.Linear(dim, 6 * dim)

    def forward(self, t, dtype):
        e = self.emb(t, dtype)
        return self.linear(self.silu(e)), e


class RMSNorm(nn.Module):
    """diffusers RMSNorm with a weight and no bias: statistics in fp32, x * rsqrt(mean(x^2) + eps) * weight."""

    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        if self.weight.dtype in (torch.float16, torch.bfloat16):
            x = x.to(self.weight.dtype)
        return x * self.weight


class PatchEmbed(nn.Module):
    def __init__(self, cin, dim, patch):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, patch, stride=patch)

    def forward(self, x):  # BCHW -> BNC; no positional embedding when interpolation_scale is None
        return self.proj(x).flatten(2).transpose(1, 2)


def out_projection(dim):  # diffusers Attention.to_out = [Linear, Dropout]: keeps the 'to_out.0.' parameter names
    return nn.ModuleList([nn.Linear(dim, dim), nn.Dropout(0.0)])


class LinearSelfAttention(nn.Module):
    """attn1 with SanaLinearAttnProcessor2_0: ReLU kernels, fp32 core, v padded with a ones row, eps 1e-15."""

    def __init__(self, dim, heads, bias):
        super().__init__()
        self.heads = heads
        self.to_q = nn.Linear(dim, dim, bias=bias)
        self.to_k = nn.Linear(dim, dim, bias=bias)
        self.to_v = nn.Linear(dim, dim, bias=bias)
        self.to_out = out_projection(dim)

    def forward(self, x):
        dtype = x.dtype
        # (B, N, D) -> (B, H, d, N) for q and v, (B, H, N, d) for k: channel = head * d + i, as diffusers splits.
        q = self.to_q(x).transpose(1, 2).unflatten(1, (self.heads, -1))
        k = self.to_k(x).transpose(1, 2).unflatten(1, (self.heads, -1)).transpose(2, 3)
        v = self.to_v(x).transpose(1, 2).unflatten(1, (self.heads, -1))
        q, k = F.relu(q).float(), F.relu(k).float()
        v = F.pad(v.float(), (0, 0, 0, 1), mode="constant", value=1.0)  # (B, H, d + 1, N)
        out = torch.matmul(torch.matmul(v, k), q)  # (B, H, d + 1, N); the last row is the normaliser
        out = out[:, :, :-1] / (out[:, :, -1:] + 1e-15)
        out = out.flatten(1, 2).transpose(1, 2).to(dtype)
        out = self.to_out[1](self.to_out[0](out))
        return out.clip(-65504, 65504) if dtype == torch.float16 else out


def sdpa(q, k, v, bias):
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=0.0, is_causal=False)
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.shape[-1]) + bias  # torch < 2.0: math form
    return torch.matmul(torch.softmax(scores, dim=-1), v)


class CrossAttention(nn.Module):
    """attn2 with SanaAttnProcessor2_0: biased q/k/v, softmax attention over the caption with the additive mask."""

    def __init__(self, dim, heads, head_dim, cross_dim):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(cross_dim, inner)
        self.to_v = nn.Linear(cross_dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim), nn.Dropout(0.0)])

    def forward(self, x, y, bias):
        b = y.shape[0]
        if bias is not None:  # Attention.prepare_attention_mask: (B, 1, L) repeated per head -> (B, heads, 1, L)
            bias = bias.repeat_interleave(self.heads, dim=0).view(b, self.heads, -1, bias.shape[-1])
        q = self.to_q(x).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        k = self.to_k(y).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        v = self.to_v(y).view(b, -1, self.heads, self.head_dim).transpose(1, 2)
        out = sdpa(q, k, v, bias).transpose(1, 2).reshape(b, -1, self.heads * self.head_dim).to(q.dtype)
        return self.to_out[1](self.to_out[0](out))


class GLUMBConv(nn.Module):
    """Mix-FFN: 1x1 (D -> 2Hf) -> SiLU -> depthwise 3x3 -> value * SiLU(gate) -> 1x1 (Hf -> D, no bias)."""

    def __init__(self, dim, ratio):
        super().__init__()
        hid = int(ratio * dim)
        self.nonlinearity = nn.SiLU()
        self.conv_inverted = nn.Conv2d(dim, 2 * hid, 1, 1, 0)
        self.conv_depth = nn.Conv2d(2 * hid, 2 * hid, 3, 1, 1, groups=2 * hid)
        self.conv_point = nn.Conv2d(hid, dim, 1, 1, 0, bias=False)

    def forward(self, x):
        x = self.conv_depth(self.nonlinearity(self.conv_inverted(x)))
        val, gate = torch.chunk(x, 2, dim=1)
        return self.conv_point(val * self.nonlinearity(gate))


class SanaBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        eps = cfg["norm_eps"]
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.attn1 = LinearSelfAttention(dim, cfg["num_attention_heads"], cfg["attention_bias"])
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=cfg["norm_elementwise_affine"], eps=eps)
        self.attn2 = CrossAttention(dim, cfg["num_cross_attention_heads"], cfg["cross_attention_head_dim"],
                                    cfg["cross_attention_dim"])
        self.ff = GLUMBConv(dim, cfg["mlp_ratio"])
        self.scale_shift_table = nn.Parameter(torch.zeros(6, dim))

    def forward(self, x, y, bias, t6, h, w):
        b = x.shape[0]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + t6.reshape(b, 6, -1)).chunk(6, dim=1)
        n = (self.norm1(x) * (1 + scale_msa) + shift_msa).to(x.dtype)
        x = x + gate_msa * self.attn1(n)
        x = self.attn2(x, y, bias) + x  # no norm, modulation or gate on the cross-attention branch
        n = self.norm2(x) * (1 + scale_mlp) + shift_mlp
        f = self.ff(n.unflatten(1, (h, w)).permute(0, 3, 1, 2))
        return x + gate_mlp * f.flatten(2, 3).permute(0, 2, 1)


class SanaTransformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        for key, want in (("interpolation_scale", None), ("guidance_embeds", False), ("qk_norm", None)):
            if cfg.get(key, want) != want:  # 2K/4K pos-embed, Sprint guidance and SANA-1.5 qk norms: not rebuilt
                raise ValueError(f"{key}={cfg[key]!r} not supported (only {want!r})")
        self.cfg = cfg
        dim = cfg["num_attention_heads"] * cfg["attention_head_dim"]
        p = cfg.get("patch_size", 1)
        self.patch_embed = PatchEmbed(cfg["in_channels"], dim, p)
        self.time_embed = AdaLayerNormSingle(dim)
        self.caption_projection = MLP2(cfg["caption_channels"], dim, nn.GELU(approximate="tanh"))
        self.caption_norm = RMSNorm(dim, eps=1e-5)
        self.transformer_blocks = nn.ModuleList(SanaBlock(cfg) for _ in range(cfg["num_layers"]))
        self.scale_shift_table = nn.Parameter(torch.zeros(2, dim))
        self.norm_out = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)  # SanaModulatedNorm's .norm
        self.proj_out = nn.Linear(dim, p * p * (cfg.get("out_channels") or cfg["in_channels"]))

    def forward(self, x, y, timestep, mask=None):
        bias = None
        if mask is not None and mask.ndim == 2:  # (B, L) 1 = token -> additive (B, 1, L)
            bias = ((1 - mask.to(x.dtype)) * -10000.0).unsqueeze(1)
        b, _, height, width = x.shape
        p = self.cfg.get("patch_size", 1)
        h, w = height // p, width // p
        x = self.patch_embed(x)
        t6, e = self.time_embed(timestep, x.dtype)
        y = self.caption_norm(self.caption_projection(y).view(b, -1, x.shape[-1]))
        for block in self.transformer_blocks:
            x = block(x, y, bias, t6, h, w)
        shift, scale = (self.scale_shift_table[None] + e[:, None]).chunk(2, dim=1)  # final layer uses e, not t6
        x = self.proj_out(self.norm_out(x) * (1 + scale) + shift)
        x = x.reshape(b, h, w, p, p, -1).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(b, -1, h * p, w * p)


def load_transformer(component_dir):
    with open(os.path.join(component_dir, "config.json")) as f:
        cfg = json.load(f)
    model = SanaTransformer(cfg).eval()
    weights = read_safetensors(os.path.join(component_dir, "diffusion_pytorch_model.safetensors"))
    model.load_state_dict(weights, strict=True)  # every diffusers key, no more, no fewer
    return model, cfg


def run_check(fixture):
    torch.set_num_threads(1)  # the goldens were made with OMP_NUM_THREADS=1
    with open(os.path.join(fixture, "manifest.json")) as f:
        manifest = json.load(f)
    model, _ = load_transformer(os.path.join(fixture, manifest.get("component_dir", "component")))
    inputs = read_safetensors(os.path.join(fixture, "inputs.safetensors"))
    outputs = read_safetensors(os.path.join(fixture, "outputs.safetensors"))
    tol = manifest["tolerance"]["sample"]
    with torch.inference_mode():
        got = model(inputs["hidden_states"], inputs["encoder_hidden_states"], inputs["timestep"],
                    inputs["encoder_attention_mask"])
    ok, max_abs = compare("sample", got, outputs["sample"], tol)
    print(json.dumps({"mode": "check", "fixture": fixture, "ok": ok,
                      "sample": {"ok": ok, "max_abs": max_abs, "atol": tol["atol"]}}))
    return 0 if ok else 1


def run_bench(size, runs, threads, prompt_tokens):
    """One classifier-free-guidance step as SanaPipeline runs it: the latent doubled to the batch [negative;
    positive], the 300-token captions with their own masks (negative prompt "" -> BOS only), t expanded, the
    transformer forward, then the fp32 guidance combination (the scheduler update, a few element-wise ops on a
    32 x h x w latent, is left out)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = dict(SANA_600M_512, sample_size=size // 32)
    model = SanaTransformer(cfg).eval()
    init_random(model, 1234)
    lat = size // 32
    g = torch.Generator().manual_seed(7)
    latents = torch.randn(1, cfg["in_channels"], lat, lat, generator=g)
    embeds = torch.randn(2, MAX_SEQUENCE_LENGTH, cfg["caption_channels"], generator=g)
    mask = torch.zeros(2, MAX_SEQUENCE_LENGTH, dtype=torch.int64)
    mask[0, :1] = 1  # negative "": [BOS, PAD x 299]
    mask[1, :prompt_tokens] = 1  # positive: BOS + the prompt's tokens
    t = torch.tensor(999.0)
    guidance = 4.5

    def step():
        x = torch.cat([latents] * 2)
        v = model(x, embeds, t.expand(x.shape[0]), mask).float()
        v_neg, v_pos = v.chunk(2)
        return v_neg + guidance * (v_pos - v_neg)

    times = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        out = step()  # warm-up (allocator, oneDNN primitive caches)
        warmup = time.perf_counter() - t0
        for _ in range(runs):
            t0 = time.perf_counter()
            out = step()
            times.append(time.perf_counter() - t0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    params = sum(p.numel() for p in model.parameters())
    res = {"mode": "bench", "model": "Sana-600M", "size": size, "latent": lat, "batch": 2,
           "caption_tokens": MAX_SEQUENCE_LENGTH, "runs": runs, "threads": threads,
           "median_s": statistics.median(times), "times_s": times, "warmup_s": warmup, "params": params,
           "out_shape": list(out.shape), "finite": bool(torch.isfinite(out).all()), "torch": torch.__version__,
           "sdpa": hasattr(F, "scaled_dot_product_attention"), "peak_rss_mib": peak_mib,
           "load_avg_1m": os.getloadavg()[0], "blas": blas_library()}
    print(f"Sana-600M CFG step {size}x{size} (latent {lat}x{lat}, batch 2, caption {MAX_SEQUENCE_LENGTH}), {threads} "
          f"threads: median {res['median_s']:.3f} s, runs {[round(x, 3) for x in times]}, warm-up {warmup:.3f} s; "
          f"{params / 1e6:.1f} M params, torch {torch.__version__}, peak RSS {peak_mib:.0f} MiB, "
          f"load avg {res['load_avg_1m']:.2f}")
    print(json.dumps(res))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="FIXTURE_DIR", help="compare with diffusers goldens (sana_transformer_tiny)")
    mode.add_argument("--bench", type=int, metavar="SIZE", help="output image side in pixels (multiple of 32)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-tokens", type=int, default=12, help="valid caption tokens of the positive prompt")
    args = ap.parse_args()
    if args.check:
        return run_check(args.check)
    if args.bench % 32:
        ap.error("--bench size must be a multiple of 32")
    return run_bench(args.bench, args.runs, args.threads, args.prompt_tokens)


if __name__ == "__main__":
    sys.exit(main())
