"""Orchestral texture: dynamics and their slow evolution, onset density, pulse regularity,
harmonic/percussive balance, low-end energy and sustain.

Score cues tend to swell slowly, sustain, and often lack a steady backbeat; songs sit on a
regular pulse with a compressed dynamic range. All values derive from the block's mel view.
"""

from __future__ import annotations

import numpy as np

from ..spectrum import Spectrum
from ._stats import moving_average, moving_variance

#: Harmonic/percussive split by median filtering (Fitzgerald 2010) on the mel view:
#: frames along time for the harmonic part, bands along frequency for the percussive part.
HPSS_TIME, HPSS_FREQ = 17, 9
assert HPSS_TIME // 2 == 8 and HPSS_FREQ == 9, "the median networks below are for 8 and 9"
#: Lag range (s) searched for a pulse.
PULSE_LAGS = (0.25, 1.5)


#: Compare-exchange networks: a full sort of 8 values (19 comparators, Knuth) and the
#: median of 9 (19 comparators, Paeth/Devillard). Checked exhaustively by the 0-1 principle
#: in the tests.
SORT8 = ((0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7), (0, 1), (2, 3), (4, 5),
         (6, 7), (2, 4), (3, 5), (1, 4), (3, 6), (1, 2), (3, 4), (5, 6))
MEDIAN9 = ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3), (5, 8),
           (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2))


def rank_filter(x: np.ndarray, *, size: int, axis: int, network, rank: int) -> np.ndarray:
    """Sliding order statistic along one axis through a compare-exchange network.

    Equal, value for value, to ``scipy.ndimage.rank_filter(x, rank, size=...)`` along
    ``axis`` with ``mode="nearest"`` (window ``[i - size//2, i + size - 1 - size//2]``), but
    made of whole-array ``minimum`` / ``maximum`` calls: about ten times faster for the small
    windows HPSS uses.

    Parameters
    ----------
    x : np.ndarray
    size : int
        Window length.
    axis : int
    network : sequence of (i, j)
        Comparators that bring the wanted order statistic to position ``rank``.
    rank : int
    """
    n = x.shape[axis]
    before = size // 2
    pad = [(0, 0)] * x.ndim
    pad[axis] = (before, size - 1 - before)
    xp = np.pad(x, pad, mode="edge")
    p = [xp[tuple(slice(k, k + n) if a == axis else slice(None) for a in range(x.ndim))]
         for k in range(size)]
    for i, j in network:
        p[i], p[j] = np.minimum(p[i], p[j]), np.maximum(p[i], p[j])
    return p[rank]


def frame_loudness(spec: Spectrum) -> np.ndarray:
    """Frame level in dB re a full-scale sine's power (Parseval on the Hann-windowed frame)."""
    n = spec.n_fft
    ms = 2.0 * spec.power.sum(axis=1) / (n * n * 0.375)
    return (10 * np.log10(ms + 1e-12)).astype(np.float32)


def onset_strength(spec: Spectrum) -> np.ndarray:
    """Mean positive log-mel flux per frame (librosa's ``onset_strength`` on the shared mel)."""
    lm = spec.log_mel
    d = np.maximum(np.diff(lm, axis=0, prepend=lm[:1]), 0)
    return d.mean(axis=1).astype(np.float32)


def harmonic_share(spec: Spectrum) -> np.ndarray:
    """Share of harmonic energy per frame from median-filter HPSS on the mel view.

    The mel power is first averaged over pairs of frames (32 ms), which quarters the cost of
    the median filters; the time kernel spans the same 0.27 s as 17 frames would.

    Returns
    -------
    np.ndarray [shape=(t,)]
        ``H / (H + P)`` in [0, 1]: sustained tones push it up, drums down.
    """
    m = spec.mel
    t = m.shape[0]
    even = m[: t - t % 2].reshape(-1, 2, m.shape[1]).mean(axis=1)
    if t % 2:
        even = np.concatenate([even, m[-1:]], axis=0)
    # Medians by compare-exchange networks: the same values as scipy.ndimage.median_filter
    # (sizes (8, 1) and (1, 9), mode "nearest"), a tenth of the time.
    h = rank_filter(even, size=HPSS_TIME // 2, axis=0, network=SORT8, rank=4)
    p = rank_filter(even, size=HPSS_FREQ, axis=1, network=MEDIAN9, rank=4)
    hs = h.sum(axis=1)
    ps = p.sum(axis=1)
    share = (hs / (hs + ps + 1e-10)).astype(np.float32)
    return np.repeat(share, 2)[:t]


def frame_features(spec: Spectrum, shared: dict) -> dict[str, np.ndarray]:
    rate = spec.frame_rate
    loud = frame_loudness(spec)
    onset = onset_strength(spec)
    # Onset peaks: local maxima that stand above the local mean + std (0.5 s window).
    w = int(round(0.5 * rate))
    thr = moving_average(onset, w) + np.sqrt(moving_variance(onset, w))
    prev = np.concatenate([[np.inf], onset[:-1]])
    nxt = np.concatenate([onset[1:], [np.inf]])
    peaks = (onset > prev) & (onset >= nxt) & (onset > thr)
    lm = spec.log_mel - spec.log_mel.max(axis=1, keepdims=True)
    lm = np.maximum(lm, -80) + 80  # dB above (frame max - 80)
    a, b = lm[:-1], lm[1:]
    sim = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)
    sim = np.concatenate([sim, sim[-1:]])
    mel_freqs = shared["mel_freqs"]
    low = spec.mel[:, mel_freqs < 150].sum(axis=1) / (spec.mel.sum(axis=1) + 1e-10)
    return {
        "loudness_db": loud,
        "loudness_slow_db": moving_average(loud, int(round(1.0 * rate))),
        "onset_strength": onset,
        "onset_peak": peaks.astype(np.float32),
        "harmonic_share": harmonic_share(spec),
        "low_share": low.astype(np.float32),
        "sustain": sim.astype(np.float32),
    }


def segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, frame_rate: float
                     ) -> dict[str, np.ndarray]:
    loud = frames["loudness_db"][idx]
    o = frames["onset_strength"][idx]
    o = o - o.mean(axis=1, keepdims=True)
    n = o.shape[1]
    spec = np.fft.rfft(o, n=2 * n, axis=1)
    acf = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :n]
    acf = acf / (acf[:, :1] + 1e-10)
    lo = int(PULSE_LAGS[0] * frame_rate)
    hi = min(int(PULSE_LAGS[1] * frame_rate), n - 1)
    pulse = acf[:, lo:hi + 1].max(axis=1) if hi > lo else np.zeros(len(idx))
    return {
        "loudness_mean_db": loud.mean(axis=1),
        "loudness_p95_db": np.percentile(loud, 95, axis=1).astype(np.float32),
        "dynamic_range_db": (np.percentile(loud, 95, axis=1) - np.percentile(loud, 5, axis=1)).astype(np.float32),
        "loudness_slow_std_db": frames["loudness_slow_db"][idx].std(axis=1),
        "onset_strength_mean": frames["onset_strength"][idx].mean(axis=1),
        "onset_rate": (frames["onset_peak"][idx].sum(axis=1) * frame_rate / idx.shape[1]).astype(np.float32),
        "pulse_regularity": pulse.astype(np.float32),
        "harmonic_share_mean": frames["harmonic_share"][idx].mean(axis=1),
        "low_share_mean": frames["low_share"][idx].mean(axis=1),
        "sustain_mean": frames["sustain"][idx].mean(axis=1),
    }


__all__ = ["frame_loudness", "onset_strength", "harmonic_share", "frame_features", "segment_features"]
