"""Each feature on synthetic signals whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoresong import extract_features
from scoresong.features import SEGMENT_FRAMES, frame_features, vocal
from scoresong.features._stats import moving_average, run_lengths
from scoresong.spectrum import HOP, N_FFT, Spectrum

from .conftest import SR, clicks, noise, tone


def spectrum(y):
    pad_l, pad_r = (N_FFT - HOP) // 2, (N_FFT + HOP) // 2
    return Spectrum.from_padded(np.concatenate([np.zeros(pad_l), y, np.zeros(pad_r)]).astype(np.float32), SR)


def feats(y):
    return extract_features(y, SR).as_dict()


def test_vibrato_tone_scores_high_steady_tone_low():
    vib = feats(tone(262, 6.0, vibrato_hz=6.0, vibrato_cents=60))
    steady = feats(tone(262, 6.0))
    # A 6 Hz, 60-cent vibrato: most contour frames are vibrato frames; a steady tone: none.
    assert vib["vocal.vibrato_frames_frac:mean"] > 0.6
    assert steady["vocal.vibrato_frames_frac:mean"] < 0.05
    # Extent is measured on a 64 ms window that smooths the contour: within 25-80 cents.
    assert 25 < vib["vocal.vibrato_extent_mean:mean"] < 80
    assert steady["vocal.vibrato_extent_mean:mean"] < 5


@pytest.mark.parametrize("rate", [4.5, 5.5, 7.0])
def test_vibrato_ratio_in_band_frame_level(rate):
    spec = spectrum(tone(300, 4.0, vibrato_hz=rate, vibrato_cents=50))
    cents, strength = vocal.predominant_pitch(spec)
    ratio, extent = vocal.vibrato(cents, strength > vocal.VOICING_THRESHOLD, frame_rate=spec.frame_rate)
    assert np.nanmedian(ratio) > 0.8


def test_predominant_pitch_of_a_tone():
    for f0 in (110.0, 220.0, 440.0, 700.0):
        spec = spectrum(tone(f0, 2.0))
        cents, strength = vocal.predominant_pitch(spec)
        est = 10 * 2 ** (np.median(cents[10:-10]) / 1200)
        # Within a quarter tone (50 cents) of the true fundamental.
        assert abs(1200 * np.log2(est / f0)) < 50, (f0, est)
        assert np.median(strength) > vocal.VOICING_THRESHOLD


def test_white_noise_flatness_near_one():
    d = feats(noise(6.0))
    # Power-spectrum flatness of white noise is exp(-gamma) ~= 0.56 per frame for a
    # periodogram; the band-limited analysis leaves it within 0.45-0.75. A tone is < 0.05.
    assert 0.45 < d["texture.flatness_mean:mean"] < 0.75
    assert feats(tone(440, 6.0))["texture.flatness_mean:mean"] < 0.05
    assert d["vocal.voiced_frac:mean"] < 0.05


def test_click_track_has_a_strong_pulse():
    d = feats(clicks(120, 10.0))
    n = feats(noise(10.0))
    assert d["orchestral.pulse_regularity:mean"] > 0.6
    assert n["orchestral.pulse_regularity:mean"] < 0.3
    # 2 clicks per second, counted within +-0.5.
    assert abs(d["orchestral.onset_rate:mean"] - 2.0) < 0.5


def test_spectral_centroid_of_a_sine():
    y = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(SR * 3) / SR)).astype(np.float32)
    d = feats(y)
    assert abs(d["texture.centroid_mean:mean"] - 1000) < 30


def test_tone_is_harmonic_clicks_are_percussive():
    assert feats(tone(220, 6.0))["orchestral.harmonic_share_mean:mean"] > 0.7
    assert feats(clicks(120, 6.0))["orchestral.harmonic_share_mean:mean"] < 0.5


def test_speechlike_glides_vs_sustained_notes():
    # Glides: a tone sweeping up and down an octave every 0.25 s (speech-like intonation).
    t = np.arange(SR * 6) / SR
    f = 200 * 2 ** (0.5 * np.sin(2 * np.pi * 2 * t))
    glide = (0.3 * np.sin(2 * np.pi * np.cumsum(f) / SR)).astype(np.float32)
    g = feats(glide)
    s = feats(tone(200, 6.0))
    assert g["vocal.glide_rate_mean:mean"] > 3 * s["vocal.glide_rate_mean:mean"]


def test_streaming_in_chunks_equals_short_blocks():
    # 130 s: three processing chunks (61.44 s each). The whole array, and the same samples
    # as a stream of odd-sized blocks (none aligned with a chunk, one ending exactly on the
    # first boundary), must give the same segments: chunk edges must not show.
    rng = np.random.default_rng(3)
    y = np.concatenate([tone(rng.uniform(150, 500), 5.0, vibrato_hz=rng.uniform(0, 7),
                             vibrato_cents=rng.uniform(0, 60)) for _ in range(26)])
    f = extract_features(y, SR)
    assert f.segment_values.shape[0] == int(np.ceil(y.size / HOP)) // SEGMENT_FRAMES + 1
    assert np.isfinite(f.values).all()
    edge = int(61.44 * SR)
    cuts = [0, 7919, edge, edge + 1, 2 * edge - 4099, 2 * edge + 12345, y.size]
    blocks = (y[a:b] for a, b in zip(cuts, cuts[1:]))
    g = extract_features(blocks, SR)
    assert g.segment_values.shape == f.segment_values.shape
    np.testing.assert_allclose(g.segment_values, f.segment_values, rtol=1e-4, atol=1e-4)
    # Chunk edges themselves: see test_chunk_boundaries_do_not_show.
    # Segments on both sides of each chunk boundary are non-trivial (the test would be
    # vacuous on silence).
    seg_s = SEGMENT_FRAMES * HOP / SR
    for b in (61.44, 122.88):
        k = int(b // seg_s)
        assert np.ptp(f.segment_values[k - 1:k + 2], axis=0).max() > 0


def _shifted_by_one_segment():
    """Segment values of a 130 s signal and of the same signal one segment (5.12 s) later:
    the shift puts every chunk boundary (61.44 s, 122.88 s) in the middle of other content,
    so segment k of the shifted signal must equal segment k + 1 of the original. Row 0 (the
    file start, padded) and the last, end-aligned segment are left out."""
    rng = np.random.default_rng(3)
    y = np.concatenate([tone(rng.uniform(150, 500), 5.0, vibrato_hz=rng.uniform(0, 7),
                             vibrato_cents=rng.uniform(0, 60)) for _ in range(26)])
    f = extract_features(y, SR)
    h = extract_features(y[SEGMENT_FRAMES * HOP:], SR)
    n = h.segment_values.shape[0] - 1
    return h.segment_values[1:n], f.segment_values[2:n + 1], list(f.segment_names)


def test_chunk_boundaries_do_not_show():
    # Every statistic, vocal.contour_len_mean included: a contour longer than the chunk
    # context (1.024 s) is cut at a chunk edge in the frame track, but the statistic measures
    # runs within the segment (schema 4), so the edge must not show.
    shifted, original, names = _shifted_by_one_segment()
    np.testing.assert_allclose(shifted, original, rtol=1e-3, atol=1e-3)
    assert "vocal.contour_len_mean" in names


def test_end_aligned_tail_segment_across_a_chunk_boundary():
    # 124.88 s: two full chunks end at 122.88 s, leaving 2 s: the last segment is aligned
    # to the end of the file, so it starts 3.12 s inside the previous chunk. Its values
    # must equal those of the same samples cut out on the same frame grid, with more than
    # the context before them. (The cut is one frame past a whole number of segments:
    # spectral contrast is computed on every second frame of a block, counted from the
    # block's first frame, and the tail's block starts on an odd frame here.)
    rng = np.random.default_rng(3)
    y = np.concatenate([tone(rng.uniform(150, 500), 5.0, vibrato_hz=rng.uniform(0, 7),
                             vibrato_cents=rng.uniform(0, 60)) for _ in range(26)])[SEGMENT_FRAMES * HOP:]
    f = extract_features(y, SR)
    assert f.segment_times[-1, 1] == pytest.approx(y.size / SR, abs=HOP / SR)
    assert f.segment_times[-1, 0] < 122.88 < f.segment_times[-1, 1]
    cut = (20 * SEGMENT_FRAMES + 1) * HOP
    g = extract_features(y[cut:], SR)
    np.testing.assert_allclose(g.segment_times[-1] + cut / SR, f.segment_times[-1])
    np.testing.assert_allclose(g.segment_values[-1], f.segment_values[-1], rtol=1e-3, atol=1e-3)


def test_file_and_array_give_the_same_features(write):
    y = tone(250, 7.0, vibrato_hz=5.5, vibrato_cents=40)
    p = write("t.wav", y, subtype="FLOAT")
    np.testing.assert_allclose(extract_features(p).values, extract_features(y, SR).values,
                               rtol=1e-5, atol=1e-5)


def test_frame_values_on_request():
    f = extract_features(tone(220, 3.0), SR, frames=True)
    assert "vocal.pitch_strength" in f.frames
    assert f.frames["vocal.pitch_strength"].shape[0] == int(np.ceil(3.0 * SR / HOP))


def test_short_file_is_one_segment_and_silent_tail_ignored():
    y = np.concatenate([tone(220, 6.0), np.zeros(SR * 12, np.float32)])
    f = extract_features(y, SR)
    assert f.silent_segments.sum() >= 2 and (~f.silent_segments).sum() >= 1
    # The file vector is the mean and 90th percentile over the sounding segments only...
    sounding = f.segment_values[~f.silent_segments]
    expected = np.concatenate([sounding.mean(axis=0), np.percentile(sounding, 90, axis=0)])
    np.testing.assert_allclose(f.values, expected, rtol=1e-6, atol=1e-6)
    # ... which differs from what the silent segments would have made of it.
    everything = np.concatenate([f.segment_values.mean(axis=0), np.percentile(f.segment_values, 90, axis=0)])
    assert not np.allclose(f.values, everything, rtol=1e-3, atol=1e-3)
    only = extract_features(tone(220, 2.0), SR)
    assert only.segment_values.shape[0] == 1


def test_frame_features_are_float32_and_finite_or_nan():
    spec = spectrum(noise(3.0) + tone(300, 3.0))
    for k, v in frame_features(spec).items():
        assert v.shape == (spec.n_frames,), k
        assert v.dtype == np.float32, k
        assert not np.isinf(v).any(), k


@settings(max_examples=30, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=60))
def test_run_lengths_property(mask):
    mask = np.array(mask)
    out = run_lengths(mask)
    assert (out[~mask] == 0).all()
    # Every frame of a run carries the run's length, and the lengths sum per run to len**2.
    assert out.sum() == sum(len(r) ** 2 for r in "".join("1" if m else "0" for m in mask).split("0") if r)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 15))
def test_moving_average_matches_naive(n, width):
    x = np.random.default_rng(n).standard_normal(n)
    got = moving_average(x, width)
    half = width // 2
    ref = [x[max(0, i - half):min(n, i - half + width)].mean() for i in range(n)]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_fluctogram_vibrato_finds_a_voice_under_a_louder_chord():
    """A 5.5 Hz vibrato voice 6 dB under a steady chord: the predominant contour follows the
    chord, but the fluctogram bands above it oscillate at the vibrato rate."""
    chord = tone(130.8, 6.0) + tone(164.8, 6.0) + tone(196.0, 6.0) + tone(98.0, 6.0)
    rms = np.sqrt(np.mean(chord ** 2))

    def under(v):
        return chord + v * 10 ** (-6 / 20) * rms / np.sqrt(np.mean(v ** 2))

    with_vib = feats(under(tone(392, 6.0, vibrato_hz=5.5, vibrato_cents=50)))
    with_steady = feats(under(tone(392, 6.0)))
    alone = feats(chord)
    assert with_vib["vocal.fluct_vibrato_share_mean:mean"] > 0.4
    assert with_steady["vocal.fluct_vibrato_share_mean:mean"] < 0.1
    assert alone["vocal.fluct_vibrato_share_mean:mean"] < 0.1


def test_mel_filterbank_matches_librosa():
    import librosa

    from scoresong.spectrum import FMAX, FMIN, N_MELS, mel_basis, mel_frequencies

    ref = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX).T
    np.testing.assert_allclose(mel_basis(SR, N_FFT), ref, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(mel_frequencies(N_MELS + 2), librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX),
                               rtol=1e-9)


def test_median_networks_are_exact_sorts_by_the_zero_one_principle():
    import itertools

    from scoresong.features.orchestral import MEDIAN9, SORT8

    for n, net, full in ((8, SORT8, True), (9, MEDIAN9, False)):
        for bits in itertools.product((0, 1), repeat=n):
            p = list(bits)
            for i, j in net:
                if p[i] > p[j]:
                    p[i], p[j] = p[j], p[i]
            assert (p == sorted(bits)) if full else (p[4] == sorted(bits)[4])


@pytest.mark.parametrize("shape", [(1, 64), (5, 64), (333, 64), (1000, 7)])
def test_rank_filter_equals_scipy_median_filter(shape):
    import scipy.ndimage

    from scoresong.features.orchestral import MEDIAN9, SORT8, rank_filter

    x = np.random.default_rng(shape[0]).random(shape).astype(np.float32)
    np.testing.assert_array_equal(rank_filter(x, size=8, axis=0, network=SORT8, rank=4),
                                  scipy.ndimage.median_filter(x, size=(8, 1), mode="nearest"))
    np.testing.assert_array_equal(rank_filter(x, size=9, axis=1, network=MEDIAN9, rank=4),
                                  scipy.ndimage.median_filter(x, size=(1, 9), mode="nearest"))


# --- singing-words features (schema 2) ------------------------------------------------------
def test_note_plateaus_hold_notes_not_glides():
    """Held notes (with vibrato) are plateaus; speech-like swings and glides are not.
    Tolerances: +-0.1 of the shares stated in the docstring."""
    from scoresong.features.vocal import note_plateaus

    r, n = 62.5, 187
    t = np.arange(n) / r
    on = np.ones(n, bool)
    stair = np.repeat(np.arange(40) * 200.0, int(0.5 * r))[:n] + 50 * np.sin(2 * np.pi * 6 * t)
    assert abs(note_plateaus(stair, on, frame_rate=r).mean() - 0.65) < 0.1
    assert note_plateaus(500 * t, on, frame_rate=r).mean() < 0.1
    assert note_plateaus(300 * np.sin(2 * np.pi * 1.5 * t), on, frame_rate=r).mean() == 0
    # Off the contour nothing is a plateau, however steady.
    assert not note_plateaus(np.zeros(n), np.zeros(n, bool), frame_rate=r).any()


def test_singing_words_statistics_separate_a_sung_staircase_from_a_steady_tone():
    """A sung-like line (harmonic notes of 0.4 s with consonant gaps) has plateaus joined by
    changes and voicing onsets at syllable rate; a steady organ tone has one long plateau and
    no onsets after the first."""
    from scoresong import extract_features

    sr = 22050
    t = np.arange(int(12 * sr)) / sr
    note = np.floor(t / 0.4)
    f0 = 220 * 2 ** (((note * 5) % 12) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    tone = sum(np.sin(k * phase) / k for k in range(1, 10))
    gaps = ((t % 0.4) > 0.06).astype(float)          # a 60 ms consonant break per syllable
    sung = extract_features((0.3 * tone * gaps).astype(np.float32), sr).as_dict()
    steady_phase = 2 * np.pi * 220 * t
    organ = sum(np.sin(k * steady_phase) / k for k in range(1, 10))
    steady = extract_features((0.3 * organ).astype(np.float32), sr).as_dict()
    assert 1.5 < sung["vocal.voicing_onsets_per_s:mean"] < 3.5     # 2.5 syllables/s
    assert steady["vocal.voicing_onsets_per_s:mean"] < 0.5
    assert sung["vocal.plateau_onsets_per_s:mean"] > 1.0
    assert steady["vocal.plateau_onsets_per_s:mean"] < 0.5
    assert sung["vocal.strength_syllabic_mod:mean"] > steady["vocal.strength_syllabic_mod:mean"]


def _with_faults(monkeypatch):
    """Make texture's segment statistics fault: the first segment of every chunk gets a NaN
    centroid mean, every segment an infinite bandwidth spread."""
    from scoresong.features import texture

    real = texture.segment_features

    def faulty(frames, idx, rate):
        out = real(frames, idx, rate)
        out["centroid_mean"][0] = np.nan
        out["bandwidth_std"][:] = np.inf
        return out

    monkeypatch.setattr(texture, "segment_features", faulty)


def test_nonfinite_statistics_are_zeroed_counted_and_warned_once(monkeypatch):
    import warnings

    from scoresong.features import NonFiniteFeatureWarning

    y = tone(220, 66.0, vibrato_hz=5.0, vibrato_cents=40)  # two chunks: 12 segments + 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", NonFiniteFeatureWarning)  # a clean file: no warning
        clean = extract_features(y, SR)
    assert clean.nonfinite == {}
    _with_faults(monkeypatch)
    with pytest.warns(NonFiniteFeatureWarning) as rec:
        f = extract_features(y, SR)
    assert len(rec) == 1  # one warning per file, naming the statistics and the counts
    msg = str(rec[0].message)
    n = f.segment_values.shape[0]
    assert n == 13
    assert "texture.centroid_mean (2 of 13 segments)" in msg and "texture.bandwidth_std (13 of 13" in msg
    assert f.nonfinite == {"texture.centroid_mean": 2, "texture.bandwidth_std": 13}
    # The values are still zeros (the model needs finite input), and nothing else moved.
    names = list(f.segment_names)
    c, b = names.index("texture.centroid_mean"), names.index("texture.bandwidth_std")
    assert (f.segment_values[[0, 12], c] == 0).all() and (f.segment_values[:, b] == 0).all()
    other = [j for j in range(len(names)) if j not in (c, b)]
    np.testing.assert_array_equal(f.segment_values[:, other], clean.segment_values[:, other])
    assert np.isfinite(f.values).all()


def test_the_timeline_records_nonfinite_statistics_too(monkeypatch):
    from scoresong.features import NonFiniteFeatureWarning
    from scoresong.segmentation import analyse

    _with_faults(monkeypatch)
    with pytest.warns(NonFiniteFeatureWarning, match="texture.centroid_mean") as rec:
        an = analyse(tone(220, 12.0), sr=SR)
    assert len(rec) == 1
    assert an.nonfinite == {"texture.centroid_mean": 1, "texture.bandwidth_std": an.values.shape[0]}
