"""Child process for the source fuzz test: open and read every damaged file; print a summary line."""

import sys
from pathlib import Path

import vapoursynth as vs

import vsfilter  # noqa: F401

opened = errors = frames = 0
for path in sorted(Path(sys.argv[1]).iterdir()):
    try:
        clip = vsfilter.source(path, cache=False)
    except vs.Error as exc:
        assert str(exc).startswith("source: "), exc
        errors += 1
        continue
    opened += 1
    for n in list(range(clip.num_frames))[::-1]:
        try:
            clip.get_frame(n)
            frames += 1
        except vs.Error as exc:
            assert f"frame {n}" in str(exc) or str(exc).startswith("source: "), exc
            errors += 1
print(f"opened={opened} errors={errors} frames={frames}")
