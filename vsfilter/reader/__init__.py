"""``source``: a video file as a frame-exact VapourSynth clip, decoded with PyAV.

Frame ``n`` is always the same picture, whatever order frames are asked in: a demux-only packet index
(cached in the user cache dir) gives every frame's PTS and the keyframe to start decoding from; frames
are identified by PTS when they come out of the decoder, never by counting after a seek.
"""

from __future__ import annotations

import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import vapoursynth as vs

from ..errors import SourceError, vs_error
from ..qp_estimator import coded_bits_per_pixel
from .decoding import Cursor, CursorPool, FrameCache, open_media, probe, verify_tail
from .index import FrameIndex, load_or_build_index
from .planes import PlaneLayout, frame_planes, frame_props, layout_of
from .raw import RawFormat, is_raw_path, raw_source
from .timing import frame_mapping

__all__ = ["source", "SourceError", "RawFormat"]

#: Decoded frames kept for out-of-order and backward requests, in bytes (at least CACHE_MIN_FRAMES).
#: Cached frames hold FFmpeg's buffers: a large cache makes the decoder's buffer pool grow and
#: page-fault fresh memory on every frame (1080p sequential: 739 fps with 512 MiB, 932 with 128, 973
#: with 48). The floor covers frames requested a few apart by VapourSynth's threads; the byte bound
#: rules from 4K up (an 8K 4:2:0 frame is 50 MB: 8 cached frames per file cost compare 0.8 GB).
CACHE_BYTES = 96 << 20
CACHE_MIN_FRAMES = 3
#: Independent decoder positions (for scripts that read a file at several places, e.g. interleaving).
MAX_CURSORS = 4


def source(path: str | os.PathLike, track: int = 0, threads: int = 0, fpsnum: int | None = None,
           fpsden: int | None = None, cache: bool | str | os.PathLike = True,
           raw: RawFormat | dict | None = None, quantizer: bool = True) -> vs.VideoNode:
    """Open a video file (or a raw YUV file, with ``raw``) as a frame-exact VapourSynth clip.

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
        raw: the geometry of a headerless raw YUV file (``.yuv``): a :class:`RawFormat` or a dict of
            its fields, e.g. ``{"width": 352, "height": 288, "pixel_format": "420", "bitdepth": 10}``
            (little-endian samples above 8 bits, as the vmaf CLI and ``yuv420p10le`` read them);
            ``fpsnum``/``fpsden`` set its rate when it has none (default 24). A ``.yuv`` path needs it.
        quantizer: export the decoder's quantizer as frame props where it has one (H.264 and MPEG-2
            per macroblock, VP9 per frame): ``QPMean`` (the frame's mean QP in the codec's scale),
            ``QPKind`` (``h264``, ``mpeg2``, ``vp9``), ``QPBlockSize`` (16, or 0 for one QP per frame)
            and with a block map ``QPMap`` (one byte per block, row-major) and ``QPMapWidth``; a
            quantizer-conditioned model (learned_filter_codec_v3) reads them. H.264 then decodes with
            slice threads only: FFmpeg's frame-threaded H.264 decoder exports corrupt QPs for B-frames
            (``vsfilter.reader.decoding.FRAME_THREADS_CORRUPT_QP``). False saves FFmpeg's export and
            keeps frame threads (bench/source.py measures both).

    Returns:
        The clip, with ``_Matrix``, ``_Primaries``, ``_Transfer``, ``_Range``, ``_ColorRange``,
        ``_ChromaLocation``, ``_FieldBased``, ``_PictType``, ``_DurationNum``/``_DurationDen``,
        ``_AbsoluteTime`` and ``_SARNum``/``_SARDen`` on every frame; for coded video also ``Codec``
        (FFmpeg's canonical codec name: ``hevc``, ``av1``, ...) and ``CodedBitsPerPixel`` (the mean
        coded bits per pixel of the inter frames within 12 frames, from the packet index: what a
        quantizer-conditioned model's estimate reads where the bitstream has no QP,
        ``vsfilter.qp_estimator``), and the QP props where known.
    """
    if raw is not None:
        if fpsnum is not None:
            from .raw import as_raw_format

            try:
                raw = as_raw_format(raw).with_fps(Fraction(fpsnum, fpsden or 1))
            except SourceError as exc:
                raise vs_error("source", exc) from None
        return raw_source(path, raw)
    if is_raw_path(path):
        raise vs_error("source", SourceError(f"{os.fspath(path)} is raw YUV (it has no header): give its "
                                             "geometry, raw=RawFormat(width, height, pixel_format, bitdepth)"))
    try:
        reader = _Reader(Path(os.fspath(path)), track, threads, cache, bool(quantizer))
        return reader.clip(fpsnum, fpsden)
    except SourceError as exc:
        raise vs_error("source", exc) from None


class _Reader:
    """Index, decoder cursors and a cache of decoded frames for one video track."""

    def __init__(self, path: Path, track: int, threads: int, cache, quantizer: bool = True) -> None:
        if not isinstance(track, int) or track < 0:
            raise SourceError(f"track must be >= 0, got {track!r}")
        if not isinstance(threads, int) or threads < 0:
            raise SourceError(f"threads must be >= 0 (0 = automatic), got {threads}")
        container = open_media(path)
        try:
            self.info, stream = probe(container, path, track, threads, quantizer)
            info = self.info
            self.index: FrameIndex = load_or_build_index(path, container, stream, track, cache,
                                                         lambda index: verify_tail(index, info))
        finally:
            container.close()
        if len(self.index) == 0:
            raise SourceError(f"{path.name}: the video stream has no decodable frames")
        self._lock = threading.RLock()
        self._cursors = CursorPool(self.info, MAX_CURSORS)
        self._cache = FrameCache(CACHE_BYTES, CACHE_MIN_FRAMES)
        self._first_pts = int(self.index.pts[0])
        # Set by the first decoded frame; every later frame must match them.
        self._pix_fmt: str | None = None
        self._layout: PlaneLayout | None = None
        self._size: tuple[int, int] | None = None
        self._rate = np.zeros(0)  # coded bits per pixel per frame, from the index (set with the layout)
        first = self._decoded(0)[0]
        self.height, self.width = first[0].shape

    # ------------------------------------------------------------------------------- the clip

    def clip(self, fpsnum: int | None, fpsden: int | None) -> vs.VideoNode:
        fmt = self._vs_format()
        mapping, fps = frame_mapping(self.index, self.info, fpsnum, fpsden)
        blank = vs.core.std.BlankClip(format=fmt, width=self.width, height=self.height, length=len(mapping),
                                      fpsnum=fps.numerator, fpsden=fps.denominator, keep=True)
        cfr = fps if fps else None

        def produce(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
            src = int(mapping[n])
            try:
                planes, props = self._decoded(src)
            except SourceError as exc:
                raise vs_error("source", exc) from None
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
        assert layout is not None  # set by the first frame, decoded in __init__
        family = {"yuv": vs.YUV, "gray": vs.GRAY, "rgb": vs.RGB}[layout.family]
        if layout.family == "yuv" and (self.width % (1 << layout.ssw) or self.height % (1 << layout.ssh)):
            raise SourceError(f"{self.width}x{self.height} with {self._pix_fmt} chroma subsampling cannot be "
                              "represented in VapourSynth (odd size); re-encode or crop it")
        return vs.core.query_video_format(family, vs.INTEGER, layout.bits, layout.ssw, layout.ssh)

    # ------------------------------------------------------------------------------- decoding

    def _decoded(self, n: int) -> tuple[list[np.ndarray], dict]:
        """Planes and props of frame ``n``, decoding as little as possible."""
        with self._lock:
            hit = self._cache.get(n)
            if hit is not None:
                return hit
            target = int(self.index.pts[n])
            cursor = self._cursors.cursor_for(n, self.index)
            for attempt in range(3):
                found = self._decode_until(cursor, target)
                if found is not None:
                    return found
                # The seek overshot or the frame did not come out: start further back, then from the top.
                earlier = self.index.earlier_seek(n)
                cursor.seek(earlier, from_start=attempt >= 1 or earlier < self._first_pts)
            why = f" ({cursor.last_error})" if cursor.last_error else ""
            raise SourceError(f"frame {n}: the decoder could not produce it{why}")

    def _decode_until(self, cursor: Cursor, target: int) -> tuple[list[np.ndarray], dict] | None:
        for frame in cursor.frames():
            pts = int(frame.pts or 0)  # frames() yields only frames with a PTS
            m = self.index.frame_of(pts)
            if m is None:
                continue
            entry = self._convert(frame, m)
            self._cache.put(m, entry)
            if pts == target:
                return entry
            if pts > target:
                return None
        return None

    def _convert(self, frame: av.VideoFrame, n: int) -> tuple[list[np.ndarray], dict]:
        name, size = frame.format.name, (frame.width, frame.height)
        if self._layout is None:
            layout = layout_of(name)
            if layout is None:
                raise SourceError(f"{self.info.path.name}: pixel format {name} is not supported "
                                  "(yuv 4:2:0/4:2:2/4:4:4 8-16 bit, gray, nv12/p010, gbrp are)")
            self._pix_fmt, self._layout, self._size = name, layout, size
            self._rate = coded_bits_per_pixel(self.index.size, self.index.keyframe, size[0] * size[1])
        elif name != self._pix_fmt:
            raise SourceError(f"frame {n}: pixel format changes mid-stream ({self._pix_fmt} -> {name})")
        elif size != self._size:
            raise SourceError(f"frame {n}: size changes mid-stream ({self.width}x{self.height} -> "
                              f"{size[0]}x{size[1]})")
        planes = frame_planes(frame, self._layout, copy=False)  # views: copied once, into the VapourSynth frame
        timing = (self.index.duration[n], int(self.index.pts[n]) - self._first_pts)
        return planes, frame_props(frame, self._layout, str(self._pix_fmt), self.info, *timing, float(self._rate[n]))
