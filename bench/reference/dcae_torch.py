"""Plain-PyTorch re-implementation of the diffusers `AutoencoderDC` DECODER (SANA.md section 3).

Purpose: the same-machine "PyTorch reference" timing for bench/dcae.ts. diffusers is not installed here,
so this file rebuilds its decoder module-for-module (same parameter names, so a diffusers safetensors file
loads strictly) and runs the computation the way diffusers does: nearest-upsample to full resolution THEN a
3x3 conv, channel RMSNorm by moving channels last, per-pixel Linear layers on channels-last views, and the
multiscale ReLU linear attention with its interleaved q/k/v head layout, upcast to fp32. Nothing is fused or
optimised beyond what diffusers does, because the point is to time what the reference does.

Run with the Debian python (the default `python3` shim has no torch):
  PY="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3"
  $PY bench/reference/dcae_torch.py --check /work/shared/fixtures/dcae_tiny   # faithfulness vs diffusers goldens
  $PY bench/reference/dcae_torch.py --bench 1024 --runs 3 --threads 2       # f32c32 decode timing
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The real dc-ae-f32c32-sana-1.x config (same as F32C32 in bench/dcae.ts; decoder keys only).
F32C32 = {
    "in_channels": 3, "latent_channels": 32, "attention_head_dim": 32,
    "decoder_block_types": ["ResBlock"] * 3 + ["EfficientViTBlock"] * 3,
    "decoder_block_out_channels": [128, 256, 512, 512, 1024, 1024],
    "decoder_layers_per_block": [3, 3, 3, 3, 3, 3],
    "decoder_qkv_multiscales": [[], [], [], [5], [5], [5]],
    "upsample_block_type": "interpolate", "decoder_norm_types": "rms_norm", "decoder_act_fns": "silu",
    "decoder_in_shortcut": True, "decoder_conv_act_fn": "relu",
}

ACTS = {"silu": nn.SiLU, "swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "mish": nn.Mish}  # diffusers ACT2CLS
activation = lambda name: ACTS[name.lower()]()  # noqa: E731


class RMSNorm(nn.Module):
    """diffusers RMSNorm over the LAST dim with weight and bias; callers move channels last first."""

    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        # Statistics in fp32 (as diffusers), then scale the input by rsqrt and apply the affine.
        variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
        return x * torch.rsqrt(variance + self.eps) * self.weight + self.bias


def channel_norm(norm, x):
    # NCHW -> NHWC view, normalise over channels, back; exactly the movedim round trip diffusers does.
    return norm(x.movedim(1, -1)).movedim(-1, 1)


def make_norm(norm_type, channels):
    if norm_type != "rms_norm":  # SANA.md 3.2 only uses rms_norm; diffusers' batch_norm option is not rebuilt
        raise ValueError(f"norm type {norm_type!r} not supported (only rms_norm)")
    return RMSNorm(channels)


class ResBlock(nn.Module):
    def __init__(self, c, norm_type, act_fn):
        super().__init__()
        self.nonlinearity = activation(act_fn)
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.norm = make_norm(norm_type, c)

    def forward(self, x):
        return channel_norm(self.norm, self.conv2(self.nonlinearity(self.conv1(x)))) + x


class MultiscaleProjection(nn.Module):
    """Depthwise kxk then grouped 1x1 (groups = 3 * heads) over the concatenated q|k|v channels."""

    def __init__(self, inner, heads, k):
        super().__init__()
        self.proj_in = nn.Conv2d(3 * inner, 3 * inner, k, padding=k // 2, groups=3 * inner, bias=False)
        self.proj_out = nn.Conv2d(3 * inner, 3 * inner, 1, 1, 0, groups=3 * heads, bias=False)

    def forward(self, x):
        return self.proj_out(self.proj_in(x))


class MultiscaleLinearAttention(nn.Module):
    """diffusers SanaMultiscaleLinearAttention + SanaMultiscaleAttnProcessor2_0 (residual included)."""

    def __init__(self, c, head_dim, kernel_sizes, norm_type, eps=1e-15):
        super().__init__()
        self.head_dim, self.eps = head_dim, eps
        heads = c // head_dim
        inner = heads * head_dim
        self.to_q = nn.Linear(c, inner, bias=False)
        self.to_k = nn.Linear(c, inner, bias=False)
        self.to_v = nn.Linear(c, inner, bias=False)
        self.to_qkv_multiscale = nn.ModuleList(MultiscaleProjection(inner, heads, k) for k in kernel_sizes)
        self.nonlinearity = nn.ReLU()
        self.to_out = nn.Linear(inner * (1 + len(kernel_sizes)), c, bias=False)
        self.norm_out = make_norm(norm_type, c)

    def forward(self, x):
        b, _, h, w = x.shape
        # diffusers compares the pixel count with the head dim (32 for f32c32), not a fixed 32.
        linear = h * w > self.head_dim
        dtype = x.dtype
        t = x.movedim(1, -1)
        qkv = torch.cat([self.to_q(t), self.to_k(t), self.to_v(t)], dim=3).movedim(-1, 1)
        t = torch.cat([qkv] + [ms(qkv) for ms in self.to_qkv_multiscale], dim=1)
        if linear:
            t = t.to(torch.float32)
        # Heads of 3*head_dim consecutive channels: q, k, v interleaved per head (not thirds of the tensor).
        t = t.reshape(b, -1, 3 * self.head_dim, h * w)
        q, k, v = t.chunk(3, dim=2)
        q, k = self.nonlinearity(q), self.nonlinearity(k)
        if linear:
            v = F.pad(v, (0, 0, 0, 1), mode="constant", value=1)  # ones row -> normaliser in the last row
            out = torch.matmul(torch.matmul(v, k.transpose(-1, -2)), q).to(torch.float32)
            out = (out[:, :, :-1] / (out[:, :, -1:] + self.eps)).to(dtype)
        else:
            scores = torch.matmul(k.transpose(-1, -2), q).to(torch.float32)
            scores = scores / (torch.sum(scores, dim=2, keepdim=True) + self.eps)
            out = torch.matmul(v, scores.to(v.dtype))
        out = torch.reshape(out, (b, -1, h, w))
        out = self.to_out(out.movedim(1, -1)).movedim(-1, 1)
        return channel_norm(self.norm_out, out) + x


class GLUMBConv(nn.Module):
    """Inverted 1x1 -> SiLU -> depthwise 3x3 -> value * SiLU(gate) -> 1x1 -> RMSNorm, residual."""

    def __init__(self, c, expand=4):
        super().__init__()
        hid = int(expand * c)
        self.nonlinearity = nn.SiLU()
        self.conv_inverted = nn.Conv2d(c, 2 * hid, 1, 1, 0)
        self.conv_depth = nn.Conv2d(2 * hid, 2 * hid, 3, 1, 1, groups=2 * hid)
        self.conv_point = nn.Conv2d(hid, c, 1, 1, 0, bias=False)
        self.norm = RMSNorm(c)  # always rms_norm in diffusers' EfficientViTBlock

    def forward(self, x):
        t = self.conv_depth(self.nonlinearity(self.conv_inverted(x)))
        val, gate = torch.chunk(t, 2, dim=1)
        return channel_norm(self.norm, self.conv_point(val * self.nonlinearity(gate))) + x


class EfficientViTBlock(nn.Module):
    def __init__(self, c, head_dim, kernel_sizes, norm_type):
        super().__init__()
        self.attn = MultiscaleLinearAttention(c, head_dim, kernel_sizes, norm_type)
        self.conv_out = GLUMBConv(c)

    def forward(self, x):
        return self.conv_out(self.attn(x))


class DCUpBlock(nn.Module):
    """x2 up-sample: 'interpolate' = nearest x2 then 3x3 conv at full resolution; 'pixel_shuffle' = conv then
    shuffle. Shortcut: repeat each channel R times consecutively, then pixel_shuffle."""

    def __init__(self, cin, cout, interpolate, shortcut=True):
        super().__init__()
        self.interpolate, self.shortcut = interpolate, shortcut
        self.repeats = cout * 4 // cin
        self.conv = nn.Conv2d(cin, cout if interpolate else cout * 4, 3, 1, 1)

    def forward(self, x):
        if self.interpolate:
            y = self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))
        else:
            y = F.pixel_shuffle(self.conv(x), 2)
        if self.shortcut:
            y = y + F.pixel_shuffle(x.repeat_interleave(self.repeats, dim=1), 2)
        return y


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        widths, layers = cfg["decoder_block_out_channels"], cfg["decoder_layers_per_block"]
        n = len(widths)
        per_stage = lambda v: [v] * n if isinstance(v, str) else list(v)  # noqa: E731
        types, norms = per_stage(cfg["decoder_block_types"]), per_stage(cfg.get("decoder_norm_types", "rms_norm"))
        acts, scales = per_stage(cfg.get("decoder_act_fns", "silu")), cfg["decoder_qkv_multiscales"]
        head_dim, latent = cfg.get("attention_head_dim", 32), cfg["latent_channels"]
        interpolate = cfg.get("upsample_block_type", "pixel_shuffle") == "interpolate"

        self.conv_in = nn.Conv2d(latent, widths[-1], 3, 1, 1)
        self.in_shortcut = cfg.get("decoder_in_shortcut", True)
        self.in_repeats = widths[-1] // latent
        # up_blocks[i] is stage i; it is built and run from the deepest stage (n-1) down to 0.
        stages = []
        for i in range(n):
            mods = []
            if i < n - 1 and layers[i] > 0:
                mods.append(DCUpBlock(widths[i + 1], widths[i], interpolate))
            for _ in range(layers[i]):
                if types[i] == "ResBlock":
                    mods.append(ResBlock(widths[i], norms[i], acts[i]))
                elif types[i] == "EfficientViTBlock":
                    mods.append(EfficientViTBlock(widths[i], head_dim, scales[i], norms[i]))
                else:
                    raise ValueError(f"block type {types[i]!r} not supported")
            stages.append(nn.Sequential(*mods))
        self.up_blocks = nn.ModuleList(stages)
        ch = widths[0] if layers[0] > 0 else widths[1]
        self.norm_out = RMSNorm(ch)
        self.conv_act = activation(cfg.get("decoder_conv_act_fn", "relu"))
        self.conv_out = (nn.Conv2d(ch, cfg["in_channels"], 3, 1, 1) if layers[0] > 0
                         else DCUpBlock(ch, cfg["in_channels"], interpolate, shortcut=False))

    def forward(self, z):
        x = self.conv_in(z)
        if self.in_shortcut:
            x = x + z.repeat_interleave(self.in_repeats, dim=1)
        for stage in reversed(self.up_blocks):
            x = stage(x)
        return self.conv_out(self.conv_act(channel_norm(self.norm_out, x)))


class DecoderModel(nn.Module):
    def __init__(self, cfg):  # wrapper so parameter names carry the diffusers 'decoder.' prefix
        super().__init__()
        self.decoder = Decoder(cfg)

    def forward(self, z):
        return self.decoder(z)


SAFETENSORS_DTYPES = {"F32": "<f4", "I64": "<i8"}  # weights are F32; fixture masks and token ids are I64


def read_safetensors(path):
    """Minimal safetensors reader: u64 LE header length, JSON header, raw little-endian tensor bytes."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen])
    base, out = 8 + hlen, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in SAFETENSORS_DTYPES:
            raise ValueError(f"{name}: dtype {info['dtype']} not supported (F32 and I64 only)")
        dtype = np.dtype(SAFETENSORS_DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        arr = np.frombuffer(blob, dtype=dtype, count=(end - start) // dtype.itemsize, offset=base + start)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def load_decoder(component_dir):
    with open(os.path.join(component_dir, "config.json")) as f:
        cfg = json.load(f)
    model = DecoderModel(cfg).eval()
    weights = read_safetensors(os.path.join(component_dir, "diffusion_pytorch_model.safetensors"))
    # The file also holds the encoder; the decoder's keys must match exactly (strict load).
    model.load_state_dict({k: v for k, v in weights.items() if k.startswith("decoder.")}, strict=True)
    return model, cfg


def compare(name, got, want, tol):
    diff = (got - want).abs()
    max_abs = diff.max().item()
    rel_l2 = (diff.pow(2).sum().sqrt() / want.pow(2).sum().sqrt()).item()
    ok = bool((diff <= tol["atol"] + tol["rtol"] * want.abs()).all()) and rel_l2 <= tol["rel_l2"]
    print(f"{name}: max_abs={max_abs:.3e} max_rel={(diff / want.abs().clamp_min(1e-12)).max().item():.3e} "
          f"rel_l2={rel_l2:.3e} (atol={tol['atol']:.3e} rtol={tol['rtol']:.0e} rel_l2<={tol['rel_l2']:.0e}) "
          f"{'OK' if ok else 'FAIL'}")
    return ok, max_abs


def run_check(fixture):
    torch.set_num_threads(1)  # the goldens were made with OMP_NUM_THREADS=1
    with open(os.path.join(fixture, "manifest.json")) as f:
        manifest = json.load(f)
    model, _ = load_decoder(os.path.join(fixture, manifest.get("component_dir", "component")))
    inputs = read_safetensors(os.path.join(fixture, "inputs.safetensors"))
    outputs = read_safetensors(os.path.join(fixture, "outputs.safetensors"))
    # Manifest: sample = decode(inputs.latent), recon = decode(outputs.latent). AutoencoderDC.decode takes the
    # latent as given (the pipeline divides by scaling_factor before calling it), so no scaling here.
    results = {}
    with torch.no_grad():
        for out_name, z in (("sample", inputs["latent"]), ("recon", outputs["latent"])):
            ok, max_abs = compare(out_name, model(z), outputs[out_name], manifest["tolerance"][out_name])
            results[out_name] = {"ok": ok, "max_abs": max_abs, "atol": manifest["tolerance"][out_name]["atol"]}
    all_ok = all(r["ok"] for r in results.values())
    print(json.dumps({"mode": "check", "fixture": fixture, "ok": all_ok, **results}))
    return 0 if all_ok else 1


def blas_library():
    """The BLAS shared library this process loaded (Debian's torch uses whichever libblas.so.3 alternative is set:
    OpenBLAS, or the ~30x slower netlib reference BLAS when OpenBLAS is not installed)."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return None
    return ",".join(sorted(libs)) or None


def init_random(model, seed):
    """Seeded uniform +-sqrt(3/fan_in) weights, norm scales 1+-0.1, biases +-0.02 (like bench/dcae.ts)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = torch.rand(p.shape, generator=g) * 2 - 1
            if p.dim() > 1:
                p.copy_(u * math.sqrt(3 / (p[0].numel())))
            elif ".norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.1 * u)
            else:
                p.copy_(0.02 * u)


def run_bench(size, runs, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = DecoderModel(F32C32).eval()
    init_random(model, 1234)
    lat = size // 32
    z = torch.rand(1, F32C32["latent_channels"], lat, lat, generator=torch.Generator().manual_seed(7)) * 2 - 1
    times = []
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model(z)  # warm-up (allocator, oneDNN primitive caches)
        warmup = time.perf_counter() - t0
        for _ in range(runs):
            t0 = time.perf_counter()
            out = model(z)
            times.append(time.perf_counter() - t0)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    res = {"mode": "bench", "size": size, "runs": runs, "threads": threads, "median_s": statistics.median(times),
           "times_s": times, "warmup_s": warmup, "out_shape": list(out.shape), "finite": bool(torch.isfinite(out).all()),
           "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(), "peak_rss_mib": peak_mib,
           "blas": blas_library(), "load_avg_1m": os.getloadavg()[0]}
    print(f"f32c32 decode {size}x{size} (latent {lat}x{lat}), {threads} threads: median {res['median_s']:.3f} s, "
          f"runs {[round(t, 3) for t in times]}, warm-up {warmup:.3f} s; torch {torch.__version__}, "
          f"mkldnn {res['mkldnn']}, peak RSS {peak_mib:.0f} MiB")
    print(json.dumps(res))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="FIXTURE_DIR", help="compare with diffusers goldens (e.g. dcae_tiny)")
    mode.add_argument("--bench", type=int, metavar="SIZE", help="output image side in pixels (multiple of 32)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.check:
        return run_check(args.check)
    if args.bench % 32:
        ap.error("--bench size must be a multiple of 32")
    return run_bench(args.bench, args.runs, args.threads)


if __name__ == "__main__":
    sys.exit(main())
