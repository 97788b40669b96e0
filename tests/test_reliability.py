"""Reliability: no crash, no hang, no lost file, no traceback (the reliability issue, case by case).

Crash and hang cases run in a child process with a timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import vapoursynth as vs
from onnx import TensorProto, helper, numpy_helper

from vsfilter import vmaf_pre

from conftest import noise_clip, one_line_error
from media import encode_clip, encode_pair

ROOT = Path(__file__).resolve().parents[1]


def run_compare(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsfilter.compare", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return encode_pair(tmp_path_factory.mktemp("pair"), frames=12, width=128, height=96, crf=36)


# ------------------------------------------------------------------------- crash: tiny frames


@pytest.mark.parametrize("size", [(2, 2), (7, 5), (16, 16), (16, 64), (64, 16)])
def test_frames_too_small_for_libvmaf_are_refused_not_crashed(tmp_path, size, filter_onnx):
    w, h = size
    clip = encode_clip(tmp_path / "tiny.mkv", "ffv1", frames=3, width=w, height=h, pix_fmt="gray")
    line = one_line(run_compare(str(clip), str(clip), "--model", str(filter_onnx), "--device", "cpu", timeout=120))
    assert f"{w}x{h}" in line and "at least 17x17" in line


def test_smallest_libvmaf_size_scores(tmp_path, filter_onnx):
    clip = encode_clip(tmp_path / "small.mkv", "ffv1", frames=3, width=17, height=17, pix_fmt="gray")
    proc = run_compare(str(clip), str(clip), "--model", str(filter_onnx), "--device", "cpu", "--quiet", timeout=120)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------------- hang: Ctrl-C, SIGTERM


@pytest.fixture(scope="module")
def long_pair(tmp_path_factory):
    return encode_pair(tmp_path_factory.mktemp("long"), frames=400, width=640, height=360, crf=36)


@pytest.fixture()
def busy_cores(request):
    """Both cores kept busy by other processes while the test runs (when the parameter says so)."""
    if not request.param:
        yield False
        return
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield True
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.parametrize("busy_cores", [False, True], indirect=True, ids=["idle", "loaded"])
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_while_scoring_ends_fast_and_clean(long_pair, tmp_path, sig, code, busy_cores):
    """Ctrl-C and SIGTERM end compare within a second, the two cores idle or loaded by other processes."""
    ref, dist = long_pair
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out.json"
    out.write_text("keep")
    env = dict(os.environ, TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    child = subprocess.Popen([sys.executable, "-m", "vsfilter.compare", str(ref), str(dist), "--device", "cpu",
                              "--json", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    # wait until libvmaf's temporary logs exist: the scorers are running and frames are flowing
    deadline = time.monotonic() + 120
    while not list(tmp.glob("vsfilter-vmaf-*.json")) and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    time.sleep(1.5)
    assert child.poll() is None, child.communicate()
    sent = time.monotonic()
    child.send_signal(sig)
    try:
        _, err = child.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        child.kill()
        pytest.fail("compare did not end within 5 s of the signal")
    took = time.monotonic() - sent
    assert took < 1.0, f"compare took {took:.2f} s to end after the signal ({'loaded' if busy_cores else 'idle'})"
    assert child.returncode == code, err
    assert err.strip().splitlines() == ["compare: interrupted"], err
    assert out.read_text() == "keep"
    # ONNX Runtime keeps a session-id file (.ses) in the temp folder on every run, interrupted or not
    left = [p for p in tmp.iterdir() if p.name != ".ses"]
    assert not left and not [p for p in tmp_path.iterdir() if p.name.startswith(".")], f"left behind: {left}"


@pytest.mark.parametrize("tool", ["compare", "batch", "rd"])
@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_while_importing_is_one_line(tool, sig, code):
    """Ctrl-C while ``python -m vsfilter.<tool>`` is still importing its libraries (seconds on a loaded
    machine) ends like an interruption later does: one line, 130 / 143, no traceback from inside an import.
    ``-X importtime`` reports each import as it completes: the signal goes when the first import after
    ``vsfilter._cli`` (vsfilter's first, which arms the handler) completes, inside OpenVINO's import, long
    before any tool code runs."""
    child = subprocess.Popen([sys.executable, "-X", "importtime", "-m", f"vsfilter.{tool}", "--help"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen: list[str] = []
    for line in child.stderr:
        if any("vsfilter._cli" in x for x in seen):  # an import after vsfilter's first: the tool is loading
            break
        seen.append(line)
    assert child.poll() is None, "".join(seen)
    child.send_signal(sig)
    out, err = child.communicate(timeout=30)
    lines = [x for x in err.splitlines() if not x.startswith("import time:")]
    assert child.returncode == code, err[-2000:]
    assert lines == [f"{tool}: interrupted"], lines
    assert "usage" not in out  # the tool never ran


# ------------------------------------------------------------------------- data loss: outputs = inputs


def test_outputs_that_are_inputs_or_each_other_are_refused(pair, tmp_path, filter_onnx):
    ref, dist = pair
    m = ["--model", str(filter_onnx), "--device", "cpu"]
    before = {p: p.read_bytes() for p in (ref, dist)}
    link = tmp_path / "link.json"
    link.symlink_to(dist)
    hard = tmp_path / "hard.mp4"
    os.link(dist, hard)
    dotted = ref.parent / "sub" / ".." / ref.name  # the reference, reached through a '..'
    cases = [["--json", str(dist)], ["--csv", str(ref)], ["--plot", str(dist)], ["--json", str(link)],
             ["--csv", str(hard)], ["--report", str(ref.parent / "sub" / ".." / dist.name)], ["--json", str(dotted)],
             ["--json", str(tmp_path / "a.out"), "--csv", str(tmp_path / "a.out")]]
    for extra in cases:
        if "sub" in extra[-1]:
            (ref.parent / "sub").mkdir(exist_ok=True)
        line = one_line(run_compare(str(ref), str(dist), *m, *extra))
        assert "is the same file as" in line, (extra, line)
    assert all(p.read_bytes() == data for p, data in before.items())
    assert not (tmp_path / "a.out").exists()


def test_unwritable_output_names_the_path(pair, filter_onnx):
    ref, dist = pair
    line = one_line(run_compare(str(ref), str(dist), "--model", str(filter_onnx), "--json", "/proc/x/out.json"))
    assert "/proc/x" in line


def test_replacing_an_output_keeps_its_mode(tmp_path):
    from vsfilter.atomic import atomic_write_text

    target = tmp_path / "secret.json"
    target.write_text("old")
    target.chmod(0o600)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and (target.stat().st_mode & 0o777) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------- damaged index cache


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_index_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    import vsfilter
    from vsfilter.reader.index import index_path_for

    monkeypatch.setenv("VSFILTER_CACHE_DIR", str(tmp_path / "cache"))
    clip_path = encode_clip(tmp_path / "c.mp4", "libx264", frames=10, width=64, height=48)
    first = vsfilter.source(clip_path)
    cached = index_path_for(clip_path, 0)
    good = cached.read_bytes()
    cached.write_bytes({"empty": b"", "truncated": good[: len(good) // 2], "garbage": b"PK\x03\x04 nonsense"}[damage])
    again = vsfilter.source(clip_path)
    assert again.num_frames == first.num_frames == 10
    assert np.array_equal(np.asarray(again.get_frame(9)[0]), np.asarray(first.get_frame(9)[0]))
    with np.load(cached) as data:  # rewritten whole
        assert len(data["pts"]) == 10


# ------------------------------------------------------------------------- models that do not fit


def _model(path: Path, op: str) -> Path:
    """A 1-channel model whose graph is Conv(3x3) followed by ``op``-specific nodes."""
    w = numpy_helper.from_array(np.full((1, 1, 3, 3), 1 / 9, np.float32), "w")
    nodes, inits = [], [w]
    if op == "stride2":
        nodes.append(helper.make_node("Conv", ["input", "w"], ["output"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                      strides=[2, 2]))
        out_shape = ["N", 1, "H2", "W2"]
    else:
        nodes.append(helper.make_node("Conv", ["input", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("GlobalAveragePool", ["c"], ["g"]))
        nodes.append(helper.make_node("Add", ["c", "g"], ["output"]))
        out_shape = ["N", 1, "H", "W"]
    source = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, "H", "W"])
    graph = helper.make_graph(nodes, op, [source],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.save(proto, str(path))
    return path


def test_a_model_that_changes_the_size_is_refused_when_built(core, tmp_path, pair):
    model = _model(tmp_path / "stride2.onnx", "stride2")
    clip = core.std.BlankClip(format=vs.GRAY8, width=64, height=48)
    msg = one_line_error(lambda: vmaf_pre(clip, model=str(model), device="cpu"), "vmaf_pre: ")
    assert "needs a model whose output has its input's shape" in msg
    ref, dist = pair
    line = one_line(run_compare(str(ref), str(dist), "--model", str(model), "--device", "cpu"))
    assert "input's shape" in line


def test_tiling_a_non_local_model_is_refused(core, tmp_path):
    model = _model(tmp_path / "gap.onnx", "gap")
    clip = noise_clip(core, vs.GRAY8, 96, 64, length=1)
    whole = vmaf_pre(clip, model=str(model), device="cpu")  # untiled: fine
    assert whole.get_frame(0)
    msg = one_line_error(lambda: vmaf_pre(clip, model=str(model), device="cpu", tilesize=48), "vmaf_pre: ")
    assert "GlobalAveragePool" in msg and "cannot be tiled" in msg


def test_auto_tiling_is_bit_identical_to_whole_frames(core, filter_onnx, monkeypatch):
    import vsfilter.filter as filter_module

    tiles_used = []
    tiled = filter_module.filter_tiled
    monkeypatch.setattr(filter_module, "filter_tiled",
                        lambda plane, run, tile, *a, **k: tiles_used.append(tile) or tiled(plane, run, tile, *a, **k))
    clip = noise_clip(core, vs.GRAY16, 2000, 1100, length=1)  # just over the 1920x1088 threshold
    auto = np.asarray(vmaf_pre(clip, model=str(filter_onnx), device="cpu").get_frame(0)[0])
    assert tiles_used == [(416, 380)]  # 5 x 3 even tiles of at most 512 px, 10 px of context
    whole = np.asarray(vmaf_pre(clip, model=str(filter_onnx), device="cpu", tilesize=0).get_frame(0)[0])
    assert len(tiles_used) == 1 and np.array_equal(auto, whole)


# ------------------------------------------------------------------------- misleading messages


def test_messages_name_the_real_problem(core, tmp_path, monkeypatch, filter_onnx):
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    assert "is a folder" in one_line_error(lambda: vmaf_pre(clip, model=str(tmp_path)), "vmaf_pre: ")
    msg = one_line_error(lambda: vmaf_pre(clip, model=str(filter_onnx), device="cpu", precision="fp16"), "vmaf_pre: ")
    assert "CUDA" in msg and "bf16" not in msg
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(tmp_path / "missing"))
    msg = one_line_error(lambda: vmaf_pre(clip), "vmaf_pre: ")
    assert "VSFILTER_MODEL_DIR" in msg and "is not a folder" in msg and "empty" not in msg


def test_a_damaged_int8_sidecar_blocks_only_int8(core, tmp_path, monkeypatch):
    import shutil

    shipped = ROOT / "model" / "tiny"
    for f in shipped.iterdir():
        shutil.copy(f, tmp_path / f.name)
    registry = json.loads((tmp_path / "registry.json").read_text())
    int8 = next(m for m in registry["models"] if m["id"] == "learned_filter_v1")["int8_onnx"]
    (tmp_path / int8).write_bytes(b"damaged")
    monkeypatch.setenv("VSFILTER_MODEL_DIR", str(tmp_path))
    clip = core.std.BlankClip(format=vs.GRAY8, width=32, height=32)
    assert vmaf_pre(clip, device="cpu", precision="fp32").get_frame(0).props["VmafPrePrecision"] == "fp32"
    msg = one_line_error(lambda: vmaf_pre(clip, device="cpu", precision="int8"), "vmaf_pre: ")
    assert "INT8 sidecar" in msg and "does not match" in msg


# ------------------------------------------------------------------------- the stock pipeline script


def test_vmaf_pipeline_checks_and_escapes_the_log_path(pair, tmp_path, filter_onnx):
    ref, dist = pair
    env = dict(os.environ, PYTHON=sys.executable)
    script = str(ROOT / "examples" / "vmaf_pipeline.sh")
    bad = subprocess.run(["bash", script, str(ref), str(dist), str(tmp_path / "no" / "log.json"), str(filter_onnx)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    log = tmp_path / "a:b,c.json"
    ok = subprocess.run(["bash", script, str(ref), str(dist), str(log), str(filter_onnx)], capture_output=True,
                        text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(log.read_text())["frames"]) == 12


# ------------------------------------------------------------------------- fuzz


def test_fuzz_compare_never_crashes_or_hangs(pair, tmp_path, filter_onnx):
    """Truncated and byte-flipped copies of the distorted file: exit 0 or 2, one line on error."""
    ref, dist = pair
    data = dist.read_bytes()
    rng = np.random.default_rng(11)
    cases = []
    for i in range(8):
        damaged = bytearray(data)
        if i % 2:
            damaged = damaged[: int(len(data) * rng.uniform(0.05, 0.9))]
        else:
            for pos in rng.integers(0, len(data), 20):
                damaged[pos] ^= int(rng.integers(1, 256))
        path = tmp_path / f"fuzz{i}.mp4"
        path.write_bytes(bytes(damaged))
        cases.append(path)
    for path in cases:
        proc = run_compare(str(ref), str(path), "--model", str(filter_onnx), "--device", "cpu", "--quiet",
                           timeout=180)
        assert proc.returncode in (0, 2), (path.name, proc.returncode, proc.stderr[-1500:])
        if proc.returncode == 2:
            one_line(proc)


def test_errors_cross_vapoursynth_with_their_type(tmp_path):
    """source/vmaf_pre raise vs.Error (VapourSynth needs it) but the typed error travels with it: callers
    ask cause_of instead of parsing the message."""
    import vapoursynth as vs

    from vsfilter import source
    from vsfilter.errors import OptionError, SourceError, cause_of, message_of
    from vsfilter.filter import vmaf_pre

    with pytest.raises(vs.Error) as info:
        source(tmp_path / "missing.mp4")
    cause = cause_of(info.value)
    assert isinstance(cause, SourceError) and str(info.value) == f"source: {cause}" == message_of(info.value)
    with pytest.raises(vs.Error) as info:
        vmaf_pre(vs.core.std.BlankClip(format=vs.GRAY8, width=32, height=32), threads=-1)
    assert isinstance(cause_of(info.value), OptionError)
    assert cause_of(vs.Error("some other plugin's error")) is None
