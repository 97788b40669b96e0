"""An 8K GRAY16 clip filters with tilesize set in bounded memory (peak RSS < 2 GiB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_8k_gray16_tiled_peak_rss_under_2gib(filter_onnx):
    script = textwrap.dedent(f"""
        import vsfilter
        import numpy as np
        import vapoursynth as vs
        core = vs.core
        core.max_cache_size = 512
        clip = core.std.BlankClip(format=vs.GRAY16, width=7680, height=4320, length=2, color=30000)
        out = vsfilter.vmaf_pre(clip, model={str(filter_onnx)!r}, device="cpu", tilesize=512)
        for f in out.frames():
            assert np.asarray(f[0]).shape == (4320, 7680)
        # VmHWM is this address space's peak; ru_maxrss would also count the pytest parent's RSS at fork.
        print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak_kib = int(proc.stdout.strip().splitlines()[-1])
    assert peak_kib < 2 * 1024 * 1024, f"peak RSS {peak_kib / 1024:.0f} MiB"
    print(f"peak RSS {peak_kib / 1024:.0f} MiB")
