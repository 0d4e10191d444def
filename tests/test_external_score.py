"""corpus.external_score: the source table and the excerpt selection (no network, no audio)."""

import pytest

from corpus import external, external_score as es, sources


def test_sources_well_formed():
    pkgs = [s["package"] for s in es.SOURCES]
    assert len(pkgs) == len(set(pkgs)), "one entry per package (the cap is per entry)"
    for s in es.SOURCES:
        assert s["label"] == "score"
        assert s["kind"] in ("score_real", "score_rock_real")
        assert set(s.get("kind_by_stem", {}).values()) <= {"score_real", "score_rock_real"}
        for key in ("package", "glob", "licence", "author", "evidence"):
            assert s[key], (s["package"], key)
        assert s["confidence"] in ("high", "medium-high", "medium")
        assert all(not g.startswith("/") for g in es.globs_of(s))


def test_no_overlap_with_training_or_first_external_set():
    training = ({s["package"] for s in sources.SOURCES}
                | {s["package"] for s in sources.NOMUSIC_SOURCES})
    first = {s["package"] for s in external.SOURCES}
    mine = {s["package"] for s in es.SOURCES}
    assert not mine & training
    assert not mine & first
    assert not mine & set(es.LEFT_OUT)
    # the left-out training packages really are training packages
    assert {p for p, why in es.LEFT_OUT.items() if "training" in why} <= training


@pytest.mark.parametrize("dur", [25.0, 30.0, 49.9, 50.0, 73.3, 200.0, 1755.0])
def test_excerpt_starts_spacing(dur):
    starts = es.excerpt_starts(dur)
    assert 1 <= len(starts) <= es.PER_FILE
    assert len(starts) == (2 if dur >= 50 else 1)
    for s in starts:
        assert s >= es.EDGE * dur - 1e-6
        assert s + es.CLIP_S <= (1 - es.EDGE) * dur + 1e-6
    if len(starts) == 2:  # centred in the two halves of the middle 80 %: disjoint, even
        assert starts[1] - starts[0] >= es.CLIP_S - 1e-6
        mid = [s + es.CLIP_S / 2 for s in starts]
        assert mid == pytest.approx([0.3 * dur, 0.7 * dur], abs=0.01)
    else:
        assert starts[0] + es.CLIP_S / 2 == pytest.approx(dur / 2, abs=0.01)


def test_short_files_skipped():
    assert es.excerpt_starts(24.9) == []
    assert es.excerpt_starts(5.0) == []
    assert es.excerpt_starts(25.0) == [2.5]


def test_pick_files_cap_and_spread():
    counts = [2] * 61                      # e.g. 0ad-data: 61 long tracks
    chosen = es.pick_files(counts)
    assert sum(counts[i] for i in chosen) == 24 and len(chosen) == 12
    assert chosen == sorted(chosen) and chosen[0] < 61 / 12 and chosen[-1] > 61 - 61 / 12
    gaps = [b - a for a, b in zip(chosen, chosen[1:])]
    assert max(gaps) - min(gaps) <= 1     # evenly spread
    assert es.pick_files([2, 1, 2]) == [0, 1, 2]          # under the cap: everything
    assert es.pick_files([0, 2, 0, 1]) == [1, 3]          # files with no excerpt never picked
    mixed = [1, 2] * 20
    assert sum(mixed[i] for i in es.pick_files(mixed)) <= es.PER_PACKAGE
    assert es.pick_files([]) == []
