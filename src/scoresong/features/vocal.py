"""Vocal presence: evidence of a sung lead voice, as opposed to speech, choir pads and
lead instruments.

Everything here is derived from the block's :class:`~scoresong.spectrum.Spectrum`:
the predominant pitch contour comes from harmonic summation on its log-frequency view,
the fluctogram from frame-to-frame shifts of the same view, vocal variance from its MFCCs.

Frame-level quantities are returned by :func:`frame_features`; per-segment statistics by
:func:`segment_features`.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..spectrum import CENTS_PER_BIN, VOICE_BAND, Spectrum
from ._stats import (band_power_ratio, centred_windows, moving_average, moving_variance,
                     row_run_lengths, run_lengths, seg_nanmean, seg_nanstd)

#: Candidate fundamental range for the lead voice (Hz).
F0_RANGE = (80.0, 1000.0)
#: A frame is "voiced" (has a clear predominant harmonic source) above this strength.
VOICING_THRESHOLD = 2.2
#: Largest frame-to-frame pitch step (cents) still counted as one continuous contour.
CONTOUR_STEP = 60.0
#: Window (frames) over which vibrato is measured: 32 frames = 0.51 s at 62.5 fps.
VIBRATO_WINDOW = 32
#: A contour frame is part of a held note when its smoothed pitch moves slower than this
#: (cents per second) ...
PLATEAU_SLOPE = 300.0
#: Frames of the moving average applied first (160 ms: one period of a 6 Hz vibrato, which
#: it cancels, so a vibrato note still counts as held).
PLATEAU_SMOOTH = 10
#: ... for at least this long (s), after smoothing. Sung syllables hold a note for 0.12 s and more and
#: change note in 50-150 ms; speech intonation glides without holding.
PLATEAU_MIN_S = 0.064
#: Syllable-rate band (Hz) of the voicing and harmonic-strength modulations.
SYLLABLE_BAND = (2.0, 8.0)
#: Half-extent (cents) a vibrato frame must have: below is a steady tone, above a glide or a
#: pitch error (sung vibrato measures 30-100; Prame 1997).
VIBRATO_EXTENT = (15.0, 150.0)


def note_plateaus(cents: np.ndarray, in_contour: np.ndarray, *, frame_rate: float
                  ) -> np.ndarray:
    """Frames of the pitch contour that hold a note: piecewise-stable pitch.

    The contour is smoothed over :data:`PLATEAU_SMOOTH` frames (160 ms, which cancels a
    vibrato near 6 Hz); a frame belongs to a plateau when the smoothed pitch moves slower
    than :data:`PLATEAU_SLOPE` cents/s for at least :data:`PLATEAU_MIN_S` within one
    continuous contour.

    Parameters
    ----------
    cents : np.ndarray [shape=(t,)]
    in_contour : np.ndarray [shape=(t,), dtype=bool]
    frame_rate : float

    Returns
    -------
    np.ndarray [shape=(t,), dtype=bool]

    Examples
    --------
    A staircase of 500 ms notes with a 6 Hz, 50-cent vibrato gives plateaus on about 65%
    of its frames (300 ms notes: about 40%); a steady glide of 5 semitones per second
    about 5%, and a speech-like 1.5 Hz, 3-semitone swing none.
    """
    c = np.where(in_contour, cents, 0.0).astype(np.float64)
    w = moving_average(in_contour.astype(np.float64), PLATEAU_SMOOTH)
    sm = moving_average(c, PLATEAU_SMOOTH) / np.maximum(w, 1e-9)
    slope = np.abs(np.gradient(sm)) * frame_rate
    # Only frames whose whole smoothing window lies on the contour are trusted.
    stable = in_contour & (w > 0.99) & (slope < PLATEAU_SLOPE)
    return run_lengths(stable) >= int(round(PLATEAU_MIN_S * frame_rate))


def harmonic_salience(logmag: np.ndarray, *, n_harmonics: int = 8, decay: float = 0.8,
                      f0_bins: tuple[int, int]) -> np.ndarray:
    """Harmonic-sum pitch salience on a log-frequency magnitude spectrogram.

    ``salience[t, k] = sum_h decay**(h-1) * logmag[t, k + 1200*log2(h)/CENTS_PER_BIN]``
    (Klapuri 2006; Salamon & Gomez 2012 use the same summation). Harmonics past the top of
    the grid contribute nothing.

    Parameters
    ----------
    logmag : np.ndarray [shape=(t, k)]
        Compressed magnitude on the :data:`CENTS_PER_BIN` log-frequency grid.
    n_harmonics : int
        Harmonics summed.
    decay : float
        Weight ratio between consecutive harmonics.
    f0_bins : (int, int)
        Range of grid bins considered as fundamentals.

    Returns
    -------
    np.ndarray [shape=(t, f0_bins[1] - f0_bins[0])]
    """
    lo, hi = f0_bins
    t, k = logmag.shape
    out = np.zeros((t, hi - lo), np.float32)
    for h in range(1, n_harmonics + 1):  # loop over harmonics, never over frames
        shift = int(round(1200 * np.log2(h) / CENTS_PER_BIN))
        a, b = lo + shift, min(hi + shift, k)
        if a >= k:
            break
        out[:, : b - a] += (decay ** (h - 1)) * logmag[:, a:b]
    return out


def predominant_pitch(spec: Spectrum) -> tuple[np.ndarray, np.ndarray]:
    """Predominant fundamental (cents re 10 Hz) and its harmonic strength per frame.

    The strength is the salience peak divided by the mean salience over all candidates:
    about 1 for noise or dense polyphony, large for one clear harmonic source.

    Parameters
    ----------
    spec : Spectrum

    Returns
    -------
    cents : np.ndarray [shape=(t,)]
        ``1200*log2(f0/10)``, refined between grid bins by parabolic interpolation.
    strength : np.ndarray [shape=(t,)]
    """
    freqs = spec.logfreq_freqs
    lo = int(np.searchsorted(freqs, F0_RANGE[0]))
    hi = int(np.searchsorted(freqs, F0_RANGE[1]))
    mag = spec.logfreq
    # Per-frame normalisation then square-root compression: level-independent salience.
    mag = np.sqrt(mag / (mag.mean(axis=1, keepdims=True) + 1e-9))
    sal = harmonic_salience(mag, f0_bins=(lo, hi))
    k = np.argmax(sal, axis=1)
    rows = np.arange(sal.shape[0])
    peak = sal[rows, k]
    left = sal[rows, np.maximum(k - 1, 0)]
    right = sal[rows, np.minimum(k + 1, sal.shape[1] - 1)]
    den = left - 2 * peak + right
    delta = np.where(np.abs(den) > 1e-9, 0.5 * (left - right) / np.where(den == 0, 1, den), 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    f_bin = lo + k + delta
    cents = (1200 * np.log2(freqs[0] / 10.0) + CENTS_PER_BIN * f_bin).astype(np.float32)
    strength = (peak / (sal.mean(axis=1) + 1e-9)).astype(np.float32)
    return cents, strength


def vibrato(cents: np.ndarray, voiced: np.ndarray, *, frame_rate: float,
            band: tuple[float, float] = (4.0, 8.0), width: int = VIBRATO_WINDOW
            ) -> tuple[np.ndarray, np.ndarray]:
    """Vibrato share and extent of the pitch contour around each frame.

    For each frame, the ``width``-frame window of the contour centred on it is detrended and
    the share of its modulation power in ``band`` (of 1-15 Hz) is measured, along with the
    band component's peak deviation in cents. Singers' vibrato sits at 4.5-7 Hz with
    20-100 cent extent (Sundberg 1987; Prame 1994); speech intonation has no such
    periodicity. Windows that are not entirely voiced and continuous give NaN.

    Parameters
    ----------
    cents : np.ndarray [shape=(t,)]
        Pitch contour in cents.
    voiced : np.ndarray [shape=(t,), dtype=bool]
        Frames with a clear, continuous contour.
    frame_rate : float
        Frames per second.
    band : (float, float)
        Modulation band (Hz) counted as vibrato.
    width : int
        Window length in frames.

    Returns
    -------
    ratio : np.ndarray [shape=(t,)]
        In [0, 1]; NaN where the window is not a continuous voiced contour.
    extent : np.ndarray [shape=(t,)]
        Peak deviation (cents) of the band component; NaN likewise.

    Examples
    --------
    A contour with 6 Hz, 50-cent vibrato gives ratio near 1 and extent near 50;
    a steady contour gives ratio near 0.
    """
    c = np.where(voiced, cents, np.nan).astype(np.float32)
    win = centred_windows(c, width)
    ok = np.isfinite(win).all(axis=1)
    out_r = np.full(c.shape, np.nan, np.float32)
    out_e = np.full(c.shape, np.nan, np.float32)
    if ok.any():
        # Count FFT bins whose centre lies within half a bin of the band (bins are
        # frame_rate/width = 1.95 Hz apart here: 3.9, 5.9 and 7.8 Hz cover 4-8 Hz).
        half = 0.5 * frame_rate / width
        r, e = band_power_ratio(win[ok], frame_rate, (band[0] - half, band[1] + half), (1.0, 15.0))
        out_r[ok] = r
        out_e[ok] = e
    return out_r, out_e


def fluctogram(spec: Spectrum, *, n_bands: int = 6, max_shift: int = 4,
               fmin: float = 400.0) -> np.ndarray:
    """Frame-to-frame pitch fluctuation per frequency band (Lehner et al. 2014).

    For each band of one octave (hop half an octave) starting at ``fmin`` on the
    log-frequency grid, the spectrum of frame ``t+1`` is cross-correlated with frame
    ``t`` over shifts of ``±max_shift`` bins; the best shift (in cents, parabolically
    refined) is that band's fluctuation. Vibrato and sung glides make it oscillate;
    steady instruments keep it near zero.

    Parameters
    ----------
    spec : Spectrum
    n_bands : int
    max_shift : int
        Largest shift searched, in log-frequency bins.
    fmin : float
        Lower edge of the first band (Hz).

    Returns
    -------
    np.ndarray [shape=(t, n_bands)]
        Cents per frame; the last frame repeats the one before it.

    References
    ----------
    B. Lehner, G. Widmer, R. Sonnleitner, "On the reduction of false positives in singing
    voice detection", ICASSP 2014.
    """
    freqs = spec.logfreq_freqs
    per_oct = int(round(1200 / CENTS_PER_BIN))
    start = int(np.searchsorted(freqs, fmin))
    k = freqs.size
    edges = [(start + b * per_oct // 2, start + b * per_oct // 2 + per_oct) for b in range(n_bands)]
    edges = [(a, min(b, k - max_shift)) for a, b in edges if a < k - max_shift - 8]
    t = spec.n_frames
    if t < 2:
        return np.zeros((t, len(edges)), np.float32)
    # Bins-first layout: every sum below adds whole rows (contiguous, vectorised over
    # frames). Bands overlap by half: the products are summed over the pieces between
    # consecutive band edges once, and each band is the sum of its pieces.
    cuts = np.unique([e for ab in edges for e in ab])
    lo, hi = int(cuts[0]), int(cuts[-1])
    pieces = [(int(np.searchsorted(cuts, a)), int(np.searchsorted(cuts, b))) for a, b in edges]
    magT = np.sqrt(spec.logfreq_bins[lo - max_shift:hi + max_shift])
    cur = magT[max_shift:max_shift + hi - lo, :-1]
    nxt = magT[:, 1:]
    corr = np.empty((2 * max_shift + 1, len(edges), t - 1), np.float32)
    spans = list(zip(cuts[:-1] - lo, cuts[1:] - lo))
    for i in range(2 * max_shift + 1):  # loop over shifts only
        prod = cur * nxt[i:i + hi - lo]
        part = np.stack([prod[a:b].sum(axis=0) for a, b in spans])  # and over pieces
        for j, (a, b) in enumerate(pieces):  # and bands
            corr[i, j] = part[a:b].sum(axis=0)
    best = np.argmax(corr, axis=0)
    c0 = np.take_along_axis(corr, best[None], 0)[0]
    cl = np.take_along_axis(corr, np.maximum(best - 1, 0)[None], 0)[0]
    cr = np.take_along_axis(corr, np.minimum(best + 1, 2 * max_shift)[None], 0)[0]
    den = cl - 2 * c0 + cr
    delta = np.where(np.abs(den) > 1e-12, 0.5 * (cl - cr) / np.where(den == 0, 1, den), 0.0)
    shift = ((best - max_shift + np.clip(delta, -0.5, 0.5)) * CENTS_PER_BIN).T
    shift = np.concatenate([shift, shift[-1:]], axis=0)
    return shift.astype(np.float32)


def fluctogram_vibrato(fluct: np.ndarray, *, frame_rate: float, width: int = VIBRATO_WINDOW,
                       band: tuple[float, float] = (4.0, 8.0), min_std: float = 3.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Vibrato-like periodicity of each fluctogram band around each frame.

    A vibrato makes a band's frame-to-frame shift oscillate at the vibrato rate even when the
    voice is not the loudest source (its harmonics still dominate some bands), where the
    predominant-pitch contour follows an instrument instead.

    Parameters
    ----------
    fluct : np.ndarray [shape=(t, n_bands)]
        Signed shifts from :func:`fluctogram` (cents per frame).
    frame_rate : float
    width : int
        Window (frames) in which the periodicity is measured.
    band : (float, float)
        Vibrato band (Hz); FFT bins within half a bin of it count.
    min_std : float
        Windows whose shifts vary less than this (cents/frame) count as steady.

    Returns
    -------
    share : np.ndarray [shape=(t,)]
        Share of bands whose shift oscillates in the vibrato band (ratio > 0.5).
    best : np.ndarray [shape=(t,)]
        Largest in-band ratio over the bands that move.
    """
    t, nb = fluct.shape
    if t == 0 or nb == 0:
        z = np.zeros(t, np.float32)
        return z, z
    w = np.stack([centred_windows(fluct[:, b], width, fill=0.0) for b in range(nb)], axis=1)
    half = 0.5 * frame_rate / width
    ratio, _ = band_power_ratio(w.reshape(-1, width), frame_rate, (band[0] - half, band[1] + half),
                                (1.0, 15.0))
    ratio = ratio.reshape(t, nb) * (w.std(axis=2) > min_std)
    return (ratio > 0.5).mean(axis=1).astype(np.float32), ratio.max(axis=1).astype(np.float32)


def vocal_variance(mfcc: np.ndarray, *, width: int = 11, coefficients: slice = slice(1, 6)
                   ) -> np.ndarray:
    """Lehner et al.'s vocal variance: variance of MFCC 1-5 over ``width`` frames, summed.

    Parameters
    ----------
    mfcc : np.ndarray [shape=(t, n_mfcc)]
    width : int
        Frames in the centred window (11 frames = 176 ms here).
    coefficients : slice
        Coefficients used (MFCC 1-5; 0 is loudness).

    Returns
    -------
    np.ndarray [shape=(t,)]

    References
    ----------
    B. Lehner, R. Sonnleitner, G. Widmer, "Towards light-weight, real-time-capable singing
    voice detection", ISMIR 2013.
    """
    return moving_variance(mfcc[:, coefficients], width).sum(axis=1)


def frame_features(spec: Spectrum, shared: dict, *, pitch_only: bool = False
                   ) -> dict[str, np.ndarray]:
    """Frame-level vocal quantities (see module docstring); ``shared`` holds the MFCCs.

    With ``pitch_only`` the fluctogram and the vocal variance are left out (the second,
    cheaper view of :data:`PITCH_VIEW`): the pitch contour, its notes, vibrato and glides,
    and the voice band's envelope remain, and ``shared["mfcc"]`` is not read.
    """
    rate = spec.frame_rate
    cents, strength = predominant_pitch(spec)
    voiced = strength > VOICING_THRESHOLD
    step = np.abs(np.diff(cents, append=cents[-1:]))
    continuous = voiced & np.concatenate([voiced[1:], [False]]) & (step < CONTOUR_STEP)
    # A frame belongs to a contour if it or its predecessor links to the next frame.
    in_contour = continuous | np.concatenate([[False], continuous[:-1]])
    runs = run_lengths(in_contour) / rate
    vib_ratio, vib_extent = vibrato(cents, in_contour, frame_rate=rate)
    smooth = moving_average(np.where(in_contour, cents, 0.0), 16)
    glide = np.abs(np.gradient(smooth)) * rate
    glide = np.where(in_contour & (runs >= 0.1), np.minimum(glide, 3000.0), np.nan)
    # Envelope of the voice band for syllabic modulation (mel bands within VOICE_BAND).
    mel_freqs = shared["mel_freqs"]
    band = (mel_freqs >= VOICE_BAND[0]) & (mel_freqs <= VOICE_BAND[1])
    env = 10 * np.log10(spec.mel[:, band].sum(axis=1) + 1e-10)
    plateau = note_plateaus(cents, in_contour, frame_rate=rate)
    out = {
        "plateau": plateau.astype(np.float32),
        "plateau_onset": (plateau & ~np.concatenate([[False], plateau[:-1]])).astype(np.float32),
        "voicing_onset": (voiced & ~np.concatenate([[False], voiced[:-1]])).astype(np.float32),
        "pitch_cents": np.where(voiced, cents, np.nan).astype(np.float32),
        "pitch_strength": strength,
        "voiced": voiced.astype(np.float32),
        "contour_run_s": np.where(in_contour, runs, np.nan).astype(np.float32),
        "vibrato_ratio": vib_ratio,
        "vibrato_extent": vib_extent,
        "glide_rate": glide.astype(np.float32),
        "voiceband_env_db": env.astype(np.float32),
    }
    if not pitch_only:
        signed = fluctogram(spec)
        fl_share, fl_best = fluctogram_vibrato(signed, frame_rate=rate)
        fluct = np.abs(signed)
        out["fluct_mean"] = fluct.mean(axis=1)
        out["fluct_max"] = fluct.max(axis=1) if fluct.shape[1] else np.zeros(spec.n_frames, np.float32)
        out["fluct_vibrato_share"] = fl_share
        out["fluct_vibrato_best"] = fl_best
        out["vocal_variance"] = vocal_variance(shared["mfcc"])
    return out


def segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, frame_rate: float
                     ) -> dict[str, np.ndarray]:
    """Per-segment vocal statistics; ``idx`` has shape ``(n_seg, frames_per_seg)``."""
    vib = frames["vibrato_ratio"][idx]
    ext = frames["vibrato_extent"][idx]
    has = np.isfinite(vib)
    n_has = has.sum(axis=1)
    vib_frames = has & (np.nan_to_num(vib) > 0.5) & (np.nan_to_num(ext) >= VIBRATO_EXTENT[0]) & (np.nan_to_num(ext) <= VIBRATO_EXTENT[1])
    runs = frames["contour_run_s"][idx]
    in_contour = np.isfinite(runs)
    n_contour = np.maximum(in_contour.sum(axis=1), 1)
    pitch = frames["pitch_cents"][idx]
    p90 = np.nanpercentile(np.where(in_contour, pitch, np.nan), 90, axis=1) if idx.size else 0
    p10 = np.nanpercentile(np.where(in_contour, pitch, np.nan), 10, axis=1) if idx.size else 0
    prange = np.nan_to_num(np.asarray(p90) - np.asarray(p10)) / 100.0
    env = frames["voiceband_env_db"][idx]
    syl, _ = band_power_ratio(env, frame_rate, SYLLABLE_BAND, (0.5, 16.0))
    strength_syl, _ = band_power_ratio(frames["pitch_strength"][idx], frame_rate, SYLLABLE_BAND, (0.5, 16.0))
    seg_s = idx.shape[1] / frame_rate if idx.ndim == 2 and idx.shape[1] else 1.0
    plateau = frames["plateau"][idx]
    out = {
        "voiced_frac": frames["voiced"][idx].mean(axis=1),
        "pitch_strength_mean": frames["pitch_strength"][idx].mean(axis=1),
        "pitch_strength_p90": np.percentile(frames["pitch_strength"][idx], 90, axis=1).astype(np.float32),
        "contour_frac": in_contour.mean(axis=1).astype(np.float32),
        "contour_long_frac": ((np.nan_to_num(runs) >= 0.3).sum(axis=1) / n_contour).astype(np.float32),
        # Runs measured within the segment (at most 5.12 s): the frame track's run lengths
        # are cut at the edges of the analysed chunk, which segments never cross.
        "contour_len_mean": (row_run_lengths(in_contour).sum(axis=1) / frame_rate
                             / n_contour).astype(np.float32),
        "vibrato_ratio_mean": seg_nanmean(frames["vibrato_ratio"], idx),
        "vibrato_frames_frac": (vib_frames.sum(axis=1) / np.maximum(n_has, 1)).astype(np.float32),
        "vibrato_extent_mean": seg_nanmean(frames["vibrato_extent"], idx),
        "glide_rate_mean": seg_nanmean(frames["glide_rate"], idx),
        "glide_rate_std": seg_nanstd(frames["glide_rate"], idx),
        "pitch_range_st": prange.astype(np.float32),
    }
    if "fluct_mean" in frames:  # the full family (not the pitch-only view)
        out.update(_fluct_and_variance(frames, idx))
    out.update({
        "syllabic_mod_ratio": syl,
        "voiceband_env_std": env.std(axis=1),
        # Singing words: held notes joined by quick changes, broken by consonants.
        "plateau_frac": (plateau.sum(axis=1) / n_contour).astype(np.float32),
        "plateau_onsets_per_s": (frames["plateau_onset"][idx].sum(axis=1) / seg_s).astype(np.float32),
        "voicing_onsets_per_s": (frames["voicing_onset"][idx].sum(axis=1) / seg_s).astype(np.float32),
        "strength_syllabic_mod": strength_syl,
    })
    return out


def _fluct_and_variance(frames: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    """The fluctogram's and the vocal variance's segment statistics (full family only)."""
    return {
        "fluct_mean": frames["fluct_mean"][idx].mean(axis=1),
        "fluct_std": frames["fluct_mean"][idx].std(axis=1),
        "fluct_max_mean": frames["fluct_max"][idx].mean(axis=1),
        "fluct_vibrato_share_mean": frames["fluct_vibrato_share"][idx].mean(axis=1),
        "fluct_vibrato_frames_frac": (frames["fluct_vibrato_share"][idx] >= 0.3).mean(axis=1).astype(np.float32),
        "fluct_vibrato_best_mean": frames["fluct_vibrato_best"][idx].mean(axis=1),
        "vocal_variance_mean": frames["vocal_variance"][idx].mean(axis=1),
        "vocal_variance_std": frames["vocal_variance"][idx].std(axis=1),
    }


#: The vocal family's cheaper half as a family of its own, for a second view of the
#: centre of a stereo image (``features.CENTRE_VIEWS = ("vocal_pitch",)``): the pitch
#: contour's statistics (voicing, contours, notes, vibrato, glides, range) and the voice
#: band's syllabic envelope, without the fluctogram and the vocal variance, which cost
#: about half of the family's time and need the centre's MFCCs.
PITCH_VIEW = SimpleNamespace(
    frame_features=lambda spec, shared: frame_features(spec, shared, pitch_only=True),
    segment_features=segment_features,
    # Where the whole family has run on the same signal (a mono source), the feature core
    # copies these of its frame values instead of tracking the pitch again.
    part_of="vocal",
    frame_keys=("plateau", "plateau_onset", "voicing_onset", "pitch_cents", "pitch_strength",
                "voiced", "contour_run_s", "vibrato_ratio", "vibrato_extent", "glide_rate",
                "voiceband_env_db"),
)
