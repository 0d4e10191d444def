"""The feature core: named features from one STFT per block, streamed over any length.

Data flow::

    samples (audio.stream) -> chunks of 61.44 s + 1 s context each side
      -> Spectrum (one STFT of the mono mix) -> frame features of each family (vocal,
         texture, orchestral); with ``view="centre"`` (an input option) a stereo file is
         read as mid and side and every family reads the centre of the image instead of
         the mix (one more STFT, of the side: Spectrum.centre); CENTRE_FAMILIES and
         CENTRE_VIEWS (experiment switches, off in the shipped schema) do the same for
         some families, or add a second view beside the mix
      -> segments of 320 frames (5.12 s) -> segment statistics
      -> file vector: mean and 90th percentile of each segment statistic over the
         non-silent segments

Chunks tile the frame grid exactly (see :mod:`scoresong.spectrum`), so a file streamed in
chunks gives the same segments as one analysed whole, and memory does not grow with length.
Files shorter than one segment are analysed as a single shorter segment; a remainder of at
least :data:`~scoresong.audio.MIN_DURATION` at the end becomes one more segment, aligned to
the end of the file.

A segment statistic that comes out NaN or infinite (an empty selection, a division by zero)
is replaced by 0, counted in ``Features.nonfinite`` and reported by one
:class:`NonFiniteFeatureWarning` per file.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Iterator

import numpy as np

from .. import audio
from ..spectrum import (FMAX, FMIN, HOP, N_FFT, N_MELS, Spectrum, mel_frequencies, one_blas_thread,
                        stft_frames)
from . import orchestral, texture, vocal

__all__ = ["extract_features", "Features", "segment_stream", "feature_names",
           "FEATURE_SCHEMA_VERSION", "SEGMENT_FRAMES", "FAMILIES", "NonFiniteFeatureWarning"]

#: Bumped whenever a change alters any feature value; models record it and refuse others.
#: 3: MFCCs are the DCT-II of the log-mel spectrum (2 took the inverse transform).
#: 4: ``vocal.contour_len_mean`` measures contour runs within each segment, so it no longer
#: depends on where the 61.44 s chunks of a long file fall.
#: (5 and 6 were candidates, never shipped: models/schema5.ab.md, models/schema6.ab.md.)
#: (9, the vocal family's timbre flux, was a candidate too, never shipped: models/schema9.ab.md;
#: its code is in the history, commit e7b75b7.)
FEATURE_SCHEMA_VERSION = 4
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
#: What a second view (:data:`CENTRE_VIEWS`) may compute: any family, or the vocal
#: family's pitch-based half alone (``"vocal_pitch"``: :data:`~.vocal.PITCH_VIEW`).
VIEW_FAMILIES = {**FAMILIES, "vocal_pitch": vocal.PITCH_VIEW}
#: The families that read the centre of a stereo image rather than the mono mix (an
#: experiment switch, empty in the shipped schema). In a dense, wide mix the mono downmix
#: buries a centred voice under the band (models/centre.diagnosis.md); ("vocal",) and
#: ("vocal", "texture") were trained and judged in models/schema6.ab.md and not shipped.
#: When empty, stereo sources are not split into mid and side at all (no extra cost).
CENTRE_FAMILIES: tuple[str, ...] = ()
#: The families computed a *second* time on the centre of a stereo image, beside their
#: values on the whole mix, under the name ``"<family>_centre"`` (an experiment switch,
#: empty in the shipped schema; ("vocal",) is the schema-7 trial, models/schema7.ab.md).
#: The model then sees both views and can compare them: a lead vocal sits in the centre,
#: but so do a wide mix's tonal instruments (models/schema6.ab.md). A mono source has no
#: image: its centre view repeats the mix view (copied, not recomputed). An entry may be
#: any name of :data:`VIEW_FAMILIES`: ("vocal_pitch",) is the cheaper schema-8 trial
#: (models/schema8.ab.md).
CENTRE_VIEWS: tuple[str, ...] = ()
#: What the families read (the ``view=`` option of :func:`extract_features`,
#: :func:`scoresong.predict` and the rest): ``"mix"``, the mono downmix (the default, what
#: every shipped model was trained on), or ``"centre"``, the centre of a stereo image
#: (:meth:`Spectrum.centre`; mono and multichannel sources have none and are read as their
#: mix). Same feature names and vector either way, so any model reads either; the model's
#: calibration is the mix's (see models/MODEL_CARD.md for what the centre view changes).
VIEWS = ("mix", "centre")
_AGGREGATES = ("mean", "p90")
_PAD_L = (N_FFT - HOP) // 2
_PAD_R = (N_FFT + HOP) // 2


def check_view(view: str) -> str:
    """``view`` if it is one of :data:`VIEWS`, else a ``ValueError`` naming them."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return view


def reads_stereo(view: str = "mix") -> bool:
    """Whether the feature core reads a stereo source as mid and side (``view="centre"``
    or either centre switch set); when not, every source is read as its mono mix at no
    extra cost."""
    return check_view(view) == "centre" or bool(CENTRE_FAMILIES or CENTRE_VIEWS)


def _views(view: str = "mix") -> list[tuple[str, str, bool]]:
    """``(name, family, reads_centre)`` of each family view in vector order: every family
    on the mix (or on the centre, for :data:`CENTRE_FAMILIES` or ``view="centre"``), then
    the second views of :data:`CENTRE_VIEWS` (named ``"<family>_centre"``)."""
    centre = tuple(FAMILIES) if view == "centre" else CENTRE_FAMILIES
    out = [(fam, fam, fam in centre) for fam in FAMILIES]
    out += [(f"{fam}_centre", fam, True) for fam in CENTRE_VIEWS]
    return out


@lru_cache(maxsize=2)
def _mel_freqs(sr: int) -> np.ndarray:
    """Centre frequencies of the mel bands."""
    return mel_frequencies(N_MELS + 2, FMIN, FMAX)[1:-1].astype(np.float32)


class _Shared(dict):
    """What the families of one view share: the mel centre frequencies, and the MFCCs
    computed on first use (the pitch-only view never reads them)."""

    def __init__(self, spec: Spectrum, mel_freqs: np.ndarray):
        super().__init__(mel_freqs=mel_freqs)
        self.spec = spec

    def __missing__(self, key):
        if key != "mfcc":
            raise KeyError(key)
        self[key] = texture.mfcc(self.spec.log_mel)
        return self[key]


@one_blas_thread()
def frame_features(spec: Spectrum, centre: Spectrum | None = None, *, view: str = "mix"
                   ) -> dict[str, np.ndarray]:
    """All families' frame-level values for one block, keyed by ``family.name``.

    Every family runs on one BLAS thread (:func:`~scoresong.spectrum.one_blas_thread`):
    their matrix products are small, and the decoder needs the other core.

    Parameters
    ----------
    spec : Spectrum
        The block's mono mix.
    centre : Spectrum, optional
        The centre of a stereo block (:meth:`Spectrum.centre`), read by the families in
        :data:`CENTRE_FAMILIES` (every family with ``view="centre"``) and by the second
        views of :data:`CENTRE_VIEWS`; None for mono input (they read ``spec``, and a
        second view repeats its first).
    view : {"mix", "centre"}
        See :data:`VIEWS`.
    """
    shared = {"mfcc": texture.mfcc(spec.log_mel), "mel_freqs": _mel_freqs(spec.sr)}
    views = {None: (spec, shared)}
    done: dict[tuple[str, str | None], dict[str, np.ndarray]] = {}
    out = {}
    for name, fam, on_centre in _views(view):
        key = "centre" if centre is not None and on_centre else None
        if key not in views:
            views[key] = (centre, _Shared(centre, shared["mel_freqs"]))
        whole = getattr(VIEW_FAMILIES[fam], "part_of", None)
        if (fam, key) not in done and (whole, key) in done:
            # A part of a family already computed on the same signal (a mono source's
            # pitch-only view): its values are those of the whole family, so copied.
            done[fam, key] = {k: done[whole, key][k] for k in VIEW_FAMILIES[fam].frame_keys}
        if (fam, key) not in done:
            s, sh = views[key]
            done[fam, key] = VIEW_FAMILIES[fam].frame_features(s, sh)
        for k, v in done[fam, key].items():
            out[f"{name}.{k}"] = v
    return out


class NonFiniteFeatureWarning(RuntimeWarning):
    """A segment statistic came out NaN or infinite (an empty selection, a division by
    zero) and was replaced by 0 so that the model gets finite input. Issued once per file,
    naming the statistics; :attr:`Features.nonfinite` holds the counts."""


def _segment_features(frames: dict[str, np.ndarray], idx: np.ndarray, rate: float,
                      nonfinite: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Segment statistics of every family; a non-finite value becomes 0 and is counted
    (segments per statistic) in ``nonfinite`` when given."""
    out = {}
    with warnings.catch_warnings():
        # numpy's "mean of empty slice" and the like: what they leave (NaN, inf) is
        # replaced below and recorded instead.
        warnings.simplefilter("ignore", RuntimeWarning)
        for name, fam, _ in _views():
            sub = {k.split(".", 1)[1]: v for k, v in frames.items() if k.startswith(name + ".")}
            for k, v in VIEW_FAMILIES[fam].segment_features(sub, idx, rate).items():
                v = np.asarray(v, np.float32)
                bad = int(np.count_nonzero(~np.isfinite(v)))
                if bad and nonfinite is not None:
                    nonfinite[f"{name}.{k}"] = nonfinite.get(f"{name}.{k}", 0) + bad
                out[f"{name}.{k}"] = np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def warn_nonfinite(name: str, nonfinite: dict[str, int], n_segments: int) -> None:
    """Issue one :class:`NonFiniteFeatureWarning` for a file when any segment statistic
    was replaced (``nonfinite``: statistic -> segments replaced)."""
    if nonfinite:
        which = ", ".join(f"{k} ({n} of {n_segments} segments)" for k, n in sorted(nonfinite.items()))
        warnings.warn(f"{name}: non-finite segment statistics replaced by 0: {which}",
                      NonFiniteFeatureWarning, stacklevel=3)


@dataclass
class SegmentBlock:
    """Segments finished by one chunk: times (s) and their statistics."""

    times: np.ndarray              # (n, 2) start, end in seconds
    values: np.ndarray             # (n, d)
    names: tuple[str, ...]
    frames: dict | None = None     # frame-level values of the chunk (without context)
    frame_start: int = 0           # absolute index of the first frame in ``frames``
    nonfinite: dict = field(default_factory=dict)  # statistic -> segments replaced by 0


class _Segmenter:
    """The state of :func:`segment_stream`: the samples still needed (``buf``, rows of
    mono or mid and side, starting at absolute sample ``buf0``), the first frame of the
    next chunk (``f0``) and the number of samples seen."""

    def __init__(self, sr: int, keep_frames: bool = False, view: str = "mix"):
        self.sr = sr
        self.view = check_view(view)
        self.rate = sr / HOP
        self.keep_frames = keep_frames
        self.buf = None         # (rows, n): 1 row (mono) or 2 (mid, side), fixed by block 1
        self.buf0 = 0           # absolute sample index of buf[0]
        self.f0 = 0             # first frame of the next chunk
        self.total = 0          # samples seen so far

    def push(self, block: np.ndarray) -> Iterator[SegmentBlock]:
        """Take one block (``(n,)`` mono or ``(2, n)`` mid and side); yield every chunk it
        completes."""
        seg, ctx = SEGMENT_FRAMES, CONTEXT_FRAMES
        chunk_frames = CHUNK_SEGMENTS * seg
        block = np.asarray(block, np.float32)
        if block.ndim == 1:
            block = block[None, :]
        if block.ndim != 2 or block.shape[0] not in (1, 2):
            raise ValueError(f"blocks must be mono (n,) or mid and side (2, n), got shape {block.shape}")
        if self.buf is None:
            self.buf = np.zeros((block.shape[0], 0), np.float32)
        elif block.shape[0] != self.buf.shape[0]:
            raise ValueError(f"a block of {block.shape[0]} row(s) after blocks of {self.buf.shape[0]}")
        self.buf = np.concatenate([self.buf, block], axis=1)
        self.total += block.shape[1]
        while self.buf0 + self.buf.shape[1] >= (self.f0 + chunk_frames + ctx) * HOP + _PAD_R:
            f0 = self.f0
            starts = f0 + seg * np.arange(CHUNK_SEGMENTS)
            yield self._run(f0 - ctx, f0 + chunk_frames + ctx, starts, seg, (f0, f0 + chunk_frames))
            self.f0 = f0 + chunk_frames
            keep_from = (self.f0 - seg - ctx) * HOP - _PAD_L
            if keep_from > self.buf0:
                self.buf = self.buf[:, keep_from - self.buf0:]
                self.buf0 = keep_from

    def finish(self) -> SegmentBlock | None:
        """The final chunk: remaining full segments plus the end-aligned tail segment."""
        seg, f0 = SEGMENT_FRAMES, self.f0
        n_frames = -(-self.total // HOP)
        if n_frames <= f0 and f0 > 0:
            return None
        if n_frames < seg:
            starts, length = np.array([0]), n_frames
        else:
            n_full = n_frames // seg
            starts = seg * np.arange(f0 // seg, n_full)
            min_frames = int(np.ceil(audio.MIN_DURATION * self.rate))
            if n_frames - n_full * seg >= min_frames:
                starts = np.append(starts, n_frames - seg)
            length = seg
        if starts.size == 0:
            return None
        g0 = min(int(starts.min()), f0) - CONTEXT_FRAMES
        return self._run(g0, n_frames + CONTEXT_FRAMES, starts, length, (f0, n_frames))

    def _region(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) in absolute indices (all rows), zeros outside the signal."""
        rows = 1 if self.buf is None else self.buf.shape[0]
        out = np.zeros((rows, b - a), np.float32)
        n = 0 if self.buf is None else self.buf.shape[1]
        lo, hi = max(a, self.buf0), min(b, self.buf0 + n)
        if hi > lo:
            out[:, lo - a:hi - a] = self.buf[:, lo - self.buf0:hi - self.buf0]
        return out

    def _run(self, g0: int, g1: int, starts: np.ndarray, length: int, keep: tuple[int, int]) -> SegmentBlock:
        """Analyse frames [g0, g1) and the segments of ``length`` frames at ``starts``."""
        y = self._region(g0 * HOP - _PAD_L, (g1 - 1) * HOP + _PAD_R)
        spec = Spectrum.from_padded(y[0], self.sr)
        centre = spec.centre(stft_frames(y[1])) if y.shape[0] == 2 and reads_stereo(self.view) else None
        fr = frame_features(spec, centre, view=self.view)
        idx = (starts - g0)[:, None] + np.arange(length)[None, :]
        nonfinite: dict[str, int] = {}
        stats = _segment_features(fr, idx, self.rate, nonfinite)
        names = tuple(stats)
        values = np.stack([stats[k] for k in names], axis=1) if starts.size else np.zeros((0, len(names)), np.float32)
        times = np.stack([starts, starts + length], axis=1) * HOP / self.sr
        kept = None
        if self.keep_frames:
            kept = {k: v[keep[0] - g0:keep[1] - g0] for k, v in fr.items()}
        return SegmentBlock(times, values, names, kept, keep[0], nonfinite)


def segment_stream(blocks: Iterable[np.ndarray], sr: int, *, keep_frames: bool = False,
                   view: str = "mix") -> Iterator[SegmentBlock]:
    """Turn a stream of sample blocks into segment statistics, chunk by chunk.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        Consecutive float32 blocks at ``sr`` (any sizes): mono ``(n,)``, or mid and side
        ``(2, n)`` of a stereo source (``audio.stream(..., mid_side=True)``), whose
        families then read the centre of the image where ``view`` (or an experiment
        switch) asks for it. One shape throughout.
    sr : int
        Sample rate (use :data:`scoresong.audio.ANALYSIS_SR`).
    keep_frames : bool
        Also return each chunk's frame-level values.
    view : {"mix", "centre"}
        See :data:`VIEWS` (mono blocks are read as the mix either way).

    Yields
    ------
    SegmentBlock
    """
    state = _Segmenter(sr, keep_frames, view)
    for block in blocks:
        yield from state.push(block)
    last = state.finish()
    if last is not None:
        yield last


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
    #: Segment statistics that came out NaN or infinite and were replaced by 0: name ->
    #: number of segments (empty for almost every file; see :class:`NonFiniteFeatureWarning`).
    nonfinite: dict[str, int] = field(default_factory=dict)

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
                     stream: int | None = None, view: str = "mix") -> Features:
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
    view : {"mix", "centre"}
        What the features hear: the mono mix (default), or the centre of a stereo image,
        where records put the lead vocal and a wide band is thinned out (mono and
        multichannel sources are read as their mix). See :data:`VIEWS`; it costs one more
        STFT (of the side) on a stereo source.

    Returns
    -------
    Features
        ``values`` / ``names`` is the model's input; ``as_dict()`` maps names to values.

    Warns
    -----
    NonFiniteFeatureWarning
        Once per file when a segment statistic came out NaN or infinite and was replaced
        by 0 (``Features.nonfinite`` names them).

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
                                   stream=stream, mid_side=reads_stereo(view))

    meter = audio.LevelMeter()
    parts = list(segment_stream(meter.watch(blocks), target, keep_frames=frames, view=view))
    meter.check(target, path=name)
    dur = meter.n_samples / target
    seg_names = parts[0].names
    seg_values = np.concatenate([p.values for p in parts])
    seg_times = np.concatenate([p.times for p in parts])
    values, names, silent = aggregate(seg_values, seg_names)
    if silent.all():
        # Only a stereo source read for its centre: there, a mix with sound can leave an
        # empty centre (everything panned hard to one side).
        where = (" in the centre of the stereo image (with view='centre', what is panned hard to one "
                 "side is not heard; view='mix' hears the whole mix)") if meter.mid_side and view == "centre" else ""
        raise audio.SilentAudioError(name, f"no segment louder than {SILENT_SEGMENT_DB:.0f} dB{where}")
    fr = None
    if frames:
        fr = {k: np.concatenate([p.frames[k] for p in parts]) for k in parts[0].frames}
    nonfinite = merge_nonfinite(p.nonfinite for p in parts)
    warn_nonfinite(name, nonfinite, len(seg_values))
    return Features(values, names, seg_values, seg_names, seg_times, silent, dur, fr, nonfinite)


def merge_nonfinite(counts: Iterable[dict[str, int]]) -> dict[str, int]:
    """Sum the per-chunk counts of :attr:`SegmentBlock.nonfinite`."""
    out: dict[str, int] = {}
    for c in counts:
        for k, n in c.items():
            out[k] = out.get(k, 0) + n
    return out


def feature_names() -> tuple[str, ...]:
    """Names of the file vector, in order (computed on a short synthetic signal)."""
    return _feature_names()


@lru_cache(maxsize=1)
def _feature_names() -> tuple[str, ...]:
    t = np.arange(2 * audio.ANALYSIS_SR) / audio.ANALYSIS_SR
    y = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return extract_features(y, audio.ANALYSIS_SR).names
