"""corpus/film_eval.py: reels of known parts, and its metrics on a hand-made pair."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from .conftest import SR, noise, tone


def _fe():
    pytest.importorskip("mir_eval")  # the `corpus` extra
    from corpus import film_eval

    return film_eval


def test_metrics_of_a_known_pair():
    fe = _fe()
    # 0-10 score, 10-20 no_music, 20-30 song. Detected: score to 12, song from 12.
    ref = [(0, 10, "score"), (10, 20, "no_music"), (20, 30, "song")]
    est = [(0, 12, "score"), (12, 30, "song")]
    r = fe.score_reel(ref, est, 30.0)
    # 3-class: wrong 10-20 (100 cells). Presence: wrong 10-12 and 12-20 (no_music called music).
    assert r["frames"] == 300 and r["correct"] == 200 and r["presence_correct"] == 200
    assert r["confusion"]["no_music->song"] == 80 and r["confusion"]["no_music->score"] == 20
    s = fe.summarise([r])
    assert s["frame_accuracy_3class"] == pytest.approx(2 / 3)
    # Reference changes at 10 and 20; detected one at 12 matches 10: P = 1, R = 1/2.
    assert (s["boundary_precision"], s["boundary_recall"]) == pytest.approx((1.0, 0.5))


def test_reels_hold_the_parts_they_say(tmp_path):
    fe = _fe()
    rows = []
    for part, kind, label, make in (
            ("score", "score_real", "score", lambda: tone(150.0, 20.0)),
            ("song", "song_real", "song", lambda: tone(300.0, 20.0, vibrato_hz=6, vibrato_cents=80)),
            ("dialogue", "no_music_speech", "no_music", lambda: noise(20.0)),
            ("effects", "no_music_effects", "no_music", lambda: noise(20.0, amp=0.2)),
            ("dialogue_score", "score_under_speech", "score", lambda: tone(150.0, 20.0) + noise(20.0))):
        for i in range(2):
            p = tmp_path / f"{part}{i}.wav"
            sf.write(p, make(), SR)
            rows.append({"path": p.name, "_file": str(p), "label": label, "kind": kind, "group": "g",
                         "start_s": "0", "duration_s": "20"})
    pool = fe.pools(rows)
    assert {k: len(v) for k, v in pool.items()} == dict.fromkeys(fe.WEIGHTS, 2)
    sig, ref, spans = fe.build_reel(pool, np.random.default_rng(0), 8)
    d = sig.size / SR
    assert len(spans) == 8 and all(spans[k][2] != spans[k + 1][2] for k in range(7))
    assert ref[0][0] == 0 and ref[-1][1] == pytest.approx(d)
    assert all(ref[k][1] == pytest.approx(ref[k + 1][0]) for k in range(len(ref) - 1))   # no holes
    # Every stretch lies inside reference intervals of its own label (crossfade halves included).
    for a, b, part in spans:
        mid = (a + b) / 2
        lab = next(lab for s, e, lab in ref if s <= mid < e)
        assert lab == fe.LABEL[part]
    perfect = fe.summarise([fe.score_reel(ref, ref, d)])
    assert perfect["frame_accuracy_3class"] == 1.0 and perfect["music_presence_accuracy"] == 1.0
    assert perfect["boundary_f"] == 1.0

    # Asking for the clips changes nothing in the reel; the clips tile each stretch and carry
    # their source (here no generator or package: the kind).
    clips = []
    sig2, ref2, spans2 = fe.build_reel(pool, np.random.default_rng(0), 8, clips=clips)
    np.testing.assert_array_equal(sig2, sig)
    assert ref2 == ref and spans2 == spans
    assert {p for *_, p, _ in clips} == {p for *_, p in spans} and clips[-1][1] == pytest.approx(d)
    for a, b, part in spans:
        own = [c for c in clips if c[2] == part and c[0] < b and c[1] > a]
        assert min(c[0] for c in own) <= a + 2.0 and max(c[1] for c in own) >= b   # fades: <= 2 s
    assert {src for *_, part, src in clips if part == "song"} == {"song_real"}


def test_song_accuracy_by_source():
    fe = _fe()
    # 0-10 song of generator A (right), 10-20 song of B (called score), 20-30 score.
    ref = [(0, 20, "song"), (20, 30, "score")]
    est = [(0, 10, "song"), (10, 30, "score")]
    spans = [(0, 20, "song"), (20, 30, "score")]
    clips = [(0, 10, "song", "A"), (10, 21, "song", "B"), (20, 30, "score", "pkg")]
    g = (fe.labels_on_grid(ref, 30.0), fe.labels_on_grid(est, 30.0), fe._parts_on_grid(spans, 30.0))
    src = fe._sources_on_grid(clips, g[2], 30.0)
    out = fe.per_source([g], [src])
    assert set(out) == {"A", "B"}
    assert out["A"]["accuracy_3class"] == 1.0 and out["B"]["accuracy_3class"] == 0.0
    assert out["B"]["music_presence_accuracy"] == 1.0 and out["B"]["minutes"] == pytest.approx(10 / 60, abs=0.05)


def test_level_reference_follows_the_timelines_silence_rule():
    fe = _fe()
    # 0-5 dialogue with 2 s of digital silence at its end; 5-7 gap; 7-12 effects; 12-14 gap;
    # 14-20 score. Quiet runs: 3-7 (dialogue tail + gap, no_music on both sides -> no_music)
    # and 12-14 (effects | score -> silence); a 0.5-s quiet cell run inside the score stays.
    ref = [(0, 5, "no_music"), (5, 7, "silence"), (7, 12, "no_music"), (12, 14, "silence"), (14, 20, "score")]
    t = np.arange(int(20 * SR)) / SR
    sig = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    for a, b in ((3, 7), (12, 14), (16, 16.5)):
        sig[int(a * SR):int(b * SR)] = 0.0
    sig[int(9 * SR):int(10.5 * SR)] *= 1e-4       # -80 dB re the tone: quiet, inside effects
    lref = fe.level_reference(ref, sig)
    assert [lab for *_, lab in lref] == ["no_music", "silence", "score"]
    assert lref[1][:2] == pytest.approx((12.0, 14.0)) and lref[0][:2] == pytest.approx((0.0, 12.0))
    # A quiet run at the very start stays silence even before no_music.
    sig2 = sig.copy()
    sig2[: int(1.5 * SR)] = 0.0
    first = fe.level_reference(ref, sig2)[0]
    assert first[2] == "silence" and first[:2] == pytest.approx((0.0, 1.5))
    # score_reel reports both references; a timeline that follows the rule scores 1.0 on it.
    r = fe.score_reel(ref, lref, 20.0, sig)
    assert r["correct_level"] == r["frames"] and r["correct"] < r["frames"]
    s = fe.summarise([r])
    assert s["frame_accuracy_3class_level"] == 1.0 and s["boundary_f_level"] == 1.0
    assert s["frame_accuracy_3class"] == pytest.approx(r["correct"] / r["frames"])


def test_boundary_breakdown_counts_each_change_once():
    fe = _fe()
    ref = [(0, 10, "score"), (10, 12, "silence"), (12, 20, "no_music"), (20, 30, "song")]
    est = [(0, 10.5, "score"), (10.5, 20.5, "no_music"), (20.5, 25, "score"), (25, 30, "song")]
    bd = fe.boundary_breakdown(ref, est)
    # 10.5 can match 10 or 12, one of them only (one to one); 20.5 matches 20;
    # 25 (score->song) matches nothing.
    assert sum(bd["hit"].values()) == 2 and bd["hit"]["no_music->song"] == 1
    assert sum(bd["missed"].values()) == 1
    assert set(bd["hit"]) | set(bd["missed"]) == {"score->silence", "silence->no_music", "no_music->song"}
    assert bd["false"] == {"score->song": 1}
