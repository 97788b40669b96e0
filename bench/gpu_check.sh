#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU: the tests marked gpu, then bench/filter.py --device cuda
# at 1080p and 2160p. Two ways to run it:
#   bash bench/gpu_check.sh                 with the project's .venv (installs onnxruntime-gpu over onnxruntime)
#   bash bench/gpu_check.sh --site /tmp/site   on the lent device machine: python3 (PyTorch, CUDA 13) plus what
#       ../shared/device/make-parts.sh carried and assembled into /tmp/site (onnxruntime-gpu, vapoursynth, av)
# Logs go to $OUT (or ./gpu-check) as pytest.log and bench.log.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-check}"; mkdir -p "$out"
if [ "${1:-}" = "--site" ]; then
    py=python3; export PYTHONPATH="$2:$PWD"
else
    [ -x .venv/bin/python ] || bash .ci/setup dev
    py=.venv/bin/python
    "$py" -m pip uninstall -y -q onnxruntime && "$py" -m pip install -q onnxruntime-gpu
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import onnxruntime as o; o.preload_dlls(); print('onnxruntime', o.__version__, o.get_available_providers())"
"$py" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
"$py" -m pytest -q -m gpu -rs -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$out/pytest.log"
"$py" bench/filter.py --device cuda --sizes 1920x1080 3840x2160 --frames 400 2>&1 | tee "$out/bench.log"
