"""corpus/view_tradeoff.py on hand-made prediction files with known answers."""

from __future__ import annotations

import csv

import pytest


def _write(path, rows, thr=0.1):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, ["path", "label", "group", "p_song", "threshold"])
        w.writeheader()
        for i, (label, group, p) in enumerate(rows):
            w.writerow({"path": f"f{i}", "label": label, "group": group, "p_song": p, "threshold": thr})


def test_budgets_and_threshold_counts(tmp_path):
    pytest.importorskip("sklearn")
    from corpus import view_tradeoff as vt

    # Songs: two of group A, one of B. Score: four excerpts.
    songs_mix = [("song", "A", 0.05), ("song", "A", 0.2), ("song", "B", 0.5)]
    songs_cen = [("song", "A", 0.6), ("song", "A", 0.7), ("song", "B", 0.4)]
    score_mix = [("score", "s", p) for p in (0.01, 0.02, 0.3, 0.04)]
    score_cen = [("score", "s", p) for p in (0.01, 0.5, 0.65, 0.04)]
    for name, rows in (("sm", songs_mix), ("sc", songs_cen), ("cm", score_mix), ("cc", score_cen)):
        _write(tmp_path / f"{name}.csv", rows)
    data = vt.collect([[tmp_path / "sm.csv", tmp_path / "sc.csv"]], [[tmp_path / "cm.csv", tmp_path / "cc.csv"]],
                      group="A")
    res = vt.tradeoff(data, budgets=(0, 1, 2))
    mix, cen = res["mix"], res["centre"]
    # At the threshold 0.1: mix finds 0.2 and 0.5 (one of A), lets 0.3 through.
    assert mix["at_threshold"] == {"threshold": 0.1, "songs_found": 2, "in_group": 1, "score_called_song": 1}
    assert cen["at_threshold"]["songs_found"] == 3 and cen["at_threshold"]["score_called_song"] == 2
    # Budget 0: above the highest score (mix 0.3 -> the 0.5 song; centre 0.65 -> the 0.7 song).
    assert mix["budgets"][0] == {"songs_found": 1, "in_group": 0, "score_called_song": 0}
    assert cen["budgets"][0] == {"songs_found": 1, "in_group": 1, "score_called_song": 0}
    # Budget 1: above the second highest (mix 0.04 -> 0.05, 0.2, 0.5; centre 0.5 -> 0.6, 0.7).
    assert mix["budgets"][1]["songs_found"] == 3 and cen["budgets"][1]["songs_found"] == 2
    assert cen["budgets"][2]["score_called_song"] == 2
    # ROC-AUC: song-score pairs ranked right; mix: 0.05 and 0.2 beat 3 of 4 score, 0.5 all 4.
    assert mix["roc_auc"] == pytest.approx(10 / 12)
    assert "| centre |" in vt.markdown(res, "A")


def test_files_at_different_thresholds_are_refused(tmp_path):
    pytest.importorskip("sklearn")
    from corpus import view_tradeoff as vt

    _write(tmp_path / "a.csv", [("song", "A", 0.5)], thr=0.1)
    _write(tmp_path / "b.csv", [("score", "s", 0.2)], thr=0.2)
    _write(tmp_path / "c.csv", [("song", "A", 0.5)], thr=0.1)
    with pytest.raises(ValueError, match="thresholds"):
        vt.collect([[tmp_path / "a.csv", tmp_path / "c.csv"]], [[tmp_path / "b.csv", tmp_path / "c.csv"]])
