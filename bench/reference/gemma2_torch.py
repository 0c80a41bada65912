"""Plain-PyTorch re-implementation of the transformers `Gemma2Model` forward (SANA.md section 4.5).

Purpose: the same-machine "PyTorch reference" timing of the text encoder for bench/pipeline.ts. transformers is
not installed here, so this file rebuilds Gemma2Model module-for-module (same parameter names as
Gemma2Model.save_pretrained, so such a model.safetensors loads strictly) and computes what transformers 4.47
computes with attn_implementation='eager' (its default for Gemma-2, the one SANA ran with): embeddings times
sqrt(hidden) cast to the activation dtype, GemmaRMSNorm x * rsqrt(mean(x^2) + eps) * (1 + w) in fp32, q/k/v
projections, rotate-half RoPE, key/value heads repeated for GQA, scores * query_pre_attn_scalar^-0.5, the
50 * tanh(scores / 50) logit soft-cap, the 4-D causal + padding mask (dtype min, HybridCache's target length = the
sequence) with the sliding window on the even layers, softmax in fp32, o_proj, post-attention norm, then the
pre/post-feed-forward norms around down(gelu_tanh(gate(x)) * up(x)), and the final norm (last_hidden_state,
what SanaPipeline uses). Nothing is fused or optimised beyond what transformers does.

Run with the Debian python (the default `python3` shim has no torch):
  PY="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3"
  $PY bench/reference/gemma2_torch.py --check /work/shared/fixtures/gemma2_tiny   # vs transformers goldens
  $PY bench/reference/gemma2_torch.py --bench --runs 2 --threads 2              # Gemma-2-2B, SANA's two encodes
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

# The real Gemma-2-2B(-it) config (SANA.md 4.5), except the embedding rows: see BENCH_VOCAB.
GEMMA2_2B = {
    "vocab_size": 256000, "hidden_size": 2304, "intermediate_size": 9216, "num_hidden_layers": 26,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 256, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "query_pre_attn_scalar": 256, "attn_logit_softcapping": 50.0, "sliding_window": 4096,
    "hidden_activation": "gelu_pytorch_tanh", "attention_bias": False,
}
# The bench only times the embedding LOOKUP, which does not depend on the table's row count, so it builds 8192
# rows instead of 256000 (2.2 GiB less to initialise and hold). peak_rss_mib_full_vocab adds the missing rows back.
BENCH_VOCAB = 8192
# SanaPipeline's lengths (SANA.md 4.3/4.4): the prompt is encoded WITH the complex human instruction at
# L_all = N_chi + max_sequence_length - 2, where N_chi = 208 ids for diffusers' instruction with the real Gemma
# tokenizer (BOS included; counted with src/text/prompt-encoding.ts, bench/pipeline.ts passes its own count);
# the negative prompt "" WITHOUT it at max_sequence_length = 300.
DEFAULT_PROMPT_TOKENS = 208 + 300 - 2
DEFAULT_NEGATIVE_TOKENS = 300


class GemmaRMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))  # stored as an offset from 1

    def forward(self, x):
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * (1.0 + self.weight.float())).type_as(x)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(positions, head_dim, theta, dtype):
    """Gemma2RotaryEmbedding: inv_freq_j = theta^(-2j/d); angles duplicated over both halves; fp32 then cast."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions[:, :, None].float() * inv_freq[None, None, :]  # (B, L, d/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Gemma2Attention(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        hidden, self.head_dim = cfg["hidden_size"], cfg["head_dim"]
        self.heads, self.kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.scaling = cfg["query_pre_attn_scalar"] ** -0.5
        self.softcap = cfg.get("attn_logit_softcapping")
        bias = cfg.get("attention_bias", False)
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=bias)

    def forward(self, x, cos, sin, mask):
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, -1, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, -1, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, -1, self.head_dim).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        groups = self.heads // self.kv_heads  # repeat_kv: query head h uses kv head h // groups
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        w = torch.matmul(q, k.transpose(2, 3)) * self.scaling
        if self.softcap is not None:
            w = torch.tanh(w / self.softcap) * self.softcap
        w = w + mask[:, :, :, :k.shape[-2]]
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(w, v).transpose(1, 2).reshape(b, n, -1)
        return self.o_proj(out)


class Gemma2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        if cfg.get("hidden_activation", "gelu_pytorch_tanh") != "gelu_pytorch_tanh":
            raise ValueError(f"hidden_activation {cfg['hidden_activation']!r} not supported")
        hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(hidden, inter, bias=False)
        self.up_proj = nn.Linear(hidden, inter, bias=False)
        self.down_proj = nn.Linear(inter, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.gelu(self.gate_proj(x), approximate="tanh") * self.up_proj(x))


class Gemma2DecoderLayer(nn.Module):
    def __init__(self, cfg, layer_idx):
        super().__init__()
        hidden, eps = cfg["hidden_size"], cfg["rms_norm_eps"]
        self.is_sliding = layer_idx % 2 == 0  # even layers: local (sliding-window) attention
        self.sliding_window = cfg["sliding_window"]
        self.self_attn = Gemma2Attention(cfg, layer_idx)
        self.mlp = Gemma2MLP(cfg)
        self.input_layernorm = GemmaRMSNorm(hidden, eps)
        self.post_attention_layernorm = GemmaRMSNorm(hidden, eps)
        self.pre_feedforward_layernorm = GemmaRMSNorm(hidden, eps)
        self.post_feedforward_layernorm = GemmaRMSNorm(hidden, eps)

    def forward(self, h, cos, sin, mask):
        if self.is_sliding:  # keys more than sliding_window - 1 positions back are masked as well
            far = torch.tril(torch.ones_like(mask, dtype=torch.bool), diagonal=-self.sliding_window)
            mask = torch.where(far, torch.finfo(mask.dtype).min, mask)
        h = h + self.post_attention_layernorm(self.self_attn(self.input_layernorm(h), cos, sin, mask))
        return h + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(h)))


def causal_padding_mask(attention_mask, dtype):
    """(B, L) 1 = token -> (B, 1, L, L) additive: 0 where key j <= query i and key j is a token, else dtype min."""
    b, n = attention_mask.shape
    min_value = torch.finfo(dtype).min
    mask = torch.triu(torch.full((n, n), min_value, dtype=dtype), diagonal=1)[None, None].expand(b, 1, n, n).clone()
    padding = (mask + attention_mask[:, None, None, :].to(dtype)) == 0
    return mask.masked_fill(padding, min_value)


class Gemma2Model(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"], padding_idx=cfg.get("pad_token_id", 0))
        self.layers = nn.ModuleList(Gemma2DecoderLayer(cfg, i) for i in range(cfg["num_hidden_layers"]))
        self.norm = GemmaRMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, input_ids, attention_mask, hidden_states=None):
        h = self.embed_tokens(input_ids)
        h = h * torch.tensor(self.cfg["hidden_size"] ** 0.5, dtype=h.dtype)
        positions = torch.arange(input_ids.shape[1])[None].expand(input_ids.shape[0], -1)  # not mask-aware
        cos, sin = rope_cos_sin(positions, self.cfg["head_dim"], self.cfg["rope_theta"], h.dtype)
        mask = causal_padding_mask(attention_mask, h.dtype)
        for layer in self.layers:
            if hidden_states is not None:
                hidden_states.append(h)
            h = layer(h, cos, sin, mask)
        h = self.norm(h)
        if hidden_states is not None:
            hidden_states.append(h)  # transformers' last hidden_states entry is the normed output
        return h


def load_gemma2(component_dir):
    with open(os.path.join(component_dir, "config.json")) as f:
        cfg = json.load(f)
    model = Gemma2Model(cfg).eval()
    weights = read_safetensors(os.path.join(component_dir, "model.safetensors"))
    model.load_state_dict(weights, strict=True)  # Gemma2Model keys (no 'model.' prefix)
    return model, cfg


def run_check(fixture):
    torch.set_num_threads(1)  # the goldens were made with OMP_NUM_THREADS=1
    with open(os.path.join(fixture, "manifest.json")) as f:
        manifest = json.load(f)
    model, _ = load_gemma2(os.path.join(fixture, manifest.get("component_dir", "component")))
    inputs = read_safetensors(os.path.join(fixture, "inputs.safetensors"))
    outputs = read_safetensors(os.path.join(fixture, "outputs.safetensors"))
    hidden = []
    with torch.inference_mode():
        last = model(inputs["input_ids"], inputs["attention_mask"], hidden)
    got = {"last_hidden_state": last, **{f"hidden_states.{i}": t for i, t in enumerate(hidden)}}
    results = {}
    for name, tol in manifest["tolerance"].items():
        ok, max_abs = compare(name, got[name], outputs[name], tol)
        results[name] = {"ok": ok, "max_abs": max_abs, "atol": tol["atol"]}
    all_ok = all(r["ok"] for r in results.values())
    print(json.dumps({"mode": "check", "fixture": fixture, "ok": all_ok, **results}))
    return 0 if all_ok else 1


def run_bench(runs, threads, prompt_tokens, negative_tokens, valid_tokens):
    """SanaPipeline.encode_prompt calls the text encoder twice, batch 1 each: the prompt with the instruction
    (prompt_tokens long, BOS + instruction + prompt valid, the rest padding) and the negative prompt "" without it
    (negative_tokens long, BOS only valid). Each is timed (median of runs after one warm-up)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = dict(GEMMA2_2B, vocab_size=BENCH_VOCAB)
    model = Gemma2Model(cfg).eval()
    init_random(model, 1234)
    g = torch.Generator().manual_seed(7)
    cases = {}
    with torch.inference_mode():
        for name, length, valid in (("prompt", prompt_tokens, min(valid_tokens, prompt_tokens)),
                                    ("negative", negative_tokens, 1)):
            ids = torch.randint(4, BENCH_VOCAB, (1, length), generator=g)
            ids[0, 0] = 2  # <bos>
            ids[0, valid:] = 0  # <pad>, right padding
            mask = torch.zeros(1, length, dtype=torch.int64)
            mask[0, :valid] = 1
            t0 = time.perf_counter()
            out = model(ids, mask)  # warm-up
            warmup = time.perf_counter() - t0
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                out = model(ids, mask)
                times.append(time.perf_counter() - t0)
            cases[name] = {"tokens": length, "valid_tokens": valid, "median_s": statistics.median(times),
                           "times_s": times, "warmup_s": warmup, "finite": bool(torch.isfinite(out).all())}
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    missing_rows = GEMMA2_2B["vocab_size"] - BENCH_VOCAB
    params = sum(p.numel() for p in model.parameters()) + missing_rows * cfg["hidden_size"]
    res = {"mode": "bench", "model": "Gemma-2-2B", "runs": runs, "threads": threads,
           "prompt": cases["prompt"], "negative": cases["negative"],
           "pipeline_s": cases["prompt"]["median_s"] + cases["negative"]["median_s"],
           "embed_rows": BENCH_VOCAB, "params_full_vocab": params, "torch": torch.__version__,
           "peak_rss_mib": peak_mib, "peak_rss_mib_full_vocab": peak_mib + missing_rows * cfg["hidden_size"] * 4 / 2**20,
           "load_avg_1m": os.getloadavg()[0], "blas": blas_library()}
    print(f"Gemma-2-2B encode, {threads} threads: prompt {prompt_tokens} tokens median {cases['prompt']['median_s']:.3f} s "
          f"{[round(x, 3) for x in cases['prompt']['times_s']]}, negative {negative_tokens} tokens median "
          f"{cases['negative']['median_s']:.3f} s {[round(x, 3) for x in cases['negative']['times_s']]}; both "
          f"{res['pipeline_s']:.3f} s; torch {torch.__version__}, peak RSS {peak_mib:.0f} MiB "
          f"({res['peak_rss_mib_full_vocab']:.0f} MiB with the full 256000-row table), load avg {res['load_avg_1m']:.2f}")
    print(json.dumps(res))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="FIXTURE_DIR", help="compare with transformers goldens (gemma2_tiny)")
    mode.add_argument("--bench", action="store_true", help="time Gemma-2-2B (random weights) on SANA's two encodes")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=DEFAULT_PROMPT_TOKENS,
                    help="prompt sequence length L_all (instruction ids + 300 - 2)")
    ap.add_argument("--negative-tokens", type=int, default=DEFAULT_NEGATIVE_TOKENS)
    ap.add_argument("--valid-tokens", type=int, default=DEFAULT_PROMPT_TOKENS - 300 + 12,
                    help="non-padding ids of the prompt sequence (BOS + instruction + prompt)")
    args = ap.parse_args()
    if args.check:
        return run_check(args.check)
    return run_bench(args.runs, args.threads, args.tokens, args.negative_tokens, args.valid_tokens)


if __name__ == "__main__":
    sys.exit(main())
