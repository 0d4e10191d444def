"""Music presence: sustained partials, new notes, and what fills the pauses.

What tells music from dialogue, effects and ambience (issue 12) when the music is quiet or
the non-music is tonal:

- **sustained partials**: spectral peaks that hold their frequency (within one STFT bin)
  for at least :data:`SUSTAIN_S`. Instruments and singing make them; speech glides, noise
  and most effects have none;
- **note births**: how often a new sustained partial starts. Music changes notes; a hum, an
  engine or a wind drone holds one frequency for the whole clip;
- **the pauses**: the quietest quarter of each segment's frames (speech pauses, gaps
  between effects). Music under dialogue keeps sounding there, with its sustained
  partials and a peaked (non-flat) spectrum; a room's noise floor is flat.

All values derive from the block's STFT power between :data:`BAND` limits.
"""

from __future__ import annotations

import numpy as np

from ..spectrum import Spectrum

#: Frequency band searched for partials (Hz): fundamentals and low harmonics of most
#: instruments and voices, below most broadband noise.
BAND = (100.0, 2000.0)
#: A peak stands this many dB above the mean of its neighbourhood (±NEIGHBOURS bins).
PEAK_DB = 6.0
NEIGHBOURS = 6
#: A partial is *sustained* when a peak holds within one bin for this long (s).
SUSTAIN_S = 0.25
#: Share of each segment's frames, the quietest, that count as its pauses.
QUIET_SHARE = 0.25


def _shift_or(m: np.ndarray) -> np.ndarray:
    """``m`` or its neighbour one bin up or down (frequency tolerance of one bin)."""
    out = m.copy()
    out[:, 1:] |= m[:, :-1]
    out[:, :-1] |= m[:, 1:]
    return out


def sustained_partials(spec: Spectrum) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sustained spectral peaks per frame.

    Parameters
    ----------
    spec : Spectrum

    Returns
    -------
    count : np.ndarray [shape=(t,)]
        Frequency bins holding a sustained partial (a peak that stayed within one bin for
        the last :data:`SUSTAIN_S`), divided by 3 (the one-bin tolerance makes each partial
        about three bins wide).
    births : np.ndarray [shape=(t,)]
        Bins where a sustained partial starts in this frame (same scale).
    flatness : np.ndarray [shape=(t,)]
        Spectral flatness (geometric over arithmetic mean of the power) in :data:`BAND`.
    """
    f = spec.freqs
    band = (f >= BAND[0]) & (f <= BAND[1])
    p = spec.power[:, band]
    db = 10.0 * np.log10(np.maximum(p, 1e-10, dtype=np.float32))
    # Mean of the neighbourhood (±NEIGHBOURS bins, the bin itself excluded) by a cumulative sum.
    k = NEIGHBOURS
    c = np.concatenate([np.zeros((db.shape[0], 1), np.float32), np.cumsum(db, axis=1, dtype=np.float32)], axis=1)
    n = db.shape[1]
    lo = np.clip(np.arange(n) - k, 0, n)
    hi = np.clip(np.arange(n) + k + 1, 0, n)
    local = (c[:, hi] - c[:, lo] - db) / (hi - lo - 1)
    peak = np.zeros(db.shape, bool)
    peak[:, 1:-1] = (db[:, 1:-1] >= db[:, :-2]) & (db[:, 1:-1] >= db[:, 2:])
    peak &= db > local + PEAK_DB
    # Ignore the floor: a peak must be within 60 dB of the frame's loudest bin.
    peak &= db > db.max(axis=1, keepdims=True) - 60.0
    held = _shift_or(peak)
    w = max(int(round(SUSTAIN_S * spec.frame_rate)), 2)
    cs = np.concatenate([np.zeros((1, n), np.int32), np.cumsum(held, axis=0, dtype=np.int32)], axis=0)
    t = np.arange(db.shape[0])
    start = np.maximum(t + 1 - w, 0)
    full = (cs[t + 1] - cs[start]) == w            # held for the w frames ending here
    count = full.sum(axis=1).astype(np.float32) / 3.0
    born = full.copy()
    born[1:] &= ~full[:-1]
    born[0] = False
    births = born.sum(axis=1).astype(np.float32) / 3.0
    flat = np.exp(np.mean(np.log(p + 1e-12), axis=1)) / (p.mean(axis=1) + 1e-12)
    return count, births, flat.astype(np.float32)


def frame_features(spec: Spectrum, shared: dict) -> dict[str, np.ndarray]:
    count, births, flat = sustained_partials(spec)
    level = 10.0 * np.log10(spec.power.sum(axis=1) + 1e-10)
    return {"sustained": count, "births": births, "flatness": flat, "level_db": level.astype(np.float32)}


def segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, frame_rate: float
                     ) -> dict[str, np.ndarray]:
    sus = frames["sustained"][idx]
    level = frames["level_db"][idx]
    n_quiet = max(int(round(QUIET_SHARE * idx.shape[1])), 1)
    quiet = np.argsort(level, axis=1, kind="stable")[:, :n_quiet]
    rows = np.arange(idx.shape[0])[:, None]
    births = frames["births"][idx].sum(axis=1) * frame_rate / idx.shape[1]
    mean_sus = sus.mean(axis=1)
    return {
        "sustained_mean": mean_sus,
        "sustained_frames_frac": (sus > 0).mean(axis=1).astype(np.float32),
        "sustained_quiet": sus[rows, quiet].mean(axis=1),
        "births_rate": births.astype(np.float32),
        "births_per_partial": (births / (mean_sus + 1.0)).astype(np.float32),
        "flatness_quiet": frames["flatness"][idx][rows, quiet].mean(axis=1),
    }


__all__ = ["sustained_partials", "frame_features", "segment_features"]
