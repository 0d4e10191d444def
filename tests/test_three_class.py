"""The third class, ``no_music`` (issue 12): the hierarchical estimator, its saved form,
training and evaluation on a corpus with a ``no_music`` folder, and every consumer
(predict, predict_many, batch files, explain, timeline, CLI). Corpora are generated."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import scoresong
from scoresong import cli
from scoresong.batch import read_results, run_batch
from scoresong.dataset import read_corpus
from scoresong.estimator import MusicSongClassifier, ScoreSongClassifier
from scoresong.model import ModelIntegrityError, load_model, three_class_labels
from scoresong.segmentation import viterbi

from .conftest import SR, clicks, make_tiny_corpus, noise, tone

QUIET = {"log": lambda m: None}


def _no_music(dur, rng):
    """Effects-like audio with no steady pitch: noise bursts and clicks."""
    y = noise(dur, amp=0.02) + clicks(bpm=rng.uniform(50, 200), dur=dur)
    env = (rng.random(int(dur * 4)) < 0.4).repeat(SR // 4)[: y.size]
    burst = np.random.default_rng(int(rng.integers(1 << 30))).standard_normal(y.size) * 0.2
    return (y + burst[: y.size] * np.pad(env, (0, y.size - env.size))).astype(np.float32)


def make_three_class_corpus(root, *, per_album=3, albums=3, dur=6.0):
    make_tiny_corpus(root, per_album=per_album, albums=albums, dur=dur)
    rng = np.random.default_rng(7)
    for a in range(albums):
        d = root / "no_music" / f"album{a}"
        d.mkdir(parents=True)
        for i in range(per_album):
            sf.write(d / f"nm{a}{i}.wav", _no_music(dur, rng), SR)
    return root


@pytest.fixture(scope="module")
def corpus3(tmp_path_factory):
    return make_three_class_corpus(tmp_path_factory.mktemp("c3") / "corpus")


@pytest.fixture(scope="module")
def model3(corpus3, tmp_path_factory):
    """(model json path, report) of a three-class model trained on :func:`corpus3`."""
    from scoresong.training import train

    out = tmp_path_factory.mktemp("m3") / "tiny3"
    _, report = train(corpus3, out=out, candidates=("logreg",), **QUIET)
    return out.with_suffix(".json"), report


# --- the estimator --------------------------------------------------------------------------

def _blobs(n=60, seed=0):
    rng = np.random.default_rng(seed)
    centres = {"no_music": [-3, 0, 0], "score": [2, -2, 0], "song": [2, 2, 0]}
    y = np.repeat(list(centres), n)
    X = np.concatenate([rng.normal(centres[k], 1.0, size=(n, 3)) for k in centres])
    return X, y, np.arange(len(y)) % 5


def test_music_song_classifier_is_the_two_models_in_a_row():
    X, y, g = _blobs()
    clf = MusicSongClassifier(presence=ScoreSongClassifier(estimator="logreg"),
                              song=ScoreSongClassifier(estimator="logreg")).fit(X, y, groups=g)
    assert list(clf.classes_) == ["no_music", "score", "song"]
    assert list(clf.presence_.classes_) == ["music", "no_music"]
    assert list(clf.song_.classes_) == ["score", "song"]
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)
    q = clf.presence_.predict_proba(X)[:, 1]
    s = clf.song_.predict_proba(X)[:, 1]
    np.testing.assert_allclose(P, np.stack([q, (1 - q) * (1 - s), (1 - q) * s], axis=1), atol=1e-12)
    # The song part saw the music rows only, and the blobs are separable.
    assert clf.song_.n_features_in_ == 3
    assert (clf.predict(X) == y).mean() > 0.95
    # The templates are not touched (scikit-learn's contract).
    assert not hasattr(clf.presence, "model_")


def test_music_song_classifier_needs_every_label():
    X, y, g = _blobs()
    with pytest.raises(ValueError, match="every label"):
        MusicSongClassifier().fit(X[y != "no_music"], y[y != "no_music"])
    with pytest.raises(ValueError, match="among"):
        MusicSongClassifier().fit(X, np.where(y == "song", "rap", y))


# --- training, saving, loading ---------------------------------------------------------------

def test_folder_corpus_with_a_no_music_folder(corpus3):
    c = read_corpus(corpus3)
    assert len(c) == 27 and not c.ignored
    assert {i.label for i in c} == {"no_music", "score", "song"}
    assert {i.group for i in c if i.label == "no_music"} == {f"no_music/album{a}" for a in range(3)}


def test_three_class_training_reports_every_class(model3):
    js, report = model3
    meta = json.loads(js.read_text())
    assert meta["labels"] == ["no_music", "score", "song"]
    assert 0 < meta["presence_threshold"] < 1 and 0 < meta["threshold"] < 1
    cv3 = report["cv3"]
    # Nested grouped CV over all 27 clips; the generated classes are easy to tell apart.
    assert cv3["n"] == 27
    assert set(cv3["recall"]) == {"no_music", "score", "song"}
    assert cv3["recall"]["no_music"] >= 0.8 and cv3["presence"]["music_recall"] >= 0.8
    cm = np.asarray(cv3["confusion_matrix"]["rows_true_cols_pred"])
    assert cm.shape == (3, 3) and cm.sum() == 27 and cm.sum(axis=1).tolist() == [9, 9, 9]
    # The score/song figures stay those of the music items only, as for a two-class model.
    assert report["cv"]["n"] == 18
    md = js.with_name(js.stem + ".report.md").read_text()
    assert "no_music" in md and "music recall" in md.lower()


def test_saved_three_class_model_predicts_as_the_estimator(model3, corpus3):
    js, _ = model3
    m = load_model(js)
    assert m.three_class and m.classes == ("no_music", "score", "song")
    assert m.inference is not None and m.presence is not None
    from scoresong.features import extract_features

    X = np.stack([extract_features(p).values for p in sorted(corpus3.rglob("*.wav"))[::4]]).astype(np.float64)
    q, s = m.parts(X)
    P_est = m.estimator.predict_proba(X)   # the .skops estimator, loaded on demand
    np.testing.assert_allclose(m.probabilities(X), P_est, atol=1e-9)
    np.testing.assert_allclose(m.song_probability(X), (1 - q) * s, atol=1e-12)
    np.testing.assert_allclose(m.probabilities(X, classes=("score", "song"))[:, 1], s)


def test_presence_form_is_hash_checked_and_its_absence_falls_back_to_the_estimator(model3, corpus3, tmp_path):
    js, _ = model3
    for f in js.parent.glob(js.stem + ".*"):
        shutil.copy(f, tmp_path / f.name)
    pres = tmp_path / (js.stem + ".presence.npz")
    data = bytearray(pres.read_bytes())
    data[-100] ^= 1
    pres.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(tmp_path / js.name)
    pres.unlink()   # like a missing NAME.npz: the checked .skops estimator answers instead
    m = load_model(tmp_path / js.name)
    assert m.presence is None and m.three_class
    f = sorted((corpus3 / "no_music").rglob("*.wav"))[0]
    assert scoresong.predict(f, model=m).probabilities == scoresong.predict(f, model=js).probabilities


# --- the three-class rule ---------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(q=st.floats(0.0, 1.0), s=st.floats(0.0, 1.0), t=st.floats(0.01, 0.99), pt=st.floats(0.01, 0.99))
def test_three_class_rule_is_the_largest_probability_against_its_prior(q, s, t, pt):
    """Computed independently: argmax of (q, (1-q)(1-s), (1-q)s) / (pt, (1-pt)(1-t), (1-pt)t).
    Near-ties (relative gap under 1e-9) are skipped: the rule breaks them by a stated order."""
    ratio = np.array([q / pt, (1 - q) * (1 - s) / ((1 - pt) * (1 - t)), (1 - q) * s / ((1 - pt) * t)])
    top = np.sort(ratio)[::-1]
    assume(top[0] - top[1] > 1e-9 * max(top[0], 1e-12))
    got = three_class_labels([q], [s], threshold=t, presence_threshold=pt)[0]
    assert got == ("no_music", "score", "song")[int(np.argmax(ratio))]
    if got != "no_music":  # between the music labels only s against t matters
        assert got == ("song" if s >= t else "score")


def test_three_class_rule_on_the_cases_it_was_made_for():
    t, pt = 0.103, 0.158  # the shipped model's priors
    # Speech alone: likely no music, and no singing heard.
    assert three_class_labels([0.9], [0.02], threshold=t, presence_threshold=pt)[0] == "no_music"
    # A lone voice singing: P(no_music) above its prior, but the song part is sure.
    assert three_class_labels([0.35], [0.95], threshold=t, presence_threshold=pt)[0] == "song"
    # An ambiguous music verdict (s at its prior): exactly P(no_music) against its prior.
    assert three_class_labels([pt, pt - 1e-3], [t, t], threshold=t, presence_threshold=pt).tolist() == [
        "no_music", "song"]
    # A user's song threshold moves score/song only, not the no_music decision of a model.
    m = load_model(scoresong.model.default_model_path())
    q, s = [0.3, 0.3, 0.01], [0.9, 0.05, 0.5]
    nm = [lab == "no_music" for lab in m.labels(q, s)]
    for thr in (0.01, 0.5, 0.99):
        assert [lab == "no_music" for lab in m.labels(q, s, threshold=thr)] == nm


def test_three_class_rule_broadcasts_per_item_thresholds_and_rejects_nan():
    """Per-item thresholds label each item by its own priors (checked against scalar calls);
    scalars against arrays broadcast both ways; shapes that do not broadcast and NaN
    probabilities are errors, not labels."""
    rng = np.random.default_rng(3)
    q, s = rng.random(40), rng.random(40)
    t, pt = rng.uniform(0.05, 0.95, 40), rng.uniform(0.05, 0.95, 40)
    got = three_class_labels(q, s, threshold=t, presence_threshold=pt)
    one_by_one = [three_class_labels(q[i], s[i], threshold=t[i], presence_threshold=pt[i]).item()
                  for i in range(40)]
    assert got.shape == (40,) and got.tolist() == one_by_one
    # A scalar probability against per-item thresholds: one label per threshold.
    assert three_class_labels(0.5, 0.5, threshold=t, presence_threshold=0.3).shape == (40,)
    assert three_class_labels(0.5, 0.5, threshold=0.3, presence_threshold=pt).shape == (40,)
    assert three_class_labels(0.2, 0.5, threshold=0.1, presence_threshold=0.3).shape == ()
    with pytest.raises(ValueError):
        three_class_labels(q, s, threshold=t[:3], presence_threshold=0.3)
    with pytest.raises(ValueError, match="NaN"):
        three_class_labels([0.2, np.nan], [0.5, 0.5], threshold=0.1, presence_threshold=0.3)
    with pytest.raises(ValueError, match="NaN"):
        three_class_labels([0.2, 0.3], [0.5, 0.5], threshold=np.nan, presence_threshold=0.3)
    with pytest.raises(ValueError, match="NaN"):
        three_class_labels([0.2, 0.3], [0.5, 0.5], threshold=0.1, presence_threshold=[0.3, np.nan])
    m = load_model(scoresong.model.default_model_path())
    with pytest.raises(ValueError, match="NaN"):   # the two-class path too
        m.labels([0.2], [np.nan], classes=("score", "song"))


def test_evaluate_with_a_threshold_labels_as_predict_does(model3, corpus3, monkeypatch):
    """`evaluate(..., threshold=)` and `predict(..., threshold=)` (through `Model.labels`)
    apply one rule: the model's own song prior weighs the music verdict in both. The model's
    probabilities are replaced by a spread of (P(no_music), P(song | music)) pairs, so that
    the no_music decision of some items depends on that prior."""
    from scoresong.model import Model
    from scoresong.training import evaluate

    js, _ = model3

    def parts(self, X):
        n = len(X)
        return np.linspace(0.05, 0.6, n), np.random.default_rng(0).uniform(0.0, 1.0, n)

    monkeypatch.setattr(Model, "parts", parts)
    m = load_model(js)
    for thr in (0.02, 0.95):
        rep = evaluate(js, corpus3, threshold=thr, out=None, plot=False)
        got = [r["predicted"] for r in rep["predictions"]]
        q, s = parts(m, got)
        assert got == list(m.labels(q, s, threshold=thr))
        # The override matters here: with the override as the prior, some labels would differ.
        assert got != list(three_class_labels(q, s, threshold=thr, presence_threshold=m.presence_threshold))
        # The report says which prior weighed the music verdict.
        from scoresong.report import report_markdown
        assert rep["cv3"]["song_prior"] == pytest.approx(m.threshold)
        md = report_markdown(rep)
        assert f"The song threshold is overridden here ({thr:.3f}): it moves score against song only" in md
        assert f"model's own song prior ({m.threshold:.3f})" in md
        assert f"(the model's song prior, {m.threshold:.3f}, among music)" in md
        assert f"{thr} (overridden; the model's is {m.threshold})" in md


# --- predict, batch, explain -----------------------------------------------------------------

def test_predict_answers_no_music_with_three_probabilities(model3, corpus3):
    js, _ = model3
    f = sorted((corpus3 / "no_music").rglob("*.wav"))[0]
    r = scoresong.predict(f, model=js)
    assert r.label == "no_music"
    assert set(r.probabilities) == {"no_music", "score", "song"}
    assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=2e-4)   # rounded to 4 places
    assert r.probability == pytest.approx(r.probabilities["song"], abs=1e-4)
    two = scoresong.predict(f, model=js, classes=("score", "song"))
    assert two.label in ("score", "song") and set(two.probabilities) == {"score", "song"}
    assert scoresong.predict(f, model=js, presence_threshold=1.0).label != "no_music"
    with pytest.raises(ValueError, match="classes must be"):
        scoresong.predict(f, model=js, classes=("music", "speech"))
    song = sorted((corpus3 / "song").rglob("*.wav"))[0]
    assert scoresong.predict(song, model=js).label == "song"


def test_two_class_model_still_answers_two_labels(tiny_model, tiny_corpus):
    js, _ = tiny_model
    r = scoresong.predict(sorted(tiny_corpus.rglob("*.wav"))[0], model=js)
    assert set(r.probabilities) == {"score", "song"} and r.label in ("score", "song")
    assert load_model(js).presence_threshold == 1.0


def test_batch_files_carry_p_no_music_and_resume_into_an_old_header(model3, corpus3, tmp_path):
    js, _ = model3
    files = sorted(corpus3.rglob("*.wav"))[::3]
    out = tmp_path / "r.csv"
    run_batch(files, out, model=js, progress=False)
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == len(files) and "p_no_music" in rows[0]
    nm = [r for r in rows if "/no_music/" in r["path"]]
    assert nm and all(r["label"] == "no_music" and float(r["p_no_music"]) > 0.5 for r in nm)
    # A results file from before the third class: resuming appends in its own columns.
    old = tmp_path / "old.csv"
    head = "path,label,probability,duration,model_version,error,reason"
    version = scoresong.load_model(js).version          # answers of this model (another is refused)
    old.write_text(head + "\r\n" + f"{files[0]},score,0.01,6.0,{version},,\r\n")
    run_batch(files, old, model=js, resume=True, progress=False)
    lines = old.read_text().splitlines()
    assert lines[0] == head and len(lines) == len(files) + 1
    assert all(len(next(csv.reader([ln]))) == 7 for ln in lines)
    assert len(read_results(old)) == len(files)
    jl = tmp_path / "r.jsonl"
    run_batch(files[:2], jl, model=js, progress=False)
    assert all("p_no_music" in json.loads(ln) for ln in jl.read_text().splitlines())


def test_explain_says_which_question_it_explains(model3, corpus3):
    js, _ = model3
    nm = sorted((corpus3 / "no_music").rglob("*.wav"))[0]
    e = scoresong.explain(nm, model=js)
    assert e.label == "no_music" and e.question == "no_music"
    assert all(c.typical_no_music is not None for c in e.contributions)
    assert "P(no_music)" in str(e)
    song = sorted((corpus3 / "song").rglob("*.wav"))[0]
    e2 = scoresong.explain(song, model=js)
    assert e2.question == "song" and e2.label == "song"
    assert e2.probabilities["song"] == pytest.approx(e2.probability, abs=1e-4)


# --- timeline --------------------------------------------------------------------------------

def test_viterbi_three_states_follows_strong_evidence_and_ignores_a_blip():
    n = 30
    truth = np.array([0] * 10 + [1] * 10 + [2] * 10)
    ll = np.full((n, 3), -4.0)
    ll[np.arange(n), truth] = 0.0
    ll[15] = [-4.0, -0.5, 0.0]   # one weak frame for the wrong state
    path = viterbi(ll, switch=0.05)
    assert path.tolist() == truth.tolist()


def test_timeline_labels_no_music_and_keeps_it_out_of_the_cues(model3, corpus3):
    js, _ = model3
    rng = np.random.default_rng(3)
    y = np.concatenate([_no_music(30.0, rng), tone(200.0, 30.0) + noise(30.0, amp=0.03)])
    tl = scoresong.timeline(y, sr=SR, model=js)
    assert tl.p_no_music is not None and tl.p_no_music.shape == tl.p_song.shape
    assert set(s.label for s in tl.segments) <= {"score", "song", "no_music", "silence"}
    assert np.mean(tl.label_at(np.arange(2, 24, 1.0)) == "no_music") >= 0.8
    assert np.all(np.isin(tl.label_at(np.arange(36, 58, 1.0)), ["score", "song"]))
    assert all(c["label"] != "no_music" for c in tl.cues())
    assert "p_no_music" in tl.to_csv().splitlines()[0]
    two = scoresong.timeline(y, sr=SR, model=js, classes=("score", "song"))
    assert "no_music" not in {s.label for s in two.segments}
    with pytest.raises(ValueError):
        scoresong.timeline(y, sr=SR, model=js, classes="speech")


# --- CLI ---------------------------------------------------------------------------------------

def test_cli_predict_classes_and_train_summary(model3, corpus3, capsys, tmp_path):
    js, _ = model3
    nm = str(sorted((corpus3 / "no_music").rglob("*.wav"))[0])
    assert cli.main(["predict", nm, "--model", str(js)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("no_music")
    assert cli.main(["predict", nm, "--model", str(js), "--classes", "score,song"]) == 0
    assert not capsys.readouterr().out.splitlines()[-1].startswith("no_music")
    assert cli.main(["evaluate", str(js), str(corpus3), "-o", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "no_music" in out


def test_quiet_inside_no_music_is_no_music_a_gap_next_to_music_is_silence(model3):
    from scoresong.segmentation import _overlay_silence

    # The rule on decisions made by hand: a 5 s quiet inside no_music, a 4 s gap before music.
    raw = [(0.0, 20.0, "no_music", 0.01, 0.9), (20.0, 40.0, "no_music", 0.02, 0.95),
           (40.0, 60.0, "score", 0.05, 0.01)]
    segs = _overlay_silence(raw, [(12.0, 17.0), (37.0, 41.0)], 1.0)
    assert [(s.start, s.end, s.label) for s in segs] == [
        (0.0, 37.0, "no_music"), (37.0, 41.0, "silence"), (41.0, 60.0, "score")]
    # End to end: the 1.5 s pause between two no_music stretches is no_music, unless only
    # the music labels are asked for (then it is a silence, as before the third class).
    js, _ = model3
    rng = np.random.default_rng(5)
    a, b = (_no_music(20.0, rng) for _ in range(2))
    y = np.concatenate([a, np.zeros(int(1.5 * SR), np.float32), b])
    tl = scoresong.timeline(y, sr=SR, model=js)
    assert tl.label_at([20.7])[0] == "no_music" and {s.label for s in tl.segments} == {"no_music"}
    two = scoresong.timeline(y, sr=SR, model=js, classes=("score", "song"))
    assert two.label_at([20.7])[0] == "silence"
