"""Checkpoints of the filter, saved atomically and loaded in one place with one error policy.

A checkpoint is a dict of tensors and plain values (``torch.load(..., weights_only=True)`` reads it):
``model`` (the exportable plain network's state_dict), ``arch`` (``num_blocks``, ``channels``, and
``in_channels`` for quantizer-conditioned networks), and
whatever the writer adds (``train_state`` to resume, ``history``, ``seed``, ...). Anything that cannot be
read as such -- a file that is not a checkpoint, a bare state_dict, a checkpoint of another
architecture or with tensors of the wrong shape -- becomes one :class:`UsageError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from vsfilter.atomic import atomic_open

from .cli import UsageError

__all__ = ["save_checkpoint", "load_checkpoint", "load_model"]


def save_checkpoint(path: Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a reader never sees half a checkpoint)."""
    import torch

    with atomic_open(path, "wb") as fh:
        torch.save(state, fh)


def _fail(path: Path, why: str) -> UsageError:
    return UsageError(f"{path} is not a learned_filter checkpoint ({why})")


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint dict (tensors and plain values only).

    Raises:
        UsageError: missing file, not a torch file, or not a dict with ``model`` and ``arch``.
    """
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):
        raise _fail(path, "not a file torch.save wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _fail(path, "it holds objects other than tensors and plain values") from None
    except (zipfile.BadZipFile, EOFError, RuntimeError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        raise _fail(path, f"unreadable: {first}") from None
    if not isinstance(state, dict) or "model" not in state or "arch" not in state:
        what = "a bare state_dict" if isinstance(state, dict) else type(state).__name__
        raise _fail(path, f"{what}, without 'model' and 'arch'")
    return state


def load_model(path: str | os.PathLike, key: str = "model"):
    """(plain LearnedFilter with the checkpoint's weights, in eval mode, on the CPU; the checkpoint dict)."""
    from .model import LearnedFilter

    state = load_checkpoint(path)
    arch = state["arch"]
    try:
        model = LearnedFilter(int(arch["num_blocks"]), int(arch["channels"]),
                              in_channels=int(arch.get("in_channels", 1)))
        model.load_state_dict(state[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(Path(path), f"bad architecture record: {type(exc).__name__}: {exc}") from None
    except RuntimeError as exc:  # missing/unexpected keys, wrong tensor shapes
        first = str(exc).strip().splitlines()[0][:160]
        raise _fail(Path(path), f"weights do not fit the architecture {dict(arch)}: {first}") from None
    return model.eval(), state


def load_onnx_weights(path: str | os.PathLike):
    """(plain LearnedFilter holding the weights of an exported ``.onnx``, eval mode, CPU; a pseudo-checkpoint).

    The shipped models carry no checkpoint: their ONNX initializers are the network's state_dict (the
    exporter keeps the parameter names), so a warm start reads them back. The block count comes from the
    names, the channel count from the head's shape.
    """
    import onnx
    import torch
    from onnx import numpy_helper

    from .model import LearnedFilter

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError, OSError, ...
        raise _fail(Path(path), f"unreadable ONNX: {type(exc).__name__}") from None
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    blocks = {int(k.split(".")[1]) for k in weights if k.startswith("body.")}
    head = weights.get("head.0.weight")
    if head is None or not blocks:
        raise _fail(Path(path), "its initializers are not a LearnedFilter's (no head.0.weight / body.N.*)")
    arch = {"num_blocks": max(blocks) + 1, "channels": int(head.shape[0])}
    if int(head.shape[1]) > 1:
        arch["in_channels"] = int(head.shape[1])
    model = LearnedFilter(**arch)
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise _fail(Path(path), f"weights do not fit {arch}: {str(exc).strip().splitlines()[0][:160]}") from None
    return model.eval(), {"arch": arch, "model": model.state_dict(), "onnx": str(path)}


def load_weights(path: str | os.PathLike):
    """:func:`load_model` for a checkpoint, :func:`load_onnx_weights` for an ``.onnx`` file."""
    return load_onnx_weights(path) if str(path).lower().endswith(".onnx") else load_model(path)
