"""Known answers for every statistic family, on signals whose answer follows from their
construction (issue 14). Each tolerance is stated next to its assertion, with the reason."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft

from scoresong import extract_features
from scoresong.features import texture, vocal
from scoresong.spectrum import HOP

from .conftest import SR, noise, tone

BIN_HZ = SR / 1024  # 15.625 Hz: one STFT bin
T = np.arange(6 * SR) / SR


def sine(f, amp=0.3, dur=6.0):
    t = np.arange(int(dur * SR)) / SR
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def feats(y):
    return extract_features(np.asarray(y, np.float32), SR).as_dict()


@pytest.fixture(scope="module")
def white():
    return feats(noise(6.0))


def test_spectral_shape_of_white_noise(white):
    # Flat power from 0 to 8 kHz: centroid 4 kHz, bandwidth (std) 8000 / sqrt(12) = 2309 Hz,
    # 85% roll-off at 6.8 kHz. Periodogram noise over 6 s of frames: within 3%.
    assert white["texture.centroid_mean:mean"] == pytest.approx(4000, rel=0.03)
    assert white["texture.bandwidth_mean:mean"] == pytest.approx(8000 / np.sqrt(12), rel=0.03)
    assert white["texture.rolloff_mean:mean"] == pytest.approx(0.85 * 8000, rel=0.02)


@pytest.mark.parametrize("f", [500.0, 1000.0, 3000.0])
def test_spectral_shape_of_a_sine(f):
    d = feats(sine(f))
    # All the energy sits in the bins around f: roll-off within two bins, bandwidth under
    # two bins (the Hann window's main lobe).
    assert abs(d["texture.rolloff_mean:mean"] - f) <= 2 * BIN_HZ
    assert d["texture.bandwidth_mean:mean"] < 2 * BIN_HZ
    assert d["texture.rolloff_std:mean"] < BIN_HZ  # steady: the same every frame


@pytest.mark.parametrize("f,band", [(150, 0), (300, 1), (600, 2), (1200, 3), (2400, 4), (4800, 5)])
def test_contrast_peaks_in_the_octave_band_of_a_sine(f, band):
    d = feats(sine(f) + noise(6.0, amp=0.001))
    c = [d[f"texture.contrast{k}_mean:mean"] for k in range(6)]
    # Bands: 100-200-400-800-1600-3200-7600 Hz; a sine is one peak over a noise floor.
    assert int(np.argmax(c)) == band, c
    assert c[band] > 25  # dB; the 100-200 Hz band holds 6 bins, so its valley is on the main lobe (33 dB)


def test_contrast_of_white_noise_is_low(white):
    # No band has a peak: top vs bottom 20% of a chi-square periodogram is ~10-15 dB.
    for k in range(6):
        assert white[f"texture.contrast{k}_mean:mean"] < 20


def test_mfcc_is_the_orthonormal_dct_of_the_log_mel():
    rng = np.random.default_rng(0)
    lm = rng.standard_normal((50, 64)).astype(np.float32)
    ref = scipy.fft.dct(lm.astype(np.float64), type=2, norm="ortho", axis=1)[:, :texture.N_MFCC]
    np.testing.assert_allclose(texture.mfcc(lm), ref, rtol=1e-4, atol=1e-4)  # float32 product


def test_mfcc_shape_coefficients_of_noise_are_small_of_a_tone_large(white):
    d = feats(tone(300, 6.0))
    # White noise's log-mel spectrum is nearly flat, so the shape coefficients (2..13) are
    # near zero; a harmonic tone's are large. At least 10x apart for each of MFCC 2-5.
    for k in range(2, 6):
        assert abs(white[f"texture.mfcc{k}_mean:mean"]) * 10 < max(abs(d[f"texture.mfcc{k}_mean:mean"]), 30)


@pytest.mark.parametrize("amp", [0.3, 0.03])
def test_loudness_of_a_sine_is_its_rms_in_dbfs(amp):
    d = feats(sine(1000, amp))
    # RMS of a sine is amp / sqrt(2): within 0.1 dB.
    assert d["orchestral.loudness_mean_db:mean"] == pytest.approx(20 * np.log10(amp / np.sqrt(2)), abs=0.1)
    assert d["orchestral.dynamic_range_db:mean"] < 0.1


def test_dynamic_range_of_20_db_steps():
    y = sine(440) * np.where((T % 2) < 1, 1.0, 0.1).astype(np.float32)
    # Loud and soft halves 20 dB apart: the 95th - 5th percentile of frame loudness is 20 dB
    # (frames straddling a step are too few to move the percentiles).
    assert feats(y)["orchestral.dynamic_range_db:mean"] == pytest.approx(20.0, abs=0.5)


def test_low_end_share():
    # Mel energy below 150 Hz over all mel energy: all of a 60 Hz sine, none of a 1 kHz one.
    assert feats(sine(60))["orchestral.low_share_mean:mean"] > 0.95
    assert feats(sine(1000))["orchestral.low_share_mean:mean"] < 0.01


def test_sustain_steady_against_rapid_notes():
    rng = np.random.default_rng(0)
    notes = np.concatenate([tone(rng.uniform(150, 1200), 0.048) for _ in range(125)])
    steady = feats(tone(300, 6.0))["orchestral.sustain_mean:mean"]
    rapid = feats(notes)["orchestral.sustain_mean:mean"]
    # Cosine similarity of consecutive log-mel frames: 1 for a held tone; a new note every
    # 48 ms (3 frames) breaks it on every third frame.
    assert steady > 0.999
    assert rapid < steady - 0.008


@pytest.mark.parametrize("f2,semitones", [(440.0, 12.0), (330.0, 12 * np.log2(1.5)), (220.0, 0.0)])
def test_pitch_range_of_two_notes(f2, semitones):
    y = np.concatenate([tone(220, 3.0), tone(f2, 3.0)])
    d = feats(y)
    # 90th - 10th percentile of the contour: the interval between the two notes, within
    # half a semitone (the harmonic-sum pitch is quantised to 1/3 semitone-ish bins).
    assert d["vocal.pitch_range_st:mean"] == pytest.approx(semitones, abs=0.5) or (
        # one 5.12 s segment holds both notes, the other only one: the mean over segments
        semitones > 0 and d["vocal.pitch_range_st:p90"] == pytest.approx(semitones, abs=0.5))


def test_syllabic_modulation_of_a_4_hz_envelope():
    am = (tone(300, 6.0) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * T))).astype(np.float32)
    d_am, d_steady = feats(am), feats(tone(300, 6.0))
    # Share of the voice-band envelope's modulation power in 2-8 Hz: a 4 Hz envelope puts
    # most of it there; a steady tone's envelope has only edge effects.
    assert d_am["vocal.syllabic_mod_ratio:mean"] > 0.75
    assert d_am["vocal.syllabic_mod_ratio:mean"] > d_steady["vocal.syllabic_mod_ratio:mean"] + 0.3


def test_vocal_variance_known_answer():
    t, a = 200, 3.0
    cc = np.zeros((t, texture.N_MFCC), np.float32)
    cc[:, 0] = np.arange(t)  # coefficient 0 (loudness) is not used
    assert np.allclose(vocal.vocal_variance(cc)[20:-20], 0.0, atol=1e-4)
    cc[:, 1] = a * (-1.0) ** np.arange(t)  # MFCC 1 alternates +-a every frame
    vv = vocal.vocal_variance(cc)
    # Over 11 frames: 6 of one sign, 5 of the other: variance a^2 (1 - 1/121).
    np.testing.assert_allclose(vv[20:-20], a * a * (1 - 1 / 121), rtol=1e-4)
    cc[:, 3] = 2 * a * (-1.0) ** np.arange(t)  # a second coefficient adds its own variance
    np.testing.assert_allclose(vocal.vocal_variance(cc)[20:-20], 5 * a * a * (1 - 1 / 121), rtol=1e-4)


def test_frame_rate_is_the_hop():
    f = extract_features(tone(220, 3.0), SR, frames=True)
    assert f.frames["orchestral.loudness_db"].size == int(np.ceil(3.0 * SR / HOP))
