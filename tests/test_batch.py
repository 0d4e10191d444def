"""Batch runs: streamed CSV / JSON Lines, resume, interruption, bad files, Dask."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

import scoresong
from scoresong import batch, cli
from scoresong.batch import completed_paths, run_batch
from scoresong.audio import discover

from .conftest import DATA, expected_label

EXCERPTS = sorted(DATA.glob("*.ogg"))


@pytest.fixture
def library(tmp_path):
    """The real excerpts in nested folders, plus a corrupt file and a text file in disguise."""
    lib = tmp_path / "lib"
    for k, p in enumerate(EXCERPTS):
        d = lib / f"disc{k % 2}"
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, d / p.name)
    (lib / "disc0" / "corrupt.ogg").write_bytes(EXCERPTS[0].read_bytes()[:3000])
    (lib / "disc1" / "notes.wav").write_text("not audio at all")
    return lib


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_csv_stream_records_bad_files_and_goes_on(library, tmp_path):
    out = tmp_path / "res.csv"
    s = run_batch(discover([library]), out)
    rows = _rows(out)
    assert s.total == len(EXCERPTS) + 2 and s.classified == len(EXCERPTS) and len(s.failed) == 2
    assert len(rows) == s.total and list(rows[0]) == batch.FIELDS
    bad = {r["path"].rsplit("/", 1)[-1]: r for r in rows if r["error"]}
    assert set(bad) == {"corrupt.ogg", "notes.wav"}
    assert bad["notes.wav"]["error"] == "NotAudioError" and bad["notes.wav"]["reason"]
    good = [r for r in rows if not r["error"]]
    assert all(r["label"] == expected_label(r["path"]) for r in good)


def test_resume_does_no_repeated_work(library, tmp_path, monkeypatch):
    out = tmp_path / "res.jsonl"
    paths = discover([library])
    first = run_batch(paths[:4], out)
    assert first.done == 4
    seen = []
    real = batch.predict_many

    def spy(ps, **kw):
        seen.extend(ps)
        return real(ps, **kw)

    monkeypatch.setattr(batch, "predict_many", spy)
    second = run_batch(paths, out, resume=True)
    assert second.skipped == 4 and sorted(seen) == sorted(paths[4:])
    lines = out.read_text().splitlines()
    assert len(lines) == len(paths) and sorted(json.loads(x)["path"] for x in lines) == sorted(paths)
    third = run_batch(paths, out, resume=True)
    assert third.skipped == len(paths) and third.done == 0


def test_resume_drops_a_line_cut_short(tmp_path):
    out = tmp_path / "res.csv"
    run_batch(EXCERPTS[:2], out)
    with open(out, "a") as fh:
        fh.write(f"{EXCERPTS[2]},song,0.9")  # a crash mid-line: no newline
    assert completed_paths(out) == {str(p) for p in EXCERPTS[:2]}
    run_batch(EXCERPTS[:4], out, resume=True)
    rows = _rows(out)
    assert [r["path"] for r in rows] == [str(p) for p in EXCERPTS[:2]] + sorted(
        [r["path"] for r in rows[2:]]) and len(rows) == 4
    assert all(r["label"] == expected_label(r["path"]) for r in rows)


def test_interrupt_leaves_a_valid_file_and_resume_finishes(tmp_path, monkeypatch):
    out = tmp_path / "res.csv"
    real = batch.predict_many

    def interrupted(ps, **kw):
        for k, r in enumerate(real(ps, **kw)):
            if k == 3:
                raise KeyboardInterrupt  # what Ctrl-C raises in the main process
            yield r

    monkeypatch.setattr(batch, "predict_many", interrupted)
    s = run_batch(EXCERPTS, out)
    assert s.interrupted and s.done == 3
    assert len(_rows(out)) == 3 and out.read_text().endswith("\n")
    monkeypatch.setattr(batch, "predict_many", real)
    s2 = run_batch(EXCERPTS, out, resume=True)
    assert s2.skipped == 3 and s2.done == len(EXCERPTS) - 3 and len(_rows(out)) == len(EXCERPTS)


def test_parallel_unordered_stream_has_the_serial_results(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    run_batch(EXCERPTS, a, n_jobs=1)
    run_batch(EXCERPTS, b, n_jobs=2)
    key = lambda r: r["path"]  # noqa: E731
    assert sorted(_rows(a), key=key) == sorted(_rows(b), key=key)


def test_cli_output_resume_and_exit_status(library, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert cli.main(["predict", str(library), "--output", str(out), "--jobs", "2"]) == 1  # bad files
    err = capsys.readouterr().err
    assert "corrupt.ogg" in err and "2 failed" in err
    assert cli.main(["predict", str(library), "--output", str(out), "--resume"]) == 0
    assert f"{len(EXCERPTS) + 2} already in" in capsys.readouterr().err
    assert len(_rows(out)) == len(EXCERPTS) + 2


def test_cli_explain_and_threshold(capsys):
    song = next(p for p in EXCERPTS if p.name.startswith("song_allison-sung-over-arm"))
    assert cli.main(["predict", str(song), "--format", "jsonl", "--explain"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["label"] == "song" and len(rec["explanation"]) == 8
    assert cli.main(["predict", str(song), "--format", "jsonl", "--threshold", "0.999"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "score"


def test_dask_backend_on_a_local_cluster_matches_the_local_run():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        remote = list(scoresong.predict_many(EXCERPTS, backend="dask"))
    local = list(scoresong.predict_many(EXCERPTS))
    assert remote == local


def test_dask_backend_without_a_client_says_what_to_do():
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="Client"):
        list(scoresong.predict_many(EXCERPTS[:1], backend="dask"))


def test_settings_are_kept_beside_the_output(tmp_path):
    out = tmp_path / "r.csv"
    run_batch(EXCERPTS[:1], out)
    m = scoresong.model.get_default_model()
    side = batch.settings_file(out)
    assert side.name == "r.csv.settings.json"
    assert json.loads(side.read_text()) == {"model_version": m.version, "threshold": round(m.threshold, 6),
                                            "classes": list(m.classes), "view": "mix", "stream": None}
    run_batch(EXCERPTS[:1], out, threshold=0.5, classes=("score", "song"))   # a new run: new settings
    assert json.loads(side.read_text())["threshold"] == 0.5
    assert json.loads(side.read_text())["classes"] == ["score", "song"]


@pytest.mark.parametrize("change", [{"threshold": 0.9}, {"view": "centre"}, {"classes": ("score", "song")},
                                    {"stream": 0}])
def test_resume_with_other_settings_is_refused_and_writes_nothing(tmp_path, change):
    out = tmp_path / "r.jsonl"
    run_batch(EXCERPTS[:1], out)
    before, side = out.read_bytes(), batch.settings_file(out).read_bytes()
    key = next(iter(change))
    with pytest.raises(batch.BatchSettingsError, match=key):
        run_batch(EXCERPTS[:2], out, resume=True, **change)
    assert out.read_bytes() == before and batch.settings_file(out).read_bytes() == side
    # The same settings, spelled out, resume.
    m = scoresong.model.get_default_model()
    s = run_batch(EXCERPTS[:2], out, resume=True, threshold=m.threshold, view="mix")
    assert s.skipped == 1 and s.classified == 1


def test_resume_of_a_file_without_settings_checks_its_model_version(tmp_path):
    out = tmp_path / "old.csv"
    run_batch(EXCERPTS[:1], out)
    batch.settings_file(out).unlink()                       # as written before the sidecar existed
    run_batch(EXCERPTS[:2], out, resume=True, threshold=0.9)  # same model: fine; the rest is unknown,
    assert not batch.settings_file(out).exists()            # so no sidecar claims it was checked
    rows = _rows(out)
    rows[0]["model_version"] = "1999.01.01.1"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=batch.FIELDS)
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(batch.BatchSettingsError, match="1999.01.01.1"):
        run_batch(EXCERPTS[:3], out, resume=True)
    assert len(_rows(out)) == 2


def test_cli_resume_with_another_threshold_says_why(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert cli.main(["predict", str(EXCERPTS[0]), "--output", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["predict", str(EXCERPTS[0]), str(EXCERPTS[1]), "--output", str(out), "--resume",
                     "--threshold", "0.9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "threshold" in err and "Traceback" not in err
    assert len(_rows(out)) == 1


def test_unreadable_or_stale_settings(tmp_path):
    out = tmp_path / "r.csv"
    run_batch(EXCERPTS[:1], out)
    side = batch.settings_file(out)
    for text in ("[]", "null", "{not json"):
        side.write_text(text)
        with pytest.raises(batch.BatchSettingsError, match="cannot read the settings"):
            run_batch(EXCERPTS[:2], out, resume=True)
    # A sidecar whose result file is gone guards nothing: the run starts the file afresh.
    out.unlink()
    s = run_batch(EXCERPTS[:1], out, resume=True, threshold=0.9)
    assert s.classified == 1 and json.loads(side.read_text())["threshold"] == 0.9
    assert not side.with_name(side.name + ".tmp").exists()


def test_a_float32_threshold_is_the_same_setting(tmp_path):
    np = pytest.importorskip("numpy")
    out = tmp_path / "r.csv"
    run_batch(EXCERPTS[:1], out, threshold=np.float32(0.1))
    assert run_batch(EXCERPTS[:2], out, resume=True, threshold=0.1).classified == 1
