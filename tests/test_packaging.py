"""The shipped models are found from a wheel install as well as from the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_carries_and_finds_the_models(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=600, capture_output=True)
    wheel = next(wheels.glob("vsfilter-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("registry.json", "learned_filter_v1.onnx", "learned_filter_v1.int8.onnx", "learned_filter_v1.json"):
        assert f"vsfilter/model/tiny/{f}" in names
    assert "vsfilter/py.typed" in names
    assert not [n for n in names if n.startswith("training/")], "the pipeline is not installed as a package"
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, timeout=600, capture_output=True)
    probe = ("import vsfilter, sys; from vsfilter.models import model_dir, resolve_model; "
             "s = resolve_model('learned_filter_v1'); print(model_dir()); print(s.int8_path is not None)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    found, has_int8 = out.stdout.split()
    assert Path(found) == site / "vsfilter" / "model" / "tiny" and has_int8 == "True"
