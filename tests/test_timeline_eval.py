"""corpus/timeline_eval.py's metrics on hand-made reference / estimate pairs whose answer
is worked out by hand (mir_eval does the boundary matching and the grid labels)."""

from __future__ import annotations

import pytest


def _te():
    pytest.importorskip("mir_eval")  # the `corpus` extra
    from corpus import timeline_eval

    return timeline_eval


def test_scores_of_a_known_pair():
    te = _te()
    # Reference changes at 10, 20 and 22 s; detected ones at 12 s (2 s from 10: a match)
    # and 30 s (8 s from 22: none). P = 1/2, R = 1/3, F = 0.4.
    ref = [(0, 10, "score"), (10, 20, "song"), (20, 22, "silence"), (22, 40, "score")]
    est = [(0, 12, "score"), (12, 30, "song"), (30, 40, "score")]
    r = te.score_one(ref, est, 40.0)
    assert (r["frames"], r["ref_boundaries"], r["est_boundaries"], r["hits"]) == (400, 3, 2, 1)
    # Wrong cells: 10-12 s (song called score), 20-22 s (silence called song), 22-30 s
    # (score called song); of those, 10-13, 17-25 s are within 3 s of a reference change.
    assert r["correct"] == 280
    assert r["err_near_boundary"] == 20 + 20 + 30
    assert r["err_score_as_song"] == 50 and r["err_song_as_score"] == 0 and r["err_silence"] == 0
    s = te.summarise([r])
    assert s["frame_accuracy"] == pytest.approx(0.7)
    assert (s["boundary_precision"], s["boundary_recall"]) == pytest.approx((1 / 2, 1 / 3))
    assert s["boundary_f"] == pytest.approx(0.4)


def test_boundaries_match_whatever_the_kind_and_one_to_one_at_most():
    te = _te()
    # Reference changes at 10 and 12 s; detected at 8.5 and 11 s. Closest-first greedy
    # matching pairs 11 with 10 and leaves 8.5 (3.5 s from 12) alone: 1 match. The maximum
    # matching pairs 8.5-10 and 11-12: 2. The labels differ on every side: still matches.
    ref = [(0, 10, "score"), (10, 12, "song"), (12, 30, "score")]
    est = [(0, 8.5, "song"), (8.5, 11, "silence"), (11, 30, "song")]
    assert te.boundary_hits(ref, est) == 2
    # Equal neighbours are one interval: no change there. One detected change, none in the
    # reference: nothing to match, and no warning from mir_eval.
    assert te.boundary_hits([(0, 5, "song"), (5, 9, "song")], [(0, 4, "song"), (4, 9, "score")]) == 0
    # The same change twice in the estimate matches once.
    assert te.boundary_hits([(0, 10, "score"), (10, 20, "song")],
                            [(0, 9, "score"), (9, 10, "song"), (10, 11, "score"), (11, 20, "song")]) == 1
