#!/usr/bin/env bash
# The device-machine check for the CUDA path (ONNX Runtime CUDA, fp32 and fp16): one prepared script.
#   bash bench/gpu_check.sh [WHEELS_DIR]
# Installs onnxruntime-gpu (from WHEELS_DIR when the machine has no index access) over the CPU
# onnxruntime in .venv, runs the tests marked gpu, then bench/filter.py --device cuda at 1080p and 2160p.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels="${1:-}"
[ -x .venv/bin/python ] || bash .ci/setup dev
pip_args=(-q)
[ -n "$wheels" ] && pip_args+=(--no-index --find-links "$wheels")
.venv/bin/python -m pip uninstall -y -q onnxruntime || true
.venv/bin/python -m pip install "${pip_args[@]}" onnxruntime-gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
.venv/bin/python -c "import onnxruntime as o; print('providers:', o.get_available_providers())"
.venv/bin/python -m pytest -q -m gpu -rs -p no:cacheprovider
.venv/bin/python bench/filter.py --device cuda --sizes 1920x1080 3840x2160 --frames 48
