"""``source``: a video file as a frame-exact VapourSynth clip, decoded with PyAV.

Frame ``n`` is always the same picture, whatever order frames are asked in: a demux-only packet index
(cached in the user cache dir) gives every frame's PTS and the keyframe to start decoding from; frames
are identified by PTS when they come out of the decoder, never by counting after a seek.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import vapoursynth as vs

from .errors import SourceError
from .index import FrameIndex, load_or_build_index
from .planes import PlaneLayout, frame_planes, layout_of

__all__ = ["source", "SourceError"]

#: Decoded frames kept for out-of-order and backward requests, in bytes (at least 8 frames). Cached
#: frames hold FFmpeg's buffers: a large cache makes the decoder's buffer pool grow and page-fault
#: fresh memory on every frame (1080p sequential: 739 fps with 512 MiB, 932 with 128, 973 with 48).
CACHE_BYTES = 96 << 20
#: Independent decoder positions (for scripts that read a file at several places, e.g. interleaving).
MAX_CURSORS = 4
#: AVPictureType -> VapourSynth's _PictType.
PICT_TYPES = {1: "I", 2: "P", 3: "B", 4: "S", 5: "i", 6: "p", 7: "b"}


def source(path: str | os.PathLike, track: int = 0, threads: int = 0, fpsnum: int | None = None,
           fpsden: int | None = None, cache: bool | str | os.PathLike = True) -> vs.VideoNode:
    """Open a video file as a frame-exact VapourSynth clip.

    Args:
        path: the video file.
        track: index among the file's video streams.
        threads: decoder threads; 0 = automatic.
        fpsnum: with ``fpsden``, return a constant-rate clip at fpsnum/fpsden, repeating or dropping
            frames by timestamp (as BestSource and ffms2 do). Without it, a variable-rate file gives a
            clip of fps 0/1 whose frames carry their own durations.
        fpsden: denominator for ``fpsnum`` (default 1).
        cache: True keeps the packet index in the user cache dir (``~/.cache/vsfilter/index``), False
            rebuilds it every time, a path names the index file.

    Returns:
        The clip, with ``_Matrix``, ``_Primaries``, ``_Transfer``, ``_Range``, ``_ColorRange``,
        ``_ChromaLocation``, ``_FieldBased``, ``_PictType``, ``_DurationNum``/``_DurationDen``,
        ``_AbsoluteTime`` and ``_SARNum``/``_SARDen`` on every frame.
    """
    try:
        reader = _Reader(Path(os.fspath(path)), track, threads, cache)
        return reader.clip(fpsnum, fpsden)
    except SourceError as exc:
        raise vs.Error(f"source: {exc}") from None


def _open(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_dir():
        raise SourceError(f"{path} is a directory, not a video file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise SourceError(f"{path.name} is not a readable media file ({exc.strerror or type(exc).__name__})") from None
    if container.format.name == "tty":  # FFmpeg's ANSI-art demuxer claims any text file
        container.close()
        raise SourceError(f"{path.name} is not a readable media file (it is text)")
    return container


class _Cursor:
    """One open decoder and where it stands: frames with PTS >= ``accept_from`` decode correctly."""

    def __init__(self, path: Path, track: int, threads: int) -> None:
        self.container = _open(path)
        self.stream = self.container.streams.video[track]
        ctx = self.stream.codec_context
        ctx.thread_count = threads
        ctx.thread_type = "AUTO"
        self.frames = None
        self.accept_from = None
        self.last_pts: int | None = None
        self.overshot = False
        self.errors: list[str] = []

    def seek(self, pts: int, from_start: bool) -> None:
        if from_start:
            self.container.seek(0, backward=True, any_frame=False)
        else:
            self.container.seek(int(pts), stream=self.stream, backward=True, any_frame=False)
        self.accept_from = None if from_start else pts
        self.last_pts = None
        self.frames = self._decode()

    def _decode(self):
        # After a seek, packets before the first keyframe would decode against missing references:
        # skip them. A first keyframe past the one asked for means the demuxer overshot (MPEG-TS
        # seeks are approximate): stop, and the caller seeks further back.
        waiting = self.accept_from is not None
        self.overshot = False
        for packet in self.container.demux(self.stream):
            if waiting:
                if not packet.is_keyframe or packet.size == 0:
                    continue
                key = packet.pts if packet.pts is not None else packet.dts
                if key is not None and key > self.accept_from:
                    self.overshot = True
                    return
                waiting = False
            try:
                yield from packet.decode()
            except av.error.FFmpegError as exc:  # a corrupt packet: note it, go on with the next
                self.errors.append(str(exc.strerror or type(exc).__name__))
            except (av.error.EOFError, StopIteration):
                return

    def close(self) -> None:
        self.container.close()


def _pts_to_frame(index: FrameIndex) -> dict[int, int]:
    """PTS -> frame number."""
    return {int(p): n for n, p in enumerate(index.pts)}


class _Reader:
    """Index, decoder cursors and a cache of decoded frames for one video track."""

    def __init__(self, path: Path, track: int, threads: int, cache) -> None:
        if not isinstance(track, int) or track < 0:
            raise SourceError(f"track must be >= 0, got {track!r}")
        if threads < 0:
            raise SourceError(f"threads must be >= 0 (0 = automatic), got {threads}")
        self.path, self.track, self.threads = path, track, threads
        probe = _open(path)
        try:
            videos = probe.streams.video
            if not videos:
                kinds = sorted({s.type for s in probe.streams}) or ["no streams"]
                raise SourceError(f"{path.name} has no video stream (it has {', '.join(kinds)})")
            if track >= len(videos):
                raise SourceError(f"track {track} is out of range: {path.name} has {len(videos)} video stream(s)")
            stream = videos[track]
            self.time_base = Fraction(stream.time_base.numerator, stream.time_base.denominator)
            self.rate = stream.guessed_rate or stream.average_rate
            self.sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
            self._lock = threading.RLock()
            self._cursors: list[_Cursor] = []
            self._cache: OrderedDict[int, tuple[list[np.ndarray], dict]] = OrderedDict()
            self._cache_frames = 8  # until the first frame tells the frame size
            self.index: FrameIndex = load_or_build_index(path, probe, stream, track, cache, self._verify_tail)
        finally:
            probe.close()
        if len(self.index) == 0:
            raise SourceError(f"{path.name}: the video stream has no decodable frames")
        self._pts_to_n = _pts_to_frame(self.index)
        self._first_pts = int(self.index.pts[0])
        first = self._decoded(0)[0]
        self.height, self.width = first[0].shape
        self._cache_frames = max(8, CACHE_BYTES // max(1, sum(p.nbytes for p in first)))

    # ------------------------------------------------------------------------------- the clip

    def clip(self, fpsnum: int | None, fpsden: int | None) -> vs.VideoNode:
        fmt = self._vs_format()
        mapping, fps = self._frame_mapping(fpsnum, fpsden)
        blank = vs.core.std.BlankClip(format=fmt, width=self.width, height=self.height, length=len(mapping),
                                      fpsnum=fps.numerator, fpsden=fps.denominator, keep=True)
        cfr = fps if fps else None

        def produce(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
            src = int(mapping[n])
            try:
                planes, props = self._decoded(src)
            except SourceError as exc:
                raise vs.Error(f"source: {exc}") from None
            # A fresh, uninitialised frame: f.copy() would share the blank frame's planes and copy
            # each one again (copy-on-write) before we overwrite it.
            out = vs.core.create_video_frame(fmt, self.width, self.height)
            for p, data in enumerate(planes):
                np.copyto(np.asarray(out[p]), data)
            out.props.update(props)
            if cfr is not None:
                out.props["_DurationNum"], out.props["_DurationDen"] = cfr.denominator, cfr.numerator
                t = Fraction(n) / cfr
                out.props["_AbsoluteTime"] = float(t)
            return out

        # A bare ModifyFrame: PyAV holds the GIL while it decodes, so produce() calls cannot overlap
        # anyway, and FrameEval's per-frame node costs more than it gains (1080p: 705 vs 678 fps).
        # FFmpeg's own decoder threads do the parallel work.
        return blank.std.ModifyFrame(blank, produce)

    def _vs_format(self) -> vs.VideoFormat:
        layout = self._layout
        family = {"yuv": vs.YUV, "gray": vs.GRAY, "rgb": vs.RGB}[layout.family]
        if layout.family == "yuv" and (self.width % (1 << layout.ssw) or self.height % (1 << layout.ssh)):
            raise SourceError(f"{self.width}x{self.height} with {self._pix_fmt} chroma subsampling cannot be "
                              "represented in VapourSynth (odd size); re-encode or crop it")
        return vs.core.query_video_format(family, vs.INTEGER, layout.bits, layout.ssw, layout.ssh)

    def _frame_mapping(self, fpsnum, fpsden) -> tuple[np.ndarray, Fraction]:
        """Output frame -> source frame, and the clip's frame rate (0 = variable)."""
        n = len(self.index)
        pts = self.index.pts.astype(np.float64)
        tb = float(self.time_base)
        if fpsnum is None:
            if fpsden is not None:
                raise SourceError("fpsden needs fpsnum")
            return np.arange(n), self._native_rate()
        fps = Fraction(fpsnum, fpsden or 1)
        if fps <= 0:
            raise SourceError(f"fpsnum/fpsden must be positive, got {fpsnum}/{fpsden}")
        start = pts[0]
        end = pts[-1] + self.index.duration[-1]
        count = max(1, round((end - start) * tb * fps))
        times = start + np.arange(count) / float(fps) / tb
        # The last frame shown at or before each output time (half a tick of slack for rounding).
        return np.clip(np.searchsorted(pts, times + 0.5, side="right") - 1, 0, n - 1), fps

    def _native_rate(self) -> Fraction:
        pts = self.index.pts
        if len(pts) < 2:
            return Fraction(self.rate) if self.rate else Fraction(25)
        rate = Fraction(self.rate) if self.rate else None
        if rate:
            ticks = 1 / (rate * self.time_base)
            ideal = pts[0] + np.arange(len(pts)) * float(ticks)
            if np.all(np.abs(pts - ideal) <= max(1.0, 0.1 * float(ticks))):
                return rate
        steps = np.diff(pts)
        if np.all(steps == steps[0]):
            return (1 / (int(steps[0]) * self.time_base)).limit_denominator(1 << 30)
        return Fraction(0)

    # ------------------------------------------------------------------------------- decoding

    @property
    def _layout(self) -> PlaneLayout:
        layout = layout_of(self._pix_fmt)
        if layout is None:
            raise SourceError(f"{self.path.name}: pixel format {self._pix_fmt} is not supported "
                              "(yuv 4:2:0/4:2:2/4:4:4 8-16 bit, gray, nv12/p010, gbrp are)")
        return layout

    def _decoded(self, n: int) -> tuple[list[np.ndarray], dict]:
        """Planes and props of frame ``n``, decoding as little as possible."""
        with self._lock:
            hit = self._cache.get(n)
            if hit is not None:
                self._cache.move_to_end(n)
                return hit
            target = int(self.index.pts[n])
            cursor = self._cursor_for(n, target)
            for attempt in range(3):
                found = self._decode_until(cursor, target)
                if found is not None:
                    return found
                # The seek overshot or the frame did not come out: start further back, then from the top.
                seek_n = self._pts_to_n.get(int(self.index.seek_pts[n]), 0)
                earlier = int(self.index.seek_pts[max(0, seek_n - 1)])
                cursor.seek(earlier, from_start=attempt >= 1 or earlier < self._first_pts)
            why = f" ({cursor.errors[-1]})" if cursor.errors else ""
            raise SourceError(f"frame {n}: the decoder could not produce it{why}")

    def _cursor_for(self, n: int, target: int) -> _Cursor:
        seek_pts = int(self.index.seek_pts[n])
        for cursor in self._cursors:
            if cursor.frames is not None and cursor.last_pts is not None and cursor.last_pts < target and (
                    cursor.last_pts >= seek_pts or n - self._pts_to_n.get(cursor.last_pts, -10 ** 9) <= 8):
                self._cursors.remove(cursor)
                self._cursors.append(cursor)  # most recently used last
                return cursor
        if len(self._cursors) < MAX_CURSORS:
            cursor = _Cursor(self.path, self.track, self.threads)
        else:
            cursor = self._cursors.pop(0)
        self._cursors.append(cursor)
        cursor.seek(seek_pts, from_start=seek_pts < self._first_pts)
        return cursor

    def _decode_until(self, cursor: _Cursor, target: int):
        for frame in cursor.frames:
            pts = frame.pts
            if pts is None:
                continue
            if cursor.accept_from is not None and pts < cursor.accept_from:
                continue  # a leading picture of an open GOP: it needs the previous GOP
            cursor.last_pts = pts
            m = self._pts_to_n.get(pts)
            if m is None:
                continue
            entry = self._convert(frame, m)
            self._cache[m] = entry
            self._cache.move_to_end(m)
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
            if pts == target:
                return entry
            if pts > target:
                return None
        cursor.frames = None
        return None

    def _convert(self, frame: av.VideoFrame, n: int) -> tuple[list[np.ndarray], dict]:
        if not hasattr(self, "_pix_fmt"):
            self._pix_fmt = frame.format.name
        elif frame.format.name != self._pix_fmt:
            raise SourceError(f"frame {n}: pixel format changes mid-stream ({self._pix_fmt} -> {frame.format.name})")
        layout = self._layout
        w, h = frame.width, frame.height
        if hasattr(self, "width") and (w, h) != (self.width, self.height):
            raise SourceError(f"frame {n}: size changes mid-stream ({self.width}x{self.height} -> {w}x{h})")
        planes = frame_planes(frame, layout, copy=False)  # views: copied once, into the VapourSynth frame
        return planes, self._props(frame, layout)

    def _props(self, frame: av.VideoFrame, layout: PlaneLayout) -> dict:
        """Every frame gets every prop; unspecified colour values stay 2 (unspecified), an unspecified
        range is limited for YUV (FFmpeg's assumption) and full for RGB and yuvj, an unknown SAR is 1:1."""
        rgb = layout.family == "rgb"
        full = frame.color_range == 2 or self._pix_fmt.startswith("yuvj") or rgb
        props: dict = {"_Range": 0 if full else 1, "_ColorRange": 0 if full else 1}
        props["_Matrix"] = 0 if rgb else int(frame.colorspace or 2)
        props["_Primaries"] = int(frame.color_primaries or 2)
        props["_Transfer"] = int(frame.color_trc or 2)
        props["_ChromaLocation"] = max(0, int(frame.chroma_location or 1) - 1)
        props["_FieldBased"] = (2 if getattr(frame, "top_field_first", True) else 1) if frame.interlaced_frame else 0
        props["_PictType"] = PICT_TYPES.get(int(frame.pict_type), "U")
        n = self._pts_to_n[frame.pts]
        dur = Fraction(int(self.index.duration[n])) * self.time_base
        props["_DurationNum"], props["_DurationDen"] = dur.numerator, dur.denominator
        props["_AbsoluteTime"] = float((frame.pts - self._first_pts) * self.time_base)
        sar = self.sar if self.sar and self.sar > 0 else Fraction(1)
        props["_SARNum"], props["_SARDen"] = sar.numerator, sar.denominator
        return props

    def _verify_tail(self, index: FrameIndex) -> FrameIndex:
        """Decode the last GOP; frames in it that do not come out (a truncated file) leave the index."""
        if len(index) == 0:
            return index
        last_seek = int(index.seek_pts[int(np.argmax(index.pts))])
        tail = index.pts >= last_seek
        # Start one keyframe earlier (seeks can be approximate), or from the top if that overshoots.
        k = _pts_to_frame(index).get(last_seek, 0)
        start = int(index.seek_pts[max(0, k - 1)])
        cursor = _Cursor(self.path, self.track, self.threads)
        try:
            cursor.seek(start, from_start=start < int(index.pts[0]))
            seen = {f.pts for f in cursor.frames if f.pts is not None}
            if cursor.overshot:
                cursor.seek(0, from_start=True)
                seen = {f.pts for f in cursor.frames if f.pts is not None}
        finally:
            cursor.close()
        keep = ~tail | np.isin(index.pts, np.fromiter(seen, np.int64, len(seen)))
        if keep.all():
            index.tail_checked = True
            return index
        last = np.flatnonzero(keep)
        dur = index.duration[keep].copy()
        if len(last) > 1:
            dur[:-1] = np.diff(index.pts[keep])
        return FrameIndex(index.pts[keep], dur, index.seek_pts[keep], index.keyframe[keep], index.time_base, True)
