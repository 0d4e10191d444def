"""Vectorised sliding-window statistics shared by the feature families (no frame loops)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..spectrum import one_blas_thread


def moving_average(x: np.ndarray, width: int, *, axis: int = 0) -> np.ndarray:
    """Centred moving average over ``width`` samples along ``axis``; edges average fewer.

    Computed from cumulative sums, so the cost does not depend on ``width``.
    """
    x = np.moveaxis(np.asarray(x, dtype=np.float64), axis, 0)
    n = x.shape[0]
    half = width // 2
    c = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    idx = np.arange(n)
    lo = np.clip(idx - half, 0, n)
    hi = np.clip(idx - half + width, 0, n)
    shape = (n,) + (1,) * (x.ndim - 1)
    out = (c[hi] - c[lo]) / (hi - lo).reshape(shape)
    return np.moveaxis(out, 0, axis).astype(np.float32)


def moving_variance(x: np.ndarray, width: int, *, axis: int = 0) -> np.ndarray:
    """Centred moving variance over ``width`` samples along ``axis`` (population variance)."""
    m = moving_average(x, width, axis=axis)
    m2 = moving_average(np.asarray(x, dtype=np.float64) ** 2, width, axis=axis)
    return np.maximum(m2 - m.astype(np.float64) ** 2, 0).astype(np.float32)


def centred_windows(x: np.ndarray, width: int, *, fill: float = np.nan) -> np.ndarray:
    """View of shape ``(len(x), width)``: row ``t`` holds ``x`` around ``t`` (padded with ``fill``)."""
    left = width // 2
    xp = np.concatenate([np.full(left, fill, x.dtype), x, np.full(width - left - 1, fill, x.dtype)])
    return np.lib.stride_tricks.sliding_window_view(xp, width)


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each ``True`` element, the length of the run of ``True`` it belongs to (0 elsewhere)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.size == 0:
        return np.zeros(0, np.int64)
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    lengths = ends - starts
    # Paint each run with its length: +len at start, -len at end, cumulative sum.
    marks = np.zeros(mask.size + 1, np.int64)
    np.add.at(marks, starts, lengths)
    np.add.at(marks, ends, -lengths)
    out = np.cumsum(marks[:-1])
    return out * mask


def row_run_lengths(mask: np.ndarray) -> np.ndarray:
    """:func:`run_lengths` within each row of a 2-D mask: runs end at the row's edges."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.zeros((mask.shape[0], mask.shape[1] + 1), bool)
    padded[:, :-1] = mask
    return run_lengths(padded.ravel()).reshape(padded.shape)[:, :-1]


@lru_cache(maxsize=16)
def _band_projection(width: int, rate: float, band: tuple[float, float],
                     total: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Detrending followed by the real and imaginary parts of the DFT bins in ``band`` and
    in ``total``, as one ``(width, m)`` float64 matrix; and the ``(m, 2)`` 0/1 matrix that
    sums the squares of its outputs into the band's and the total's power."""
    f = np.fft.rfftfreq(width, 1.0 / rate)
    in_band = np.flatnonzero((f >= band[0]) & (f <= band[1]))
    in_total = np.flatnonzero((f >= total[0]) & (f <= total[1]))
    bins = np.concatenate([in_band, in_total])
    t = np.arange(width) - (width - 1) / 2
    t /= np.sqrt((t ** 2).sum())
    detrend = np.eye(width) - 1.0 / width - t[:, None] * t[None, :]
    phase = 2 * np.pi * np.outer(np.arange(width), bins) / width
    proj = detrend @ np.concatenate([np.cos(phase), -np.sin(phase)], axis=1)
    which = np.tile(np.r_[np.zeros(in_band.size, int), np.ones(in_total.size, int)], 2)
    sums = np.zeros((proj.shape[1], 2))
    sums[np.arange(proj.shape[1]), which] = 1.0
    return np.ascontiguousarray(proj), sums


def band_power_ratio(windows: np.ndarray, rate: float, band: tuple[float, float],
                     total: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Share of power in ``band`` among ``total`` (Hz) for each row of ``windows``.

    Rows are detrended (mean and linear slope removed) and the power of their DFT bins in
    ``band`` and ``total`` summed. Both steps are linear, so they are one product with a
    small ``(width, 2 * bins)`` float64 matrix instead of an FFT of every row.

    Returns
    -------
    ratio : np.ndarray [shape=(n,)]
        Power in ``band`` / power in ``total`` (0 where ``total`` holds no power).
    amplitude : np.ndarray [shape=(n,)]
        Peak amplitude of the band-limited component, in the units of ``windows``.
    """
    windows = np.asarray(windows)
    width = windows.shape[-1]
    proj, sums = _band_projection(width, float(rate), tuple(band), tuple(total))
    # The projection removes any offset; taking the first value off first keeps a large one
    # (pitch in cents) out of the rounding, and leaves a constant row exactly zero (no power).
    w = np.subtract(windows, windows[..., :1], dtype=np.float64)
    with one_blas_thread():
        x = w @ proj
        x *= x
        p = x @ sums
    pb, pt = p[..., 0], p[..., 1]
    ratio = np.divide(pb, pt, out=np.zeros_like(pb), where=pt > 0)
    amplitude = 2.0 * np.sqrt(pb) / width
    return ratio.astype(np.float32), amplitude.astype(np.float32)


def seg_nanmean(values: np.ndarray, idx: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Mean of ``values[idx]`` per row of ``idx`` ignoring NaN; ``fill`` where a row is all NaN."""
    v = values[idx]
    ok = np.isfinite(v)
    n = ok.sum(axis=1)
    s = np.where(ok, v, 0).sum(axis=1)
    return np.where(n > 0, s / np.maximum(n, 1), fill).astype(np.float32)


def seg_nanstd(values: np.ndarray, idx: np.ndarray, *, fill: float = 0.0) -> np.ndarray:
    """Standard deviation of ``values[idx]`` per row ignoring NaN; ``fill`` where < 2 values."""
    v = values[idx]
    ok = np.isfinite(v)
    n = ok.sum(axis=1)
    m = np.where(ok, v, 0).sum(axis=1) / np.maximum(n, 1)
    d = np.where(ok, v - m[:, None], 0)
    var = (d ** 2).sum(axis=1) / np.maximum(n, 1)
    return np.where(n > 1, np.sqrt(var), fill).astype(np.float32)
