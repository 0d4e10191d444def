"""Why a file was called a song (or not): the features that pushed the decision.

Method (model-agnostic, exact for the shipped model's inputs): for each named statistic
(its mean and 90th-percentile columns together) the file's values are swapped, one
statistic at a time, for those of each background clip stored with the model (32 score and
32 song clips of the training data). The statistic's *effect* is how much the model's
log-odds of song drop on average when that happens::

    effect_g = logit P(song | x)  -  mean_b logit P(song | x with statistic g taken from clip b)

A positive effect pushed the file towards ``song`` compared with typical training material,
a negative one towards ``score``. A three-class model's ``no_music`` decision is explained
the same way on the log-odds of P(no_music), against background clips of every class
(``question="no_music"``); its score/song decision against the music clips only. Effects of correlated statistics overlap (each is measured
with the others left as they are), so they do not add up to the total; read them as "which
evidence mattered", not as a budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .audio import source_name
from .features import Features, extract_features
from .model import Model, ModelError, resolve_model

__all__ = ["Contribution", "Explanation", "explain", "explain_features"]

_EPS = 1e-6


@dataclass(frozen=True)
class Contribution:
    """One statistic's push on the decision.

    Attributes
    ----------
    feature : str
        ``family.statistic`` (e.g. ``vocal.vibrato_share``).
    effect : float
        Change in log-odds of song this statistic caused (positive: towards song).
    value : float
        The file's value (mean over its segments).
    typical_score, typical_song : float
        Median of the same value over the training clips of each class.
    typical_no_music : float or None
        The same for ``no_music`` clips (three-class models).
    """

    feature: str
    effect: float
    value: float
    typical_score: float
    typical_song: float
    typical_no_music: float | None = None


@dataclass(frozen=True)
class Explanation:
    """A decision and the statistics that pushed it, strongest first.

    ``question`` is the decision explained: ``"song"`` (effects on the log-odds of
    P(song | music), ``threshold`` the song threshold) or ``"no_music"`` (effects on the
    log-odds of P(no_music), ``threshold`` the presence threshold). ``probability`` is
    P(song) either way; ``probabilities`` holds every class's.
    """

    path: str
    label: str
    probability: float
    threshold: float
    contributions: tuple[Contribution, ...]
    question: str = "song"
    probabilities: dict = field(default=None, hash=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["contributions"] = [asdict(c) for c in self.contributions]
        return d

    def __str__(self) -> str:
        if self.question == "no_music":
            q = (self.probabilities or {}).get("no_music", float("nan"))
            lines = [f"{self.path}: {self.label} (P(no_music) = {q:.3f}, threshold {self.threshold:.3f})",
                     f"  {'statistic':38} {'effect':>7}  {'value':>9}  {'typ. no_music':>13}  {'typ. score':>10}"]
            for c in self.contributions:
                arrow = "no_music" if c.effect > 0 else "music"
                lines.append(f"  {c.feature:38} {c.effect:+7.2f}  {c.value:9.3g}  {c.typical_no_music:13.3g}  "
                             f"{c.typical_score:10.3g}  -> {arrow}")
            return "\n".join(lines)
        lines = [f"{self.path}: {self.label} (P(song) = {self.probability:.3f}, threshold "
                 f"{self.threshold:.3f})",
                 f"  {'statistic':38} {'effect':>7}  {'value':>9}  {'typ. score':>10}  {'typ. song':>10}"]
        for c in self.contributions:
            arrow = "song " if c.effect > 0 else "score"
            lines.append(f"  {c.feature:38} {c.effect:+7.2f}  {c.value:9.3g}  {c.typical_score:10.3g}  "
                         f"{c.typical_song:10.3g}  -> {arrow}")
        return "\n".join(lines)


def _logit(p):
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _reference(model: Model):
    ref = model.meta.get("reference")
    if not ref or "background" not in ref:
        raise ModelError(f"model {model.version} carries no reference data to explain with; "
                         "retrain it with this version of scoresong (`scoresong train CORPUS -o MODEL`)")
    bg = np.asarray(ref["background"], dtype=np.float64)
    labels = np.asarray(ref.get("background_labels") or ["score"] * len(bg))
    return bg, labels, ref["median"]


def explain_features(values: np.ndarray, model: Model, *, top: int | None = 8, path: str = "",
                     threshold: float | None = None, classes=None) -> Explanation:
    """Explain the decision on one file vector (see the module docstring for the method).

    Parameters
    ----------
    values : np.ndarray [shape=(d,)]
        The file's feature vector (:attr:`Features.values`).
    model : Model
    top : int or None
        Keep this many statistics, by absolute effect (``None``: all).
    threshold : float, optional
        Override the model's song threshold.
    classes : ("score", "song"), optional
        Explain the score/song decision even where a three-class model says ``no_music``.
    """
    from .prediction import _two_classes

    two = _two_classes(classes) or not model.three_class
    bg, bg_labels, med = _reference(model)
    names = model.feature_names
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size != len(names) or bg.shape[1] != x.size:
        raise ValueError(f"feature vector has {x.size} values, the model expects {len(names)}")
    stats = list(dict.fromkeys(n.split(":")[0] for n in names))
    cols = {s: [j for j, n in enumerate(names) if n.split(":")[0] == s] for s in stats}
    q0, s0 = (float(v[0]) for v in model.parts(x))
    label = str(model.labels([q0], [s0], threshold=threshold,
                             classes=("score", "song") if two else None)[0])
    question = "no_music" if label == "no_music" else "song"
    if question == "song" and (bg_labels != "no_music").any():
        bg = bg[bg_labels != "no_music"]  # the song part only ever sees music
    part = 0 if question == "no_music" else 1
    # One batch: every statistic swapped for every background clip.
    rows = np.repeat(x[None, :], len(stats) * len(bg), axis=0).reshape(len(stats), len(bg), -1)
    for k, s in enumerate(stats):
        rows[k][:, cols[s]] = bg[:, cols[s]]
    lp = _logit(model.parts(rows.reshape(-1, x.size))[part]).reshape(len(stats), len(bg))
    effect = _logit((q0, s0)[part]) - lp.mean(axis=1)
    order = np.argsort(-np.abs(effect), kind="stable")[: top or len(stats)]
    first = {s: cols[s][0] for s in stats}  # the ":mean" column
    nm = med.get("no_music")
    contrib = tuple(Contribution(stats[k], round(float(effect[k]), 4), float(x[first[stats[k]]]),
                                 float(med["score"][first[stats[k]]]), float(med["song"][first[stats[k]]]),
                                 None if nm is None else float(nm[first[stats[k]]]))
                    for k in order)
    if two:
        probs = {"score": round(1 - s0, 4), "song": round(s0, 4)}
        p_song = s0
    else:
        p_song = (1 - q0) * s0
        probs = {"no_music": round(q0, 4), "score": round((1 - q0) * (1 - s0), 4), "song": round(p_song, 4)}
    thr = (model.presence_threshold if question == "no_music"
           else model.threshold if threshold is None else threshold)
    return Explanation(path, label, round(p_song, 4), thr, contrib, question, probs)


def explain(source, *, sr: float | None = None, stream: int | None = None, model=None,
            top: int | None = 8, threshold: float | None = None, classes=None,
            view: str = "mix") -> Explanation:
    """The statistics that pushed the decision on a file, strongest first.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray, iterator of np.ndarray, or Features
        Audio as :func:`scoresong.predict` takes it (a media file, a signal ``y`` with
        ``sr=``, or a block stream with ``sr=``), or features already extracted.
    sr : number, optional
        Sample rate of an array or block stream.
    stream : int, optional
        Which audio stream of a media file (counting from 0; default the first).
    model : Model, path or None
        Default: the shipped model.
    top : int or None
        How many statistics to keep (``None``: all 80).
    threshold : float, optional
        Override the model's threshold for the label.
    classes : ("score", "song"), optional
        Score or song only (see :func:`scoresong.predict`).
    view : {"mix", "centre"}
        What the model hears of a stereo source (see :func:`scoresong.predict`); unused
        for ``Features``.

    Returns
    -------
    Explanation
        ``print()`` it for a table; ``to_dict()`` for JSON.

    Examples
    --------
    >>> print(scoresong.explain("track.ogg", top=3))          # doctest: +SKIP
    track.ogg: song (P(song) = 0.912, threshold 0.205)
      statistic                               effect      value  typ. score   typ. song
      vocal.fluct_vibrato_share                +2.10      0.31       0.02        0.24  -> song
      ...
    """
    m = resolve_model(model)
    if isinstance(source, Features):
        f, name = source, ""
    else:
        f, name = extract_features(source, sr, stream=stream, view=view), source_name(source)
    return explain_features(f.values, m, top=top, path=name, threshold=threshold, classes=classes)
