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
