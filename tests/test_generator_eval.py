"""Leave-one-generator-out evaluation (``corpus/generator_eval.py``) on synthetic feature
matrices: no audio is read or generated."""

from __future__ import annotations

import csv
import json
from functools import partial

import numpy as np
import pytest

from corpus import generator_eval as ge
from scoresong.cache import Extraction

CELLS = [f"cell{k}" for k in range(5)]
QUIET = {"log": lambda m: None}


def synthetic(seed=0, per_cell=(40, 6, 6, 6)):
    """Five cells, each with ``n_score`` score clips and songs of three generators: ``a`` and
    ``b`` sing (feature 1 high), ``mimic`` looks exactly like score. Column 0 is the item's
    index, so a spy can tell which items a fit saw."""
    rng = np.random.default_rng(seed)
    n_score, n_a, n_b, n_m = per_cell
    y, cells, gens, kinds, var_db, density, x1 = [], [], [], [], [], [], []
    for c in CELLS:
        for lab, gen, n, mu in (("score", "", n_score, 0.0), ("song", "a", n_a, 8.0),
                                ("song", "b", n_b, 8.0), ("song", "mimic", n_m, 0.0)):
            y += [lab] * n
            cells += [c] * n
            # Some score clips carry their voice's generator: it must be ignored.
            gens += [gen if lab == "song" else ("a" if k % 4 == 0 else "") for k in range(n)]
            kinds += [("song_acappella" if k == 0 else "song_constructed") if lab == "song"
                      else ge.SCORE_KINDS[k % 4] for k in range(n)]
            var_db += ["" if (lab == "song" and k == 0) else f"{rng.uniform(-6, 6):.2f}" for k in range(n)]
            density += ["" if (lab == "song" and k == 0) else f"{rng.uniform(0, 1):.3f}" for k in range(n)]
            x1 += list(rng.normal(mu, 0.5, n))
    n = len(y)
    X = np.column_stack([np.arange(n), x1, rng.normal(size=(n, 2))])
    return (X, np.array(y), np.array(cells), np.array(gens, dtype=object), np.array(kinds),
            np.array(var_db, dtype=object), np.array(density, dtype=object))


class _Stub:
    """A 'classifier' that returns a fixed function of feature 1."""

    classes_ = np.array(["score", "song"])

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-(X[:, 1] - 3)))
        return np.column_stack([1 - p, p])


def test_no_training_set_holds_the_held_out_generator_or_the_test_cell():
    X, y, cells, gens, kinds, var_db, density = synthetic()
    seen = []

    def spy(Xtr, ytr, gtr, sw):
        seen.append(Xtr[:, 0].astype(int))
        assert set(gtr) <= set(CELLS)
        return _Stub()

    rep = ge.leave_one_generator_out(X, y, cells, gens, kinds, var_db, density, fit=spy, **QUIET)
    folds = rep["folds"]
    assert len(seen) == len(folds) == 3 * 5  # 3 generators x 5 cells
    pred = rep["predictions"]
    song = y == "song"
    for tr, f in zip(seen, folds):
        g, c = f["generator"], f["cell"]
        trs = set(tr.tolist())
        assert not trs & set(np.flatnonzero(cells == c).tolist()), "test cell in training"
        assert not trs & set(np.flatnonzero(song & (gens == g)).tolist()), "held-out generator in training"
        # Everything else is trained on: other generators' songs and all other-cell score,
        # including score clips whose generator column names g.
        expect = np.flatnonzero((cells != c) & ~(song & (gens == g)))
        assert trs == set(expect.tolist())
        assert f["n_train"] == len(tr)
        # Test: g's songs of c plus every score clip of c, nothing else.
        m = (pred["generator"] == g) & (pred["cell"] == c)
        assert set(pred["index"][m].tolist()) == set(np.flatnonzero((cells == c) & (~song | (gens == g))).tolist())
    # Every song is predicted exactly once, each score clip once per generator of its cell.
    idx = pred["index"]
    assert np.array_equal(np.sort(idx[song[idx]]), np.flatnonzero(song))
    assert np.all(np.bincount(idx, minlength=y.size)[~song] == 3)


def test_generator_folds_skip_cells_without_the_generator_and_name_empty_generators():
    y = np.array(["song", "song", "song", "score", "score", "score"])
    cells = np.array(["c0", "c1", "c2", "c0", "c1", "c2"])
    gens = np.array(["a", "", "a", "a", "", ""], dtype=object)
    folds = ge.generator_folds(y, cells, gens)
    assert [(f.generator, f.cell) for f in folds] == [(ge.UNSPECIFIED, "c1"), ("a", "c0"), ("a", "c2")]
    a0 = folds[1]
    assert a0.test.tolist() == [0, 3] and a0.train.tolist() == [1, 4, 5]


def test_separable_generator_passes_and_a_score_like_generator_fails():
    X, y, cells, gens, kinds, var_db, density = synthetic()
    fit = partial(ge.fit_classifier, estimator="logreg")
    rep = ge.leave_one_generator_out(X[:, 1:], y, cells, gens, kinds, var_db, density, fit=fit, **QUIET)
    g = rep["generators"]
    assert set(g) == {"a", "b", "mimic"}
    for name in ("a", "b"):
        assert g[name]["recall"] == 1.0 and g[name]["roc_auc"] == 1.0 and g[name]["pass"]
        assert g[name]["n_songs"] == 30 and g[name]["cells"] == CELLS
    assert g["mimic"]["recall"] < 0.5 and g["mimic"]["roc_auc"] < 0.8 and not g["mimic"]["pass"]
    assert not rep["targets"]["met"]
    low = rep["min_over_generators"]
    assert low["recall"] == g["mimic"]["recall"] and low["recall_generator"] == "mimic"
    assert rep["pooled"]["n_songs"] == 90
    # Score false positives of a's folds, per kind, recomputed from the predictions.
    pred = rep["predictions"]
    m = (pred["generator"] == "a") & (y[pred["index"]] == "score")
    called = pred["p_song"][m] >= pred["threshold"][m]
    assert g["a"]["score_fpr"] == pytest.approx(called.mean())
    per_kind = g["a"]["score_fpr_by_kind"]
    assert set(per_kind) == set(ge.SCORE_KINDS)
    assert sum(d["n"] for d in per_kind.values()) == 5 * 40
    for k, d in per_kind.items():
        assert d["fpr"] == pytest.approx(called[kinds[pred["index"][m]] == k].mean())
        assert d["roc_auc_vs_songs"] == 1.0
    # Bands: the a cappella clip of each cell is its own band; recall 1 everywhere for a.
    assert g["a"]["recall_by_var_db"][ge.ACAPPELLA]["n"] == 5
    assert sum(d["n"] for d in g["a"]["recall_by_var_db"].values()) == 30
    assert all(d["recall"] == 1.0 for d in g["a"]["recall_by_density"].values())
    # The threshold is the song share of each fold's training labels.
    for f in rep["folds"]:
        assert f["threshold"] == pytest.approx(f["n_train_song"] / f["n_train"])


def test_fixed_threshold_and_a_fold_without_songs_to_train_on():
    X, y, cells, gens, kinds, var_db, density = synthetic(per_cell=(10, 2, 0, 0))
    with pytest.raises(ValueError, match="training part has only"):
        ge.leave_one_generator_out(X, y, cells, gens, kinds, var_db, density,
                                   fit=lambda *a: _Stub(), **QUIET)
    X, y, cells, gens, kinds, var_db, density = synthetic(per_cell=(10, 2, 2, 0))
    rep = ge.leave_one_generator_out(X, y, cells, gens, kinds, var_db, density,
                                     fit=lambda *a: _Stub(), threshold=0.3, **QUIET)
    assert {f["threshold"] for f in rep["folds"]} == {0.3}
    assert np.all(rep["predictions"]["threshold"] == 0.3)
    with pytest.raises(ValueError, match="threshold must be"):
        ge.leave_one_generator_out(X, y, cells, gens, kinds, var_db, density, fit=lambda *a: _Stub(),
                                   threshold="test", **QUIET)


def test_bands():
    v = ge.var_db_bands([-6, -3.01, -3, 0, 2.99, 3, 6, "", None, 7.5, -9])
    assert v.tolist() == ["[-6,-3)", "[-6,-3)", "[-3,0)", "[0,3)", "[0,3)", "[3,6]", "[3,6]",
                          ge.ACAPPELLA, ge.ACAPPELLA, "[3,6]", "[-6,-3)"]
    cuts = ge.density_cuts(["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "", "nan"])
    assert cuts == pytest.approx((0.2667, 0.4333), abs=1e-3)
    names = ge.density_band_names(cuts)
    assert names[0].startswith("low (<0.27") and names[2].startswith("high (>=0.43")
    b = ge.density_bands([0.05, 0.3, 0.9, ""], cuts)
    assert b.tolist() == names + [ge.NO_BACKING]
    assert ge.density_cuts(["", ""]) is None
    assert ge.density_bands(["", 0.4], None).tolist() == [ge.NO_BACKING] * 2


def test_evaluate_corpus_writes_the_report(tmp_path, monkeypatch):
    """The CLI path on a manifest, with feature extraction replaced by the synthetic matrix."""
    X, y, cells, gens, kinds, var_db, density = synthetic()
    man = tmp_path / "corpus" / "manifest.csv"
    man.parent.mkdir()
    with open(man, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "kind", "group", "start_s", "duration_s", "var_db", "density", "generator"])
        for i in range(y.size):
            w.writerow([f"gen/{i:05d}.flac", y[i], kinds[i], cells[i], 0, 20, var_db[i], density[i], gens[i]])
    failed = 3  # the last three items "fail" extraction

    def fake_extract(items, **kw):
        assert len(items) == y.size and items[5].extra["generator"] == gens[5]
        ok = np.arange(y.size - failed)
        return Extraction(X[ok], ok, ["x: failed"] * failed,
                          {"cached": 0, "extracted": int(ok.size), "failed": failed, "hashed": 0, "seconds": 0.0})

    monkeypatch.setattr("scoresong.cache.extract_items", fake_extract)
    out = tmp_path / "gen.report"
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"estimator": "logreg", "threshold": 0.25}))
    rc = ge.main([str(man.parent), "-o", str(out), "--jobs", "1", "--model", str(model)])
    assert rc == 0
    js = json.loads((tmp_path / "gen.report.json").read_text())
    assert js["settings"]["estimator"] == "logreg" and js["settings"]["n_used"] == y.size - failed
    assert js["generators"]["a"]["recall"] == 1.0 and "predictions" not in js
    md = (tmp_path / "gen.report.md").read_text()
    assert "Leave-one-generator-out evaluation on our constructed corpus, grouped by cell" in md
    assert "min over generators" in md and "not met" in md and "cut-offs" in md
    rows = list(csv.DictReader(open(tmp_path / "gen.report.predictions.csv")))
    assert list(rows[0]) == ["path", "start_s", "generator", "cell", "label", "kind", "p_song", "threshold",
                             "var_db", "density"]
    assert len(rows) == sum(f["n_test"] for f in js["folds"])
    # The shipped threshold, as stored.
    rep = ge.evaluate_corpus(man, threshold_from="model", model=model, n_jobs=1, **QUIET)
    assert {f["threshold"] for f in rep["folds"]} == {0.25}
    assert "min over generators" in ge.summary_table(rep)


def test_a_manifest_without_generators_is_refused(tmp_path):
    man = tmp_path / "manifest.csv"
    man.write_text("path,label,group\na.flac,song,cell0\n")
    with pytest.raises(ValueError, match="no 'generator' column"):
        ge.evaluate_corpus(man, **QUIET)


def test_generators_outside_the_training_set_are_only_ever_tested():
    """With train_generators, songs of any other generator never enter a training set, and
    are still held out and tested like the rest."""
    y = np.array(["song"] * 6 + ["score"] * 4)
    cells = np.array(["c0", "c1", "c0", "c1", "c0", "c1", "c0", "c1", "c0", "c1"])
    gens = np.array(["a", "a", "b", "b", "c", "c", "", "", "", ""])
    folds = ge.generator_folds(y, cells, gens, train_generators={"a", "c"})
    assert {(f.generator, f.cell) for f in folds} == {(g, c) for g in "abc" for c in ("c0", "c1")}
    for f in folds:
        assert not set(np.flatnonzero(gens == "b")) & set(f.train)
        assert set(f.train) >= set(np.flatnonzero((y == "score") & (cells != f.cell)))
    b0 = next(f for f in folds if f.generator == "b" and f.cell == "c0")
    assert set(b0.test) == {2, 6, 8}


_HEAD = ["path", "label", "kind", "group", "start_s", "duration_s", "var_db", "density", "generator"]


def _corpus_with_extra(tmp_path, monkeypatch, name, extra_rows, seed):
    """A synthetic corpus folder with ``name`` (rows of :data:`_HEAD`) beside its manifest,
    feature extraction faked (the extra items get random features); returns (root, model
    path, what was seen, the synthetic arrays)."""
    X, y, cells, gens, kinds, var_db, density = data = synthetic()
    root = tmp_path / "corpus"
    root.mkdir()
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_HEAD)
        for i in range(y.size):
            w.writerow([f"gen/{i:05d}.flac", y[i], kinds[i], cells[i], 0, 20, var_db[i], density[i], gens[i]])
    with open(root / name, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(_HEAD)
        w.writerows(extra_rows(sorted(set(cells))))
    seen = {}
    rng = np.random.default_rng(seed)

    def fake_extract(items, **kw):
        seen["kinds"] = [i.kind for i in items]
        extra = rng.normal(size=(len(items) - y.size, X.shape[1]))
        return Extraction(np.vstack([X, extra]), np.arange(len(items)), [],
                          {"cached": 0, "extracted": len(items), "failed": 0, "hashed": 0, "seconds": 0.0})

    monkeypatch.setattr("scoresong.cache.extract_items", fake_extract)
    model = tmp_path / "m.json"
    model.write_text(json.dumps({"estimator": "logreg", "threshold": 0.25}))
    return root, model, seen, data


def test_dialogue_over_score_adds_only_the_score_under_speech_rows(tmp_path, monkeypatch):
    """--dialogue-over-score: the song part's extra score clips join every fold's training
    and test sets as score; the no_music clips of the same manifest stay out."""
    def rows(cell_names):
        for k in range(10):
            yield [f"gen/nomusic/under_speech/{k}.flac", "score", "score_under_speech",
                   cell_names[k % len(cell_names)], 0, 20, -12.0, 0.5, ""]
            yield [f"gen/nomusic/speech/{k}.flac", "no_music", "no_music_speech",
                   cell_names[k % len(cell_names)], 0, 20, "", "", ""]
    root, model, seen, (X, y, cells, *_) = _corpus_with_extra(tmp_path, monkeypatch, "manifest.nomusic.csv", rows, 1)
    cell_names = sorted(set(cells))
    rep = ge.evaluate_corpus(root, model=model, n_jobs=1, dialogue_over_score=True, **QUIET)
    assert len(seen["kinds"]) == y.size + 10 and seen["kinds"][-10:] == ["score_under_speech"] * 10
    assert "no_music_speech" not in seen["kinds"] and rep["settings"]["dialogue_over_score"] is True
    assert "with `--dialogue-over-score`" in ge.report_markdown(rep)
    # Tested as score in the folds of their cells: every one of them, once per generator there.
    tested = sum(g["score_fpr_by_kind"].get("score_under_speech", {}).get("n", 0) for g in rep["generators"].values())
    expected = sum(sum(1 for k in range(10) if cell_names[k % len(cell_names)] in g["cells"])
                   for g in rep["generators"].values())
    assert tested == expected > 0
    (root / "manifest.nomusic.csv").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.nomusic.csv"):
        ge.evaluate_corpus(root, model=model, n_jobs=1, dialogue_over_score=True, **QUIET)


def test_leads_add_the_lead_partners_as_score(tmp_path, monkeypatch):
    """--leads: the instrument-lead partners join every fold as score, tested in their cells."""
    def rows(cell_names):
        for k in range(8):
            yield [f"gen/lead/{k}.flac", "score", "score_lead", cell_names[k % len(cell_names)], 0, 20, 0.0, 0.5, ""]
    root, model, seen, (X, y, cells, *_) = _corpus_with_extra(tmp_path, monkeypatch, "manifest.leads.csv", rows, 2)
    cell_names = sorted(set(cells))
    rep = ge.evaluate_corpus(root, model=model, n_jobs=1, leads=True, **QUIET)
    assert seen["kinds"][-8:] == ["score_lead"] * 8 and rep["settings"]["leads"] is True
    assert "with `--leads`" in ge.report_markdown(rep)
    tested = sum(g["score_fpr_by_kind"].get("score_lead", {}).get("n", 0) for g in rep["generators"].values())
    expected = sum(sum(1 for k in range(8) if cell_names[k % len(cell_names)] in g["cells"])
                   for g in rep["generators"].values())
    assert tested == expected > 0
    (root / "manifest.leads.csv").unlink()
    with pytest.raises(FileNotFoundError, match="manifest.leads.csv"):
        ge.evaluate_corpus(root, model=model, n_jobs=1, leads=True, **QUIET)
