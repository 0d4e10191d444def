"""corpus.diagnose_rhythm's statistics say what their docstring says on inputs whose answer is
known: a row repeating at a lag in range has periodicity 1, noise about 0; pauses and the
voiced share count what they should; twins are matched by the builder's folder layout.
Tolerances are wide where noise is involved: the statistics are diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from corpus.diagnose_rhythm import FRAME_RATE as RATE
from corpus.diagnose_rhythm import STATISTICS, periodicity, statistics, twins


def test_periodicity_of_a_pulse_train_noise_and_a_constant():
    n = 320
    pulse = np.zeros(n)
    pulse[::25] = 1.0                        # every 0.4 s: inside the 0.12-1.0 s lags
    noise = np.random.default_rng(0).standard_normal(n)
    slow = np.zeros(n)
    slow[::150] = 1.0                        # every 2.4 s: outside the lags
    p = periodicity(np.stack([pulse, noise, np.ones(n), slow]), RATE)
    # A finite row's autocorrelation at lag k is (n - k) / n of the zero-lag one for an exact
    # repeat: 0.92 at 25 frames of 320.
    assert p[0] == pytest.approx((n - 25 - 1) / n, abs=0.03)
    assert abs(p[1]) < 0.25
    assert p[2] == 0.0
    assert p[3] < 0.05


def _frames(voiced, env=None, strength=None, onset_strength=None):
    n = voiced.size
    voiced = voiced.astype(np.float32)
    onset = voiced * (np.concatenate([[1], 1 - voiced[:-1]]))
    rng = np.random.default_rng(1)
    return {"vocal.voiced": voiced,
            "vocal.voicing_onset": onset.astype(np.float32),
            "vocal.voiceband_env_db": (env if env is not None else rng.standard_normal(n)).astype(np.float32),
            "vocal.pitch_strength": (strength if strength is not None else voiced).astype(np.float32),
            "orchestral.onset_strength": (onset_strength if onset_strength is not None
                                          else rng.random(n)).astype(np.float32)}


def test_voiced_share_and_pauses():
    # Two segments of 5.12 s: 1 s voiced, 0.5 s unvoiced, repeated (a 0.5-s pause each 1.5 s).
    unit = np.r_[np.ones(62), np.zeros(31)].astype(bool)
    voiced = np.tile(unit, 8)[:640]
    s = statistics(_frames(voiced), RATE)
    assert set(s) == set(STATISTICS)
    assert s["voiced_frac"] == pytest.approx(voiced.mean(), abs=1e-6)
    # Per 5.12 s segment: pauses of 31 frames (0.5 s) start 3 or 4 times (the last one may be
    # cut by the segment's edge under 0.3 s).
    assert 3 / 5.12 <= s["pauses_per_s"] <= 4 / 5.12
    # Short gaps (0.1 s) are not pauses.
    short = np.tile(np.r_[np.ones(40), np.zeros(6)].astype(bool), 20)[:640]
    assert statistics(_frames(short), RATE)["pauses_per_s"] == 0.0


def test_a_voice_rising_with_the_beat_correlates_with_onsets():
    n = 640
    beat = np.zeros(n)
    beat[::31] = 1.0                          # onsets every ~0.5 s
    strength = np.convolve(beat, np.ones(10), "full")[:n]   # salience rises at each onset
    locked = statistics(_frames(np.ones(n, bool), strength=strength, onset_strength=beat), RATE)
    rng = np.random.default_rng(3)
    free = statistics(_frames(np.ones(n, bool), strength=rng.random(n), onset_strength=beat), RATE)
    assert locked["rise_onset_corr"] > 0.5 > free["rise_onset_corr"]
    assert locked["strength_periodicity"] > 0.8


def test_under_one_segment_gives_nothing():
    assert statistics(_frames(np.ones(100, bool)), RATE) == {}


def test_twins_are_complete_triplets_with_a_generator():
    rows = [
        {"path": "gen/song/00001.flac", "generator": "rap"},
        {"path": "gen/speech/00001.flac", "generator": ""},
        {"path": "gen/backing/00001.flac", "generator": ""},
        {"path": "gen/song/00002.flac", "generator": "sinsy"},       # no twin: left out
        {"path": "gen/backing/00002.flac", "generator": ""},
        {"path": "pkgs/x/y.ogg", "generator": ""},
    ]
    t = twins(rows)
    assert list(t) == ["00001"]
    assert set(t["00001"]) == {"song", "speech", "backing"}


def test_real_recordings_are_grouped_beside_the_corpus(tmp_path):
    """--real: every group with 3+ excerpts is measured (excerpts of a longer file included);
    a trained generator's songs, a score kind and each real package's label are groups."""
    import csv

    import soundfile as sf

    from corpus.diagnose_rhythm import real_against_corpus

    sr = 16000
    t = np.arange(int(12 * sr)) / sr
    gated = (0.3 * np.sin(2 * np.pi * 300 * t) * ((t % 0.5) < 0.25)).astype(np.float32)
    steady = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)

    def manifest(root, rows):
        (root / "a").mkdir(parents=True)
        for i, r in enumerate(rows):
            sf.write(root / f"a/{i}.wav", gated if r.pop("gated") else steady, sr)
            r["path"] = f"a/{i}.wav"
        with open(root / "manifest.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return rows

    corpus_rows = manifest(tmp_path / "c", [
        *({"label": "song", "kind": "song_constructed", "generator": "singer", "gated": True}
          for _ in range(3)),
        *({"label": "score", "kind": "score", "generator": "", "gated": False} for _ in range(3)),
        *({"label": "song", "kind": "song_constructed", "generator": "rap", "gated": True}
          for _ in range(3)),                             # enough rows, but rap is not trained
    ])
    manifest(tmp_path / "e", [
        *({"label": "song", "group": "pkg", "start_s": 2.0, "duration_s": 8.0, "gated": True}
          for _ in range(3)),
        *({"label": "score", "group": "pkg", "start_s": "", "duration_s": "", "gated": False}
          for _ in range(2)),                                                  # under 3: left out
    ])
    res = real_against_corpus(tmp_path / "c", corpus_rows, tmp_path / "e", n=5, seed=0, jobs=1)
    assert set(res) == {"corpus song singer", "corpus score", "real song pkg"}
    assert all(d["n"] == 3 for d in res.values())
    # A note every 0.5 s repeats (about 0.89: the overlap (320 - 31) / 320 caps it near 0.90);
    # a held tone's level moves only at the STFT's edges (about 0.5). Quartiles: [q25, median, q75].
    assert res["real song pkg"]["env_periodicity"][1] > 0.8 > res["corpus score"]["env_periodicity"][1]
