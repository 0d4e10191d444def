"""The README's first command prints what the shipped model says about the bundled excerpts.

The block under ``label    P(song)`` in README.md is the output a new user compares with:
it must be the shipped model's (labels exactly, P(song) to the printed 3 decimals)."""

from __future__ import annotations

from pathlib import Path

import pytest

import scoresong

ROOT = Path(__file__).resolve().parents[1]


def _readme_rows():
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split() == ["label", "P(song)", "seconds", "path"])
    rows = []
    for ln in lines[start + 1:]:
        if ln.startswith("```"):
            break
        label, p, _, path = ln.split()
        rows.append((path, label, float(p)))
    return rows


def test_readme_output_block_is_the_shipped_models():
    rows = _readme_rows()
    assert len(rows) == len(list((ROOT / "tests" / "data").glob("*.ogg")))
    for path, label, p in rows:
        r = scoresong.predict(ROOT / path)
        assert r.label == label, path
        assert r.probability == pytest.approx(p, abs=0.0006), path
