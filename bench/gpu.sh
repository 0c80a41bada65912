#!/usr/bin/env bash
# The prepared GPU check (issue #14): builds, runs the fixture parity tests on the GPU, then times the REAL
# Sana-600M configs (random weights) at 1024 px, 20 steps with guidance, plus the text encoder and the DC-AE decode;
# prints one JSON line. Needs no network: run it in a checkout whose node_modules are installed (npm ci), on a
# machine with an NVIDIA driver (WebGPU over its Vulkan driver; CUDA when onnxruntime-node's CUDA provider was
# installed with --onnxruntime-node-install=cuda12). Under 8 minutes on one GPU and 16 cores; the random weights
# (about 6 GB) are written to .bench-cache once.
#   bash bench/gpu.sh [--device cuda|webgpu|auto] [--precision auto|fp32|fp16] [--skip-parity]
# The transformer computes in float16 by default on a GPU that has it (--precision auto), as the fp16 checkpoints do.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p . >/dev/null
exec node dist/bench/gpu.js "$@"
