"""corpus.diagnose_ambience's statistics say what their docstring says on signals whose answer
is known: a steady hum keeps its pitch class and pitch, a melody changes them, an exact loop
correlates with itself at its period. Tolerances are wide: the statistics are diagnostics."""

from __future__ import annotations

import numpy as np

from corpus.diagnose_ambience import STATISTICS, _auc, statistics

SR = 22050


def _hum(seconds=20.0, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * 100 * t) + 0.5 * np.sin(2 * np.pi * 200 * t)
            + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def _melody(seconds=20.0, seed=1):
    n = int(seconds * 2)
    f = np.repeat(np.random.default_rng(seed).choice([220, 247, 262, 294, 330, 349, 392], n), SR // 2)
    env = np.tile(np.exp(-np.arange(SR // 2) / SR * 4), n)
    return (np.sin(2 * np.pi * np.cumsum(f) / SR) * env).astype(np.float32)


def test_hum_against_melody():
    hum, mel = statistics(_hum()), statistics(_melody())
    assert set(hum) == set(STATISTICS)
    assert hum["chroma_change"] < 0.02 < 0.3 < mel["chroma_change"]
    assert hum["pitch_hold"] > 0.95 and mel["pitch_hold"] < 0.5
    assert hum["longlag_flux_db"] < mel["longlag_flux_db"]


def test_an_exact_loop_correlates_with_itself():
    rng = np.random.default_rng(4)
    burst = (rng.standard_normal(int(1.7 * SR)) * np.linspace(0, 1, int(1.7 * SR)) ** 2).astype(np.float32)
    loop = np.tile(burst, 12)[: 20 * SR]
    noise = (0.3 * rng.standard_normal(20 * SR)).astype(np.float32)
    assert statistics(loop)["loop_corr"] > 0.8 > 0.2 > statistics(noise)["loop_corr"]


def test_auc_ties_and_order():
    assert _auc([2, 3], [0, 1]) == 1.0 and _auc([0, 1], [2, 3]) == 0.0
    assert _auc([1, 1], [1, 1]) == 0.5 and np.isnan(_auc([], [1]))
