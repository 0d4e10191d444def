"""The feature core: named features from one STFT per block, streamed over any length.

Data flow::

    samples (audio.stream) -> chunks of 61.44 s + 1 s context each side
      -> Spectrum (one STFT) -> frame features of each family (vocal, texture, orchestral)
      -> segments of 320 frames (5.12 s) -> segment statistics
      -> file vector: mean and 90th percentile of each segment statistic over the
         non-silent segments

Chunks tile the frame grid exactly (see :mod:`scoresong.spectrum`), so a file streamed in
chunks gives the same segments as one analysed whole, and memory does not grow with length.
Files shorter than one segment are analysed as a single shorter segment; a remainder of at
least :data:`~scoresong.audio.MIN_DURATION` at the end becomes one more segment, aligned to
the end of the file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from .. import audio
from ..spectrum import FMAX, FMIN, HOP, N_FFT, N_MELS, Spectrum, mel_frequencies
from . import orchestral, texture, vocal

__all__ = ["extract_features", "Features", "segment_stream", "feature_names",
           "FEATURE_SCHEMA_VERSION", "SEGMENT_FRAMES", "FAMILIES"]

#: Bumped whenever a change alters any feature value; models record it and refuse others.
#: 3: MFCCs are the DCT-II of the log-mel spectrum (2 took the inverse transform).
FEATURE_SCHEMA_VERSION = 3
#: Frames per segment: 320 frames x 16 ms = 5.12 s.
SEGMENT_FRAMES = 320
#: Segments per processing chunk (61.44 s) and context frames on each side (1.024 s).
CHUNK_SEGMENTS = 12
CONTEXT_FRAMES = 64
#: A segment whose 95th-percentile frame level (dB re full-scale sine) stays below this
#: counts as silence.
SILENT_SEGMENT_DB = -60.0
#: The feature families, in the order their values appear in the vector.
FAMILIES = {"texture": texture, "vocal": vocal, "orchestral": orchestral}
_AGGREGATES = ("mean", "p90")
_PAD_L = (N_FFT - HOP) // 2
_PAD_R = (N_FFT + HOP) // 2


@lru_cache(maxsize=2)
def _mel_freqs(sr: int) -> np.ndarray:
    """Centre frequencies of the mel bands."""
    return mel_frequencies(N_MELS + 2, FMIN, FMAX)[1:-1].astype(np.float32)


def frame_features(spec: Spectrum) -> dict[str, np.ndarray]:
    """All families' frame-level values for one block, keyed by ``family.name``."""
    shared = {"mfcc": texture.mfcc(spec.log_mel), "mel_freqs": _mel_freqs(spec.sr)}
    out = {}
    for fam, mod in FAMILIES.items():
        for k, v in mod.frame_features(spec, shared).items():
            out[f"{fam}.{k}"] = v
    return out


def _segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, rate: float
                      ) -> dict[str, np.ndarray]:
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for fam, mod in FAMILIES.items():
            sub = {k.split(".", 1)[1]: v for k, v in frames.items() if k.startswith(fam + ".")}
            for k, v in mod.segment_features(sub, idx, rate).items():
                out[f"{fam}.{k}"] = np.nan_to_num(np.asarray(v, np.float32), nan=0.0,
                                                  posinf=0.0, neginf=0.0)
    return out


@dataclass
class SegmentBlock:
    """Segments finished by one chunk: times (s) and their statistics."""

    times: np.ndarray              # (n, 2) start, end in seconds
    values: np.ndarray             # (n, d)
    names: tuple[str, ...]
    frames: dict | None = None     # frame-level values of the chunk (without context)
    frame_start: int = 0           # absolute index of the first frame in ``frames``


def segment_stream(blocks: Iterable[np.ndarray], sr: int, *, keep_frames: bool = False
                   ) -> Iterator[SegmentBlock]:
    """Turn a stream of mono sample blocks into segment statistics, chunk by chunk.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive mono float32 blocks at ``sr`` (any sizes).
    sr : int
        Sample rate (use :data:`scoresong.audio.ANALYSIS_SR`).
    keep_frames : bool
        Also return each chunk's frame-level values.

    Yields
    ------
    SegmentBlock
    """
    seg = SEGMENT_FRAMES
    chunk_frames = CHUNK_SEGMENTS * seg
    ctx = CONTEXT_FRAMES
    rate = sr / HOP
    buf = np.zeros(0, np.float32)
    buf0 = 0            # absolute sample index of buf[0]
    f0 = 0              # first frame of the next chunk
    total = 0           # samples seen so far
    min_frames = int(np.ceil(audio.MIN_DURATION * rate))

    def region(a: int, b: int) -> np.ndarray:
        """Samples [a, b) in absolute indices, zeros outside the signal."""
        out = np.zeros(b - a, np.float32)
        lo, hi = max(a, buf0), min(b, buf0 + buf.size)
        if hi > lo:
            out[lo - a:hi - a] = buf[lo - buf0:hi - buf0]
        return out

    def run(g0: int, g1: int, starts: np.ndarray, length: int, keep: tuple[int, int]) -> SegmentBlock:
        y = region(g0 * HOP - _PAD_L, (g1 - 1) * HOP + _PAD_R)
        spec = Spectrum.from_padded(y, sr)
        fr = frame_features(spec)
        idx = (starts - g0)[:, None] + np.arange(length)[None, :]
        stats = _segment_features(fr, idx, rate)
        names = tuple(stats)
        values = np.stack([stats[k] for k in names], axis=1) if starts.size else np.zeros((0, len(names)), np.float32)
        times = np.stack([starts, starts + length], axis=1) * HOP / sr
        kept = None
        if keep_frames:
            kept = {k: v[keep[0] - g0:keep[1] - g0] for k, v in fr.items()}
        return SegmentBlock(times, values, names, kept, keep[0])

    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, np.float32)])
        total += len(block)
        while buf0 + buf.size >= (f0 + chunk_frames + ctx) * HOP + _PAD_R:
            starts = f0 + seg * np.arange(CHUNK_SEGMENTS)
            yield run(f0 - ctx, f0 + chunk_frames + ctx, starts, seg, (f0, f0 + chunk_frames))
            f0 += chunk_frames
            keep_from = (f0 - seg - ctx) * HOP - _PAD_L
            if keep_from > buf0:
                buf = buf[keep_from - buf0:]
                buf0 = keep_from
    # Final chunk: remaining full segments plus the end-aligned tail segment.
    n_frames = -(-total // HOP)
    if n_frames <= f0 and f0 > 0:
        return
    if n_frames < seg:
        starts, length = np.array([0]), n_frames
    else:
        n_full = n_frames // seg
        starts = seg * np.arange(f0 // seg, n_full)
        if n_frames - n_full * seg >= min_frames:
            starts = np.append(starts, n_frames - seg)
        length = seg
    if starts.size == 0:
        return
    g0 = min(int(starts.min()), f0) - ctx
    yield run(g0, n_frames + ctx, starts, length, (f0, n_frames))


@dataclass
class Features:
    """A file's named feature vector, its segment statistics and (optionally) frame values."""

    values: np.ndarray
    names: tuple[str, ...]
    segment_values: np.ndarray
    segment_names: tuple[str, ...]
    segment_times: np.ndarray
    silent_segments: np.ndarray
    duration: float
    frames: dict | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.values.tolist()))


def aggregate(segment_values: np.ndarray, segment_names: tuple[str, ...]
              ) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """File vector from segment statistics: mean and 90th percentile over non-silent segments.

    Returns
    -------
    values : np.ndarray [shape=(2*d,)]
    names : tuple of str
    silent : np.ndarray [shape=(n_seg,), dtype=bool]
    """
    loud = segment_values[:, segment_names.index("orchestral.loudness_p95_db")]
    silent = loud < SILENT_SEGMENT_DB
    use = segment_values[~silent] if (~silent).any() else segment_values
    values = np.concatenate([use.mean(axis=0), np.percentile(use, 90, axis=0)]).astype(np.float32)
    names = tuple(f"{n}:{a}" for a in _AGGREGATES for n in segment_names)
    return values, names, silent


def extract_features(source, sr: float | None = None, *, frames: bool = False,
                     offset: float = 0.0, duration: float | None = None,
                     stream: int | None = None) -> Features:
    """Named feature vector of a file, bytes, a signal or a stream of blocks.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray or iterator of np.ndarray
        An audio or media file (a path, its bytes or a binary file object; streamed in
        blocks, memory bounded), a signal ``y`` (mono ``(n,)`` or ``(channels, n)``,
        librosa's convention), or an iterator of such blocks (constant memory). See
        :mod:`scoresong.audio`.
    sr : number, optional
        Sample rate of ``y`` or of the blocks (required for those; leave it out for files,
        whose rate is read from the file). Any rate from 4 kHz up is resampled to
        :data:`~scoresong.audio.ANALYSIS_SR`.
    frames : bool
        Keep frame-level values (memory then grows with the length).
    offset, duration : float
        Excerpt to analyse, in seconds.
    stream : int, optional
        Which audio stream of a media file (counting from 0; default the first).

    Returns
    -------
    Features
        ``values`` / ``names`` is the model's input; ``as_dict()`` maps names to values.

    Raises
    ------
    scoresong.AudioError
        Unreadable, empty, too short, non-finite or all-silent input.
    ValueError, TypeError
        An array or block of the wrong shape or dtype, or a missing / invalid ``sr``.

    Examples
    --------
    >>> f = extract_features("cue.ogg")            # doctest: +SKIP
    >>> f = extract_features(y, sr=44100)          # doctest: +SKIP
    >>> f.as_dict()["vocal.vibrato_frames_frac:p90"]  # doctest: +SKIP
    0.02
    """
    target = audio.ANALYSIS_SR
    name = audio.source_name(source)
    blocks = audio.analysis_blocks(source, source_sr=sr, offset=offset, duration=duration,
                                   stream=stream)

    meter = audio.LevelMeter()
    parts = list(segment_stream(meter.watch(blocks), target, keep_frames=frames))
    meter.check(target, path=name)
    dur = meter.n_samples / target
    seg_names = parts[0].names
    seg_values = np.concatenate([p.values for p in parts])
    seg_times = np.concatenate([p.times for p in parts])
    values, names, silent = aggregate(seg_values, seg_names)
    if silent.all():
        raise audio.SilentAudioError(name, f"no segment louder than {SILENT_SEGMENT_DB:.0f} dB")
    fr = None
    if frames:
        fr = {k: np.concatenate([p.frames[k] for p in parts]) for k in parts[0].frames}
    return Features(values, names, seg_values, seg_names, seg_times, silent, dur, fr)


def feature_names() -> tuple[str, ...]:
    """Names of the file vector, in order (computed on a short synthetic signal)."""
    return _feature_names()


@lru_cache(maxsize=1)
def _feature_names() -> tuple[str, ...]:
    t = np.arange(2 * audio.ANALYSIS_SR) / audio.ANALYSIS_SR
    y = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return extract_features(y, audio.ANALYSIS_SR).names
