"""The one time-frequency analysis every feature is derived from.

A block of mono samples at :data:`scoresong.audio.ANALYSIS_SR` goes through exactly one
STFT here; the mel and log-frequency views are matrix products of its magnitude, so no
feature ever recomputes a transform. Arrays are laid out frames-first ``(t, f)``, the
order the FFT produces them in, and kept in float32.

Frame ``j`` (an absolute index in the file) covers the samples
``[j*hop - (n_fft-hop)/2, j*hop + (n_fft+hop)/2)``, i.e. it is centred on the hop interval
``[j*hop, (j+1)*hop)``; samples outside the signal count as zeros. Blocks computed this way
tile exactly, so a file streamed in blocks gives the same frames as one read whole.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import scipy.fft

__all__ = ["Spectrum", "stft_frames", "one_blas_thread", "N_FFT", "HOP", "N_MELS", "FMIN", "FMAX",
           "LOGF_MIN", "LOGF_MAX", "CENTS_PER_BIN"]

#: STFT size (64 ms at 16 kHz) and hop (16 ms, 62.5 frames per second).
N_FFT = 1024
HOP = 256
#: Mel view: bands and frequency range.
N_MELS = 64
FMIN, FMAX = 50.0, 7600.0
#: The telephone voice band (Hz): where a voice's formants and consonants carry words.
VOICE_BAND = (300.0, 3400.0)
#: Log-frequency view used for pitch and fluctuation: range and resolution.
LOGF_MIN, LOGF_MAX = 60.0, 7600.0
CENTS_PER_BIN = 20.0


_BLAS_LOCK = threading.Lock()
_BLAS_STATE: dict = {"libs": None, "depth": 0, "saved": []}


def _blas_libs() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded (numpy's OpenBLAS), found once."""
    if _BLAS_STATE["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController  # scikit-learn's dependency

            _BLAS_STATE["libs"] = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # noqa: BLE001 - no threadpoolctl or an unknown BLAS: leave it be
            _BLAS_STATE["libs"] = []
    return _BLAS_STATE["libs"]


@contextmanager
def one_blas_thread():
    """Run the matrix products inside on one BLAS thread (restored on exit; nestable).

    The feature products are small (a chunk's frames times a few hundred bins): OpenBLAS's
    second thread saves little on them and, while the next blocks are decoded on the other
    core (or a second process analyses another file), it competes for that core and
    spin-waits, which made them several times slower. One thread also makes the values
    independent of the machine's core count (OpenBLAS sums some products in another order
    when it splits them).
    """
    with _BLAS_LOCK:
        if _BLAS_STATE["depth"] == 0:
            libs = _blas_libs()
            _BLAS_STATE["saved"] = [lib.num_threads for lib in libs]
            for lib in libs:
                if lib.num_threads != 1:
                    lib.set_num_threads(1)
        _BLAS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_STATE["depth"] -= 1
            if _BLAS_STATE["depth"] == 0:
                for lib, n in zip(_blas_libs(), _BLAS_STATE["saved"]):
                    if n != 1:
                        lib.set_num_threads(n)


@lru_cache(maxsize=8)
def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1].astype(np.float32)


def _hz_to_mel(f):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


def mel_frequencies(n: int, fmin: float = FMIN, fmax: float = FMAX) -> np.ndarray:
    """``n`` frequencies (Hz) evenly spaced on the Slaney mel scale (librosa's convention)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n))


@lru_cache(maxsize=8)
def mel_basis(sr: int, n_fft: int, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised mel filterbank, shape ``(1 + n_fft//2, n_mels)``, float32.

    The same triangles and area normalisation as ``librosa.filters.mel`` (tested to match);
    written here so the runtime does not import librosa's filters module, which loads numba
    (56 MB of resident memory for one matrix).
    """
    fft_f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_frequencies(n_mels + 2)
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_f[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    return np.ascontiguousarray(weights.T.astype(np.float32))


@lru_cache(maxsize=8)
def logfreq_basis(sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolation matrix from STFT bins to a log-frequency grid.

    Returns
    -------
    basis : np.ndarray [shape=(1 + n_fft//2, k), dtype=float32]
    freqs : np.ndarray [shape=(k,)]
        Centre frequencies, :data:`CENTS_PER_BIN` cents apart from :data:`LOGF_MIN`.
    """
    n_bins = int(np.floor(1200 * np.log2(LOGF_MAX / LOGF_MIN) / CENTS_PER_BIN)) + 1
    freqs = LOGF_MIN * 2.0 ** (np.arange(n_bins) * CENTS_PER_BIN / 1200)
    pos = freqs / (sr / n_fft)  # fractional STFT bin
    lo = np.floor(pos).astype(int)
    frac = pos - lo
    basis = np.zeros((1 + n_fft // 2, n_bins), np.float32)
    cols = np.arange(n_bins)
    basis[lo, cols] = 1 - frac
    basis[np.minimum(lo + 1, n_fft // 2), cols] += frac
    return basis, freqs


@lru_cache(maxsize=8)
def _logfreq_taps(sr: int, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two STFT bins each log-frequency bin reads and their weights (column vectors),
    taken from :func:`logfreq_basis`."""
    basis, _ = logfreq_basis(sr, n_fft)
    cols = np.arange(basis.shape[1])
    lo = np.argmax(basis > 0, axis=0)
    hi = np.minimum(lo + 1, basis.shape[0] - 1)
    w_lo = basis[lo, cols]
    w_hi = np.where(hi > lo, basis[hi, cols], 0).astype(np.float32)
    return lo, hi, w_lo[:, None], w_hi[:, None]


def stft_frames(y: np.ndarray, *, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Power spectrogram of ``y`` on the frame grid described in the module docstring.

    ``y`` must already hold the ``(n_fft - hop) // 2`` samples of left context and
    ``(n_fft + hop) // 2`` of right context for its first and last frames (callers pad);
    it yields ``(len(y) - n_fft) // hop + 1`` frames.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), dtype=float32]
    n_fft, hop : int

    Returns
    -------
    np.ndarray [shape=(t, 1 + n_fft//2), dtype=float32]
        ``|X|**2``.
    """
    y = np.asarray(y, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop]
    spec = scipy.fft.rfft(frames * _window(n_fft), axis=-1, workers=1)
    power = spec.real ** 2
    power += spec.imag ** 2
    return power.astype(np.float32, copy=False)


@dataclass
class Spectrum:
    """One block's STFT and the views derived from it (computed on first use).

    Parameters
    ----------
    power : np.ndarray [shape=(t, f), dtype=float32]
        Power spectrogram from :func:`stft_frames`.
    sr : int
        Sample rate of the analysed signal.
    n_fft, hop : int
        Transform size and hop.
    """

    power: np.ndarray
    sr: int
    n_fft: int = N_FFT
    hop: int = HOP

    @classmethod
    def from_padded(cls, y: np.ndarray, sr: int, *, n_fft: int = N_FFT, hop: int = HOP) -> "Spectrum":
        """Analyse a block that already carries its context samples (see :func:`stft_frames`)."""
        return cls(stft_frames(y, n_fft=n_fft, hop=hop), sr, n_fft, hop)

    def centre(self, side_power: np.ndarray) -> "Spectrum":
        """The centre of a stereo image: this (mid) spectrum less the side's magnitude.

        ``max(|M| - |S|, 0)`` per cell, where ``M = (L + R) / 2`` is this spectrum and
        ``S = (L - R) / 2`` has power ``side_power`` on the same frame grid. A source panned
        to the centre (a lead vocal, dialogue) is in ``M`` only and keeps its magnitude; a
        source panned hard to one side has ``|M| = |S|`` and vanishes; wide, decorrelated
        content (stereo reverb, doubled guitars, ensembles) is mostly removed.

        Parameters
        ----------
        side_power : np.ndarray [shape=(t, f), dtype=float32]
            :func:`stft_frames` of the side signal.

        Returns
        -------
        Spectrum
            Same ``sr``, ``n_fft``, ``hop``; its magnitude is the centre estimate.

        Examples
        --------
        >>> mid = Spectrum.from_padded((left + right) / 2, sr)       # doctest: +SKIP
        >>> c = mid.centre(stft_frames((left - right) / 2))          # doctest: +SKIP
        """
        mag = self.magnitude - np.sqrt(side_power)
        np.maximum(mag, 0.0, out=mag)
        out = Spectrum(mag * mag, self.sr, self.n_fft, self.hop)
        out.__dict__["magnitude"] = mag  # the cached property, already known
        return out

    @property
    def n_frames(self) -> int:
        return self.power.shape[0]

    @property
    def frame_rate(self) -> float:
        return self.sr / self.hop

    @cached_property
    def freqs(self) -> np.ndarray:
        return np.fft.rfftfreq(self.n_fft, 1.0 / self.sr).astype(np.float32)

    @cached_property
    def magnitude(self) -> np.ndarray:
        return np.sqrt(self.power)

    @cached_property
    def mel(self) -> np.ndarray:
        """Mel power, shape ``(t, N_MELS)``."""
        with one_blas_thread():
            return self.power @ mel_basis(self.sr, self.n_fft)

    @cached_property
    def log_mel(self) -> np.ndarray:
        """Mel power in dB (floor at -100 dB), shape ``(t, N_MELS)``."""
        return 10.0 * np.log10(np.maximum(self.mel, 1e-10, dtype=np.float32))

    @cached_property
    def logfreq_bins(self) -> np.ndarray:
        """Magnitude on the log-frequency grid, bins first: shape ``(k, t)``.

        Each grid bin interpolates linearly between two STFT bins (the two non-zeros of
        its column of :func:`logfreq_basis`), so it is two gathered rows of the transposed
        magnitude, weighted and added, instead of a dense product with a matrix that is
        more than 99% zeros.
        """
        lo, hi, w_lo, w_hi = _logfreq_taps(self.sr, self.n_fft)
        mt = np.ascontiguousarray(self.magnitude.T)
        out = mt[lo]
        out *= w_lo
        out += mt[hi] * w_hi
        return out

    @cached_property
    def logfreq(self) -> np.ndarray:
        """Magnitude on the log-frequency grid, shape ``(t, k)``."""
        return np.ascontiguousarray(self.logfreq_bins.T)

    @property
    def logfreq_freqs(self) -> np.ndarray:
        return logfreq_basis(self.sr, self.n_fft)[1]

    @cached_property
    def frame_power(self) -> np.ndarray:
        """Mean power per frame (up to a constant, the signal power), shape ``(t,)``."""
        return self.power.mean(axis=1)
