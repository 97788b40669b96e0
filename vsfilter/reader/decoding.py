"""Decoding for `vsfilter.source`: opening a file, decoder cursors, and a byte-bounded frame cache.

A :class:`Cursor` is one open decoder and where it stands; a :class:`CursorPool` keeps a few of them
(scripts that read a file at several places) and picks the one that reaches a frame with the least
decoding; :class:`FrameCache` keeps recently decoded frames for out-of-order and backward requests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import SourceError
from .index import FrameIndex

__all__ = ["StreamInfo", "open_media", "probe", "Cursor", "CursorPool", "FrameCache", "verify_tail",
           "decoder_threading", "FRAME_THREADS_CORRUPT_QP"]


def open_media(path: Path) -> av.container.InputContainer:
    """``av.open`` with one-line errors naming the file (and refusing text files)."""
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


@dataclass(frozen=True)
class StreamInfo:
    """What a probe learns of one video track without decoding: how to reach it and its timing.

    Attributes:
        path, track, threads: where the track is and how many decoder threads to use.
        quantizer: have the decoder export its quantizer (side data the QP frame props come from).
        time_base: the stream's time base.
        rate: the guessed or average frame rate (None when the container has none).
        sar: the sample aspect ratio (None when unknown).
        codec: the codec's canonical FFmpeg name (``h264``, ``hevc``, ``av1``, ``ffv1``, ...): the
            ``Codec`` frame prop.
    """

    path: Path
    track: int
    threads: int
    time_base: Fraction
    rate: Fraction | None
    sar: Fraction | None
    quantizer: bool = True
    codec: str = ""


def _fraction(value) -> Fraction | None:
    return Fraction(value.numerator, value.denominator) if value else None


def probe(container: av.container.InputContainer, path: Path, track: int, threads: int, quantizer: bool = True):
    """(StreamInfo, the stream) of video track ``track`` of an open container."""
    videos = container.streams.video
    if not videos:
        kinds = sorted({str(s.type) for s in container.streams}) or ["no streams"]
        raise SourceError(f"{path.name} has no video stream (it has {', '.join(kinds)})")
    if track >= len(videos):
        raise SourceError(f"track {track} is out of range: {path.name} has {len(videos)} video stream(s)")
    stream = videos[track]
    tb = stream.time_base
    if tb is None:
        raise SourceError(f"{path.name}: the video stream has no time base")
    info = StreamInfo(path, track, threads, Fraction(tb.numerator, tb.denominator),
                      _fraction(stream.guessed_rate or stream.average_rate),
                      _fraction(stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio), quantizer,
                      stream.codec_context.codec.canonical_name)
    return info, stream


#: Codecs whose decoder exports wrong quantizer side data when it decodes several frames at once.
#: FFmpeg's H.264 decoder builds a frame's block QPs from its picture's QP table when the frame is
#: output; with frame threads a non-reference picture (a B-frame) has released that table to the pool by
#: then and another thread may be writing it: measured with PyAV's FFmpeg on an x264 stream with B-frames,
#: 5 of 8 frame-threaded decodes gave some B-frame a mean QP off by up to 41 (0.875 for 42), never the
#: same twice; MPEG-2 and VP9 gave the single-threaded decode's values every time. Such streams decode
#: with slice threads while their quantizer is exported (``tests/test_quantizer.py``; the cost:
#: ``bench/source.py``).
FRAME_THREADS_CORRUPT_QP = frozenset({"h264"})


def decoder_threading(info: StreamInfo) -> str:
    """FFmpeg's ``thread_type`` for a stream: frame and slice threads (``AUTO``), or slice threads only
    where frame threads would corrupt the quantizer side data it exports (:data:`FRAME_THREADS_CORRUPT_QP`)."""
    return "SLICE" if info.quantizer and info.codec in FRAME_THREADS_CORRUPT_QP else "AUTO"


#: A cursor a few frames short of the target decodes on rather than seeking (cheaper than a seek).
CATCH_UP_FRAMES = 8


class Cursor:
    """One open decoder and where it stands. Its state is its own: :meth:`seek` moves it, :meth:`frames`
    yields the frames that decode correctly from there (after a seek, those with PTS at or after the
    keyframe sought: an open GOP's leading pictures need the GOP before) and remembers the last one."""

    def __init__(self, info: StreamInfo) -> None:
        self._container = open_media(info.path)
        self._stream = self._container.streams.video[info.track]
        ctx = self._stream.codec_context
        ctx.thread_count = info.threads
        ctx.thread_type = decoder_threading(info)
        if info.quantizer:  # the quantizer of every block (H.264, MPEG-2) or frame (VP9): the QP frame props
            ctx.options = {"export_side_data": "venc_params"}
        self._packets: Iterator[av.VideoFrame] | None = None
        self._accept_from: int | None = None
        self._last_pts: int | None = None
        self._overshot = False
        self._errors: list[str] = []

    @property
    def last_pts(self) -> int | None:
        """PTS of the last frame :meth:`frames` yielded since the last seek (None: none yet)."""
        return self._last_pts

    @property
    def active(self) -> bool:
        """Whether the cursor can go on decoding (it has been sought and is not at the end)."""
        return self._packets is not None

    @property
    def overshot(self) -> bool:
        """The last seek landed past the keyframe asked for (the demuxer's seek is approximate)."""
        return self._overshot

    @property
    def last_error(self) -> str | None:
        """The decoder's last complaint about a corrupt packet, if any."""
        return self._errors[-1] if self._errors else None

    def seek(self, pts: int, from_start: bool) -> None:
        if from_start:
            self._container.seek(0, backward=True, any_frame=False)
        else:
            self._container.seek(int(pts), stream=self._stream, backward=True, any_frame=False)
        self._accept_from = None if from_start else pts
        self._last_pts = None
        self._packets = self._decode()

    def frames(self) -> Iterator[av.VideoFrame]:
        """The correctly decodable frames from where the cursor stands, in decode order (each has a PTS)."""
        for frame in self._packets or ():
            pts = frame.pts
            if pts is None or (self._accept_from is not None and pts < self._accept_from):
                continue
            self._last_pts = pts
            yield frame
        self._packets = None

    def close_enough(self, n: int, target: int, seek_pts: int, index: FrameIndex) -> bool:
        """Whether decoding on reaches frame ``n`` (PTS ``target``, keyframe ``seek_pts``) without a seek."""
        last = self._last_pts
        if not self.active or last is None or last >= target:
            return False
        behind = index.frame_of(last)
        return last >= seek_pts or (behind is not None and n - behind <= CATCH_UP_FRAMES)

    def _decode(self) -> Iterator[av.VideoFrame]:
        # After a seek, packets before the first keyframe would decode against missing references:
        # skip them. A first keyframe past the one asked for means the demuxer overshot (MPEG-TS
        # seeks are approximate): stop, and the caller seeks further back.
        accept_from = self._accept_from
        waiting = accept_from is not None
        self._overshot = False
        for packet in self._container.demux(self._stream):
            if waiting:
                if not packet.is_keyframe or packet.size == 0:
                    continue
                key = packet.pts if packet.pts is not None else packet.dts
                if key is not None and accept_from is not None and key > accept_from:
                    self._overshot = True
                    return
                waiting = False
            try:
                yield from packet.decode()
            except av.error.FFmpegError as exc:  # a corrupt packet (EOFError too): note it, go on
                self._errors.append(str(exc.strerror or type(exc).__name__))

    def close(self) -> None:
        self._container.close()


class CursorPool:
    """Up to ``size`` cursors; the one chosen for a frame is already on its way there if any is."""

    def __init__(self, info: StreamInfo, size: int) -> None:
        self.info, self.size = info, size
        self._cursors: list[Cursor] = []

    def cursor_for(self, n: int, index: FrameIndex) -> Cursor:
        """A cursor that will reach frame ``n`` of ``index``: one already on its way there decodes on
        (:meth:`Cursor.close_enough`); otherwise the least recently used cursor seeks to its keyframe."""
        target, seek_pts = int(index.pts[n]), int(index.seek_pts[n])
        for cursor in self._cursors:
            if cursor.close_enough(n, target, seek_pts, index):
                self._cursors.remove(cursor)
                self._cursors.append(cursor)  # most recently used last
                return cursor
        cursor = Cursor(self.info) if len(self._cursors) < self.size else self._cursors.pop(0)
        self._cursors.append(cursor)
        cursor.seek(seek_pts, from_start=seek_pts < int(index.pts[0]))
        return cursor


Entry = tuple[list[np.ndarray], dict]


class FrameCache:
    """Decoded frames (planes, props) kept least-recently-used first, bounded in bytes.

    Args:
        max_bytes: the bound; at least ``min_frames`` frames are kept whatever their size.
        min_frames: the floor (and the bound until the first frame tells the frame size).
    """

    def __init__(self, max_bytes: int, min_frames: int = 8) -> None:
        self.max_bytes, self.min_frames = max_bytes, min_frames
        self._frames: OrderedDict[int, Entry] = OrderedDict()
        self._limit = min_frames

    def get(self, n: int) -> Entry | None:
        hit = self._frames.get(n)
        if hit is not None:
            self._frames.move_to_end(n)
        return hit

    def put(self, n: int, entry: Entry) -> None:
        if len(self._frames) == 0 and self._limit == self.min_frames:
            frame_bytes = max(1, sum(p.nbytes for p in entry[0]))
            self._limit = max(self.min_frames, self.max_bytes // frame_bytes)
        self._frames[n] = entry
        self._frames.move_to_end(n)
        while len(self._frames) > self._limit:
            self._frames.popitem(last=False)

    def __len__(self) -> int:
        return len(self._frames)


def verify_tail(index: FrameIndex, info: StreamInfo) -> FrameIndex:
    """Decode the last GOP; frames in it that do not come out (a truncated file) leave the index."""
    if len(index) == 0:
        return index
    newest = int(np.argmax(index.pts))
    tail = index.pts >= int(index.seek_pts[newest])
    # Start one keyframe earlier (seeks can be approximate), or from the top if that overshoots.
    start = index.earlier_seek(newest)
    cursor = Cursor(info)
    try:
        cursor.seek(start, from_start=start < int(index.pts[0]))
        seen = {f.pts for f in cursor.frames()}
        if cursor.overshot:
            cursor.seek(0, from_start=True)
            seen = {f.pts for f in cursor.frames()}
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
    return FrameIndex(index.pts[keep], dur, index.seek_pts[keep], index.keyframe[keep], index.size[keep],
                      index.time_base, True)
