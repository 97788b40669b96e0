"""What every benchmark prints first: the CPU (it changes between machines) and its vector extensions."""

from __future__ import annotations

import os

__all__ = ["cpu_name", "describe_machine"]


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown CPU"


def describe_machine() -> str:
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as fh:
            flags = set(next(line for line in fh if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    ext = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{cpu_name()}, {len(os.sched_getaffinity(0))} CPU(s), {' '.join(ext) or 'no AVX2'}"
