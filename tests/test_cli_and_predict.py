"""The public API and the CLI on the shipped model and the bundled real excerpts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

import scoresong
from scoresong import cli
from scoresong.audio import discover

from .conftest import DATA, expected_label
EXCERPTS = sorted(DATA.glob("*.ogg"))


def expected(path: Path) -> str:
    return expected_label(path)


def test_bundled_excerpts_present():
    assert {expected(p) for p in EXCERPTS} == {"no_music", "score", "song"}


@pytest.mark.parametrize("path", EXCERPTS, ids=lambda p: p.name)
def test_shipped_model_labels_real_excerpts(path):
    r = scoresong.predict(path)
    assert r.label == expected(path), r
    assert 0.0 <= r.probability <= 1.0
    assert r.duration > 5
    assert r.model_version == scoresong.load_model().version


def test_shipped_model_metadata():
    m = scoresong.load_model()
    assert m.meta["feature_schema"] == scoresong.FEATURE_SCHEMA_VERSION
    assert m.feature_names == list(scoresong.extract_features(EXCERPTS[0]).names)
    assert m.meta["metrics"]["balanced_accuracy"] > 0.5


def test_predict_proba_is_the_models_probability_of_the_features():
    """Computed independently: the shipped model's two parts applied to the file vector.

    P(song) = (1 - P(no_music)) * P(song | music); the song threshold applies to
    P(song | music), the presence threshold to P(no_music).
    """
    model = scoresong.load_model()
    assert model.three_class
    for p in EXCERPTS:
        q, s = (float(v[0]) for v in model.parts(scoresong.extract_features(p).values))
        assert scoresong.predict_proba(p) == pytest.approx((1 - q) * s, abs=5e-5)  # rounded to 4 places
        probs = scoresong.predict(p).probabilities
        assert probs["no_music"] == pytest.approx(q, abs=5e-5)
        assert sum(probs.values()) == pytest.approx(1.0, abs=2e-4)
        if expected(p) == "no_music":
            assert scoresong.predict(p, presence_threshold=min(q + 1e-3, 1.0)).label != "no_music"
            continue
        assert q < model.presence_threshold
        assert scoresong.predict(p, threshold=min(s + 1e-3, 1.0)).label == "score"  # just above
        assert scoresong.predict(p, threshold=max(s - 1e-3, 0.0)).label == "song"


def test_predict_many_reports_bad_files_and_goes_on(tmp_path):
    bad = tmp_path / "bad.ogg"
    bad.write_text("not audio")
    res = list(scoresong.predict_many([EXCERPTS[0], bad, tmp_path / "missing.wav", EXCERPTS[-1]]))
    assert [type(r).__name__ for r in res] == ["Prediction", "PredictionFailure", "PredictionFailure", "Prediction"]
    assert res[1].error == "NotAudioError" and res[2].error == "AudioFileNotFoundError"


def test_predict_many_parallel_same_as_serial():
    a = [r.probability for r in scoresong.predict_many(EXCERPTS, n_jobs=1)]
    b = [r.probability for r in scoresong.predict_many(EXCERPTS, n_jobs=2)]
    assert a == b


def test_cli_table_csv_json(tmp_path, capsys):
    assert cli.main(["predict", *map(str, EXCERPTS)]) == 0
    table = capsys.readouterr().out
    assert all(p.name in table for p in EXCERPTS)
    out = tmp_path / "r.csv"
    assert cli.main(["predict", str(DATA), "--format", "csv", "-o", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    assert {r["label"] for r in rows} == {"no_music", "score", "song"} and len(rows) == len(EXCERPTS)
    assert all(r["label"] == expected(r["path"]) for r in rows)
    assert cli.main(["predict", str(EXCERPTS[0]), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert d["label"] == expected(EXCERPTS[0])


def test_cli_bad_file_is_reported_and_exit_status_says_so(tmp_path, capsys):
    bad = tmp_path / "broken.flac"
    bad.write_bytes(b"fLaC" + b"\x00" * 100)
    code = cli.main(["predict", str(EXCERPTS[0]), str(bad), "--format", "csv"])
    cap = capsys.readouterr()
    assert code == 1
    assert "broken.flac" in cap.err
    rows = list(csv.DictReader(io.StringIO(cap.out)))
    assert rows[0]["label"] and rows[1]["error"]


def test_discover_recurses(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.ogg", "a/b/y.FLAC", "a/notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [Path(p).name for p in discover([tmp_path])] == ["x.ogg", "y.FLAC"]


def test_train_and_evaluate_on_a_folder_corpus(tmp_path, capsys):
    """Retraining on a user's folder layout, with a corrupt file inside, end to end."""
    from tests.conftest import SR, noise, tone
    import soundfile as sf

    rng = np.random.default_rng(0)
    for label, n in (("score", 6), ("song", 6)):
        for i in range(n):
            d = tmp_path / "corpus" / label / f"album{i % 3}"
            d.mkdir(parents=True, exist_ok=True)
            if label == "song":
                y = tone(rng.uniform(180, 400), 6.0, vibrato_hz=rng.uniform(5, 7), vibrato_cents=60) + noise(6.0, amp=0.02)
            else:
                y = tone(rng.uniform(100, 300), 6.0) + noise(6.0, amp=0.05)
            sf.write(d / f"{i}.wav", y, SR)
    (tmp_path / "corpus" / "score" / "album0" / "corrupt.wav").write_bytes(b"RIFF\x00\x00")
    model_path = tmp_path / "m" / "model"
    code = cli.main(["train", str(tmp_path / "corpus"), "-o", str(model_path), "--cache", str(tmp_path / "cache")])
    assert code == 0
    report = json.loads((tmp_path / "m" / "model.report.json").read_text())
    assert len(report["failed"]) == 1 and "corrupt.wav" in report["failed"][0]
    assert report["cv"]["balanced_accuracy"] > 0.8
    m = scoresong.load_model(model_path.with_suffix(".json"))
    assert scoresong.predict(tmp_path / "corpus" / "song" / "album0" / "0.wav", model=m).label == "song"
    assert cli.main(["evaluate", str(model_path.with_suffix(".json")), str(tmp_path / "corpus")]) == 0


def test_shipped_model_is_packaged_for_non_editable_installs():
    """`pip install .` copies src/scoresong/_model (a link to models/) into the wheel, and
    load_model() falls back to it outside a checkout."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    pkg_model = root / "src" / "scoresong" / "_model"
    names = ("scoresong.json", "scoresong.skops", "scoresong.npz", "scoresong.presence.npz")
    for name in names:
        assert (pkg_model / name).read_bytes() == (root / "models" / name).read_bytes()
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {f"_model/{n}" for n in names} <= set(data["scoresong"])


def test_one_version_source():
    """The version is written once, in scoresong/__init__.py; pyproject.toml reads it."""
    import importlib.metadata
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "scoresong.__version__"}
    assert importlib.metadata.version("scoresong") == scoresong.__version__
