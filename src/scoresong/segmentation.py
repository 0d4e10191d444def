"""Where the score, the songs and the stretches without music are in a long recording:
segments, a cue list, a plot.

The file is streamed through the feature core exactly as for :func:`scoresong.predict`
(blocks, one STFT per 61 s chunk, 5.12 s segments), so memory stays flat for multi-hour
input: only 80 numbers per segment and the silent stretches are kept. Then:

1. each segment gets P(song | music) (and, from a three-class model, P(no_music)) from the
   shipped model applied to a *window* of segments centred on it (mean and 90th percentile
   over the window, the same vector the model reads for a whole file); a window stops at a
   silent gap, so it does not mix two pieces;
2. a hidden Markov model (score / song, plus no_music for a three-class model) smooths the
   decisions with Viterbi: each change of label costs ``-log(switch)``, so short flickers
   are ignored, except across a silent gap, where a change is as likely as not. A song may
   contain windows with no vocal (intro, break, solo): its likelihood is a mixture that
   gives such a window probability ``song_break``, so one instrumental stretch cannot
   outweigh the sung parts around it. P(no_music) enters every state's likelihood against
   the model's presence threshold;
3. each change may move by one segment, to where the window ending just before it and the
   window starting at it agree best with the labels on their sides (``refine="sides"``),
   then into a silent gap or to the strongest change of a 10 Hz vocal-evidence track nearby;
4. silence (no music energy: frame level below -60 dB for at least ``min_silence``
   seconds) is cut out at frame resolution (16 ms), which puts boundaries at gaps exactly;
   quiet between two no_music stretches stays no_music (a pause in dialogue, a near-silent
   room: silence-like noise is no_music by the label policy), so ``silence`` marks the
   gaps next to music.

Labels: ``score``, ``song``, ``no_music`` and ``silence``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import audio
from .features import (SEGMENT_FRAMES, SILENT_SEGMENT_DB, merge_nonfinite, segment_stream,
                       warn_nonfinite)
from .model import resolve_model
from .spectrum import HOP

__all__ = ["Segment", "Timeline", "timeline", "viterbi", "viterbi_two_state", "refine_changes", "silent_intervals",
           "TimelineSettingError"]

SEGMENT_S = SEGMENT_FRAMES * HOP / audio.ANALYSIS_SR  # 5.12 s
#: How a segment's decision window is placed (see :func:`timeline`).
ALIGNS = ("centred", "homogeneous")
#: How a change found on the 5.12 s grid may move before snapping (see :func:`timeline`).
REFINES = ("none", "sides")
#: Cue-sheet usage codes: background instrumental / background vocal.
USAGE = {"score": "BI", "song": "BV"}


@dataclass(frozen=True)
class Segment:
    """A stretch of one label.

    Attributes
    ----------
    start, end : float
        Seconds from the start of the file.
    label : {"score", "song", "no_music", "silence"}
        ``no_music`` (no music audible: dialogue alone, effects, ambience) from a
        three-class model only.
    probability : float
        Mean P(song) over the stretch (``nan`` for silence).
    p_no_music : float
        Mean P(no_music) over the stretch (0 from a two-class model, ``nan`` for silence).
    """

    start: float
    end: float
    label: str
    probability: float
    p_no_music: float = 0.0

    @property
    def duration(self) -> float:
        return self.end - self.start


def require_jams():
    """The optional ``jams`` package, or an ImportError that says how to install it."""
    try:
        import jams
    except ImportError as exc:
        raise ImportError('JAMS export needs the jams package: pip install "scoresong[jams]"') from exc
    return jams


def _label_confidence(seg: Segment) -> float | None:
    """The model's probability of ``seg``'s label (``None`` for silence)."""
    if seg.label == "silence" or np.isnan(seg.probability):
        return None
    p, q = float(seg.probability), float(seg.p_no_music)
    return round({"song": p, "no_music": q}.get(seg.label, 1.0 - q - p), 6)


def _timecode(t: float) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass
class Timeline:
    """The labelled stretches of a file and the evidence behind them.

    Attributes
    ----------
    path : str
    duration : float
    segments : list of Segment
        Consecutive, covering ``[0, duration]``.
    times : np.ndarray [shape=(n, 2)]
        Start and end of each analysis segment (5.12 s).
    p_song : np.ndarray [shape=(n,)]
        P(song | music) of each analysis segment's window (``nan`` where all silent); for
        a two-class model this is its P(song).
    threshold : float
        The song threshold on ``p_song``.
    model_version : str
    p_no_music : np.ndarray [shape=(n,)] or None
        P(no_music) of each window (three-class models; ``None`` otherwise).
    presence_threshold : float
        The threshold on ``p_no_music`` (1.0: never ``no_music``).
    """

    path: str
    duration: float
    segments: list[Segment]
    times: np.ndarray = field(repr=False)
    p_song: np.ndarray = field(repr=False)
    threshold: float = 0.5
    model_version: str = ""
    p_no_music: np.ndarray | None = field(default=None, repr=False)
    presence_threshold: float = 1.0

    def label_at(self, t) -> np.ndarray:
        """Labels at times ``t`` (seconds)."""
        t = np.atleast_1d(np.asarray(t, dtype=float))
        ends = np.array([s.end for s in self.segments])
        idx = np.minimum(np.searchsorted(ends, t, side="right"), len(self.segments) - 1)
        return np.array([self.segments[i].label for i in idx])

    def to_records(self) -> list[dict]:
        """One dict per segment: ``start``, ``end``, ``label``, ``probability`` (mean
        P(song)) and, from a three-class model, ``p_no_music``."""
        def r4(v):
            return None if np.isnan(v) else round(float(v), 4)

        three = self.p_no_music is not None
        return [{"start": round(s.start, 3), "end": round(s.end, 3), "label": s.label,
                 "probability": r4(s.probability), **({"p_no_music": r4(s.p_no_music)} if three else {})}
                for s in self.segments]

    def to_csv(self) -> str:
        """``start,end,label,probability[,p_no_music]`` per segment."""
        buf = io.StringIO()
        fields = ["start", "end", "label", "probability"] + (["p_no_music"] if self.p_no_music is not None else [])
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for r in self.to_records():
            w.writerow({k: "" if v is None else v for k, v in r.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        extra = {"presence_threshold": self.presence_threshold} if self.p_no_music is not None else {}
        return json.dumps({"path": self.path, "duration": round(self.duration, 3),
                           "model_version": self.model_version, "threshold": self.threshold, **extra,
                           "segments": self.to_records()}, indent=1)

    def cues(self) -> list[dict]:
        """Music uses in cue-sheet form: sequence number, start, duration, usage (``BI``
        background instrumental for score, ``BV`` background vocal for song). Silence and
        ``no_music`` stretches are not music uses and are left out."""
        out = []
        for s in self.segments:
            if s.label in USAGE:
                out.append({"seq": len(out) + 1, "start": _timecode(s.start),
                            "duration": _timecode(s.duration), "usage": USAGE[s.label],
                            "label": s.label, "start_s": round(s.start, 3),
                            "duration_s": round(s.duration, 3)})
        return out

    def cues_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["seq", "start", "duration", "usage", "label", "start_s",
                                            "duration_s"], lineterminator="\n")
        w.writeheader()
        w.writerows(self.cues())
        return buf.getvalue()

    def to_audacity(self) -> str:
        """An Audacity label track: ``start<TAB>end<TAB>label`` per segment, seconds with 6
        decimals (Audacity: File > Import > Labels...)."""
        return "".join(f"{s.start:.6f}\t{s.end:.6f}\t{s.label}\n" for s in self.segments)

    def to_jams(self):
        """The timeline as a :class:`jams.JAMS` (needs ``pip install "scoresong[jams]"``).

        One ``segment_open`` annotation: an observation per segment (``value`` score / song
        / no_music / silence; ``confidence`` the model's probability of that label: P(song)
        for a song, P(no_music) for no_music, 1 - P(song) - P(no_music) for score, ``None``
        for silence); the file's duration in
        ``file_metadata``; scoresong's and the model's versions in ``annotation_metadata``;
        the threshold in the annotation's ``sandbox``. Write it with ``jam.save(path)``."""
        jams = require_jams()
        from . import __version__

        jam = jams.JAMS()
        jam.file_metadata.duration = float(self.duration)
        jam.file_metadata.title = Path(self.path).name
        ann = jams.Annotation(namespace="segment_open", time=0.0, duration=float(self.duration))
        for s in self.segments:
            ann.append(time=float(s.start), duration=float(s.end - s.start), value=s.label,
                       confidence=_label_confidence(s))
        meta = ann.annotation_metadata
        meta.annotator = jams.Sandbox(name="scoresong", version=__version__, model_version=self.model_version)
        meta.version = self.model_version
        meta.annotation_tools = f"scoresong {__version__} (model {self.model_version})"
        meta.data_source = "program"
        meta.annotation_rules = ("song: a sung or rapped lead vocal with lyrics; score: everything "
                                 "instrumental, wordless choir and speech over music included; no_music: "
                                 "no music audible (dialogue alone, effects, ambience); silence: "
                                 "below -60 dB; confidence: the model's calibrated probability of the label")
        ann.sandbox.threshold = float(self.threshold)
        if self.p_no_music is not None:
            ann.sandbox.presence_threshold = float(self.presence_threshold)
        jam.annotations.append(ann)
        return jam

    def plot(self, png, *, title: str | None = None, marks=()) -> Path:
        """P(song) over time with the segments shaded; written to ``png`` (needs matplotlib).

        ``marks``: times (s) drawn as dotted lines, e.g. known boundaries."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        colours = {"score": "#4C72B0", "song": "#DD8452", "silence": "#BBBBBB"}
        if self.p_no_music is not None:
            colours["no_music"] = "#55A868"
        scale, unit = (60.0, "minutes") if self.duration > 600 else (1.0, "seconds")
        fig, ax = plt.subplots(figsize=(12, 3.2))
        for s in self.segments:
            ax.axvspan(s.start / scale, s.end / scale, color=colours[s.label], alpha=0.35, lw=0)
        mid = self.times.mean(axis=1) / scale
        three = self.p_no_music is not None
        ax.plot(mid, self.p_song, color="black", lw=1.2,
                label=("P(song | music)" if three else "P(song)") + ", window centred on each segment")
        if three:
            ax.plot(mid, self.p_no_music, color="#2d6a3e", lw=1.0, label="P(no_music)")
            ax.axhline(self.presence_threshold, color="#2d6a3e", ls="--", lw=0.8)
        for t in marks:
            ax.axvline(t / scale, color="black", ls=":", lw=1)
        ax.axhline(self.threshold, color="black", ls="--", lw=0.8, label=f"threshold {self.threshold:.2f}")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.35) for c in colours.values()]
        leg1 = ax.legend(handles, list(colours), loc="upper right", fontsize=8, ncol=len(colours))
        ax.add_artist(leg1)
        ax.legend(loc="upper left", fontsize=8)
        ax.set(xlim=(0, self.duration / scale), ylim=(0, 1.05), xlabel=unit, ylabel="probability",
               title=title or Path(self.path).name)
        fig.tight_layout()
        fig.savefig(png, dpi=90)
        plt.close(fig)
        return Path(png)


def viterbi_two_state(p_song: np.ndarray, *, threshold: float, switch: float,
                      song_break: float = 0.0, joins: np.ndarray | None = None,
                      join_switch: float = 0.5) -> np.ndarray:
    """Most likely score(0)/song(1) sequence given per-segment P(song).

    Emissions are the calibrated probabilities rescaled by the threshold (so that
    ``p = threshold`` is neutral, the balanced-error rule); each change of state costs
    ``-log(switch)``. ``nan`` entries (silence) are neutral.

    Parameters
    ----------
    p_song : np.ndarray [shape=(n,)]
    threshold : float
    switch : float
        Prior probability of a change between consecutive segments.
    song_break : float
        Probability that a window inside a song shows no vocal at all (an instrumental
        intro, break or solo). The song state's likelihood becomes the mixture
        ``(1 - song_break) * L_song + song_break * L_score``, which bounds what one
        instrumental-looking window can cost a song at ``-log(song_break)``. 0: off.
    joins : np.ndarray [shape=(n,), dtype=bool], optional
        ``joins[t]``: a silent gap lies between segments ``t - 1`` and ``t``, where a
        change costs ``-log(join_switch)`` instead.
    join_switch : float

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int]
    """
    return viterbi(_song_evidence(p_song, threshold, song_break), switch=switch, joins=joins,
                   join_switch=join_switch)


def _song_evidence(p_song, threshold: float, song_break: float) -> np.ndarray:
    """Log-likelihood ratios (n, 2) of score and song from P(song) and the threshold
    (``nan``: neutral), with the song state's ``song_break`` mixture."""
    p = np.clip(np.asarray(p_song, dtype=float), 1e-6, 1 - 1e-6)
    p[np.isnan(p)] = threshold  # no evidence: neutral
    l_song, l_score = np.log(p / threshold), np.log((1 - p) / (1 - threshold))
    if song_break > 0:
        l_song = np.logaddexp(np.log1p(-song_break) + l_song, np.log(song_break) + l_score)
    return np.stack([l_score, l_song], axis=1)


def viterbi(loglik: np.ndarray, *, switch: float, joins: np.ndarray | None = None,
            join_switch: float = 0.5) -> np.ndarray:
    """Most likely state sequence given per-segment log-likelihoods.

    Every change of state costs ``-log(switch)`` (``-log(join_switch)`` across a silent
    gap, ``joins[t]``) and staying ``-log(1 - switch)``, whatever the two states.

    Parameters
    ----------
    loglik : np.ndarray [shape=(n, k)]
        Log-likelihood (or log-likelihood ratio) of each of ``k`` states per segment.
    switch : float
    joins : np.ndarray [shape=(n,), dtype=bool], optional
    join_switch : float

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int]
        The state index of each segment.
    """
    em = np.asarray(loglik, dtype=float)
    n = em.shape[0]
    if n == 0:
        return np.zeros(0, int)
    k = em.shape[1]
    sw = np.full(n, float(switch))
    if joins is not None:
        sw[np.asarray(joins, bool)] = join_switch
    stay, move = np.log1p(-sw), np.log(sw)
    eye = np.eye(k, dtype=bool)
    score = em[0].copy()
    back = np.zeros((n, k), int)
    for t in range(1, n):  # a few states: the loop is over segments (5 s each), not frames
        cand = score[:, None] + np.where(eye, stay[t], move[t])
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], np.arange(k)] + em[t]
    path = np.zeros(n, int)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def silent_intervals(level_db: np.ndarray, frame_rate: float, *, floor_db: float = SILENT_SEGMENT_DB,
                     min_duration: float = 1.0, offset: int = 0) -> list[tuple[float, float]]:
    """Stretches of at least ``min_duration`` s whose frame level stays below ``floor_db``.

    ``offset`` is the index of the first frame (for blocks of a longer stream).
    """
    quiet = np.concatenate([[False], level_db < floor_db, [False]])
    d = np.diff(quiet.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    keep = (ends - starts) >= min_duration * frame_rate
    return [((offset + a) / frame_rate, (offset + b) / frame_rate) for a, b in zip(starts[keep], ends[keep])]


def _merge_intervals(iv: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[list[float]] = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1] + 1e-6:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def _window_members(n: int, silent: np.ndarray, width: int, region: np.ndarray | None,
                    start) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, width) of the window of each segment that begins ``start`` segments
    from it (one number, or one per segment), and which of them count: inside the file,
    not silent, in the segment's region."""
    starts = np.broadcast_to(np.asarray(start, dtype=int), (n,))
    idx = np.arange(n)[:, None] + starts[:, None] + np.arange(width)[None, :]
    valid = (idx >= 0) & (idx < n)
    idx_c = np.clip(idx, 0, max(n - 1, 0))
    use = valid & ~silent[idx_c]
    if region is not None:
        use &= region[idx_c] == region[:, None]
    return idx_c, use


def _window_vectors(values: np.ndarray, silent: np.ndarray, width: int,
                    region: np.ndarray | None = None, *,
                    start: int | np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 90th percentile over a window of ``width`` segments around each segment,
    leaving out silent segments (as for a whole file) and, given ``region`` (an id per
    segment), segments of another region: a window does not reach across a silent gap
    into the next piece. ``start``: where each window begins relative to its segment, one
    number or one per segment (default: centred). Returns (vectors, any_sound)."""
    n, d = values.shape
    idx_c, use = _window_members(n, silent, width, region,
                                 -((width - 1) // 2) if start is None else start)
    win = values[idx_c].astype(np.float64)
    win[~use] = np.nan
    any_sound = use.any(axis=1)
    win[~any_sound] = 0.0
    with np.errstate(all="ignore"):
        mean = np.nanmean(win, axis=1)
    return np.concatenate([mean, nan_quantile(win, 0.9, axis=1)], axis=1).astype(np.float32), any_sound


def nan_quantile(a: np.ndarray, q: float, *, axis: int = 0) -> np.ndarray:
    """``np.nanquantile(a, q, axis=axis)`` (linear method, the same values bit for bit for
    float64 input; other input is computed in float64), vectorised: one sort along
    ``axis`` instead of NumPy's Python loop over every other index, which made the
    timeline's windows cost more than the model. All-NaN and empty slices give NaN without
    a warning.

    Parameters
    ----------
    a : np.ndarray
    q : float
        Quantile in [0, 1].
    axis : int

    Returns
    -------
    np.ndarray
        ``a``'s shape without ``axis`` (0-d for 1-D input).

    Examples
    --------
    >>> float(nan_quantile(np.array([1.0, np.nan, 3.0, 2.0]), 0.5))
    2.0
    """
    q = float(q)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"nan_quantile: q must be in [0, 1], got {q!r}")
    a = np.moveaxis(np.asarray(a, dtype=np.float64), axis, 0)
    if a.shape[0] == 0:
        return np.full(a.shape[1:], np.nan)
    srt = np.sort(a, axis=0)  # NaN sort last
    k = (~np.isnan(a)).sum(axis=0)
    virtual = (k - 1) * q  # NumPy's 'linear' virtual index
    prev = np.floor(virtual)
    top = virtual >= k - 1  # NumPy takes the largest value there
    lo = np.where(top, k - 1, prev).clip(0).astype(np.intp)
    hi = np.where(top, k - 1, prev + 1).clip(0).astype(np.intp)
    gamma = virtual - np.where(top, -1, prev)  # as NumPy: against the index it used
    x0 = np.take_along_axis(srt, lo[None], axis=0)[0]
    x1 = np.take_along_axis(srt, hi[None], axis=0)[0]
    diff = x1 - x0
    # NumPy's _lerp: a + diff * t, or b - diff * (1 - t) where t >= 0.5.
    out = np.where(gamma >= 0.5, x1 - diff * (1 - gamma), x0 + diff * gamma)
    return np.where(k == 0, np.nan, out)


def _segment_evidence(values: np.ndarray, silent: np.ndarray, m, three: bool) -> np.ndarray:
    """Log-odds of P(song | music) (and of P(no_music), three-class) of each segment alone:
    the model reads a one-segment window, whose mean and 90th percentile are its values."""
    ev = np.zeros((len(values), 2 if three else 1))
    ok = ~silent
    if ok.any():
        q, p = m.parts(np.concatenate([values[ok], values[ok]], axis=1))
        cols = [p, q] if three else [p]
        for j, c in enumerate(cols):
            c = np.clip(c, 1e-6, 1 - 1e-6)
            ev[ok, j] = np.log(c / (1 - c))
    return ev


def _homogeneous_starts(evidence: np.ndarray, silent: np.ndarray, width: int,
                        region: np.ndarray | None) -> np.ndarray:
    """For each segment, where the most homogeneous window of ``width`` segments holding
    it begins (edge-preserving, as a Kuwahara filter picks the calmest neighbourhood).

    Candidates are the ``width`` windows that contain the segment; of those with the most
    usable segments (a window cut by the file's end or a silent gap counts fewer), the one
    whose segments' own ``evidence`` (n, k: log-odds per segment) spans the smallest range,
    summed over the k columns. Ties go to the window nearest the centred one. So a segment
    just after a change reads a window on its own side of it instead of one that reaches
    back across it.
    """
    n = len(evidence)
    centred = -((width - 1) // 2)
    cands = sorted(range(-(width - 1), 1), key=lambda o: (abs(o - centred), o))
    counts, spans = [], []
    for o in cands:
        idx_c, use = _window_members(n, silent, width, region, o)
        e = evidence[idx_c]  # (n, width, k)
        hi = np.where(use[:, :, None], e, -np.inf).max(axis=1)
        lo = np.where(use[:, :, None], e, np.inf).min(axis=1)
        span = np.where(use.any(axis=1)[:, None], hi - lo, 0.0).sum(axis=1)
        counts.append(use.sum(axis=1))
        spans.append(span)
    counts, spans = np.array(counts), np.array(spans)  # (n_cands, n)
    spans = np.where(counts == counts.max(axis=0), spans, np.inf)
    return np.asarray(cands)[np.argmin(spans, axis=0)]  # argmin takes the first of ties


def timeline(source, *, sr: float | None = None, stream: int | None = None, model=None,
             window: float = 3 * SEGMENT_S, hop: float = SEGMENT_S,
             switch: float = 0.1, song_break: float = 0.2, min_silence: float = 1.0,
             snap: float = 6.0, threshold: float | None = None, classes=None,
             align: str = "centred", refine: str = "sides") -> Timeline:
    """Label a recording over time as score, song, no_music or silence.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray, iterator of np.ndarray, or Analysis
        Any length; streamed in blocks (memory flat). Everything
        :func:`scoresong.predict` accepts: a media file (path, bytes or file object), a
        signal ``y`` with ``sr=``, or an iterator of blocks with ``sr=`` (live or very
        long input, constant memory). An :class:`Analysis` from :func:`analyse` is used
        as it is, to try settings without decoding again.
    sr, stream : number, int, optional
        The sample rate of an array or block stream; the audio stream of a media file to
        analyse (counting from 0; default the first). As for :func:`scoresong.predict`.
    model : Model, path or None
        Default: the shipped model.
    window : float
        Seconds of audio behind each decision (rounded to whole 5.12 s segments). The
        defaults (3 segments, ``switch=0.1``, ``song_break=0.2``) were chosen on the development recordings of
        ``corpus/timeline_eval.py``.
    hop : float
        Seconds between decisions: a multiple of 5.12 s (the segment length).
    switch : float
        Prior probability of a label change between consecutive decisions; smaller values
        give fewer, longer segments. Across a silent gap of at least ``min_silence`` the
        prior is 0.5 instead: pieces are usually separated by one.
    song_break : float
        Expected share of windows inside a song that show no vocal (intros, breaks, solos):
        such a window costs a song at most ``-log(song_break)``, so a short instrumental
        stretch between sung parts stays ``song``. 0 treats every window on its own.
    min_silence : float
        Shortest gap (s) labelled silence.
    snap : float
        A change of label, found on the 5.12 s grid, moves into a silent gap
        within ``±snap`` seconds if there is one, else to the strongest change of the vocal
        evidence (novelty at 10 Hz) within that reach; 0 keeps the grid.
    threshold : float, optional
        P(song | music) that is neutral between score and song (default: the model's).
    classes : ("score", "song"), optional
        Music labels only, as a two-class model gives (default: every label of the model;
        a three-class model adds ``no_music`` stretches: dialogue alone, effects, ambience).
    align : {"centred", "homogeneous"}
        Which window of ``window`` seconds a segment's decision reads: the one centred on
        it, or, of all the windows that hold it, the one whose segments agree most (their
        own P(song | music) and P(no_music) span the smallest range), so that a decision
        next to a change reads the audio on its own side of it. ``"homogeneous"`` places
        changes better but labels fewer frames right: on the development recordings of
        ``models/timeline_window.ab.md`` boundary F (±3 s) 0.755 against 0.728, frame
        accuracy 0.805 against 0.815 (more song called score) and, on film-like reels,
        music presence 0.927 against 0.940. Take it for in and out times, not for labels.
    refine : {"sides", "none"}
        ``"sides"`` (default): each change of label found on the 5.12 s grid may first move
        by one segment, to where the window ending just before it and the window starting
        at it agree best with the labels on their sides (:func:`refine_changes`); then
        ``snap`` applies. Only with ``hop`` of one segment and a ``window`` of more than
        one (7.68 s or more); otherwise changes stay where the HMM puts them. ``"none"``: the grid's changes
        where the HMM puts them (the default until trial 2 of
        ``models/timeline_window.ab.md`` measured ``"sides"`` as better).

    Returns
    -------
    Timeline

    Raises
    ------
    scoresong.AudioError
        The file cannot be read (as for :func:`scoresong.predict`).

    Examples
    --------
    >>> tl = scoresong.timeline("reel.flac")                     # doctest: +SKIP
    >>> for s in tl.segments: print(s.start, s.end, s.label)    # doctest: +SKIP
    >>> tl.plot("reel.png"); print(tl.cues_csv())               # doctest: +SKIP
    """
    from .prediction import _two_classes

    _check_settings(window=window, hop=hop, switch=switch, song_break=song_break,
                    min_silence=min_silence, snap=snap, threshold=threshold, align=align,
                    refine=refine)
    try:
        two = _two_classes(classes)
    except ValueError as exc:
        raise TimelineSettingError(str(exc)) from None
    m = resolve_model(model)
    an = source if isinstance(source, Analysis) else analyse(source, sr=sr, stream=stream)
    return _decide(an, m, window=window, hop=hop, switch=switch, song_break=song_break,
                   min_silence=min_silence, snap=snap, threshold=threshold,
                   three=m.three_class and not two, align=align, refine=refine)


class TimelineSettingError(ValueError):
    """A :func:`timeline` setting outside its meaning (refused before any decoding)."""


def _check_settings(*, window, hop, switch, song_break, min_silence, snap, threshold,
                    align="centred", refine="sides") -> None:
    """Refuse settings outside their meaning, before any decoding, with what was expected."""
    def bad(name, value, expected):
        raise TimelineSettingError(f"timeline: {name} must be {expected}, got {value!r}")

    def num(x):
        return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and np.isfinite(x)

    if not num(window) or window <= 0:
        bad("window", window, "a positive number of seconds")
    if not num(hop) or hop <= 0:
        bad("hop", hop, "a positive number of seconds (a multiple of 5.12)")
    if not num(switch) or not 0 < switch < 1:
        bad("switch", switch, "a probability strictly between 0 and 1")
    if not num(song_break) or not 0 <= song_break < 1:
        bad("song_break", song_break, "a share in [0, 1)")
    if not num(min_silence) or min_silence < 0:
        bad("min_silence", min_silence, "a non-negative number of seconds")
    if not num(snap) or snap < 0:
        bad("snap", snap, "a non-negative number of seconds")
    if threshold is not None and (not num(threshold) or not 0 <= threshold <= 1):
        bad("threshold", threshold, "None or a probability in [0, 1]")
    if align not in ALIGNS:
        bad("align", align, " or ".join(repr(a) for a in ALIGNS))
    if refine not in REFINES:
        bad("refine", refine, " or ".join(repr(a) for a in REFINES))


@dataclass
class Analysis:
    """What :func:`timeline` keeps of a streamed file: per-segment feature values, every
    quiet run, and a 10 Hz vocal-evidence track."""

    path: str
    duration: float
    names: tuple
    values: np.ndarray  # (n_segments, n_features)
    times: np.ndarray  # (n_segments, 2)
    silences: list  # merged quiet runs (start, end), any length
    vocal: np.ndarray  # (n_cells, len(TRACK_KEYS)) at CELL_RATE
    nonfinite: dict = field(default_factory=dict)  # statistic -> segments replaced by 0


def analyse(source, *, sr: float | None = None, stream: int | None = None) -> Analysis:
    """Stream ``source`` once through the feature core and keep what the timeline needs.

    ``source``, ``sr`` and ``stream`` are as for :func:`timeline`.
    """
    name = audio.source_name(source)
    from . import features

    blocks = audio.analysis_blocks(source, source_sr=sr, stream=stream,
                                   mid_side=features.reads_stereo())
    vals, times, silences, vocal, nonfinite = [], [], [], [], []
    names = None
    rate = audio.ANALYSIS_SR / HOP
    meter = audio.LevelMeter()
    for blk in segment_stream(meter.watch(blocks), audio.ANALYSIS_SR, keep_frames=True):
        names = blk.names
        vals.append(blk.values)
        times.append(blk.times)
        # Every quiet run, however short: a gap can straddle two chunks.
        silences += silent_intervals(blk.frames["orchestral.loudness_db"], rate,
                                     min_duration=0.0, offset=blk.frame_start)
        vocal.append(_cell_track(blk.frames, TRACK_KEYS))
        blk.frames = None  # keep 80 numbers per segment and a 10 Hz track, not the frames
        nonfinite.append(blk.nonfinite)
    meter.check(audio.ANALYSIS_SR, path=name)
    nonfinite = merge_nonfinite(nonfinite)
    warn_nonfinite(name, nonfinite, sum(len(t) for t in times))
    return Analysis(
        path=name, duration=meter.n_samples / audio.ANALYSIS_SR, names=names,
        values=np.concatenate(vals) if vals else np.zeros((0, 80), np.float32),
        times=np.concatenate(times) if times else np.zeros((0, 2)),
        silences=_merge_intervals(silences),
        vocal=np.concatenate(vocal) if vocal else np.zeros((0, len(TRACK_KEYS)), np.float32),
        nonfinite=nonfinite)


def _window_parts(m, X, sound, silent) -> tuple[np.ndarray, np.ndarray]:
    """P(song | music) and P(no_music) of each window (``nan`` where silent or soundless)."""
    p = np.full(len(X), np.nan)
    q = np.full(len(X), np.nan)
    if sound.any():
        q[sound], p[sound] = m.parts(X[sound])
    p[silent] = np.nan
    q[silent] = np.nan
    return p, q


def _state_evidence(p, q, threshold: float, song_break: float, presence_threshold=None) -> np.ndarray:
    """Per-segment log-evidence of each state (score, song[, no_music]) for the HMM."""
    em = _song_evidence(p, threshold, song_break)
    if presence_threshold is None:
        return em
    # Music or not first: P(no_music) against the presence threshold, neutral at it (and
    # where silent); the music states add it to their score/song evidence.
    pt = presence_threshold
    qq = np.clip(np.where(np.isnan(q), pt, q), 1e-6, 1 - 1e-6)
    l_music, l_none = np.log((1 - qq) / (1 - pt)), np.log(qq / pt)
    return np.column_stack([em + l_music[:, None], l_none])


def refine_changes(states: np.ndarray, before: np.ndarray, after: np.ndarray, *,
                   joins: np.ndarray | None = None) -> np.ndarray:
    """Move each change of state by at most one segment, to where the windows beside it agree.

    For a change from state ``a`` (segments ``< c``) to ``b`` (``>= c``), each place ``k`` in
    ``c - 1, c, c + 1`` that leaves both runs non-empty is scored by
    ``before[k - 1, a] - before[k - 1, b] + after[k, b] - after[k, a]``: how well the window
    ending at segment ``k - 1`` reads as ``a`` and the window starting at ``k`` as ``b``.
    The best place wins; ties keep ``c``. A change at a silent gap (``joins[c]``) stays.

    Parameters
    ----------
    states : np.ndarray [shape=(n,), dtype=int]
    before, after : np.ndarray [shape=(n, k)]
        Log-evidence of each state from the window that ends at each segment, and from the
        one that starts at it.
    joins : np.ndarray [shape=(n,), dtype=bool], optional
        ``joins[t]``: a silent gap lies between segments ``t - 1`` and ``t``.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=int]
    """
    s = np.asarray(states).copy()
    n = len(s)
    joins = np.zeros(n, bool) if joins is None else np.asarray(joins, bool)
    for c in np.flatnonzero(np.diff(np.asarray(states)) != 0) + 1:
        a, b = s[c - 1], s[c]
        if a == b or joins[c]:
            continue  # an earlier move reached here, or the change sits at a gap
        lo = c - 1
        while lo > 0 and s[lo - 1] == a:
            lo -= 1
        hi = c
        while hi + 1 < n and s[hi + 1] == b:
            hi += 1
        best, best_k = None, c
        for k in (c, c - 1, c + 1):  # c first: ties keep it
            if not lo + 1 <= k <= hi:
                continue
            v = before[k - 1, a] - before[k - 1, b] + after[k, b] - after[k, a]
            if best is None or v > best + 1e-12:
                best, best_k = v, k
        if best_k < c:
            s[best_k:c] = b
        elif best_k > c:
            s[c:best_k] = a
    return s


def _decide(an: Analysis, m, *, window, hop, switch, song_break, min_silence, snap, threshold,
            three: bool = False, align: str = "centred", refine: str = "sides") -> Timeline:
    thr = m.threshold if threshold is None else float(threshold)
    step = max(1, int(round(hop / SEGMENT_S)))
    width = max(1, int(round(window / SEGMENT_S)))
    values, names, duration = an.values, an.names, an.duration
    seg_times = an.times
    silent_seg = values[:, names.index("orchestral.loudness_p95_db")] < SILENT_SEGMENT_DB if names else np.zeros(0, bool)
    gaps = [(a, b) for a, b in an.silences if b - a >= min_silence]
    gap_mids = np.array([(a + b) / 2 for a, b in gaps])
    # Region id of each segment = number of gaps before its centre.
    region = np.searchsorted(gap_mids, seg_times.mean(axis=1)) if len(seg_times) else np.zeros(0, int)
    start = None
    if align == "homogeneous" and width > 1 and len(values):
        start = _homogeneous_starts(_segment_evidence(values, silent_seg, m, three), silent_seg,
                                    width, region)
    X, sound = _window_vectors(values, silent_seg, width, region, start=start)
    keep = np.arange(0, len(X), step)
    X, sound, seg_times, silent_seg, region = X[keep], sound[keep], seg_times[keep], silent_seg[keep], region[keep]
    p, q = _window_parts(m, X, sound, silent_seg)
    joins = np.concatenate([[False], np.diff(region) > 0]) if len(region) else np.zeros(0, bool)
    em = _state_evidence(p, q, thr, song_break, m.presence_threshold if three else None)
    states = viterbi(em, switch=switch, joins=joins)
    if refine == "sides" and width > 1 and step == 1 and len(states) > 1:
        # With step 1 nothing was dropped by ``keep``: ``values`` (all segments) lines up
        # with the kept ``silent_seg`` and ``region``.
        sides = []
        for side in (-(width - 1), 0):  # the window ending at each segment, the one starting at it
            Xs, snd = _window_vectors(values, silent_seg, width, region, start=side)
            sides.append(_state_evidence(*_window_parts(m, Xs, snd, silent_seg), thr, song_break,
                                         m.presence_threshold if three else None))
        states = refine_changes(states, *sides, joins=joins)
    # Silent segments carry no evidence (neutral in the HMM) and take the label around them;
    # the silence itself is cut in below at frame resolution, so its edges are exact.
    labels = np.array(["score", "song", "no_music"], dtype=object)[states]
    qz = np.nan_to_num(q) if three else np.zeros(len(q))
    p_all = (1.0 - qz) * p  # P(song) = (1 - P(no_music)) P(song | music)
    # Analysis segments -> contiguous stretches: each decision holds from its segment's
    # start to the next one's (the last segment of a file is aligned to the end and
    # overlaps the one before).
    starts = np.minimum(seg_times[:, 0], duration)
    edges = np.concatenate([starts, [duration]])
    if len(edges) > 1:
        edges[0] = 0.0
    raw = [(float(edges[i]), float(edges[i + 1]), str(labels[i]), float(p_all[i]), float(qz[i]))
           for i in range(len(labels)) if edges[i + 1] > edges[i]]
    raw = _snap_changes(raw, an.vocal, gaps, reach=snap)
    segments = _overlay_silence(raw, gaps, min_silence)
    return Timeline(an.path, duration, segments, seg_times, p, thr, m.version,
                    q if three else None, m.presence_threshold if three else 1.0)


#: Track for boundary refinement: frame-level vocal evidence averaged over 6 frames
#: (96 ms). (On the development recordings it placed score/song changes better than MFCC
#: timbre or both together: boundary F 0.83 against 0.75 and 0.79.)
TRACK_KEYS = ("texture.voiceband_share", "vocal.pitch_strength", "vocal.voiced", "vocal.vibrato_ratio",
              "vocal.fluct_vibrato_share", "vocal.contour_run_s", "vocal.vocal_variance")
CELL_FRAMES = 6
CELL_RATE = audio.ANALYSIS_SR / HOP / CELL_FRAMES  # 10.4167 Hz


def _cell_track(frames: dict, keys) -> np.ndarray:
    """Frame tracks ``keys`` of a chunk averaged over cells of 6 frames. A full chunk (3,840
    frames) is a whole number of cells, so cells line up across chunks; the last chunk's
    remainder (under 0.1 s) is dropped."""
    m = np.stack([np.nan_to_num(frames[k]) for k in keys], axis=1)
    per = CELL_FRAMES
    n = m.shape[0] // per
    return m[: n * per].reshape(n, per, len(keys)).mean(axis=1).astype(np.float32)


def novelty(track: np.ndarray, *, half: float = 3.0) -> np.ndarray:
    """Distance between the mean standardised track of the ``half`` seconds before and
    after each cell (cumulative sums: no loop over time)."""
    if len(track) == 0:
        return np.zeros(0)
    z = (track - track.mean(axis=0)) / (track.std(axis=0) + 1e-6)
    k = max(1, int(round(half * CELL_RATE)))
    c = np.concatenate([np.zeros((1, z.shape[1])), np.cumsum(z, axis=0)])
    n = len(z)
    t = np.arange(n)
    lo, hi = np.maximum(t - k, 0), np.minimum(t + k, n)
    before = (c[t] - c[lo]) / np.maximum(t - lo, 1)[:, None]
    after = (c[hi] - c[t]) / np.maximum(hi - t, 1)[:, None]
    nov = np.linalg.norm(after - before, axis=1)
    nov[(t - lo < k // 2) | (hi - t < k // 2)] = 0.0  # too close to an end to judge
    return nov


def _snap_changes(raw, track: np.ndarray, gaps, *, reach: float):
    """Move each change of label into the nearest silent gap within ``±reach`` s, or
    else to the peak of the vocal-evidence novelty within that reach."""
    if reach <= 0 or len(raw) < 2 or len(track) == 0:
        return raw
    nov = novelty(track)
    out = [list(r) for r in raw]
    for i in range(1, len(out)):
        a, b = out[i - 1], out[i]
        if a[2] == b[2]:
            continue
        t = b[0]
        lo = max(int((t - reach) * CELL_RATE), int(a[0] * CELL_RATE) + 1)
        hi = min(int((t + reach) * CELL_RATE), int(b[1] * CELL_RATE) - 1, len(nov) - 1)
        near = [(abs((g0 + g1) / 2 - t), (g0 + g1) / 2) for g0, g1 in gaps
                if abs((g0 + g1) / 2 - t) <= reach and a[0] < (g0 + g1) / 2 < b[1]]
        if near:
            a[1] = b[0] = min(near)[1]
            continue
        if hi <= lo:
            continue
        best = (lo + int(np.argmax(nov[lo:hi + 1]))) / CELL_RATE
        a[1] = b[0] = best
    return [tuple(r) for r in out if r[1] > r[0]]




def _overlay_silence(raw, silences, min_len) -> list[Segment]:
    """Cut silent intervals into the decisions, merge equal neighbours, absorb slivers."""
    pieces: list[list] = []
    for a, b, lab, p, q in raw:
        cuts = [(max(a, s), min(b, e)) for s, e in silences if s < b and e > a]
        t = a
        for s, e in cuts:
            if s > t:
                pieces.append([t, s, lab, p, q])
            pieces.append([s, e, "silence", np.nan, np.nan])
            t = e
        if b > t:
            pieces.append([t, b, lab, p, q])
    # Music slivers shorter than min_len (left between a cut and a segment edge) join the
    # neighbour they touch that is music, else become silence.
    for i, pc in enumerate(pieces):
        if pc[2] != "silence" and pc[1] - pc[0] < min_len:
            nb = [q for q in (pieces[i - 1] if i else None, pieces[i + 1] if i + 1 < len(pieces) else None)
                  if q is not None and q[2] != "silence"]
            pc[2] = nb[0][2] if nb else "silence"
    # Quiet inside no_music (a pause between two lines of dialogue, between two effects, a
    # near-silent room) is part of it: room tone and silence-like noise are no_music by the
    # label policy. Silence stays where it separates music from anything else.
    i = 1
    while i < len(pieces) - 1:
        if pieces[i][2] != "silence":
            i += 1
            continue
        j = i  # pieces[i:j + 1] is one run of silence (a gap may span two decisions)
        while j + 1 < len(pieces) and pieces[j + 1][2] == "silence":
            j += 1
        prev, nxt = pieces[i - 1], pieces[j + 1] if j + 1 < len(pieces) else None
        if nxt is not None and prev[2] == "no_music" and nxt[2] == "no_music":
            for pc in pieces[i:j + 1]:
                pc[2:] = ["no_music", prev[3], prev[4]]
        i = j + 1
    out: list[Segment] = []
    acc: list = []
    for pc in pieces:
        if acc and pc[2] == acc[2]:
            w0, w1 = acc[1] - acc[0], pc[1] - pc[0]
            if acc[2] != "silence" and not np.isnan(pc[3]):
                acc[3] = (acc[3] * w0 + pc[3] * w1) / max(w0 + w1, 1e-9)
                acc[4] = (acc[4] * w0 + pc[4] * w1) / max(w0 + w1, 1e-9)
            acc[1] = pc[1]
        else:
            if acc:
                out.append(Segment(*acc))
            acc = list(pc)
    if acc:
        out.append(Segment(*acc))
    return [Segment(s.start, s.end, s.label, *((float("nan"),) * 2 if s.label == "silence"
                                               else (s.probability, s.p_no_music)))
            for s in out]

