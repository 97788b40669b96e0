"""A filter plan: model, backend and precision resolved once, before any frame is rendered.

``plan_filter`` does everything that can fail without looking at a frame -- finding and hashing the
model, picking the backend for a device name, resolving ``precision="auto"``, checking that the
backend can run here -- and returns a small frozen :class:`FilterPlan` that says what will run
(``plan.describe()``), so callers (compare, batch) need not render a frame to learn it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .backends import DEVICES, Backend, BackendBase, Precision, Runner, backend_for_device, resolve_precision
from .errors import BackendError
from .models import ModelSpec, resolve_model

__all__ = ["FilterPlan", "plan_filter"]


@dataclass(frozen=True)
class FilterPlan:
    """What ``vmaf_pre`` will run.

    Attributes:
        spec: the verified model.
        backend: the backend dataclass (``ORT_CPU(...)``, ``TORCH_CUDA(...)``, ...).
        precision: the resolved precision (never ``auto``).
        specialists: the plans of the model's per-codec specialists (``ModelSpec.specialists``), as
            ``(quantizer kind, plan)`` pairs on the same backend and precision.
    """

    spec: ModelSpec
    backend: Backend
    precision: Precision
    specialists: tuple[tuple[str, FilterPlan], ...] = ()

    def describe(self) -> dict[str, str]:
        """``{"id", "sha256", "backend", "precision"}``: the frame props and compare's ``model`` block
        (``sha256`` is the model's identity: the file's digest, with its gate's for a gated model)."""
        return {"id": self.spec.id, "sha256": self.spec.identity, "backend": self.backend.name,
                "precision": self.precision.value}

    def create_runner(self) -> Runner:
        """Build the runner (sessions, compiled models, CUDA streams)."""
        return self.backend.create(self.spec, self.precision)

    def create_specialist_runners(self) -> dict[str, Runner]:
        """Build a runner for each specialist: quantizer kind -> runner (empty for most models)."""
        return {kind: plan.create_runner() for kind, plan in self.specialists}


def plan_filter(model: str | os.PathLike | ModelSpec = "learned_filter_v1", *, device: str = "auto",
                backend: Backend | None = None, precision: str | Precision = "fp32", threads: int = 0,
                num_streams: int | None = None) -> FilterPlan:
    """Resolve model, backend and precision.

    Args:
        model: a registry id, an ``.onnx`` path, or an already resolved :class:`ModelSpec`.
        device: ``auto``, ``cpu``, ``cuda`` or ``openvino`` (ignored when ``backend`` is given).
        backend: a backend dataclass, e.g. ``ORT_CPU(threads=4)``; wins over ``device``.
        precision: ``auto``, ``fp32``, ``tf32``, ``fp16``, ``bf16`` or ``int8``.
        threads: intra-op threads for a backend picked by ``device``.
        num_streams: concurrent sessions/requests/streams for a backend picked by ``device``.

    Raises:
        ModelError: the model cannot be found or used.
        BackendError: unknown device or precision, or the backend cannot run here / at that precision.
    """
    try:
        prec = Precision(precision)
    except ValueError:
        raise BackendError(f"precision={precision!r} is not one of {', '.join(p.value for p in Precision)}") from None
    if backend is None:
        if device not in DEVICES:
            raise BackendError(f"device={device!r} is not one of {', '.join(map(repr, DEVICES))}")
        backend = backend_for_device(device, threads, num_streams)
    elif not isinstance(backend, BackendBase):
        raise BackendError(f"backend must be ORT_CPU(...), ORT_CUDA(...), TORCH_CUDA(...) or OpenVINO(...), "
                           f"not {type(backend).__name__}")
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    why = backend.available()
    if why:
        raise BackendError(why)
    resolved = resolve_precision(backend, spec, prec)
    specialists = tuple((kind, FilterPlan(other, backend, resolve_precision(backend, other, resolved)))
                        for kind, other in spec.specialists)
    return FilterPlan(spec, backend, resolved, specialists)
