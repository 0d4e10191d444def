"""Retraining on a user's corpus: layouts, groups, weights, the content cache, reports,
explanations. Corpora are generated (``conftest.make_tiny_corpus``)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import scoresong
from scoresong import training
from scoresong import cli
from scoresong.cache import extract_items
from scoresong.dataset import CorpusError, read_corpus
from scoresong.report import calibration_curve, evaluate_predictions
from scoresong.training import balanced_threshold, nested_cv, train

from .conftest import SR, make_tiny_corpus, tone

QUIET = {"log": lambda m: None}


def _manifest(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


# --- corpus layouts ---------------------------------------------------------------------

def test_folder_layout_groups_by_first_subfolder(tiny_corpus):
    c = read_corpus(tiny_corpus)
    assert c.layout == "folder" and len(c) == 18 and not c.ignored
    assert {i.group for i in c if i.label == "song"} == {f"song/album{a}" for a in range(3)}
    assert {i.kind for i in c} == {"score", "song"}
    by_parent = read_corpus(tiny_corpus, groups="file")
    assert len({i.group for i in by_parent}) == 18


def test_folder_extra_labels_are_ignored_or_mapped(tmp_path):
    root = make_tiny_corpus(tmp_path / "c", per_album=1, albums=3)
    shutil.copytree(root / "song" / "album0", root / "Vocalise" / "album9")
    c = read_corpus(root)
    assert c.ignored == {"Vocalise": 1} and len(c) == 6
    mapped = read_corpus(root, label_map={"vocalise": "score"})
    extra = [i for i in mapped if i.kind == "Vocalise"]
    assert len(mapped) == 7 and len(extra) == 1 and extra[0].label == "score"
    with pytest.raises(ValueError, match="label_map must map onto"):
        read_corpus(root, label_map={"vocalise": "instrumental"})


def test_manifest_layout_relative_paths_groups_and_weights(tiny_corpus, tmp_path):
    files = sorted(tiny_corpus.rglob("*.wav"))
    rows = [{"path": str(f.relative_to(tiny_corpus)), "label": f.parent.parent.name,
             "album": f.parent.name, "weight": "2" if "song" in f.name else ""} for f in files]
    root = tmp_path / "c"  # the fixture is shared: work on a copy
    shutil.copytree(tiny_corpus, root)
    m = _manifest(root / "manifest.csv", rows)
    c = read_corpus(m, groups="album")
    assert len(c) == len(files) and all(Path(i.path).is_file() for i in c)
    assert {i.group for i in c} == {"album0", "album1", "album2"}
    assert {i.weight for i in c if i.label == "song"} == {2.0}
    assert {i.weight for i in c if i.label == "score"} == {1.0}
    with pytest.raises(ValueError, match="no column 'composer'"):
        read_corpus(m, groups="composer")
    bad = _manifest(root / "bad.csv", [{"path": "x.wav", "label": "song", "weight": "heavy"}])
    with pytest.raises(ValueError, match="weight"):
        read_corpus(bad)
    with pytest.raises(ValueError, match="path,label"):
        read_corpus(_manifest(root / "nolabel.csv", [{"path": "x.wav"}]))


def test_reads_the_corpus_builders_manifest(tmp_path):
    """The columns corpus/build.py writes: excerpts, kinds, packages, cells as groups."""
    header = ("path,label,kind,source_package,version,author,licence,group,start_s,duration_s,"
              "voice,backing,var_db,detail").split(",")
    row = dict.fromkeys(header, "")
    row.update(path="pkgs/a.ogg", label="score", kind="score_choir", source_package="x-music",
               group="cell3", start_s="4.5", duration_s="20.0")
    row2 = dict(row, path="gen/b.flac", label="song", kind="song_constructed",
                source_package="voices+x-music", group="cell1", start_s="", duration_s="")
    c = read_corpus(_manifest(tmp_path / "manifest.csv", [row, row2]))
    a, b = c.items
    assert (a.kind, a.group, a.source, a.start_s, a.duration_s) == ("score_choir", "cell3", "x-music", 4.5, 20.0)
    assert (b.source, b.start_s, b.duration_s) == ("x-music", 0.0, None)
    assert a.path == str(tmp_path / "pkgs/a.ogg")



@pytest.mark.parametrize("column, value", [("weight", "-1"), ("weight", "nan"), ("weight", "inf"),
                                           ("start_s", "-0.5"), ("start_s", "nan"),
                                           ("duration_s", "0"), ("duration_s", "-3"), ("duration_s", "inf")])
def test_manifest_refuses_out_of_range_numbers_naming_the_line(tmp_path, column, value):
    """A NaN weight or a negative start used to pass through to training (or the decoder);
    each is a CorpusError (still a ValueError) naming the manifest, its line and the column."""
    rows = [{"path": "a.wav", "label": "score", column: ""}, {"path": "b.wav", "label": "song", column: value}]
    m = _manifest(tmp_path / "m.csv", rows)
    with pytest.raises(CorpusError, match=rf"m\.csv:3: column '{column}' must be") as info:
        read_corpus(m)
    assert isinstance(info.value, ValueError)


def test_manifest_encoding_bom_accepted_other_bytes_refused(tmp_path):
    """A spreadsheet's "CSV UTF-8" starts with a byte-order mark: read as if absent. A manifest
    in another encoding is a CorpusError naming the file, not a UnicodeDecodeError."""
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfpath,label\na.wav,score\n")
    assert [i.label for i in read_corpus(bom)] == ["score"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path,label\nmusique/\u00e9t\u00e9.wav,score\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin\.csv: not a UTF-8 CSV manifest"):
        read_corpus(latin)
    assert scoresong.CorpusError is CorpusError is training.CorpusError

# --- feature cache -----------------------------------------------------------------------

def test_cache_second_run_extracts_only_new_files_and_survives_moves(tmp_path):
    root = make_tiny_corpus(tmp_path / "c", per_album=1, albums=3)
    cache = tmp_path / "cache"
    first = extract_items(read_corpus(root).items, cache_dir=cache, progress=False)
    assert first.counts["extracted"] == 6 and first.counts["cached"] == 0
    # Add two files: only those are extracted.
    for k in range(2):
        import soundfile as sf

        sf.write(root / "song" / "album0" / f"new{k}.wav", tone(300 + 50 * k, 6.0, vibrato_hz=6, vibrato_cents=60), SR)
    second = extract_items(read_corpus(root).items, cache_dir=cache, progress=False)
    assert (second.counts["extracted"], second.counts["cached"]) == (2, 6)
    # Keyed by content: a moved corpus is still cached; an edited file is extracted again.
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    import soundfile as sf

    sf.write(moved / "score" / "album1" / "score10.wav", tone(150, 6.0), SR)
    third = extract_items(read_corpus(moved).items, cache_dir=cache, progress=False)
    assert (third.counts["extracted"], third.counts["cached"]) == (1, 7)
    # Cached vectors are the vectors: item by item, what came from the cache equals a fresh
    # extraction of the same file, exactly.
    items = read_corpus(moved).items
    fresh = extract_items(items, cache_dir=None, progress=False)
    key = lambda ex: {Path(items[i].path).relative_to(moved).as_posix(): x  # noqa: E731
                      for i, x in zip(ex.ok, ex.X)}
    third = extract_items(items, cache_dir=cache, progress=False)
    assert third.counts["cached"] == 8
    cached, direct = key(third), key(fresh)
    assert cached.keys() == direct.keys() and len(cached) == 8
    for k in cached:
        np.testing.assert_array_equal(cached[k], direct[k], err_msg=k)


def test_failures_are_listed_never_raised(tmp_path):
    root = make_tiny_corpus(tmp_path / "c", per_album=1, albums=3)
    (root / "score" / "album0" / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    (root / "song" / "album1" / "silent.wav").write_bytes(b"")
    ext = extract_items(read_corpus(root).items, cache_dir=tmp_path / "cache", progress=False)
    assert ext.counts["failed"] == 2 and len(ext.X) == 6
    assert any("corrupt.wav" in e for e in ext.errors) and any("silent.wav" in e for e in ext.errors)


# --- training, evaluation, reports ----------------------------------------------------------

def test_train_writes_model_and_full_report(tiny_model):
    js, report = tiny_model
    stem = js.with_name(js.stem + ".report")
    for ext in (".md", ".json", ".png", ".predictions.csv"):
        f = stem.with_name(stem.name + ext)
        assert f.is_file() and f.stat().st_size > 200, f
    png = stem.with_name(stem.name + ".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    md = stem.with_name(stem.name + ".md").read_text()
    for section in ("Nested grouped cross-validation", "Confusion matrix", "Operating threshold",
                    "Calibration", "Per kind", "Per group", "Most confidently wrong", "served from the cache"):
        assert section in md, section
    cv = report["cv"]
    assert cv["balanced_accuracy"] >= 0.9  # separable by construction
    assert sum(map(sum, cv["confusion_matrix"]["rows_true_cols_pred"])) == 18
    assert set(cv["per_group"]) == {f"{lab}/album{a}" for lab in ("score", "song") for a in range(3)}
    m = scoresong.load_model(js)
    assert m.meta["threshold"] == pytest.approx(0.5)
    assert m.meta["reference"]["background_labels"].count("song") == 9
    with open(stem.with_name(stem.name + ".predictions.csv")) as fh:
        assert len(list(csv.DictReader(fh))) == 18


def test_evaluate_any_labelled_set_gives_the_same_report(tiny_model, tiny_corpus, tmp_path):
    js, _ = tiny_model
    rep = scoresong.evaluate(js, tiny_corpus, out=tmp_path / "ev")
    assert rep["cv"]["n"] == 18 and rep["cv"]["accuracy"] >= 0.9
    assert (tmp_path / "ev.png").stat().st_size > 1000 and "Confusion matrix" in (tmp_path / "ev.md").read_text()
    assert cli.main(["evaluate", str(js), str(tiny_corpus), "-o", str(tmp_path / "ev2"), "--threshold", "0.99"]) == 0
    ev2 = json.loads((tmp_path / "ev2.json").read_text())
    assert ev2["cv"]["threshold"] == 0.99


def test_weights_reach_the_fit_and_the_threshold(tiny_corpus, tmp_path):
    rows = [{"path": str(f), "label": f.parent.parent.name, "group": f.parent.name,
             "weight": "3" if f.parent.parent.name == "song" else "1"} for f in sorted(tiny_corpus.rglob("*.wav"))]
    m = _manifest(tmp_path / "w.csv", rows)
    seen = []
    real_fit = training.ScoreSongClassifier.fit

    def spy(self, X, y, groups=None, sample_weight=None):
        seen.append((np.asarray(y).copy(), None if sample_weight is None else np.asarray(sample_weight).copy()))
        return real_fit(self, X, y, groups=groups, sample_weight=sample_weight)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training.ScoreSongClassifier, "fit", spy)
        model, report = train(m, candidates=("logreg",), evaluate=False, **QUIET)
    assert report["weighted"] is True
    # The final fit received the manifest's weights, row for row with the labels.
    (y_fit, w_fit), = seen
    np.testing.assert_array_equal(w_fit, np.where(y_fit == "song", 3.0, 1.0))
    assert model.threshold == pytest.approx(0.75)  # weighted song prior: 27 / 36
    assert balanced_threshold(np.array(["song", "score"]), [3, 1]) == 0.75


def test_nested_cv_needs_groups_and_never_sees_the_test_fold():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = np.where(X[:, 0] > 0, "song", "score")
    with pytest.raises(ValueError, match="at least 3 groups"):
        nested_cv(X, y, np.array(["a", "b"] * 30), candidates=("logreg",), log=lambda m: None)
    g = np.repeat(np.arange(6), 10).astype(str)
    # Record the groups every fit and every inner choice receives.
    fits, inner = [], []
    real_fit, real_inner = training.ScoreSongClassifier.fit, training._inner_choice

    def spy_fit(self, X_, y_, groups=None, sample_weight=None):
        fits.append(set(np.asarray(groups).tolist()) if groups is not None else None)
        return real_fit(self, X_, y_, groups=groups, sample_weight=sample_weight)

    def spy_inner(X_, y_, groups, *a, **k):
        inner.append(set(np.asarray(groups).tolist()))
        return real_inner(X_, y_, groups, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training.ScoreSongClassifier, "fit", spy_fit)
        mp.setattr(training, "_inner_choice", spy_inner)
        res = nested_cv(X, y, g, candidates=("logreg", "hgb"), outer=3, inner=2, log=lambda m: None)
    assert len(res["folds"]) == 3 and len(inner) == 3
    outer_fits = [f for f in fits if f is not None and len(f) == 4]  # 6 groups, 2 held out per fold
    assert len(outer_fits) == 3
    for f, inner_groups, fit_groups in zip(res["folds"], inner, outer_fits):
        test = set(f["test_groups"])
        assert len(test) == 2
        assert not test & inner_groups, "the inner model choice saw a test group"
        assert not test & fit_groups, "the fold's model was fitted on a test group"
        assert inner_groups | test == set(g.tolist())
        assert f["threshold"] == pytest.approx(np.mean(y[~np.isin(g, list(test))] == "song"))
    assert evaluate_predictions(y, res["p_song"], threshold=res["threshold"])["roc_auc"] > 0.9


def test_calibration_curve_of_a_calibrated_predictor():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, 20000)
    y = rng.uniform(0, 1, p.size) < p
    curve = calibration_curve(y, p)
    assert len(curve) == 10 and sum(c["n"] for c in curve) == p.size
    assert max(abs(c["share_song"] - c["mean_p_song"]) for c in curve) < 0.03  # binomial noise, n≈2000/bin


def test_report_markdown_has_every_part():
    """The Markdown of a hand-made report: each part present, in order, with its figures."""
    from scoresong.report import report_markdown

    y = np.array(["score"] * 4 + ["song"] * 2)
    p = np.array([0.1, 0.2, 0.3, 0.9, 0.8, 0.4])
    cv = evaluate_predictions(y, p, threshold=0.5, kinds=["a", "a", "b", "b", "s", "s"],
                              sources=["x"] * 6, paths=[f"f{i}.wav" for i in range(6)])
    cv["per_group"] = cv["per_kind"]
    cv["folds"] = [{"fold": 0, "test_groups": [f"g{i}" for i in range(13)], "chosen": "logreg",
                    "inner_balanced_accuracy": {"logreg": 0.9}}]
    report = {"title": "T", "corpus": "c.csv", "n_items": 60, "n_used": 6, "ignored_labels": {"vocalise": 2},
              "failed": [f"bad{i}.wav: corrupt" for i in range(52)],
              "features": {"extracted": 4, "cached": 2, "failed": 52, "hashed": 58, "seconds": 1.5},
              "cv": cv, "cv_at_0.5": cv, "plot": "T.png"}
    md = report_markdown(report)
    parts = ["# T", "Corpus: `c.csv`; 6 of 60 items used (52 failed to decode).", "`vocalise` × 2",
             "Features: 4 extracted now, 2 served from the cache, 52 failed (58 files hashed; 1.5 s).",
             "## Nested grouped cross-validation", "| accuracy | 66.7% |", "| balanced accuracy | 62.5% |",
             "| **score** | 3 | 1 |", "| **song** | 1 | 1 |", "![calibration, confusion, accuracy per kind](T.png)",
             "### Operating threshold", "At threshold 0.5 instead", "### Calibration", "### Per kind",
             "| b | 2 | 50.0% |", "### Per source", "### Per group (held out together)",
             "### Folds", "- fold 0: held out g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, g10, g11 …; "
             "inner choice logreg ({'logreg': 0.9})", "### Most confidently wrong",
             "- `f3.wav` (b, true score): P(song | music) = 0.9", "## Files that failed", "- bad49.wav: corrupt",
             "- … and 2 more (all in the `.json`)"]
    at = [md.find(x) for x in parts]
    assert -1 not in at, [x for x, a in zip(parts, at) if a < 0]
    assert at == sorted(at)
    assert "bad50.wav" not in md
    # Without cross-validation folds: plain metrics, no fold list.
    plain = report_markdown({**report, "cv": {**cv, "folds": []}})
    assert "## Metrics" in plain and "### Folds" not in plain and "(the model's)" in plain


def test_training_needs_both_labels(tmp_path):
    root = make_tiny_corpus(tmp_path / "c", per_album=1)
    shutil.rmtree(root / "song")
    with pytest.raises(ValueError, match="both labels"):
        train(root, **QUIET)


# --- explanations -------------------------------------------------------------------------

def test_explain_names_the_evidence(tiny_model, tiny_corpus):
    js, _ = tiny_model
    m = scoresong.load_model(js)
    song = next((tiny_corpus / "song").rglob("*.wav"))
    e = scoresong.explain(song, model=m, top=5)
    p = scoresong.predict(song, model=m)
    assert (e.label, e.probability) == (p.label, p.probability)
    assert len(e.contributions) == 5
    effects = [abs(c.effect) for c in e.contributions]
    assert effects == sorted(effects, reverse=True)
    assert e.contributions[0].effect > 0  # the strongest evidence for a song points to song
    assert set(e.to_dict()) >= {"path", "label", "probability", "contributions"}
    assert "-> song" in str(e)
    full = scoresong.explain(song, model=m, top=None)
    assert len(full.contributions) == len({n.split(":")[0] for n in m.feature_names})


def test_explain_without_reference_data_says_how_to_fix(tiny_model):
    from scoresong.explanation import explain_features
    from scoresong.model import Model, ModelError

    js, _ = tiny_model
    m = scoresong.load_model(js)
    bare = Model(m.estimator, {k: v for k, v in m.meta.items() if k != "reference"})
    with pytest.raises(ModelError, match="retrain"):
        explain_features(np.zeros(len(m.feature_names)), bare)


def test_cli_train_with_groups_labels_and_explain(tmp_path, capsys):
    root = make_tiny_corpus(tmp_path / "c", per_album=2, albums=3)
    shutil.copytree(root / "score" / "album0", root / "ambient" / "album7")
    out = tmp_path / "m" / "model"
    assert cli.main(["train", str(root), "-o", str(out), "--label", "ambient=score",
                     "--groups", "folder", "--cache", str(tmp_path / "cache"), "--model-version", "t1",
                     "--estimator", "logreg"]) == 0
    text = capsys.readouterr().out
    # The two "ambient" files are byte copies of score/album0: the content-keyed cache
    # serves them from the first extraction.
    assert "12 extracted, 2 from the cache" in text
    rep = json.loads((tmp_path / "m" / "model.report.json").read_text())
    assert rep["cv"]["per_kind"]["ambient"]["n"] == 2
    assert scoresong.load_model(out.with_suffix(".json")).version == "t1"
    # Second run: everything from the cache.
    assert cli.main(["train", str(root), "-o", str(out), "--label", "ambient=score",
                     "--cache", str(tmp_path / "cache"), "--no-eval", "--estimator", "logreg"]) == 0
    assert "0 extracted, 14 from the cache" in capsys.readouterr().out
    song = next((root / "song").rglob("*.wav"))
    assert cli.main(["explain", str(song), "--model", str(out.with_suffix(".json")), "--top", "3",
                     "--format", "json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["label"] == "song" and len(e["contributions"]) == 3


def test_nested_cv_in_parallel_equals_serial():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((90, 5))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "song", "score")
    g = np.repeat(np.arange(9), 10).astype(str)
    kw = dict(candidates=("logreg", "hgb"), outer=3, inner=2, log=lambda m: None)
    serial = nested_cv(X, y, g, n_jobs=1, **kw)
    parallel = nested_cv(X, y, g, n_jobs=2, **kw)
    np.testing.assert_array_equal(parallel["p_song"], serial["p_song"])
    np.testing.assert_array_equal(parallel["threshold"], serial["threshold"])
    assert parallel["folds"] == serial["folds"]
