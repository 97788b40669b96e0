"""The code-health limits of vsfilter/ and training/: no function over 80 lines and no class over 150
(docstrings not counted), one exception root, and library messages free of command-line flags."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vsfilter"
#: The trees the size gate covers: the package and the training pipeline.
GATED = (PACKAGE, ROOT / "training")


def _length(node: ast.AST) -> int:
    body = list(getattr(node, "body", []))
    doc = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        doc = body[0].end_lineno - body[0].lineno + 1
    return node.end_lineno - node.lineno + 1 - doc


def test_functions_and_classes_stay_small():
    too_long = []
    for path in sorted(p for tree in GATED for p in tree.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _length(node) > 80:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({_length(node)})")
            if isinstance(node, ast.ClassDef) and _length(node) > 150:
                too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} class {node.name} "
                                f"({_length(node)})")
    assert not too_long, too_long


def test_one_exception_root():
    import vsfilter
    import vsfilter.batch
    import vsfilter.compare
    from vsfilter.errors import VsfilterError

    found = []
    for module in (vsfilter, vsfilter.compare, vsfilter.batch, vsfilter.errors):
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Exception) and obj.__module__.startswith("vsfilter"):
                found.append(obj)
                assert issubclass(obj, VsfilterError), name
    assert len(found) >= 6


def test_import_vsfilter_is_cheap():
    import subprocess
    import sys

    probe = ("import sys, vsfilter; heavy = [m for m in ('vapoursynth', 'onnxruntime', 'av', 'av.filter', "
             "'vsfilter.compare', 'torch', 'distributed') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _messages(tree: ast.AST):
    """String constants inside ``raise`` statements and ``warnings.append(...)``/``notes.append(...)`` calls."""
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Raise):
            target = node.exc
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "append" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id in ("warnings", "notes"):
            target = node
        if target is None:
            continue
        for sub in ast.walk(target):
            if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                yield sub.lineno, sub.value


def test_no_library_message_names_a_cli_flag():
    """Library code says what to pass in words a Python caller can act on; only the CLIs name flags."""
    import re

    flag = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in ("cli.py", "_cli.py", "__main__.py"):
            continue
        for line, text in _messages(ast.parse(path.read_text())):
            if flag.search(text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, found


def test_every_exception_class_lives_in_errors_py():
    """One place for vsfilter's exceptions (the signal used to end a CLI, a BaseException, aside)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [getattr(b, "id", getattr(b, "attr", "")) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) and b != "BaseException" for b in bases):
                    found.append(f"{path.relative_to(ROOT)}: {node.name}")
    assert not found, found
