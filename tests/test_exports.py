"""Formats the field uses for results: a timeline as an Audacity label track and as JAMS,
batch results as a pandas DataFrame. Each export is read back and compared with what was
written; the optional packages (jams, pandas) skip only their own tests when absent."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import soundfile as sf

import scoresong
from scoresong import batch, cli
from scoresong.batch import FIELDS, read_results, run_batch, to_dataframe
from scoresong.prediction import Prediction, PredictionFailure
from scoresong.segmentation import Segment, Timeline

from .conftest import DATA

SR = 16000


@pytest.fixture(scope="module")
def reel(tmp_path_factory):
    """score 20 s | 3 s of digital silence | song 20 s: all three labels, and its timeline."""
    a, _ = scoresong.audio.load(DATA / "score_hyperrogue-hr3-jungle.ogg")
    b, _ = scoresong.audio.load(DATA / "song_allison-a-cappella.ogg")
    y = np.concatenate([np.tile(a, 2), np.zeros(3 * SR, np.float32), np.tile(b, 2)])
    p = tmp_path_factory.mktemp("exports") / "reel.wav"
    sf.write(p, y, SR)
    tl = scoresong.timeline(p)
    assert {s.label for s in tl.segments} == {"score", "silence", "song"}
    return p, tl


def _parse_audacity(text: str) -> list[tuple[float, float, str]]:
    """What Audacity's label import reads: start, end, label separated by tabs."""
    out = []
    for line in text.splitlines():
        start, end, label = line.split("\t")
        out.append((float(start), float(end), label))
    return out


def _check_audacity(text: str, tl: Timeline):
    rows = _parse_audacity(text)
    assert [r[2] for r in rows] == [s.label for s in tl.segments]
    for (start, end, _), s in zip(rows, tl.segments):
        assert start == pytest.approx(s.start, abs=5e-7) and end == pytest.approx(s.end, abs=5e-7)
    # Six decimals, as Audacity writes them; the track tiles the file.
    assert all(len(f.split(".")[1]) == 6 for line in text.splitlines() for f in line.split("\t")[:2])
    assert rows[0][0] == 0 and rows[-1][1] == pytest.approx(tl.duration, abs=5e-7)
    assert text.endswith("\n")


def test_audacity_label_track_round_trips(reel):
    _, tl = reel
    _check_audacity(tl.to_audacity(), tl)


def test_cli_timeline_audacity(reel, tmp_path):
    p, tl = reel
    out = tmp_path / "reel.txt"
    assert cli.main(["timeline", str(p), "--format", "audacity", "--output", str(out)]) == 0
    _check_audacity(out.read_text(), tl)


def _synthetic() -> Timeline:
    segs = [Segment(0.0, 12.5, "score", 0.03), Segment(12.5, 15.0, "silence", float("nan")),
            Segment(15.0, 61.44, "song", 0.82), Segment(61.44, 70.0, "score", 0.1)]
    return Timeline("/music/reel.flac", 70.0, segs, np.zeros((0, 2)), np.zeros(0), 0.114, "2099.1.1")


def test_jams_is_valid_and_holds_the_segments(reel, tmp_path):
    jams = pytest.importorskip("jams")
    _, tl = reel
    jam = tl.to_jams()
    assert isinstance(jam, jams.JAMS)
    assert jam.validate()
    assert jam.file_metadata.duration == pytest.approx(tl.duration)
    (ann,) = jam.annotations
    assert ann.namespace == "segment_open" and ann.duration == pytest.approx(tl.duration)
    assert ann.annotation_metadata.annotator.name == "scoresong"
    assert ann.annotation_metadata.annotator.model_version == tl.model_version
    assert ann.annotation_metadata.version == tl.model_version
    assert ann.sandbox.threshold == pytest.approx(tl.threshold)
    # Saved, loaded back (jams validates on load), the same segments.
    path = tmp_path / "reel.jams"
    jam.save(str(path))
    back = jams.load(str(path))
    obs = back.annotations[0].data
    assert [o.value for o in obs] == [s.label for s in tl.segments]
    for o, s in zip(obs, tl.segments):
        assert o.time == pytest.approx(s.start) and o.time + o.duration == pytest.approx(s.end)
        if s.label == "silence":
            assert o.confidence is None
        else:  # the probability of the label: P(song), P(no_music), or what is left for score
            want = {"song": s.probability, "no_music": s.p_no_music}.get(
                s.label, 1 - s.probability - s.p_no_music)
            assert o.confidence == pytest.approx(want, abs=1e-6)
            assert 0.0 <= o.confidence <= 1.0


def test_jams_confidence_and_metadata_on_known_segments():
    jams = pytest.importorskip("jams")
    tl = _synthetic()
    jam = tl.to_jams()
    assert jam.validate()
    doc = json.loads(jam.dumps())  # plain JSON: no NaN for silence
    data = doc["annotations"][0]["data"]
    assert [(d["time"], d["duration"], d["value"]) for d in data] == [
        (0.0, 12.5, "score"), (12.5, 2.5, "silence"), (15.0, pytest.approx(46.44), "song"),
        (61.44, pytest.approx(8.56), "score")]
    assert [d["confidence"] for d in data] == [pytest.approx(0.97), None, pytest.approx(0.82), pytest.approx(0.9)]
    assert doc["file_metadata"]["duration"] == 70.0 and doc["file_metadata"]["title"] == "reel.flac"
    meta = doc["annotations"][0]["annotation_metadata"]
    assert meta["annotator"]["version"] == scoresong.__version__ and meta["version"] == "2099.1.1"
    intervals, labels = jam.annotations[0].to_interval_values()
    np.testing.assert_allclose(intervals, [[0, 12.5], [12.5, 15], [15, 61.44], [61.44, 70]])
    assert labels == ["score", "silence", "song", "score"]
    assert isinstance(jam, jams.JAMS)


def test_cli_timeline_jams(reel, tmp_path):
    jams = pytest.importorskip("jams")
    p, tl = reel
    out = tmp_path / "reel.jams"
    assert cli.main(["timeline", str(p), "--format", "jams", "-o", str(out)]) == 0
    jam = jams.load(str(out), validate=True)
    assert [o.value for o in jam.annotations[0].data] == [s.label for s in tl.segments]
    assert jam.file_metadata.duration == pytest.approx(tl.duration)


def test_jams_missing_names_the_extra(monkeypatch, capsys, reel):
    monkeypatch.setitem(sys.modules, "jams", None)  # import jams -> ImportError
    with pytest.raises(ImportError, match=r"scoresong\[jams\]"):
        _synthetic().to_jams()
    # The CLI says so at once, before analysing the file.
    called = []
    monkeypatch.setattr("scoresong.segmentation.timeline", lambda *a, **k: called.append(1))
    assert cli.main(["timeline", str(reel[0]), "--format", "jams"]) == 1
    assert "scoresong[jams]" in capsys.readouterr().err and not called


# --- batch results as a DataFrame ------------------------------------------------------

TEXT = ["path", "label", "model_version", "error", "reason"]


def _check_frame(df, rows: list[dict]):
    """``df`` holds ``rows`` (records as the batch run writes them) with the right dtypes."""
    pd = pytest.importorskip("pandas")
    assert list(df.columns[: len(FIELDS)]) == FIELDS and len(df) == len(rows)
    for c in TEXT:
        assert isinstance(df[c].dtype, pd.StringDtype) and df[c].dtype.na_value is pd.NA, c
    assert df["probability"].dtype == np.float64 and df["duration"].dtype == np.float64
    by_path = {r["path"]: r for r in rows}
    assert set(df["path"]) == set(by_path)
    for rec in df.to_dict("records"):
        want = by_path[rec["path"]]
        if want["error"]:  # a failure: a row with its error and reason, no label or numbers
            assert rec["error"] == want["error"] and rec["reason"] == want["reason"]
            assert pd.isna(rec["label"]) and pd.isna(rec["model_version"])
            assert math.isnan(rec["probability"]) and math.isnan(rec["duration"])
        else:
            assert pd.isna(rec["error"]) and pd.isna(rec["reason"])
            assert rec["label"] == want["label"] and rec["model_version"] == want["model_version"]
            assert rec["probability"] == float(want["probability"])  # exact: nothing lost on the way
            assert rec["duration"] == float(want["duration"])


@pytest.fixture(scope="module")
def batch_files(tmp_path_factory):
    """Two real excerpts and a text file in disguise, run to CSV and to JSON Lines."""
    d = tmp_path_factory.mktemp("batch")
    paths = [DATA / "score_hyperrogue-hr3-jungle.ogg", DATA / "song_allison-a-cappella.ogg"]
    bad = d / "notes.wav"
    bad.write_text("not audio at all")
    out = {}
    for suffix in ("csv", "jsonl"):
        out[suffix] = d / f"res.{suffix}"
        s = run_batch([*paths, bad], out[suffix])
        assert s.classified == 2 and len(s.failed) == 1
    return out


def _raw_rows(path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    import csv

    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
def test_read_results_matches_the_file(batch_files, suffix):
    pytest.importorskip("pandas")
    path = batch_files[suffix]
    rows = _raw_rows(path)
    df = read_results(path)
    _check_frame(df, rows)
    assert df.loc[df.error.notna(), "error"].tolist() == ["NotAudioError"]
    assert sorted(df.label.dropna()) == ["score", "song"]


def test_read_results_drops_a_line_cut_short(batch_files, tmp_path):
    pytest.importorskip("pandas")
    data = batch_files["csv"].read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data + b"/music/half-written.ogg,so")  # a crash in the middle of a line
    df = read_results(cut)
    assert len(df) == 3 and "/music/half-written.ogg" not in set(df.path)


def test_to_dataframe_of_results():
    pd = pytest.importorskip("pandas")
    results = [Prediction("a.ogg", "song", 0.9123, 10.0, "m1"),
               PredictionFailure("b.ogg", "NotAudioError", "not a recognised audio format"),
               Prediction("NA", "score", 0.01, 5.5, "m1")]  # a file named NA stays a path
    df = to_dataframe(results)
    _check_frame(df, [batch._record(r) for r in results])
    assert df.path.tolist() == ["a.ogg", "b.ogg", "NA"]
    assert "explanation" not in df.columns
    empty = to_dataframe([])
    assert list(empty.columns) == FIELDS and len(empty) == 0 and empty.probability.dtype == np.float64
    assert isinstance(empty.path.dtype, pd.StringDtype)


def test_dataframe_missing_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"scoresong\[pandas\]"):
        to_dataframe([])
    with pytest.raises(ImportError, match=r"scoresong\[pandas\]"):
        read_results(tmp_path / "res.csv")
