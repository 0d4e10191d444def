"""Timeline: concatenations of the bundled real excerpts with exact boundaries, silence,
short files, the exports parsed back, the plot, and the smoothing pieces."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

import scoresong
from scoresong import cli
from scoresong.segmentation import silent_intervals, viterbi_two_state

from .conftest import DATA

SR = 16000


def _excerpt(name: str, repeat: int = 3) -> np.ndarray:
    y, _ = scoresong.audio.load(DATA / name)
    return np.tile(y, repeat)  # 10 s excerpts -> 30 s items, longer than one decision window


@pytest.fixture(scope="module")
def concatenation(tmp_path_factory):
    """score 30 s | 3 s of digital silence | song 30 s | 1 s crossfade | score 30 s."""
    a = _excerpt("score_hyperrogue-hr3-jungle.ogg")
    b = _excerpt("song_allison-a-cappella.ogg")
    c = _excerpt("score_singularity-through-space.ogg")
    gap = np.zeros(3 * SR, np.float32)
    n = SR
    fade = np.sin(np.linspace(0, np.pi / 2, n)).astype(np.float32)
    y = np.concatenate([a, gap, b[:-n], b[-n:] * fade[::-1] + c[:n] * fade, c[n:]])
    p = tmp_path_factory.mktemp("tl") / "reel.wav"
    sf.write(p, y, SR)
    t_gap = a.size / SR
    t_fade = (a.size + gap.size + b.size - n / 2) / SR
    return p, {"gap": (t_gap, t_gap + 3.0), "fade": t_fade, "duration": y.size / SR}


def test_concatenation_labels_and_boundaries(concatenation):
    p, ref = concatenation
    tl = scoresong.timeline(p)
    g0, g1 = ref["gap"]
    assert tl.duration == pytest.approx(ref["duration"], abs=0.01)
    assert list(tl.label_at([15.0, g0 + 1.5, g0 + 15.0, ref["duration"] - 10])) == ["score", "silence", "song", "score"]
    sil = [s for s in tl.segments if s.label == "silence"]
    assert len(sil) == 1
    assert sil[0].start == pytest.approx(g0, abs=0.1) and sil[0].end == pytest.approx(g1, abs=0.1)  # frame-exact
    changes = [s.start for prev, s in zip(tl.segments, tl.segments[1:]) if s.label != prev.label]
    assert len(changes) == 3
    assert abs(changes[-1] - ref["fade"]) <= 3.0  # the song -> score crossfade, within the issue's ±3 s
    # Segments tile the file.
    assert tl.segments[0].start == 0 and tl.segments[-1].end == pytest.approx(tl.duration)
    assert all(a.end == pytest.approx(b.start) for a, b in zip(tl.segments, tl.segments[1:]))


def test_an_analysis_gives_the_same_timeline_as_the_file(concatenation):
    from scoresong.segmentation import analyse

    path = concatenation[0]
    an = analyse(path)
    assert scoresong.timeline(an).to_records() == scoresong.timeline(path).to_records()
    # Settings change the decision without decoding again (decoding would now fail).
    from scoresong import audio as _audio

    def no_decoding(*a, **k):
        raise AssertionError("timeline(Analysis) decoded the file again")

    orig = _audio.stream
    _audio.stream = no_decoding
    try:
        default = scoresong.timeline(an)
        strict = scoresong.timeline(an, threshold=0.999)  # nothing is that sure of a song
        no_gap = scoresong.timeline(an, min_silence=5.0)  # the 3 s gap is too short now
    finally:
        _audio.stream = orig
    assert "song" in {s.label for s in default.segments}
    assert "song" not in {s.label for s in strict.segments}
    assert "silence" in {s.label for s in default.segments}
    assert "silence" not in {s.label for s in no_gap.segments}
    assert default.path == strict.path == str(path)


def test_exports_parse_back(concatenation, tmp_path, capsys):
    p, _ = concatenation
    tl = scoresong.timeline(p)
    rows = list(csv.DictReader(io.StringIO(tl.to_csv())))
    assert [(float(r["start"]), r["label"]) for r in rows] == [(round(s.start, 3), s.label) for s in tl.segments]
    js = json.loads(tl.to_json())
    assert js["duration"] == pytest.approx(tl.duration, abs=1e-3) and len(js["segments"]) == len(tl.segments)
    assert all(seg["probability"] is None for seg in js["segments"] if seg["label"] == "silence")
    cues = list(csv.DictReader(io.StringIO(tl.cues_csv())))
    assert [c["usage"] for c in cues] == ["BI", "BV", "BI"]
    assert [int(c["seq"]) for c in cues] == [1, 2, 3]
    h, m, s = cues[1]["start"].split(":")
    assert 3600 * int(h) + 60 * int(m) + float(s) == pytest.approx(float(cues[1]["start_s"]), abs=1e-3)
    # The CLI writes the same things.
    out = tmp_path / "cues.csv"
    png = tmp_path / "reel.png"
    assert cli.main(["timeline", str(p), "--format", "cues", "--output", str(out), "--plot", str(png)]) == 0
    assert out.read_text() == tl.cues_csv()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert cli.main(["timeline", str(p), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["segments"] == js["segments"]


def test_file_shorter_than_one_window(tmp_path):
    y, _ = scoresong.audio.load(DATA / "song_allison-a-cappella.ogg", duration=4.0)
    p = tmp_path / "short.wav"
    sf.write(p, y, SR)
    tl = scoresong.timeline(p)
    assert [s.label for s in tl.segments] == ["song"]
    assert tl.segments[0].end == pytest.approx(y.size / SR, abs=1e-3)


def test_silence_inside_and_at_the_ends(tmp_path):
    y = _excerpt("score_hyperrogue-hr3-jungle.ogg", 2)
    z = np.zeros(5 * SR, np.float32)
    p = tmp_path / "gaps.wav"
    sf.write(p, np.concatenate([z, y, z, y, z]), SR)
    tl = scoresong.timeline(p)
    assert [s.label for s in tl.segments] == ["silence", "score", "silence", "score", "silence"]
    assert tl.segments[1].start == pytest.approx(5.0, abs=0.1)
    assert tl.segments[2].end - tl.segments[2].start == pytest.approx(5.0, abs=0.2)


def test_all_silent_file_is_an_audio_error(tmp_path):
    p = tmp_path / "silent.wav"
    sf.write(p, np.zeros(30 * SR, np.float32), SR)
    with pytest.raises(scoresong.SilentAudioError):
        scoresong.timeline(p)


def test_viterbi_ignores_flicker_and_follows_evidence():
    p = np.array([0.05] * 10 + [0.9] + [0.05] * 10 + [0.95] * 8 + [0.05] * 5)
    s = viterbi_two_state(p, threshold=0.2, switch=0.01)
    assert s[10] == 0  # one stray segment does not make a song
    assert s[21:29].all() and not s[29:].any()
    assert viterbi_two_state(np.array([np.nan, 0.9, 0.9]), threshold=0.2, switch=0.05).tolist() == [1, 1, 1]


def test_song_break_bridges_an_instrumental_stretch_inside_a_song():
    # Sung, three windows with no vocal evidence (an instrumental break), sung again.
    p = np.array([0.05] * 6 + [0.95] * 4 + [0.02] * 3 + [0.95] * 4 + [0.05] * 6)
    plain = viterbi_two_state(p, threshold=0.2, switch=0.1)
    assert not plain[10:13].any()  # each window on its own: the break is called score
    bridged = viterbi_two_state(p, threshold=0.2, switch=0.1, song_break=0.2)
    assert bridged[6:17].all() and not bridged[:6].any() and not bridged[17:].any()
    # A long instrumental stretch (10 windows, ~50 s) is still score.
    p_long = np.array([0.95] * 4 + [0.02] * 10 + [0.95] * 4)
    s = viterbi_two_state(p_long, threshold=0.2, switch=0.1, song_break=0.2)
    assert not s[5:13].any()


def test_a_silent_gap_makes_a_change_cheap():
    # Two weakly scored windows after a song: not enough to change label without a gap,
    # enough right after one.
    p = np.array([0.95] * 6 + [0.1] * 2)
    assert viterbi_two_state(p, threshold=0.2, switch=0.01).tolist() == [1] * 8
    joins = np.zeros(8, bool)
    joins[6] = True
    assert viterbi_two_state(p, threshold=0.2, switch=0.01, joins=joins).tolist() == [1] * 6 + [0] * 2


def test_windows_do_not_reach_across_a_gap():
    from scoresong.segmentation import _window_vectors

    values = np.array([[0.0], [0.0], [10.0], [10.0]], np.float32)
    silent = np.zeros(4, bool)
    X, sound = _window_vectors(values, silent, 3)
    assert X[1, 0] == pytest.approx(10 / 3)  # mean over segments 0-2
    X, sound = _window_vectors(values, silent, 3, region=np.array([0, 0, 1, 1]))
    assert X[1, 0] == 0.0 and X[2, 0] == 10.0 and sound.all()


def test_homogeneous_window_stays_on_its_side_of_a_change():
    from scoresong.segmentation import _homogeneous_starts, _window_vectors

    # Segment evidence (log-odds) jumps between segments 2 and 3.
    ev = np.array([[0.0], [0.1], [0.0], [5.0], [5.1], [5.0], [5.0]])
    silent = np.zeros(7, bool)
    starts = _homogeneous_starts(ev, silent, 3, None)
    # Either side of the change reads a window that does not reach across it; the ends read
    # the only full windows; segment 1's centred window is the calmest; segments 4 and 5
    # have two equally calm windows each, and the tie goes to the centred one.
    assert starts.tolist() == [0, -1, -2, 0, -1, -1, -2]
    X, _ = _window_vectors(ev.astype(np.float32), silent, 3, start=starts)
    assert X[2, 0] == pytest.approx(0.1 / 3) and X[3, 0] == pytest.approx(15.1 / 3)
    # Centred windows mix the two sides at the change.
    Xc, _ = _window_vectors(ev.astype(np.float32), silent, 3)
    assert Xc[2, 0] == pytest.approx(5.1 / 3) and Xc[3, 0] == pytest.approx(10.1 / 3)


def test_homogeneous_window_prefers_full_windows_inside_its_region():
    from scoresong.segmentation import _homogeneous_starts

    ev = np.zeros((6, 2))
    ev[:, 0] = [0.0, 3.0, 0.0, 9.0, 0.0, 0.0]  # segment 1 disagrees with its neighbours
    silent = np.zeros(6, bool)
    region = np.array([0, 0, 0, 1, 1, 1])  # a silent gap between segments 2 and 3
    starts = _homogeneous_starts(ev, silent, 3, region)
    # Segment 2's only full window in its region is 0-2: the window 2-4 holds just segment 2
    # there (a span of 0, calmer than 0-2's 3), but fewer segments do not win; segment 3's
    # only full window is 3-5.
    assert starts[2] == -2 and starts[3] == 0
    # A silent segment does not count: with segment 5 silent, segment 4's windows 2-4 and
    # 3-5 both hold two usable segments (3 and 4) and agree equally: the tie goes to the
    # centred one; the window 4-6 holds one and is not a candidate.
    silent[5] = True
    starts = _homogeneous_starts(ev, silent, 3, region)
    assert starts[4] == -1
    # One segment per window: nothing to choose.
    assert _homogeneous_starts(ev, silent, 1, region).tolist() == [0] * 6


def test_align_homogeneous_runs_end_to_end(concatenation):
    p, ref = concatenation
    tl = scoresong.timeline(p, align="homogeneous")
    g0, g1 = ref["gap"]
    assert list(tl.label_at([15.0, g0 + 1.5, ref["duration"] - 10])) == ["score", "silence", "score"]
    sil = [s for s in tl.segments if s.label == "silence"]
    assert len(sil) == 1 and sil[0].start == pytest.approx(g0, abs=0.1)
    assert tl.segments[0].start == 0 and tl.segments[-1].end == pytest.approx(tl.duration)


def _sides(n, k=2):
    return np.zeros((n, k)), np.zeros((n, k))


def test_refine_changes_moves_a_late_change_back_by_one_segment():
    from scoresong.segmentation import refine_changes

    states = np.array([1, 1, 1, 1, 0, 0, 0])  # song, then score from segment 4
    before, after = _sides(7)
    # The window starting at segment 3 already reads score; the one ending at 2 reads song.
    after[3] = [2.0, -2.0]
    before[2] = [-1.0, 1.0]
    before[3] = [0.5, -0.5]  # the window ending at 3 leans to score: the change belongs at 3
    assert refine_changes(states, before, after).tolist() == [1, 1, 1, 0, 0, 0, 0]
    # No evidence either way: the change stays where the HMM put it.
    assert refine_changes(states, *_sides(7)).tolist() == states.tolist()
    # A change at a silent gap stays there whatever the windows say.
    joins = np.zeros(7, bool)
    joins[4] = True
    assert refine_changes(states, before, after, joins=joins).tolist() == states.tolist()


def test_refine_changes_never_empties_a_run_and_handles_three_states():
    from scoresong.segmentation import refine_changes

    states = np.array([0, 2, 1, 1])  # score, one no_music segment, song
    before, after = _sides(4, 3)
    after[1] = [0.0, 5.0, -5.0]  # the window starting at 1 reads song, not no_music...
    # ...but the song could only start there by leaving the no_music run empty: nothing moves.
    assert refine_changes(states, before, after).tolist() == [0, 2, 1, 1]
    # A change may move forward too: the window ending at 2 reads no_music and the one
    # starting at 3 reads song, so the no_music run grows to segment 2.
    before, after = _sides(4, 3)
    after[3] = [0.0, 3.0, -3.0]
    before[2] = [0.0, -3.0, 3.0]
    assert refine_changes(states, before, after).tolist() == [0, 2, 2, 1]


def test_refine_changes_reads_the_window_before_the_change_too():
    from scoresong.segmentation import refine_changes

    # Only the windows ending before each place have evidence: the one ending at 3 reads
    # song, so the song run keeps segment 3 and the change moves forward to 4.
    states = np.array([1, 1, 1, 0, 0, 0])
    before, after = _sides(6)
    before[3] = [-2.0, 2.0]
    assert refine_changes(states, before, after).tolist() == [1, 1, 1, 1, 0, 0]
    # The same evidence with the sign flipped keeps the change: the window ending at 3
    # reading score argues against moving forward, and nothing argues for moving back.
    before[3] = [2.0, -2.0]
    assert refine_changes(states, before, after).tolist() == [1, 1, 1, 0, 0, 0]
    before, after = _sides(6)
    before[2] = [2.0, -2.0]  # the window ending at 2 reads score: the change moves back to 2
    assert refine_changes(states, before, after).tolist() == [1, 1, 0, 0, 0, 0]


def test_refine_sides_only_moves_changes(concatenation):
    from scoresong.segmentation import analyse

    p, ref = concatenation
    an = analyse(p)
    sides, none = scoresong.timeline(an, refine="sides"), scoresong.timeline(an, refine="none")
    assert sides.to_records() == scoresong.timeline(an).to_records()  # the default
    # The refinement moves changes, it never adds or removes a stretch: the same labels in
    # the same order, each change within one segment plus the snap's reach (5.12 + 6 s).
    assert [s.label for s in sides.segments] == [s.label for s in none.segments]
    for a, b in zip(sides.segments, none.segments):
        assert abs(a.start - b.start) <= 5.12 + 6.0 + 1e-6


def test_cli_passes_align_and_refine_through(concatenation, tmp_path, monkeypatch):
    from scoresong import segmentation

    seen = {}
    real = segmentation.timeline

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(segmentation, "timeline", spy)
    p, _ = concatenation
    out = tmp_path / "segments.csv"
    assert cli.main(["timeline", str(p), "--align", "homogeneous", "--refine", "none",
                     "--output", str(out)]) == 0
    assert seen["align"] == "homogeneous" and seen["refine"] == "none"
    assert cli.main(["timeline", str(p), "--output", str(out)]) == 0
    assert seen["align"] == "centred" and seen["refine"] == "sides"  # the library's defaults


def test_silent_intervals_min_duration_and_offset():
    level = np.full(1000, -20.0)
    level[100:200] = -90  # 1.6 s at 62.5 frames/s
    level[500:520] = -90  # 0.32 s: too short
    iv = silent_intervals(level, 62.5, min_duration=1.0, offset=62)
    assert iv == [((62 + 100) / 62.5, (62 + 200) / 62.5)]


@pytest.mark.parametrize("kw,fragment", [
    ({"switch": 0.0}, "switch must be a probability"),
    ({"switch": 1.0}, "switch must be a probability"),
    ({"song_break": 1.0}, "song_break must be a share"),
    ({"song_break": -0.1}, "song_break must be a share"),
    ({"threshold": 1.5}, "threshold must be None or a probability"),
    ({"window": 0}, "window must be a positive"),
    ({"hop": -5.12}, "hop must be a positive"),
    ({"min_silence": -1}, "min_silence must be a non-negative"),
    ({"snap": float("nan")}, "snap must be a non-negative"),
    ({"align": "left"}, "align must be 'centred' or 'homogeneous'"),
    ({"refine": "yes"}, "refine must be 'none' or 'sides'"),
])
def test_settings_out_of_range_are_refused_before_decoding(kw, fragment, tmp_path):
    # The file does not exist: the settings must be refused before anything is read.
    with pytest.raises(ValueError, match=fragment):
        scoresong.timeline(tmp_path / "never-read.wav", **kw)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=3), st.data(), st.floats(0.0, 1.0),
       st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.integers(0, 2**32 - 1), st.booleans())
def test_nan_quantile_equals_numpy_bit_for_bit(shape, data, nan_share, q, seed, ties):
    """The timeline's vectorised quantile must give NumPy's values exactly (the window
    vectors the model reads, so the decisions, must not change with it): any shape and
    axis, empty and all-NaN slices, ties."""
    import warnings

    from scoresong.segmentation import nan_quantile

    axis = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(seed)
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-3, 4)
    if ties:
        a = np.round(a, 1)
    a[rng.random(a.shape) < nan_share] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy warns on all-NaN slices
        ref = np.asarray(np.nanquantile(a, q, axis=axis))
    got = nan_quantile(a, q, axis=axis)
    assert got.shape == ref.shape
    assert ((ref == got) | (np.isnan(ref) & np.isnan(got))).all()


def test_nan_quantile_refuses_a_quantile_outside_0_1():
    from scoresong.segmentation import nan_quantile

    with pytest.raises(ValueError, match="q must be in"):
        nan_quantile(np.ones(3), 90)  # a percentile passed as a quantile
