"""The Sinsy singing generator (corpus/sinsy_voice.py): a short line, and the burst repair."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytest.importorskip("pyworld")
pytest.importorskip("soxr")

from corpus import sinsy_voice as V  # noqa: E402
from corpus import singing  # noqa: E402

SR = 22050


def _f0_midi(y, sr, lo_hz, hi_hz, mask=None):
    import pyworld as pw

    x = y.astype(np.float64)
    f0, t = pw.dio(x, sr, f0_floor=lo_hz, f0_ceil=hi_hz, frame_period=10.0)
    f0 = pw.stonemask(x, f0, t, sr)
    v = f0 > 0
    if mask is not None:
        v &= mask[np.minimum((t * sr).astype(int), mask.size - 1)]
    return 69 + 12 * np.log2(f0[v] / 440.0)


def test_parse_essen_abc_accidentals_ties_lines():
    text = "X:7\nT: t\nM: 2/4\nL: 1/8\nK: G\n_B2B c | f2-f2 |\nz2 =F F | c'4\n"
    (tune,) = V.parse_essen_abc(text)
    assert tune["x"] == "7"
    ph1, ph2 = tune["phrases"]
    # _B carries through the bar; F is F# from the key; the tie merges the two f's
    assert ph1 == [[70, 1.0], [70, 0.5], [72, 0.5], [78, 2.0]]
    assert ph2 == [[None, 1.0], [65, 0.5], [65, 0.5], [84, 2.0]]


def test_voices_and_musicxml():
    names = V.voice_variants()
    assert 5 <= len(names) <= 10 and names == V.voice_variants() and len(set(names)) == len(names)
    for n in names:
        off, fw = V.voice_params(n)
        assert 0.8 <= fw <= 1.2 and V.voice_centre(n) == V.NATIVE_CENTRE + off
    assert min(V.voice_centre(n) for n in names) <= V.NATIVE_CENTRE - 12   # male-like voices
    events = [[None, 2, None], [64.0, 6, "か"], [66.0, 14, "ー"], [None, 3, None], [61.0, 1, "ら"],
              [None, 4, None]]
    root = ET.fromstring(V.musicxml(events, 100.0, shift=2).split("\n", 2)[2])
    measures = root.findall("./part/measure")
    for m in measures:
        assert sum(int(d.text) for d in m.iter("duration")) == 16          # full 4/4 bars
    notes = [n for n in root.iter("note") if n.find("rest") is None]
    lyrics = [n.findtext("lyric/text") for n in notes]
    assert lyrics == ["か", "ー", None, "ら"]                               # tied continuation
    assert notes[1].find("tie").get("type") == "start"
    assert notes[0].findtext("pitch/step") == "F" and notes[0].findtext("pitch/alter") == "1"


def test_burst_detector_and_repair():
    fs = V.GEN_FS
    t = np.arange(int(1.2 * fs)) / fs
    f0 = 220 * 2 ** (0.3 * np.sin(2 * np.pi * 1.5 * t) / 12)
    ph = 2 * np.pi * np.cumsum(f0) / fs
    clean = 8000 * sum(np.sin(h * ph) / h for h in range(1, 12))
    clean[: int(0.1 * fs)] = 0.0
    x = clean.copy()
    # an unstable-filter burst: exponential growth to 1e11 over 40 ms, decay over 40 ms, at 0.6 s
    a, pk, b = int(0.60 * fs), int(0.64 * fs), int(0.68 * fs)
    env = np.concatenate([np.logspace(1, 11, pk - a), np.logspace(11, 1, b - pk)])
    x[a:b] += env * np.sin(2 * np.pi * 3000 * t[a:b])
    x[int(0.63 * fs)] = np.nan
    bursts = V.find_bursts(x, fs)
    assert len(bursts) == 1
    s, e = bursts[0]
    assert s <= a + int(0.01 * fs) and e >= b - int(0.01 * fs) and e - s < int(0.15 * fs)
    assert V.find_bursts(clean, fs) == []                                  # no false alarm
    z = V.silence_bursts(x, bursts, fs)
    assert np.all(np.isfinite(z)) and np.abs(z).max() <= 1.05 * np.abs(clean).max()
    import soxr

    y = soxr.resample(z / 32768.0, fs, SR).astype(np.float32)
    r = V.repair_bursts(y, SR, [(s / fs, e / fs)], f0_range=(120.0, 400.0))
    assert np.all(np.isfinite(r)) and np.abs(r).max() <= 2 * np.abs(clean).max() / 32768
    seg = r[int((s / fs) * SR):int((e / fs) * SR)]
    ref = soxr.resample(clean / 32768.0, fs, SR)[int((s / fs) * SR):int((e / fs) * SR)]
    rms = lambda v: float(np.sqrt(np.mean(np.square(v))))  # noqa: E731
    assert 0.4 < rms(seg) / rms(ref) < 2.0                                  # the gap is filled
    win = np.zeros(r.size, bool)
    win[int((s / fs) * SR):int((e / fs) * SR)] = True
    m = _f0_midi(r, SR, 120.0, 400.0, win)
    assert m.size > 3 and np.median(np.abs(m - 57.0)) < 1.0                # at the right pitch


@pytest.fixture(scope="module")
def small_melodies():
    pytest.importorskip("music21")
    return V.extract_melodies(essen_per_file=30, bach=0, essen_files=["kinder0.abc"])


@pytest.mark.parametrize("voice", ["f001", "f001-12st_fw0.84"])
def test_sung_line(voice, small_melodies, monkeypatch):
    if not V.available():
        pytest.skip("pysinsy / music21 not installed")
    assert len(small_melodies) >= 20
    monkeypatch.setattr(V, "_MELODIES", small_melodies)
    c = V.voice_centre(voice)
    notes = singing.scale_notes(7, "major", c - 6, c + 6)
    y, active, info = V.sung_line(notes, 0.22, 4.0, np.random.default_rng(3), sr=SR, voice=voice)
    assert y.dtype == np.float32 and y.shape == active.shape == (4 * SR,)
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    assert abs(np.abs(y).max() - V.PEAK) < 1e-3
    assert 0.3 < active.mean() < 0.95
    assert not active[: int(0.25 * SR)].any()                               # lead-in rest
    assert np.sqrt(np.mean(y[active] ** 2)) > 10 * np.sqrt(np.mean(y[~active] ** 2) + 1e-12)
    assert info["voice"] == voice and info["tunes"] and info["syllables"] >= 8
    assert len(info["burst_at_s"]) <= info["bursts"]
    assert info["bursts"] == 0 or info["bursts_world_repaired"] + info["dropped_phrases"] > 0
    assert info["post_silenced"] == 0
    lo, hi = (440 * 2 ** ((notes[i] - 69 + d) / 12) for i, d in ((0, -4), (-1, 4)))
    m = _f0_midi(y, SR, lo, hi, active)
    assert m.size > 50
    near = np.abs(m[:, None] - notes[None, :]).min(axis=1) <= 1.5
    assert near.mean() > 0.8, near.mean()


@pytest.mark.parametrize("always", [False, True])
def test_long_burst_rerender_then_drop(always, small_melodies, monkeypatch):
    """A burst too long to interpolate: re-render at another tempo; if it stays, drop the phrase."""
    if not V.available():
        pytest.skip("pysinsy / music21 not installed")
    monkeypatch.setattr(V, "_MELODIES", small_melodies)
    real = V.render_musicxml
    calls = []

    def bursty(xml):
        x = real(xml)
        calls.append(x.size)
        if always or len(calls) == 1:
            a, b = int(0.5 * V.GEN_FS), int(0.85 * V.GEN_FS)       # 350 ms of runaway filter
            x[a:b] = 1e11 * np.sin(np.arange(b - a) * 0.3)
        return x

    monkeypatch.setattr(V, "render_musicxml", bursty)
    notes = singing.scale_notes(2, "minor", 59, 71)
    y, active, info = V.sung_line(notes, 0.2, 4.0, np.random.default_rng(5), sr=SR)
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0 and info["post_silenced"] == 0
    if always:
        assert len(calls) == 3 and info["rerenders"] == 2 and info["dropped_phrases"] >= 1
        lead = info["lead_s"]
        assert not active[int((lead + 0.5) * SR):int((lead + 0.85) * SR)].any()
    else:
        assert len(calls) == 2 and info["rerenders"] == 1 and info["dropped_phrases"] == 0
        assert info["bursts_per_render"][0] >= 1
