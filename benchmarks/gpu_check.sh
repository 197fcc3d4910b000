#!/usr/bin/env bash
# One short GPU check, prepared for an H100/H200-class device machine (about 5 minutes):
# StaticISP throughput for every ISP variant at batch 1024 in float32, with the same
# max|diff| sanity check against the per-image CPU reference as on the CPU.
# Usage (from the repository root): bash benchmarks/gpu_check.sh   (results in $OUT or outputs/gpu_check)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-outputs/gpu_check}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
# The device machine brings its own CUDA torch; install only what the benchmark imports.
python3 -m pip install -q --no-deps -e . 2>/dev/null || true
python3 -c "import torch, colour_demosaicing, skimage, scipy, tifffile" 2>/dev/null ||
    python3 -m pip install -q colour-demosaicing scikit-image scipy tifffile
python3 benchmarks/bench_isp.py --device cuda --batch 1024 --repeats 20 \
    --ref-frames 4 --ref-repeats 1 --json "$out/bench_isp_cuda.json" | tee "$out/bench_isp_cuda.txt"
# Training with the ISP in the loop against ready-made tensors (issue 5's target: ratio >= 0.97):
# ViT-Base/16 at 224 in bf16 on synthetic Raw-Microscopy, the ISP on the GPU.
python3 -c "import datasets, transformers, accelerate, evaluate" 2>/dev/null ||
    python3 -m pip install -q datasets transformers accelerate evaluate
python3 benchmarks/bench_training.py --only classification --device cuda --bf16 \
    --model_name_or_path vit-base-16 --image_size 224 --batch_size 128 --steps 30 --warmup 5 \
    --json "$out/bench_training_cuda.json" | tee "$out/bench_training_cuda.txt"
# Drift synthesis of ViT-Base/16 (12 variants x 7 intensities) on the GPU.
python3 benchmarks/bench_drift.py --device cuda --model_name_or_path vit-base-16 --image_size 224 \
    --json "$out/bench_drift_cuda.json" | tee "$out/bench_drift_cuda.txt"
