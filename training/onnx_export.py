"""torch -> ONNX for the filter networks (opset 17, dynamic N/H/W, input ``input``, output ``output``), and
the check that ONNX Runtime computes what torch does."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vsfilter.atomic import atomic_output

from .cli import UsageError

__all__ = ["OPSET", "export_onnx", "check_against_torch"]

OPSET = 17


def export_onnx(model, path: Path) -> None:
    """torch -> ONNX with input ``input`` (``[N, in_channels, H, W]``: the luma, then a quantizer plane for
    two-input models) and output ``output`` (``[N, 1, H, W]``), dynamic batch, height and width."""
    import torch

    dummy = torch.rand(1, getattr(model, "in_channels", 1), 64, 48)
    axes = {0: "N", 2: "H", 3: "W"}
    with atomic_output(path) as tmp:
        torch.onnx.export(model, (dummy,), str(tmp), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes, "output": axes}, opset_version=OPSET, dynamo=False)


def check_against_torch(model, path: Path, atol: float = 1e-5) -> float:
    """Max |ORT - torch| on two odd-sized inputs; raises when above ``atol``."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    rng = np.random.default_rng(0)
    planes = getattr(model, "in_channels", 1)
    for shape in [(1, planes, 37, 53), (2, planes, 120, 96)]:
        x = rng.random(shape, dtype=np.float32)
        with torch.inference_mode():
            ref = model(torch.from_numpy(x)).numpy()
        worst = max(worst, float(np.abs(session.run(None, {"input": x})[0] - ref).max()))
    if worst > atol:
        raise UsageError(f"ONNX Runtime output differs from torch by {worst:.2e} (> {atol})")
    return worst
