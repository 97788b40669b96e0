"""vsfilter.source: frame-exact random access across codecs, props, VFR, and bad input."""

from __future__ import annotations

import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs

from vsfilter import source

from conftest import one_line_error
from media import clip_hash, encode_clip, linear_hashes

CODECS = {
    "x264_bframes_open_gop.mp4": ("libx264", "yuv420p", {
        "x264-params": "keyint=12:min-keyint=4:bframes=3:open-gop=1:b-pyramid=normal", "preset": "ultrafast"}),
    "x264_422.mkv": ("libx264", "yuv422p", {"x264-params": "keyint=10:bframes=2"}),
    "x265.mp4": ("libx265", "yuv420p", {"x265-params": "keyint=10:bframes=4:log-level=error", "preset": "ultrafast"}),
    "x265_10bit_open_gop.mkv": ("libx265", "yuv420p10le", {
        "x265-params": "keyint=8:bframes=3:open-gop=1:log-level=error", "preset": "ultrafast"}),
    "vp9.webm": ("libvpx-vp9", "yuv420p", {"g": "10", "deadline": "realtime", "cpu-used": "8"}),
    "svtav1.mkv": ("libsvtav1", "yuv420p", {"g": "12", "preset": "12"}),
    "ffv1_444p16.mkv": ("ffv1", "yuv444p16le", {}),
    "ffv1_gray10.mkv": ("ffv1", "gray10le", {}),
    "mpeg2.ts": ("mpeg2video", "yuv420p", {"g": "9", "bf": "2"}),
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    made = {}
    for name, (codec, pix_fmt, options) in CODECS.items():
        made[name] = encode_clip(root / name, codec, pix_fmt=pix_fmt, options=options, frames=37)
    return made


@pytest.mark.parametrize("name", list(CODECS))
def test_random_access_equals_linear_decode(clips, name):
    path = clips[name]
    expected = linear_hashes(path)
    clip = source(path, cache=False)
    assert clip.num_frames == len(expected) == 37
    order = list(range(clip.num_frames))
    random.Random(7).shuffle(order)
    got = {n: clip_hash(clip.get_frame(n)) for n in order}
    wrong = [n for n in order if got[n] != expected[n]]
    assert not wrong, f"{name}: frames {wrong} differ from a linear decode"


def test_matches_bestsource(clips, core):
    if not hasattr(core, "bs"):
        pytest.skip("vapoursynth-bestsource is not installed (it is in the dev extra)")
    for name in ("x264_bframes_open_gop.mp4", "x265_10bit_open_gop.mkv", "vp9.webm"):
        ours = source(clips[name], cache=False)
        theirs = core.bs.VideoSource(str(clips[name]), cachemode=0)
        assert ours.num_frames == theirs.num_frames
        assert ours.format.id == theirs.format.id
        for n in random.Random(3).sample(range(ours.num_frames), 12):
            assert clip_hash(ours.get_frame(n)) == clip_hash(theirs.get_frame(n)), f"{name} frame {n}"


def test_formats_and_fps(clips):
    clip = source(clips["x265_10bit_open_gop.mkv"], cache=False)
    assert clip.format.id == vs.YUV420P10 and (clip.width, clip.height) == (96, 64)
    assert clip.fps == Fraction(25)
    assert source(clips["ffv1_gray10.mkv"], cache=False).format.id == vs.GRAY10
    assert source(clips["ffv1_444p16.mkv"], cache=False).format.id == vs.YUV444P16
    assert source(clips["x264_422.mkv"], cache=False).format.id == vs.YUV422P8


def test_nv12_p010_gbrp_are_planar(tmp_path):
    """Interleaved and RGB formats come out planar with the samples as coded."""
    import av

    from vsfilter.reader.planes import frame_planes, layout_of

    from media import _frame_from_luma, pattern

    for target, planar, bits in (("nv12", "yuv420p", 8), ("p010le", "yuv420p10le", 10), ("gbrp", "gbrp", 8)):
        ref = _frame_from_luma(pattern(3, 96, 64, bits), planar, bits)
        frame = ref.reformat(format=target) if target != planar else ref
        got = frame_planes(frame, layout_of(target))
        want = frame_planes(ref, layout_of(planar))
        if target == "gbrp":
            want = [np.asarray(want[k]) for k in range(3)]
        for p in range(3):
            assert np.array_equal(got[p], want[p]), f"{target} plane {p}"
    # and real files: nv12 and gbrp rawvideo in NUT
    for name, codec, pix_fmt, vs_fmt in (("nv12.nut", "rawvideo", "nv12", vs.YUV420P8),
                                         ("gbrp.nut", "rawvideo", "gbrp", vs.RGB24)):
        clip = source(encode_clip(tmp_path / name, codec, pix_fmt=pix_fmt, frames=3), cache=False)
        assert clip.format.id == vs_fmt
        with av.open(str(tmp_path / name)) as container:
            ref = next(container.decode(video=0))
        g = np.frombuffer(ref.planes[0], np.uint8).reshape(ref.planes[0].height, -1)[:, :96]
        assert np.array_equal(np.asarray(clip.get_frame(0)[1 if pix_fmt == "gbrp" else 0]), g)


def test_frame_props(clips):
    frame = source(clips["x264_bframes_open_gop.mp4"], cache=False).get_frame(4)
    props = frame.props
    assert props["_PictType"] in ("I", "P", "B")
    assert props["_FieldBased"] == 0
    assert (props["_DurationNum"], props["_DurationDen"]) == (1, 25)
    assert props["_AbsoluteTime"] == pytest.approx(4 / 25)
    assert (props["_SARNum"], props["_SARDen"]) == (1, 1)


def test_color_props(tmp_path, core):
    """The stream's colour tags become the props, with VapourSynth's range convention (_Range 0 = limited,
    1 = full), so zimg converts as the file says (it read full as limited and back before)."""
    import av

    for pix_fmt, rng, expect_range in (("yuv420p", "tv", 0), ("yuvj420p", "pc", 1)):
        path = encode_clip(tmp_path / f"bt709_{rng}.mkv", "libx264", frames=3, pix_fmt=pix_fmt, options={
            "x264-params": f"colorprim=bt709:transfer=bt709:colormatrix=bt709:range={rng}"})
        with av.open(str(path)) as c:
            f = next(c.decode(video=0))
            assert (f.colorspace, f.color_primaries, f.color_trc) == (1, 1, 1)  # the file carries the tags
            assert f.color_range == 2 or f.format.name.startswith("yuvj") if rng == "pc" else f.color_range == 1
        clip = source(path, cache=False)
        props = clip.get_frame(0).props
        assert (props["_Matrix"], props["_Primaries"], props["_Transfer"]) == (1, 1, 1)
        assert props["_Range"] == expect_range
        black = core.std.BlankClip(clip, color=[16, 128, 128]).std.CopyFrameProps(clip)
        rgb = np.asarray(black.resize.Point(format=vs.RGB24).get_frame(0)[0])[0, 0]
        assert rgb == (0 if expect_range == 0 else 16)  # limited: code 16 is black; full: it is not


def test_vfr_clip_and_constant_rate_conversion(tmp_path):
    tb = Fraction(1, 1000)
    pts = [0, 40, 80, 100, 120, 200, 240, 250, 300, 340]
    path = encode_clip(tmp_path / "vfr.mkv", "libx264", frames=len(pts), pts=pts, time_base=tb,
                       options={"x264-params": "bframes=0"})
    clip = source(path, cache=False)
    assert clip.num_frames == len(pts)
    assert clip.fps == 0
    durations = [Fraction(clip.get_frame(n).props["_DurationNum"], clip.get_frame(n).props["_DurationDen"])
                 for n in range(len(pts) - 1)]
    assert durations == [Fraction(b - a, 1000) for a, b in zip(pts, pts[1:])]
    cfr = source(path, fpsnum=50, cache=False)  # 20 ms per frame
    assert cfr.fps == 50
    linear = linear_hashes(path)
    # output frame k shows the last source frame with pts <= 20*k ms
    for k in range(cfr.num_frames):
        src = max(i for i, p in enumerate(pts) if p <= 20 * k)
        assert clip_hash(cfr.get_frame(k)) == linear[src], k


def test_index_cache_is_reused_and_kept_away_from_input(clips, tmp_path, monkeypatch):
    monkeypatch.setenv("VSFILTER_CACHE_DIR", str(tmp_path / "cache"))
    path = clips["vp9.webm"]
    before = set(path.parent.iterdir())
    a = source(path)
    files = list((tmp_path / "cache" / "index").iterdir())
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = source(path)
    assert files[0].stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert a.num_frames == b.num_frames and set(path.parent.iterdir()) == before


def test_truncated_file_is_honest(clips, tmp_path):
    data = clips["x264_422.mkv"].read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    clip = source(cut, cache=False)
    expected = linear_hashes(cut)
    assert 0 < clip.num_frames <= len(expected) + 1
    for n in range(clip.num_frames):
        assert clip_hash(clip.get_frame(n)) == expected[n]


def _error(fn) -> str:
    return one_line_error(fn, "source: ")


def test_bad_input(tmp_path, clips):
    assert "does not exist" in _error(lambda: source(tmp_path / "nope.mp4"))
    assert "directory" in _error(lambda: source(tmp_path))
    (tmp_path / "notes.txt").write_text("hello, this is not a video\n" * 20)
    assert "not a readable media file" in _error(lambda: source(tmp_path / "notes.txt"))
    assert "out of range" in _error(lambda: source(clips["vp9.webm"], track=1))
    audio = tmp_path / "tone.wav"
    import av
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.rate = 8000
        for p in stream.encode(frame):
            out.mux(p)
        for p in stream.encode(None):
            out.mux(p)
    assert "no video stream" in _error(lambda: source(audio))


def test_corrupt_packet_mid_stream(clips, tmp_path):
    data = bytearray(clips["x264_422.mkv"].read_bytes())
    rng = np.random.default_rng(5)
    middle = len(data) // 2
    for i in rng.integers(middle - 2000, middle + 2000, 40):
        data[i] ^= 0xFF
    bad = tmp_path / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    clip = source(bad, cache=False)
    assert clip.num_frames >= 30
    for n in range(clip.num_frames):
        try:
            clip.get_frame(n)
        except vs.Error as exc:  # a decoder error names the frame; no crash
            # Errors raised at frame time come wrapped in VapourSynth's traceback; the error is its last line.
            assert f"source: frame {n}: the decoder could not produce it" in str(exc).strip().splitlines()[-1]


def test_fuzz_truncated_and_flipped_files_never_crash_or_hang(clips, tmp_path):
    import subprocess
    import sys

    rng = np.random.default_rng(11)
    out = tmp_path / "fuzz"
    out.mkdir()
    for name in ("x264_bframes_open_gop.mp4", "x265.mp4", "vp9.webm", "mpeg2.ts"):
        data = clips[name].read_bytes()
        for k in range(6):
            buf = bytearray(data[: int(rng.integers(16, len(data)))] if k % 2 == 0 else data)
            for i in rng.integers(0, len(buf), int(rng.integers(1, 30))):
                buf[i] = int(rng.integers(0, 256))
            (out / f"{k}_{name}").write_bytes(bytes(buf))
    child = Path(__file__).with_name("fuzz_source_child.py")
    result = subprocess.run([sys.executable, str(child), str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "opened=" in result.stdout


def test_sequential_and_interleaved_access_do_not_seek_per_frame(tmp_path, monkeypatch):
    import vsfilter.reader.decoding as src_mod

    path = encode_clip(tmp_path / "long.mp4", "libx264", frames=120,
                       options={"x264-params": "keyint=30:bframes=2"})
    seeks = []
    original = src_mod.Cursor.seek

    def counting(self, pts, from_start):
        seeks.append(pts)
        return original(self, pts, from_start)

    monkeypatch.setattr(src_mod.Cursor, "seek", counting)
    clip = source(path, cache=False)
    seeks.clear()
    linear = linear_hashes(path)
    assert [clip_hash(f) for f in clip.frames()] == linear
    assert len(seeks) <= 1, f"sequential read seeked {len(seeks)} times"
    clip = source(path, cache=False)
    seeks.clear()
    # two positions read alternately (as an interleaving script does): one decoder each
    for n in range(30):
        assert clip_hash(clip.get_frame(n)) == linear[n]
        assert clip_hash(clip.get_frame(60 + n)) == linear[60 + n]
    assert len(seeks) <= 2, f"interleaved read seeked {len(seeks)} times"


# ----------------------------------------------------------------------------- the pure parts


def test_seek_points_respect_open_gop_leading_pictures():
    from vsfilter.reader.index import _seek_points

    # rows in decode order: (pts, order, key, duration); an open GOP: keyframe at 8, leading B at 6, 7
    rows = np.array([(0, 0, 1, 1), (3, 1, 0, 1), (1, 2, 0, 1), (2, 3, 0, 1), (8, 4, 1, 1), (6, 5, 0, 1),
                     (7, 6, 0, 1), (11, 7, 0, 1), (9, 8, 0, 1), (10, 9, 0, 1)], dtype=np.int64)
    seek = dict(zip(rows[:, 0].tolist(), _seek_points(rows).tolist()))
    assert seek[0] == seek[3] == seek[1] == 0
    assert seek[6] == seek[7] == 0, "leading pictures decode from the keyframe before"
    assert seek[8] == seek[9] == seek[11] == 8
    late = np.array([(5, 0, 0, 1), (6, 1, 1, 1)], dtype=np.int64)  # no keyframe before the first frame
    assert _seek_points(late).tolist() == [4, 6]


def test_layout_of_pixel_formats():
    from vsfilter.reader.planes import layout_of

    yuv = layout_of("yuv420p10le")
    assert (yuv.family, yuv.bits, yuv.ssw, yuv.ssh) == ("yuv", 10, 1, 1)
    assert layout_of("yuvj444p").ssw == 0 and layout_of("gray12le").bits == 12
    p010 = layout_of("p010le")
    assert p010.interleaved_chroma and p010.shift == 6
    assert layout_of("gbrp").plane_order == (2, 0, 1)
    assert layout_of("yuv420p10be") is None and layout_of("rgb24") is None and layout_of("yuv420pfoo") is None


def test_frame_cache_is_bounded_in_bytes():
    from vsfilter.reader.decoding import FrameCache

    cache = FrameCache(max_bytes=10_000, min_frames=3)
    planes = [np.zeros((30, 100), np.uint8)]  # 3000 bytes a frame: 3 fit
    for n in range(6):
        cache.put(n, (planes, {}))
    assert len(cache) == 3 and cache.get(0) is None and cache.get(5) is not None
    big = FrameCache(max_bytes=10, min_frames=2)
    for n in range(4):
        big.put(n, (planes, {}))
    assert len(big) == 2  # the floor, whatever the frame size
