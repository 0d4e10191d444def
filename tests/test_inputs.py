"""Audio already in memory: arrays, bytes, file objects and block streams (issue 15).

The same audio given as a file, an array, bytes or a block stream must give the same
answer. Tolerances: feature values within 1e-4 relative / 1e-4 absolute (float32
features; the resampler sees different block boundaries), P(song) within 1e-4.
"""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

import scoresong
from scoresong import audio
from scoresong.features import CHUNK_SEGMENTS, SEGMENT_FRAMES
from scoresong.spectrum import HOP

from .conftest import DATA, SR, expected_label, noise, tone

EXCERPTS = sorted(DATA.glob("*.ogg"))
RTOL, ATOL = 1e-4, 1e-4
CHUNK_S = CHUNK_SEGMENTS * SEGMENT_FRAMES * HOP / audio.ANALYSIS_SR  # 61.44 s


def odd_blocks(x: np.ndarray, sizes=(12345, 777, 54321, 1)):
    """Cut a (n,) or (channels, n) array into blocks of cycling odd sizes."""
    i, k = 0, 0
    n = x.shape[-1]
    while i < n:
        step = sizes[k % len(sizes)]
        yield x[..., i:i + step]
        i += step
        k += 1


def _kinds(path):
    """The same file as every kind of source predict() takes: (name, source, sr)."""
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    data = path.read_bytes()
    return [
        ("path", path, None),
        ("str", str(path), None),
        ("array", y.T if y.shape[1] > 1 else y[:, 0], sr),
        ("float64 array", (y.T if y.shape[1] > 1 else y[:, 0]).astype(np.float64), sr),
        ("bytes", data, None),
        ("file object", io.BytesIO(data), None),
        ("block stream", odd_blocks(y.T if y.shape[1] > 1 else y[:, 0]), sr),
    ]


@pytest.mark.parametrize("path", EXCERPTS, ids=lambda p: p.stem)
def test_every_kind_of_source_gives_the_same_prediction(path):
    ref = scoresong.predict(path)
    assert ref.label == expected_label(path)
    for kind, src, sr in _kinds(path):
        got = scoresong.predict(src, sr=sr)
        assert got.label == ref.label, kind
        assert got.probability == pytest.approx(ref.probability, abs=1e-4), kind
        assert got.duration == pytest.approx(ref.duration, abs=1e-3), kind


def test_sources_are_named_for_what_they_are():
    path = EXCERPTS[0]
    y, sr = sf.read(path, dtype="float32")
    assert scoresong.predict(y, sr=sr).path == "<array>"
    assert scoresong.predict(iter([y]), sr=sr).path == "<stream>"
    assert scoresong.predict(path.read_bytes()).path == "<bytes>"
    assert scoresong.predict(io.BytesIO(path.read_bytes())).path == "<file>"
    with open(path, "rb") as f:
        assert scoresong.predict(f).path == str(path)


@pytest.fixture(scope="module")
def long_stereo(tmp_path_factory):
    """~140 s of stereo (two different excerpts left and right), past both chunk
    boundaries (61.44 s, 122.88 s), written as FLAC at 22.05 kHz."""
    parts = [sf.read(p, dtype="float32")[0] for p in EXCERPTS]
    left = np.concatenate(parts + parts)
    right = np.concatenate(parts[3:] + parts[:3] + parts[3:] + parts[:3]) * np.float32(0.5)
    y = np.stack([left, right])
    assert y.shape[1] / 22050 > 2 * CHUNK_S + 10
    p = tmp_path_factory.mktemp("long") / "long_stereo.flac"
    sf.write(p, y.T, 22050, subtype="PCM_24")
    y_read, _ = sf.read(p, dtype="float32", always_2d=True)
    return p, y_read.T.copy(), 22050


def test_long_stereo_same_features_and_timeline_for_every_kind(long_stereo):
    path, y, sr = long_stereo
    ref = scoresong.extract_features(path)
    assert ref.segment_values.shape[0] > 24  # several chunks of 12 segments
    kinds = {
        "array": (y, sr),
        "bytes": (path.read_bytes(), None),
        "file object": (io.BytesIO(path.read_bytes()), None),
        "odd block stream": (odd_blocks(y, sizes=(12345, 77777, 3, 100003)), sr),
        # one block per chunk boundary region: blocks end exactly on and just past 61.44 s
        "boundary blocks": (iter([y[:, :int(CHUNK_S * sr)], y[:, int(CHUNK_S * sr):int(CHUNK_S * sr) + 1],
                                  y[:, int(CHUNK_S * sr) + 1:]]), sr),
    }
    for kind, (src, rate) in kinds.items():
        got = scoresong.extract_features(src, rate)
        assert got.names == ref.names
        np.testing.assert_allclose(got.values, ref.values, rtol=RTOL, atol=ATOL, err_msg=kind)
        np.testing.assert_allclose(got.segment_values, ref.segment_values, rtol=1e-3, atol=1e-3,
                                   err_msg=kind)
        assert got.duration == pytest.approx(ref.duration, abs=1e-3)
    tl_ref = scoresong.timeline(path)
    tl = scoresong.timeline(odd_blocks(y, sizes=(4097, 65537)), sr=sr)
    assert tl.path == "<stream>"
    assert [(s.label, s.start, s.end) for s in tl.segments] == \
        [(s.label, s.start, s.end) for s in tl_ref.segments]


def test_explain_on_an_array_equals_explain_on_the_file():
    path = DATA / "song_allison-sung-over-armygeddon.ogg"
    y, sr = sf.read(path, dtype="float32")
    a, b = scoresong.explain(path, top=None), scoresong.explain(y, sr=sr, top=None)
    assert b.path == "<array>" and a.label == b.label
    assert [c.feature for c in a.contributions][:5] == [c.feature for c in b.contributions][:5]
    np.testing.assert_allclose([c.effect for c in a.contributions],
                               [c.effect for c in b.contributions], atol=1e-3)


def test_other_rates_offset_and_duration_on_arrays(write):
    y = tone(330, 8.0, 44100, vibrato_hz=5.5, vibrato_cents=40)
    p = write("t.wav", y, 44100, subtype="FLOAT")
    for off, dur in [(0.0, None), (1.5, 4.0), (2.0, None)]:
        a = scoresong.extract_features(p, offset=off, duration=dur)
        b = scoresong.extract_features(y, 44100, offset=off, duration=dur)
        c = scoresong.extract_features(odd_blocks(y), 44100, offset=off, duration=dur)
        np.testing.assert_allclose(b.values, a.values, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(c.values, a.values, rtol=RTOL, atol=ATOL)
        assert b.duration == pytest.approx(a.duration, abs=1e-3)


def test_multichannel_array_is_the_channel_average():
    a, b = tone(220, 4.0), tone(330, 4.0, amp=0.2)
    mixed = scoresong.extract_features(((a + b) / 2).astype(np.float32), SR)
    stereo = scoresong.extract_features(np.stack([a, b]), SR)
    np.testing.assert_allclose(stereo.values, mixed.values, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad,expected,fragment", [
    (np.zeros((SR * 3, 2), np.float32), ValueError, "y.T"),             # soundfile's (n, channels)
    (np.zeros((2, 3, SR), np.float32), ValueError, "dimensions"),
    ((np.ones(SR * 3) * 1000).astype(np.int16), ValueError, "floating-point"),
    (np.ones(SR * 3, bool), ValueError, "floating-point"),
    (np.ones(SR * 3, np.complex64), ValueError, "floating-point"),
    ("not audio at all", scoresong.AudioFileNotFoundError, "no such file"),
])
def test_wrong_arrays_get_a_clear_error(bad, expected, fragment):
    with pytest.raises(expected, match=fragment.replace(".", r"\.")):
        scoresong.predict(bad, sr=SR if isinstance(bad, np.ndarray) else None)


@pytest.mark.parametrize("sr,expected,fragment", [
    (None, TypeError, "sr= .* is required"),
    (0, ValueError, "positive whole number"),
    (-16000, ValueError, "positive whole number"),
    (16000.5, ValueError, "positive whole number"),
    (float("nan"), ValueError, "positive whole number"),
    ("16000", ValueError, "number of samples per second"),
    (2000, scoresong.UnsupportedAudioError, "below 4000 Hz"),
])
def test_wrong_rates_get_a_clear_error(sr, expected, fragment):
    with pytest.raises(expected, match=fragment):
        scoresong.predict(tone(220, 3.0), sr=sr)


def test_same_validation_as_files():
    y = tone(220, 3.0)
    y[100] = np.inf
    with pytest.raises(scoresong.NonFiniteAudioError, match="<array>: non-finite"):
        scoresong.predict(y, sr=SR)
    with pytest.raises(scoresong.TooShortAudioError, match="<array>"):
        scoresong.predict(tone(220, 0.5), sr=SR)
    with pytest.raises(scoresong.SilentAudioError, match="<stream>"):
        scoresong.predict(iter([np.zeros(SR * 2, np.float32)] * 2), sr=SR)
    with pytest.raises(scoresong.EmptyAudioError, match="<array>"):
        scoresong.predict(np.zeros(0, np.float32), sr=SR)
    with pytest.raises(scoresong.EmptyAudioError, match="<bytes>"):
        scoresong.predict(b"")
    with pytest.raises(scoresong.NotAudioError, match="<bytes>: not a recognised audio format"):
        scoresong.predict(b"this is plain text, not audio" * 100)
    with pytest.raises(ValueError, match="block 1 has 2 channel"):
        scoresong.predict(iter([tone(220, 2.0), np.stack([tone(220, 2.0)] * 2)]), sr=SR)
    with pytest.raises(ValueError, match="rate of an array"):
        scoresong.predict(DATA / "song_allison-a-cappella.ogg", sr=22050)
    with pytest.raises(ValueError, match="stream= chooses"):
        scoresong.predict(tone(220, 3.0), sr=SR, stream=1)
    with pytest.raises(ValueError, match="threshold"):
        scoresong.predict(tone(220, 3.0), sr=SR, threshold=1.5)


def test_caller_array_is_not_modified():
    y = np.stack([tone(220, 3.0), tone(330, 3.0)])
    before = y.copy()
    scoresong.predict(y, sr=SR)
    np.testing.assert_array_equal(y, before)


def test_block_stream_memory_is_flat_with_length():
    """A generator of blocks is analysed in constant memory: the traced peak for 8 min of
    input stays within 25% of the peak for 2 min (the whole 8 min would be 30 MB at 16 kHz
    float32 on top of it if it were held)."""

    def gen(minutes):
        blk = (tone(200, 1.0, amp=0.2) + noise(1.0, amp=0.05)).astype(np.float32)
        for k in range(int(minutes * 60)):
            yield blk * np.float32(1.0 - 1e-4 * (k % 7))  # a new array each time, as a capture gives

    peaks = []
    for minutes in (2, 8):
        tracemalloc.start()
        scoresong.extract_features(gen(minutes), SR)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.25 * peaks[0], peaks
