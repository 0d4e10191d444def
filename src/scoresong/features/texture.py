"""Spectral texture: MFCC, contrast, flatness, centroid, bandwidth, roll-off.

All computed from the block's power spectrogram and its mel view; formulas follow librosa's
``feature.spectral_*`` definitions (McFee et al. 2015) evaluated on the shared arrays.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft

from ..spectrum import N_MELS, VOICE_BAND, Spectrum, one_blas_thread

#: MFCCs kept (0 is overall level, which mixing gain changes; 1-13 describe timbre).
N_MFCC = 14
#: Octave bands (Hz) for spectral contrast (Jiang et al. 2002).
CONTRAST_EDGES = (100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 7600.0)


@lru_cache(maxsize=4)
def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_in, n_out)`` matrix ``M`` with ``x @ M`` = the first ``n_out`` orthonormal DCT-II
    coefficients of each row of ``x``: row ``i`` of ``M`` is the transform of the unit
    vector ``e_i``. (Schema 2 and earlier multiplied by the transpose, i.e. took the
    inverse transform, DCT-III; coefficient 0 was then not the loudness.)"""
    return scipy.fft.dct(np.eye(n_in, dtype=np.float32), type=2, norm="ortho", axis=1)[:, :n_out].copy()


def mfcc(log_mel: np.ndarray, *, n_mfcc: int = N_MFCC) -> np.ndarray:
    """MFCCs as the orthonormal DCT-II of the log-mel spectrum (librosa's convention).

    Parameters
    ----------
    log_mel : np.ndarray [shape=(t, n_mels)]
        Mel power in dB.
    n_mfcc : int

    Returns
    -------
    np.ndarray [shape=(t, n_mfcc)]
    """
    with one_blas_thread():
        return log_mel @ _dct_matrix(log_mel.shape[1], n_mfcc)


def spectral_shape(spec: Spectrum, *, roll_percent: float = 0.85) -> dict[str, np.ndarray]:
    """Centroid, bandwidth and roll-off (Hz) and flatness of each frame.

    Centroid and bandwidth use the magnitude as weights (as librosa does), roll-off the
    frequency below which ``roll_percent`` of the power lies, flatness the ratio of the
    geometric to the arithmetic mean of the power (Dubnov 2004), 1 for white noise.

    Returns
    -------
    dict of np.ndarray [shape=(t,)]
    """
    mag = spec.magnitude
    f = spec.freqs
    total = mag.sum(axis=1) + 1e-10
    centroid = (mag @ f) / total
    bandwidth = np.sqrt(np.maximum((mag @ (f ** 2)) / total - centroid ** 2, 0))
    cum = np.cumsum(spec.power, axis=1)
    thresh = roll_percent * cum[:, -1:]
    rolloff = f[np.minimum((cum < thresh).sum(axis=1), f.size - 1)]
    p = spec.power[:, 1:] + 1e-10  # skip DC
    flatness = np.exp(np.log(p).mean(axis=1)) / p.mean(axis=1)
    return {"centroid": centroid.astype(np.float32), "bandwidth": bandwidth.astype(np.float32),
            "rolloff": rolloff.astype(np.float32), "flatness": flatness.astype(np.float32)}


def spectral_contrast(spec: Spectrum, *, quantile: float = 0.2) -> np.ndarray:
    """Octave-band spectral contrast (dB): mean of the top minus the bottom ``quantile`` of
    each band's power (Jiang et al. 2002, as in librosa). Peaky bands (tonal sources) score
    high, noise-like bands low.

    Contrast is only ever summarised over 5 s segments, so it is evaluated on every second
    frame (32 ms apart) and held for the frame after: half the cost of the sorts that
    dominate it.

    Returns
    -------
    np.ndarray [shape=(t, len(CONTRAST_EDGES) - 1)]
    """
    f = spec.freqs
    t = spec.power.shape[0]
    power = spec.power[::2]
    out = []
    for lo, hi in zip(CONTRAST_EDGES[:-1], CONTRAST_EDGES[1:]):  # six bands, not frames
        band = power[:, (f >= lo) & (f < hi)]
        k = max(1, int(round(quantile * band.shape[1])))
        # A full sort (vectorised, SIMD) is several times faster than a two-point partition.
        part = np.sort(band, axis=1)
        valley = part[:, :k].mean(axis=1)
        peak = part[:, -k:].mean(axis=1)
        out.append(10 * np.log10((peak + 1e-10) / (valley + 1e-10)))
    return np.repeat(np.stack(out, axis=1).astype(np.float32), 2, axis=0)[:t]


def frame_features(spec: Spectrum, shared: dict) -> dict[str, np.ndarray]:
    """Frame-level texture values; ``shared["mfcc"]`` is reused by the vocal family."""
    out = spectral_shape(spec)
    cc = shared["mfcc"]
    for i in range(1, cc.shape[1]):
        out[f"mfcc{i}"] = cc[:, i]
    con = spectral_contrast(spec)
    for i in range(con.shape[1]):
        out[f"contrast{i}"] = con[:, i]
    f = spec.freqs
    total = spec.power.sum(axis=1) + 1e-10
    out["voiceband_share"] = (spec.power[:, (f >= VOICE_BAND[0]) & (f <= VOICE_BAND[1])].sum(axis=1) / total).astype(np.float32)
    return out


def segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, frame_rate: float
                     ) -> dict[str, np.ndarray]:
    """Mean and standard deviation of every texture value per segment."""
    out = {}
    keys = ["centroid", "bandwidth", "rolloff", "flatness", "voiceband_share"]
    keys += [k for k in frames if k.startswith("mfcc") or k.startswith("contrast")]
    for k in keys:
        v = frames[k][idx]
        out[f"{k}_mean"] = v.mean(axis=1)
        out[f"{k}_std"] = v.std(axis=1)
    return out


__all__ = ["mfcc", "spectral_shape", "spectral_contrast", "frame_features", "segment_features",
           "N_MFCC", "N_MELS"]
