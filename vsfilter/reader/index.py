"""The packet index behind `vsfilter.source`: built by demuxing (no decoding), cached per file.

Frame ``n`` of a clip is the packet with the ``n``-th smallest presentation timestamp among the
stream's non-discarded packets. For each frame the index keeps its PTS and the keyframe to seek to:
the last keyframe at or before it in decode order whose PTS is not after it (so open-GOP leading
pictures, which need the previous GOP, are reached from the keyframe before).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from ..atomic import atomic_open
from ..cache import cache_dir

__all__ = ["FrameIndex", "build_index", "load_or_build_index", "INDEX_VERSION"]

INDEX_VERSION = 4


@dataclass
class FrameIndex:
    """Per-frame facts of one video stream, in presentation order.

    Attributes:
        pts: presentation timestamp of each frame (stream time base).
        duration: duration of each frame in time-base ticks (from the next frame's PTS; the last from its packet).
        seek_pts: PTS of the keyframe packet to seek to before decoding the frame.
        keyframe: whether the frame's packet is a keyframe.
        size: bytes of the frame's packet (the coded rate: ``vsfilter.qp_estimator.coded_bits_per_pixel``).
        time_base: (num, den) of the stream.
        tail_checked: the last GOP was decoded and frames that do not decode were dropped.
    """

    pts: np.ndarray
    duration: np.ndarray
    seek_pts: np.ndarray
    keyframe: np.ndarray
    size: np.ndarray
    time_base: tuple[int, int]
    tail_checked: bool = False

    def __len__(self) -> int:
        return len(self.pts)

    def frame_of(self, pts: int) -> int | None:
        """The frame number of a PTS (None for a PTS no frame has): the one PTS -> frame map."""
        table: dict[int, int] | None = self.__dict__.get("_frame_of")
        if table is None:
            table = {int(p): n for n, p in enumerate(self.pts)}
            self.__dict__["_frame_of"] = table
        return table.get(int(pts))

    def earlier_seek(self, n: int) -> int:
        """The keyframe before the one frame ``n`` decodes from: where to seek when the seek to frame
        ``n``'s own keyframe overshot or did not produce it (approximate MPEG-TS seeks)."""
        key = self.frame_of(int(self.seek_pts[n])) or 0
        return int(self.seek_pts[max(0, key - 1)])

    def save(self, path: Path, meta: dict) -> None:
        """Write the index atomically (a reader never sees half of it)."""
        with atomic_open(path, "wb") as fh:
            np.savez(fh, pts=self.pts, duration=self.duration, seek_pts=self.seek_pts, keyframe=self.keyframe,
                     size=self.size, meta=np.array(json.dumps(meta | {"time_base": self.time_base,
                                                      "tail_checked": self.tail_checked})))

    @classmethod
    def load(cls, path: Path, meta: dict) -> FrameIndex | None:
        """The index stored at ``path`` if it is intact and was built for ``meta``, else None (rebuild).

        A damaged entry (empty, truncated, not an npz, wrong arrays) is never fatal: the caller rebuilds
        the index from the video and overwrites the entry atomically.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                stored = json.loads(str(data["meta"]))
                if {k: stored.get(k) for k in meta} != meta:
                    return None
                index = cls(data["pts"], data["duration"], data["seek_pts"], data["keyframe"], data["size"],
                            tuple(stored["time_base"]), bool(stored["tail_checked"]))
        except Exception:  # BadZipFile, EOFError, ValueError, KeyError, OSError, ...: a cache miss
            return None
        sizes = {len(index.pts), len(index.duration), len(index.seek_pts), len(index.keyframe), len(index.size)}
        return index if len(sizes) == 1 else None


def build_index(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                progress: bool = True) -> FrameIndex:
    """Demux every packet of ``stream`` (no decoding) and derive the frame order and seek points."""
    size = os.path.getsize(container.name) if os.path.isfile(container.name) else 0
    bar = _Progress(size, progress)
    rows: list[tuple[int, int, bool, int, int]] = []  # (pts, dts-order, key, duration, bytes)
    order = 0
    last_ts = None
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            # No timestamps at all (raw elementary streams): count on from the previous packet.
            pts = 0 if last_ts is None else last_ts + max(1, packet.duration or 1)
        last_ts = pts
        rows.append((pts, order, bool(packet.is_keyframe), packet.duration or 0, packet.size))
        order += 1
        if packet.pos is not None and packet.pos > 0:
            bar.update(packet.pos)
    bar.close()
    if not rows:
        empty = np.zeros(0, np.int64)
        return FrameIndex(empty, empty.copy(), empty.copy(), np.zeros(0, bool), empty.copy(), _time_base(stream))
    arr = np.array(rows, dtype=np.int64)
    # Keep one packet per PTS (a duplicate PTS is a broken mux: the decoder outputs one picture).
    arr = arr[np.unique(arr[:, 0], return_index=True)[1]]
    seek = _seek_points(arr)
    by_pts = np.argsort(arr[:, 0], kind="stable")
    arr, seek = arr[by_pts], seek[by_pts]
    ordered = arr[:, 0]
    duration = np.empty_like(ordered)
    duration[:-1] = np.diff(ordered)
    duration[-1] = arr[-1, 3] if arr[-1, 3] > 0 else (duration[-2] if len(ordered) > 1 else 1)
    return FrameIndex(ordered, duration, seek, arr[:, 2].astype(bool), arr[:, 4].copy(), _time_base(stream))


def _seek_points(arr: np.ndarray) -> np.ndarray:
    """For each packet (rows in decode order), the PTS of the keyframe to start decoding from."""
    dts_order = np.argsort(arr[:, 1], kind="stable")
    rows = arr[dts_order]
    keys: list[int] = []  # keyframe PTS values seen so far, in decode order
    seek = np.empty(len(rows), np.int64)
    first_pts = int(rows[:, 0].min())
    for i, (pts, _, key, *_) in enumerate(rows):
        if key:
            keys.append(int(pts))
        # The latest keyframe whose PTS is <= this frame's: a leading picture (PTS before its
        # keyframe's) must be decoded from an earlier keyframe. No such keyframe: from the start.
        start = next((k for k in reversed(keys) if k <= pts), None)
        seek[i] = first_pts - 1 if start is None else start
    out = np.empty_like(seek)
    out[dts_order] = seek
    return out


def _time_base(stream) -> tuple[int, int]:
    tb = stream.time_base
    return (tb.numerator, tb.denominator)


class _Progress:
    """A tqdm bar over file bytes, shown only when indexing takes more than a second on a TTY."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        self._pos = 0
        if enabled and total > 0:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="B", unit_scale=True, desc="source: indexing", delay=1.0,
                             file=sys.stderr, disable=None, leave=False)

    def update(self, pos: int) -> None:
        if self._bar is not None and pos > self._pos:
            self._bar.update(pos - self._pos)
            self._pos = pos

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def index_path_for(path: Path, track: int) -> Path:
    """Where the cached index of ``path``'s video track lives (in the user cache dir, keyed by path)."""
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]
    return cache_dir("index") / f"{key}-v{track}.npz"


def file_identity(path: Path) -> dict:
    """What invalidates a cached index: size and modification time (and the index format)."""
    st = path.stat()
    return {"version": INDEX_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "av": av.__version__}


def load_or_build_index(path: Path, container, stream, track: int, cache: bool | str | os.PathLike,
                        verify_tail) -> FrameIndex:
    """The cached index if still valid, else a fresh one (tail-verified with ``verify_tail``), cached.

    Args:
        cache: True = the user cache dir; False = no cache; a path = the index file to use.
    """
    meta = file_identity(path) | {"track": track}
    target = None
    if cache:
        target = Path(cache) if not isinstance(cache, bool) else index_path_for(path, track)
        if target.is_file():
            found = FrameIndex.load(target, meta)
            if found is not None:
                return found
    index = verify_tail(build_index(container, stream))
    if target is not None:
        try:
            index.save(target, meta)
        except OSError:
            pass  # an unwritable cache only costs re-indexing
    return index
