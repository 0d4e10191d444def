"""The song generators' pitch and timing behaviour (no download: synthetic voices).

Each generator must behave like the singing it stands for, or the model learns the
generator instead of singing: v2 holds most notes straight and puts vibrato on a minority,
rap lands syllables on the backing's sixteenth grid at rap rates.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyworld")
pytest.importorskip("pedalboard")

from corpus import mixing, singing  # noqa: E402
from scoresong.features._stats import band_power_ratio  # noqa: E402

FS = 22050


def _vibrato_cents(f0_hz: np.ndarray) -> float:
    """Peak deviation (cents) of the 4-8 Hz component of a contour's second half."""
    c = 1200 * np.log2(f0_hz / f0_hz.mean())
    c = c[c.size // 2:]
    _, amp = band_power_ratio(c[None], 1 / singing.FRAME_S, (4.0, 8.0), (1.0, 20.0))
    return float(amp[0])


def test_v2_note_is_straight_without_vibrato_and_in_range_with_it():
    rng = np.random.default_rng(0)
    n = int(1.2 / singing.FRAME_S)  # a 1.2 s note
    straight = [_vibrato_cents(singing.note_contour_v2(n, 62, None, rng, vibrato=False)) for _ in range(20)]
    vib = [_vibrato_cents(singing.note_contour_v2(n, 62, None, rng, vibrato=True)) for _ in range(20)]
    assert max(straight) < 8            # fine fluctuation only: a few cents
    assert 10 < np.median(vib) < 60     # half-extent drawn from N(35, 12), attenuated by the onset


def test_v2_legato_change_overshoots_the_target():
    rng = np.random.default_rng(1)
    f0 = singing.note_contour_v2(80, 64, 60, rng, vibrato=False)   # from 60 up to 64
    cents = 1200 * np.log2(f0 / (440 * 2 ** ((64 - 69) / 12)))
    assert cents[0] < -200                       # starts near the previous note
    assert cents[:40].max() > 10                 # goes past the target (overshoot)
    assert abs(np.median(cents[40:])) < 10       # and settles on it


def _voice(seconds: float, rng) -> np.ndarray:
    """A speech-like test voice: voiced syllables (150-220 Hz harmonics) with pauses."""
    t = np.arange(int(seconds * FS)) / FS
    f0 = 180 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / FS
    y = sum(np.sin(k * phase) / k for k in range(1, 12))
    syll = (np.sin(2 * np.pi * 4 * t) > -0.2).astype(float)    # 4 syllables a second
    return (0.3 * y * syll + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def test_v2_sings_a_phrase_with_vibrato_on_a_minority_of_notes():
    rng = np.random.default_rng(2)
    w = singing.analyse(_voice(2.0, rng), FS)
    notes = singing.scale_notes(0, "major", 55, 67)
    shares = []
    for seed in range(6):
        r = np.random.default_rng(seed)
        sw = singing.sing_v2(w, notes, 0.25, r, formant=1.05)
        assert sw.n > 0 and np.isfinite(sw.sp).all()
        voiced = sw.f0[sw.f0 > 0]
        midi = 69 + 12 * np.log2(voiced / 440)
        # Sung notes are notes of the scale (within a quarter tone on most frames).
        near = np.min(np.abs(midi[:, None] - notes[None]), axis=1) < 0.5
        shares.append(near.mean())
    assert np.median(shares) > 0.6
    assert singing.VIBRATO_SHARE < 0.5


def test_rap_places_syllables_on_the_sixteenth_grid_at_rap_rates():
    rng = np.random.default_rng(3)
    y = _voice(3.0, rng)
    w = singing.analyse(y, FS)
    beats = np.arange(0, 20, 0.6)                  # 100 bpm
    line, active, onsets = singing.rap_line([(y, w)], FS, beats, 12.0, rng, return_onsets=True)
    assert line.shape == active.shape == (12 * FS,)
    assert active.mean() > 0.5                     # dense: the voice is on most of the time
    rate = onsets.size / 12.0
    assert 2.5 <= rate <= 8.0, rate
    sixteenth = 0.15
    off_grid = np.abs((onsets / sixteenth) - np.round(onsets / sixteenth)) * sixteenth
    assert np.median(off_grid) < 0.01


def test_pop_chain_and_doubles_keep_length_and_level():
    rng = np.random.default_rng(4)
    v = _voice(4.0, rng)
    act = np.abs(v) > 0.01
    for mode in ("double", "harmony"):
        d, a = mixing.double_and_harmonise(v, act, FS, rng, mode=mode, harmony=4)
        assert d.shape == v.shape and a is act
        assert np.isfinite(d).all()
    out = mixing.pop_vocal_chain(v, FS, rng, eighth_s=0.3)
    assert out.shape == v.shape and np.isfinite(out).all()
    assert 0.05 < np.max(np.abs(out)) < 2.0
