"""Batch manifests: CSV with a header naming ``reference`` and ``distorted`` (optional ``id``), or JSON
Lines with the same keys. Paths are relative to the manifest's folder."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ManifestError

__all__ = ["ManifestError", "PairSpec", "read_manifest"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class PairSpec:
    """One pair to score: its id (the output file stem) and absolute paths."""

    id: str
    reference: str
    distorted: str


def read_manifest(path: Path) -> list[PairSpec]:
    """Every pair of a CSV or JSON Lines manifest, in order; ids default to the distorted file's stem.

    Raises:
        ManifestError: unreadable file, missing columns, an empty manifest, a bad or duplicate id.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {path} ({getattr(exc, 'strerror', None) or exc})") from None
    rows = _jsonl(text, path) if path.suffix.lower() in (".jsonl", ".ndjson") else _csv(text, path)
    if not rows:
        raise ManifestError(f"manifest {path} lists no pairs")
    base = path.resolve().parent
    pairs: list[PairSpec] = []
    seen: dict[str, int] = {}
    for line, row in rows:
        ref, dist = (str(row.get(k) or "").strip() for k in ("reference", "distorted"))
        if not ref or not dist:
            raise ManifestError(f"{path.name} line {line}: both reference and distorted are needed")
        pair_id = str(row.get("id") or "").strip() or Path(dist).stem
        if not _ID.match(pair_id):
            raise ManifestError(f"{path.name} line {line}: id {pair_id!r} must be letters, digits, '.', '_' or '-' "
                                "(it names the output file)")
        if pair_id in seen:
            raise ManifestError(f"{path.name} line {line}: id {pair_id!r} is also on line {seen[pair_id]}; give "
                                "each pair its own id")
        seen[pair_id] = line
        pairs.append(PairSpec(pair_id, str((base / ref).resolve()), str((base / dist).resolve())))
    return pairs


def _csv(text: str, path: Path) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("reference", "distorted") if c not in header]
    if missing:
        raise ManifestError(f"{path.name}: the CSV header must name reference and distorted (missing "
                            f"{', '.join(missing)}); JSON Lines manifests end in .jsonl")
    reader.fieldnames = header
    return [(i + 2, row) for i, row in enumerate(reader) if any((v or "").strip() for v in row.values())]


def _jsonl(text: str, path: Path) -> list[tuple[int, dict]]:
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path.name} line {i}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise ManifestError(f"{path.name} line {i}: each line must be an object with reference and distorted")
        rows.append((i, row))
    return rows
