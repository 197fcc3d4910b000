#!/usr/bin/env bash
# One short GPU check, prepared for an H100/H200-class device machine (about 2 minutes):
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
