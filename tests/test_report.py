"""compare --report: a self-contained page whose every number is compare's JSON, looked at in a browser."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

pytest.importorskip("PIL", reason="the dev extra (Pillow) decodes the page's images")

from vsfilter.compare.cli import main as cli_main

from media import encode_pair

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class _Page(HTMLParser):
    """Numbers with their data-key, image sources, every URL-bearing attribute, and unkeyed text."""

    def __init__(self) -> None:
        super().__init__()
        self.keyed: list[tuple[str, int, str]] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.loose_text: list[str] = []
        self._stack: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for name in ("href", "src", "xlink:href", "action"):
            if name in a:
                self.urls.append(a[name])
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag not in ("img", "line", "polyline", "meta", "br"):
            self._stack.append((tag, a))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if not data.strip() or not self._stack:
            return
        tag, attrs = self._stack[-1]
        if "data-key" in attrs:
            self.keyed.append((attrs["data-key"], int(attrs["data-digits"]), data.strip()))
        elif tag not in ("style", "title") and not any("data-info" in a or "data-axis" in a for _, a in self._stack):
            self.loose_text.append(data.strip())


def _lookup(doc: dict, key: str):
    value = doc
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.fixture(scope="module")
def report(tmp_path_factory, two_input_onnx):
    """An x264 CRF 38 pair through a quantizer-conditioned model: the page also says what it was told."""
    root = tmp_path_factory.mktemp("report")
    ref, dist = encode_pair(root, frames=16, width=192, height=128, crf=38)
    page, doc = root / "page.html", root / "result.json"
    assert cli_main([str(ref), str(dist), "--model", str(two_input_onnx), "--device", "cpu", "--report", str(page),
                     "--json", str(doc), "--quiet"]) == 0
    return page, json.loads(doc.read_text())


def test_every_number_on_the_page_is_the_json_result(report):
    page, doc = report
    parser = _Page()
    parser.feed(page.read_text())
    assert len(parser.keyed) > 40
    for key, digits, text in parser.keyed:
        expected = _lookup(doc, key)
        signed = text.startswith(("+", "-")) and key.startswith("delta")
        shown = f"{expected:+.{digits}f}" if signed else f"{expected:.{digits}f}"
        assert text == shown, (key, text, shown)
    assert {"delta.psnr_y", "delta.vmaf_neg", "pooled.distorted.vmaf", "pooled_p5.prefiltered.vmaf"} <= \
        {k for k, _, _ in parser.keyed}
    assert any(k.endswith(".quantizer.qp") for k, _, _ in parser.keyed)  # what the model was told, per frame
    stray = [t for t in parser.loose_text if any(c.isdigit() for c in t)]
    assert not stray, f"numbers on the page that are not compare's: {stray}"


def test_the_page_is_self_contained_and_its_images_decode(report):
    from PIL import Image

    page, doc = report
    text = page.read_text()
    parser = _Page()
    parser.feed(text)
    assert parser.images and all(src.startswith("data:image/png;base64,") for src in parser.images)
    assert all(u.startswith("data:") for u in parser.urls), [u for u in parser.urls if not u.startswith("data:")]
    assert "http://" not in text and "https://" not in text and "<script" not in text
    frames_shown = {k for k, _, _ in parser.keyed if k.endswith(".frame")}
    assert len(parser.images) == 9 * len(frames_shown) > 0  # 3 panels, 3 maps, 3 crops per selected frame
    for src in parser.images:
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            image.load()
            assert image.size[0] > 0 and image.size[1] > 0


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                    reason="headless Chromium (Debian's chromium package) is not installed; .ci/run installs it")
def test_chromium_renders_the_page(report, tmp_path):
    page, _ = report
    shot = tmp_path / "page.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
                           f"--screenshot={shot}", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    import numpy as np
    from PIL import Image

    with Image.open(shot) as image:
        values = np.asarray(image.convert("L").resize((64, 100)))
    assert int(values.max()) - int(values.min()) > 100, "the screenshot is blank"
