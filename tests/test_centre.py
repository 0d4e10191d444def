"""The centre of a stereo image: mid/side decoding, the centre spectrum, and which
features read it when ``features.CENTRE_FAMILIES`` (in place of the mix) or
``features.CENTRE_VIEWS`` (beside it) is set: experiment switches, empty in the shipped
schema 4 (models/schema6.ab.md, models/schema7.ab.md).

Known answers by construction: a source panned to the centre is in the mid only and
keeps its magnitude; a source panned hard to one side has equal mid and side magnitudes
and vanishes; identical channels (L = R) are the mono file.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from scoresong import audio, extract_features
from scoresong import features
from scoresong.features import segment_stream
from scoresong.spectrum import HOP, N_FFT, Spectrum, stft_frames

from .conftest import SR, noise, tone

_PAD = ((N_FFT - HOP) // 2, (N_FFT + HOP) // 2)


@pytest.fixture
def centre_on(monkeypatch):
    """The schema-6 candidate A's setting: the vocal family reads the centre."""
    monkeypatch.setattr(features, "CENTRE_FAMILIES", ("vocal",))
    return ("vocal",)


def _padded(y):
    return np.pad(np.asarray(y, np.float32), _PAD)


def _centre(left, right):
    mid = Spectrum.from_padded(_padded((left + right) / 2), SR)
    return mid, mid.centre(stft_frames(_padded((left - right) / 2)))


def _stereo_voice_in_wide_noise(dur=12.0, seed=0):
    """A sung-like tone (vibrato) panned to the centre, under louder decorrelated noise."""
    rng = np.random.default_rng(seed)
    v = tone(262, dur, vibrato_hz=5.5, vibrato_cents=50, amp=0.1)
    n = v.size
    left = 0.25 * rng.standard_normal(n).astype(np.float32)
    right = 0.25 * rng.standard_normal(n).astype(np.float32)
    return np.stack([left + v, right + v])


def test_centre_panned_source_keeps_its_magnitude():
    y = tone(440, 2.0)
    mid, c = _centre(y, y)
    # Side is exactly zero: the centre is the mid up to float32 rounding (sqrt, square).
    np.testing.assert_allclose(c.magnitude, mid.magnitude, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c.power, mid.power, rtol=1e-5, atol=1e-10)


def test_hard_panned_source_vanishes():
    y = tone(440, 2.0)
    mid, c = _centre(y, np.zeros_like(y))
    # |M| = |S| = |L| / 2 in every cell: nothing is left beyond rounding (1e-6 of the mid).
    assert c.magnitude.max() <= 1e-6 * mid.magnitude.max()


def test_centre_keeps_a_centred_tone_and_drops_a_side_one():
    c_tone, s_tone = tone(440, 2.0), tone(1250, 2.0)
    mid, c = _centre(c_tone + s_tone, c_tone)      # 1250 Hz only on the left
    k440, k1250 = round(440 * N_FFT / SR), round(1250 * N_FFT / SR)
    frames = slice(10, -10)
    assert np.median(c.magnitude[frames, k440] / mid.magnitude[frames, k440]) > 0.99
    assert np.median(c.magnitude[frames, k1250] / mid.magnitude[frames, k1250]) < 0.01


@pytest.mark.parametrize("src_sr", [SR, 44100])
def test_mid_side_stream_rows(src_sr):
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal((2, 3 * src_sr))).astype(np.float32)
    ms = np.concatenate(list(audio.stream(x, source_sr=src_sr, mid_side=True, block_duration=0.7)), axis=1)
    mono = np.concatenate(list(audio.stream(x, source_sr=src_sr, block_duration=0.7)))
    assert ms.shape == (2, mono.size)
    # Row 0 is the mono mix. Without resampling it is bit-identical; with resampling the
    # two-channel soxr stream gives the mono stream's samples to float32 rounding.
    np.testing.assert_allclose(ms[0], mono, rtol=0, atol=0 if src_sr == SR else 1e-6)
    side = np.concatenate(list(audio.stream((x[0] - x[1]) / 2, source_sr=src_sr, block_duration=0.7)))
    np.testing.assert_allclose(ms[1], side, rtol=0, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3, 6])
def test_mid_side_stream_is_mono_unless_stereo(channels):
    x = (0.1 * np.random.default_rng(2).standard_normal((channels, SR))).astype(np.float32)
    blocks = list(audio.stream(x, source_sr=SR, mid_side=True))
    assert all(b.ndim == 1 for b in blocks)


def test_identical_channels_give_the_mono_features(centre_on):
    y = tone(220, 8.0, vibrato_hz=5.5, vibrato_cents=40) + noise(8.0, amp=0.05)
    a = extract_features(y, SR)
    b = extract_features(np.stack([y, y]), SR)
    # Same values up to float32 rounding of the centre (sqrt then square of the power).
    np.testing.assert_allclose(b.values, a.values, rtol=1e-4, atol=1e-5)


def test_only_the_centre_families_change(centre_on):
    x = _stereo_voice_in_wide_noise()
    st_f = extract_features(x, SR).as_dict()
    mono_f = extract_features(x.mean(axis=0), SR).as_dict()
    changed = {k.split(".")[0] for k in st_f if not np.isclose(st_f[k], mono_f[k], rtol=1e-4, atol=1e-5)}
    assert changed == set(centre_on)


def test_the_centre_hears_a_voice_the_downmix_buries(centre_on):
    x = _stereo_voice_in_wide_noise()
    st_f = extract_features(x, SR).as_dict()
    mono_f = extract_features(x.mean(axis=0), SR).as_dict()
    # Under the downmix's noise the tracker finds no voiced frame (0.0 measured); in the
    # centre most of the decorrelated noise cancels and about half the frames are voiced
    # (0.52 measured; the residue of max(|M| - |S|, 0) keeps it from 1).
    assert mono_f["vocal.voiced_frac:mean"] < 0.1
    assert st_f["vocal.voiced_frac:mean"] > 0.35


def test_stereo_file_blocks_and_array_agree(tmp_path, centre_on):
    x = 0.6 * _stereo_voice_in_wide_noise(dur=70.0)  # > one 61.44 s chunk; peak < 1 (no clipping in the file)
    p = tmp_path / "st.flac"
    sf.write(p, x.T, SR, subtype="PCM_24")
    whole = extract_features(x, SR)
    blocks = extract_features((x[:, i:i + 30011] for i in range(0, x.shape[1], 30011)), SR)
    from_file = extract_features(p)
    np.testing.assert_array_equal(blocks.values, whole.values)
    np.testing.assert_allclose(from_file.values, whole.values, rtol=1e-5, atol=1e-6)


def test_segmenter_refuses_a_change_of_rows():
    y = np.zeros(SR, np.float32)
    with pytest.raises(ValueError, match="row"):
        list(segment_stream([np.stack([y, y]), y], SR))
    with pytest.raises(ValueError, match="mono"):
        list(segment_stream([np.zeros((3, SR), np.float32)], SR))


def test_layout_change_keeps_the_first_blocks_shape():
    st = np.zeros((2, 100), np.float32) + 0.1
    mono = np.full(50, 0.2, np.float32)
    out = list(audio._conform(iter([st, mono, st])))
    assert [b.shape for b in out] == [(2, 100), (2, 50), (2, 100)]
    np.testing.assert_array_equal(out[1][1], 0)
    out = list(audio._conform(iter([mono, st])))
    assert [b.shape for b in out] == [(50,), (100,)]


def test_shipped_schema_reads_stereo_as_its_mono_mix():
    """With the switch off (the shipped schema), a stereo file is its channel average."""
    assert features.CENTRE_FAMILIES == ()
    x = _stereo_voice_in_wide_noise()
    np.testing.assert_array_equal(extract_features(x, SR).values,
                                  extract_features(x.mean(axis=0), SR).values)


# ---- both views (features.CENTRE_VIEWS; the schema-7 trial, models/schema7.ab.md)

@pytest.fixture
def views_on(monkeypatch):
    """The schema-7 candidate's setting: the vocal family on the mix and on the centre."""
    monkeypatch.setattr(features, "CENTRE_VIEWS", ("vocal",))
    features._feature_names.cache_clear()
    yield ("vocal",)
    features._feature_names.cache_clear()


def test_second_view_names_follow_the_mix_view(views_on):
    names = features.feature_names()
    mix = [n for n in names if n.split(".")[0] == "vocal"]
    centre = [n for n in names if n.split(".")[0] == "vocal_centre"]
    assert mix and [n.replace("vocal_centre.", "vocal.", 1) for n in centre] == mix
    assert set(n.split(".")[0] for n in names) == {"texture", "vocal", "orchestral", "vocal_centre"}


def test_second_view_of_a_mono_source_repeats_the_mix_view(views_on):
    y = tone(220, 8.0, vibrato_hz=5.5, vibrato_cents=40) + noise(8.0, amp=0.05)
    f = extract_features(y, SR).as_dict()
    for k, v in f.items():
        if k.startswith("vocal."):
            assert f["vocal_centre." + k[len("vocal."):]] == v, k   # copied, so exactly equal


def test_both_views_of_a_stereo_source(views_on):
    x = _stereo_voice_in_wide_noise()
    st_f = extract_features(x, SR).as_dict()
    features.CENTRE_VIEWS = ()          # restored by the fixture's monkeypatch
    features._feature_names.cache_clear()
    mono_f = extract_features(x.mean(axis=0), SR).as_dict()
    # The mix view is the downmix's schema-4 vector, bit for bit (row 0 of the mid/side
    # stream is the mono mix); the centre view hears the voice the downmix buries.
    assert {k: v for k, v in st_f.items() if not k.startswith("vocal_centre.")} == mono_f
    assert st_f["vocal.voiced_frac:mean"] < 0.1
    assert st_f["vocal_centre.voiced_frac:mean"] > 0.35


def test_both_views_blocks_array_and_file_agree(tmp_path, views_on):
    x = 0.6 * _stereo_voice_in_wide_noise(dur=70.0)
    p = tmp_path / "st.flac"
    sf.write(p, x.T, SR, subtype="PCM_24")
    whole = extract_features(x, SR)
    blocks = extract_features((x[:, i:i + 30011] for i in range(0, x.shape[1], 30011)), SR)
    from_file = extract_features(p)
    assert whole.names == features.feature_names()
    np.testing.assert_array_equal(blocks.values, whole.values)
    np.testing.assert_allclose(from_file.values, whole.values, rtol=1e-5, atol=1e-6)


def test_shipped_schema_has_no_second_view():
    assert features.CENTRE_VIEWS == () and not features.reads_stereo()
    assert not any("_centre." in n for n in features.feature_names())


# ---- the pitch-only second view (CENTRE_VIEWS = ("vocal_pitch",); schema-8 trial,
# models/schema8.ab.md): the vocal family's pitch half on the centre, at about half its cost

def _with_views(monkeypatch, views):
    monkeypatch.setattr(features, "CENTRE_VIEWS", views)
    features._feature_names.cache_clear()


def test_pitch_view_is_the_full_views_pitch_half(monkeypatch):
    """Its statistics are those of the full second view, less the fluctogram and the vocal
    variance, with the same values bit for bit (the same centre, the same code)."""
    x = _stereo_voice_in_wide_noise()
    try:
        _with_views(monkeypatch, ("vocal",))
        full = extract_features(x, SR).as_dict()
        _with_views(monkeypatch, ("vocal_pitch",))
        pitch = extract_features(x, SR).as_dict()
    finally:
        features._feature_names.cache_clear()
    centre = {k.split(".", 1)[1]: v for k, v in pitch.items() if k.startswith("vocal_pitch_centre.")}
    stats = {k.split(":")[0] for k in centre}
    assert len(stats) == 18 and not any(s.startswith(("fluct_", "vocal_variance")) for s in stats)
    assert {"voiced_frac", "plateau_frac", "syllabic_mod_ratio", "vibrato_frames_frac"} <= stats
    for k, v in centre.items():
        assert full["vocal_centre." + k] == v, k
    # Everything else is the full view's vector without its second view.
    assert {k: v for k, v in pitch.items() if "_centre." not in k} == \
        {k: v for k, v in full.items() if "_centre." not in k}
    assert pitch["vocal_pitch_centre.voiced_frac:mean"] > 0.35 > 0.1 > pitch["vocal.voiced_frac:mean"]


def test_pitch_view_of_a_mono_source_repeats_the_mix_views_pitch_half(monkeypatch):
    """Copied from the mix view's frame values, not tracked again: one pitch track per chunk."""
    y = tone(220, 8.0, vibrato_hz=5.5, vibrato_cents=40) + noise(8.0, amp=0.05)
    calls = []
    real = features.vocal.predominant_pitch
    monkeypatch.setattr(features.vocal, "predominant_pitch", lambda s: calls.append(1) or real(s))
    try:
        _with_views(monkeypatch, ("vocal_pitch",))
        f = extract_features(y, SR).as_dict()
    finally:
        features._feature_names.cache_clear()
    assert len(calls) == 1
    centre = [k for k in f if k.startswith("vocal_pitch_centre.")]
    assert len(centre) == 36
    for k in centre:
        assert f[k] == f["vocal." + k.split(".", 1)[1]], k


def test_pitch_views_frame_keys_are_what_it_computes():
    from scoresong.features import _mel_freqs, vocal
    from scoresong.spectrum import Spectrum

    y = np.pad(tone(220, 3.0), (384, 640)).astype(np.float32)
    spec = Spectrum.from_padded(y, SR)
    got = vocal.PITCH_VIEW.frame_features(spec, {"mel_freqs": _mel_freqs(SR)})
    assert tuple(got) == vocal.PITCH_VIEW.frame_keys


def test_pitch_view_never_computes_the_centres_mfccs(monkeypatch):
    """The MFCCs of the centre are what the fluctogram-free view saves besides the
    fluctogram: they are computed on first use only, and this view never asks."""
    calls = []
    real = features.texture.mfcc
    monkeypatch.setattr(features.texture, "mfcc", lambda lm, *a, **k: calls.append(lm.shape) or real(lm, *a, **k))
    x = _stereo_voice_in_wide_noise(dur=10.0)
    try:
        _with_views(monkeypatch, ("vocal_pitch",))
        extract_features(x, SR)
        n_pitch = len(calls)
        calls.clear()
        _with_views(monkeypatch, ("vocal",))
        extract_features(x, SR)
    finally:
        features._feature_names.cache_clear()
    assert n_pitch >= 1 and len(calls) == 2 * n_pitch   # the full view computes the centre's too
