"""The presence family (issue 12): sustained partials, note births, the pauses' tonality,
on generated signals whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from scoresong.features import presence
from scoresong.spectrum import HOP, N_FFT, Spectrum

from .conftest import SR, noise, tone


def _spec(y):
    pad_l, pad_r = (N_FFT - HOP) // 2, (N_FFT + HOP) // 2
    return Spectrum.from_padded(np.concatenate([np.zeros(pad_l), y, np.zeros(pad_r)]).astype(np.float32), SR)


def _melody(freqs, note_s=0.5):
    return np.concatenate([tone(f, note_s, harmonics=4) for f in freqs])


def test_a_held_tone_has_its_partials_sustained_and_no_new_ones():
    # 250 Hz with 8 harmonics: 250, 500, ... 2000 Hz are in the 100-2000 Hz band (8 partials).
    count, births, flat = presence.sustained_partials(_spec(tone(250.0, 4.0)))
    steady = count[40:-40]
    assert np.median(steady) == pytest.approx(8, abs=1.0)
    # Born once each, within the first SUSTAIN_S (16 frames) and never again.
    assert births[30:-40].sum() == 0 and births[:30].sum() == pytest.approx(8, abs=1.0)
    assert np.median(flat[40:-40]) < 0.05


def test_noise_has_no_sustained_partials_and_a_flat_spectrum():
    count, births, flat = presence.sustained_partials(_spec(noise(4.0, amp=0.1)))
    assert count.mean() < 0.1 and births.sum() < 2
    assert np.median(flat) > 0.4


def test_a_melody_is_born_again_at_each_note_a_drone_is_not():
    rng = np.random.default_rng(0)
    mel = _melody(rng.choice([220, 247, 262, 294, 330, 349, 392], size=14), 0.5)
    drone = tone(220.0, mel.size / SR, harmonics=4)
    seg = np.arange(320)[None, :] + 20
    fm = presence.frame_features(_spec(mel), {})
    fd = presence.frame_features(_spec(drone), {})
    sm = presence.segment_features(fm, seg, 62.5)
    sd = presence.segment_features(fd, seg, 62.5)
    # A new note every 0.5 s: about 2 births of each partial per second; the drone: none.
    assert sm["births_rate"][0] > 3 and sd["births_rate"][0] < 0.5
    assert sm["sustained_mean"][0] > 1 and sd["sustained_mean"][0] > 1


def test_the_pauses_of_speechlike_bursts_over_music_keep_the_music():
    """Bursts of noise (a crude voice) with pauses; under them, or not, a held chord 20 dB down."""
    n = 6 * SR
    env = (np.arange(n) // (SR // 2)) % 2 == 0          # 0.5 s on, 0.5 s off
    talk = noise(6.0, amp=0.3) * env
    chord = (tone(196.0, 6.0, harmonics=4) + tone(247.0, 6.0, harmonics=4)) * 0.1 * 0.3
    room = noise(6.0, amp=0.001)
    seg = np.arange(320)[None, :] + 20
    alone = presence.segment_features(presence.frame_features(_spec(talk + room), {}), seg, 62.5)
    over = presence.segment_features(presence.frame_features(_spec(talk + room + chord), {}), seg, 62.5)
    assert over["sustained_quiet"][0] > 2 and alone["sustained_quiet"][0] < 0.2
    assert over["flatness_quiet"][0] < alone["flatness_quiet"][0] / 3


def test_values_are_float32_and_finite_on_silence():
    f = presence.frame_features(_spec(np.zeros(2 * SR, np.float32)), {})
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in f.values())
