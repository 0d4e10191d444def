"""Whole-file decisions: :func:`predict`, :func:`predict_proba`, :func:`predict_many`."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator


from . import audio
from .audio import AudioError
from .features import check_view, extract_features
from .model import get_default_model, resolve_model

__all__ = ["Prediction", "PredictionFailure", "predict", "predict_proba", "predict_many",
           "get_default_model"]


@dataclass(frozen=True)
class Prediction:
    """The decision for one file.

    Attributes
    ----------
    path : str
    label : {"score", "song", "no_music"}
        ``no_music`` (no music audible: dialogue alone, effects, ambience) only from a
        three-class model and unless ``classes=("score", "song")`` was asked for.
    probability : float
        Calibrated probability that the file is a song (a lead vocal with lyrics).
    duration : float
        Seconds of audio analysed.
    model_version : str
    probabilities : dict
        Calibrated probability of every label answered (they sum to 1), e.g.
        ``{"no_music": 0.01, "score": 0.95, "song": 0.04}``.
    """

    path: str
    label: str
    probability: float
    duration: float
    model_version: str
    probabilities: dict = field(default=None, hash=False)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PredictionFailure:
    """A file that could not be judged, with the error's type and reason."""

    path: str
    error: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def predict(source, *, sr: float | None = None, stream: int | None = None, model=None,
            threshold: float | None = None, presence_threshold: float | None = None,
            classes=None, view: str = "mix") -> Prediction:
    """Classify audio as ``"score"``, ``"song"`` or ``"no_music"``.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray or iterator of np.ndarray
        What to judge, streamed so length does not matter:

        - an audio or media file: a path, its ``bytes``, or a binary file object
          (WAV, FLAC, OGG, Opus, MP3, AIFF; AAC/M4A, ALAC, MP4/MOV/MKV/WebM/AVI, WMA,
          AC-3/E-AC-3 through FFmpeg);
        - a signal ``y`` with ``sr=``: mono ``(n,)`` or ``(channels, n)`` (librosa's
          convention; a ``(n, channels)`` array from soundfile must be passed as ``y.T``);
        - an iterator of such blocks with ``sr=``, analysed in constant memory.
    sr : number, optional
        Sample rate of an array or block stream (required for those, not for files).
    stream : int, optional
        Which audio stream of a media file, counting from 0 (default: the first).
    model : Model, path or None
        Default: the shipped model in ``models/``.
    threshold : float, optional
        P(song | music) at or above which music is labelled ``"song"``; default: the
        model's. (For music, P(no_music) is near 0 and this is P(song).)
    presence_threshold : float, optional
        P(no_music) at or above which the label is ``"no_music"`` when the music verdict is
        ambiguous (a clearly sung or clearly instrumental file needs more; see below);
        default: the model's.
    classes : ("score", "song"), optional
        Ask only score or song, as a two-class model answers (``probability`` is then
        P(song | music)); default: every class the model knows.
    view : {"mix", "centre"}
        What the model hears of a stereo source: its mono mix (default), or the centre of
        the image (``"centre"``), where records put the lead vocal. The centre view finds
        far more songs whose voice is buried under a wide, dense band, and calls more
        stereo score song: measured trade-offs in the model card ("Reading the centre").
        Mono sources are the same either way. Costs one more STFT on stereo input.

    Returns
    -------
    Prediction
        ``path`` is the file's path, or ``"<array>"``, ``"<stream>"``, ``"<bytes>"``.
        With a three-class model the label is the class whose probability is largest
        against its prior (the thresholds; :func:`scoresong.model.three_class_labels`):
        ``song`` rather than ``score`` when P(song | music) reaches the threshold, and
        ``no_music`` when P(no_music) / presence threshold beats that music label's
        probability over its prior. ``probability`` is P(song) = (1 − P(no_music)) ·
        P(song | music).

    Raises
    ------
    scoresong.AudioError
        The audio cannot be analysed (the subclass and message say why).
    ValueError, TypeError
        An array of the wrong shape or dtype, a missing / invalid ``sr``, or an invalid
        ``threshold``, ``classes`` or ``view`` (checked before any decoding).

    Examples
    --------
    >>> import scoresong
    >>> scoresong.predict("cue.ogg")  # doctest: +SKIP
    Prediction(path='cue.ogg', label='score', probability=0.03, duration=212.4, ...)
    >>> scoresong.predict("interview.wav").probabilities  # doctest: +SKIP
    {'no_music': 0.992, 'score': 0.007, 'song': 0.001}
    >>> y, sr = soundfile.read("cue.ogg", dtype="float32")  # doctest: +SKIP
    >>> scoresong.predict(y.T, sr=sr)  # doctest: +SKIP
    Prediction(path='<array>', label='score', probability=0.03, duration=212.4, ...)
    """
    for name, t in (("threshold", threshold), ("presence_threshold", presence_threshold)):
        if t is not None and not 0.0 <= t <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {t!r}")
    two = _two_classes(classes)
    check_view(view)
    m = resolve_model(model)
    f = extract_features(source, sr, stream=stream, view=view)
    q, s = (float(v[0]) for v in m.parts(f.values))
    label = str(m.labels([q], [s], threshold=threshold, presence_threshold=presence_threshold,
                         classes=("score", "song") if two else None)[0])
    if two or not m.three_class:
        probs = {"score": round(1.0 - s, 4), "song": round(s, 4)}
        p = s
    else:
        p = (1.0 - q) * s
        probs = {"no_music": round(q, 4), "score": round((1.0 - q) * (1.0 - s), 4), "song": round(p, 4)}
    return Prediction(audio.source_name(source), label, round(p, 4), round(f.duration, 3), m.version,
                      probs)


def _two_classes(classes) -> bool:
    """Whether ``classes`` asks for score/song only (``None``: every class of the model)."""
    if classes is None:
        return False
    c = tuple(str(x).lower() for x in (classes.split(",") if isinstance(classes, str) else classes))
    if sorted(c) == ["score", "song"]:
        return True
    if sorted(c) == ["no_music", "score", "song"]:
        return False
    raise ValueError(f"classes must be ('score', 'song') or ('no_music', 'score', 'song'), got {classes!r}")


def predict_proba(source, *, sr: float | None = None, stream: int | None = None, model=None,
                  view: str = "mix") -> float:
    """Calibrated probability that ``source`` (see :func:`predict`, also for ``view``) is a song."""
    return predict(source, sr=sr, stream=stream, model=model, view=view).probability


def _safe(path, model, threshold=None, explain=False, stream=None, classes=None, view="mix"):
    try:
        if explain:
            from .explanation import explain as _explain

            return _explain(path, stream=stream, model=resolve_model(model), threshold=threshold,
                            classes=classes, view=view)
        return predict(path, stream=stream, model=model, threshold=threshold, classes=classes,
                       view=view)
    except AudioError as exc:
        return PredictionFailure(audio.source_name(path), type(exc).__name__, exc.reason)


def predict_many(paths: Iterable, *, model=None, n_jobs: int = 1, backend: str | None = None,
                 ordered: bool = True, threshold: float | None = None, explain: bool = False,
                 stream: int | None = None, classes=None, view: str = "mix"
                 ) -> Iterator[Prediction | PredictionFailure]:
    """Classify many files; a bad file yields a :class:`PredictionFailure` and the run goes on.

    Parameters
    ----------
    paths : iterable of path
        Files (use :func:`discover` to expand folders). An open binary file (standard input)
        is read in this process, so it needs ``n_jobs=1``.
    model : Model, path or None
        Default: the shipped model; each worker process loads it once.
    n_jobs : int
        Parallel workers (``-1``: all cores; with ``backend="dask"``, the cluster's).
    backend : {None, "loky", "threading", "dask"}
        joblib backend. ``"dask"`` runs on the Dask cluster of the current
        ``distributed.Client`` (``pip install 'scoresong[dask]'``; create the client first).
    ordered : bool
        Yield in input order (default) or as soon as each file is done.
    threshold : float, optional
        Override the model's threshold.
    explain : bool
        Yield :class:`scoresong.explanation.Explanation` s (decision and reasons) instead of
        :class:`Prediction` s.
    stream : int, optional
        Which audio stream of each media file (counting from 0; default the first). A file
        without that stream is reported as a :class:`PredictionFailure`.
    classes : ("score", "song"), optional
        Score or song only (see :func:`predict`).
    view : {"mix", "centre"}
        What the model hears of a stereo file (see :func:`predict`).

    Yields
    ------
    Prediction, Explanation or PredictionFailure

    Examples
    --------
    >>> for r in scoresong.predict_many(discover(["library/"]), n_jobs=-1):   # doctest: +SKIP
    ...     print(r.path, getattr(r, "label", r.reason))
    """
    # Settings are checked now, when predict_many is called, not at the first file.
    _two_classes(classes)
    check_view(view)
    if backend == "dask":
        _require_dask_client()
    paths = [p if hasattr(p, "read") else str(p) for p in paths]
    return _predict_many(paths, model, n_jobs, backend, ordered, threshold, explain, stream, classes, view)


def _predict_many(paths, model, n_jobs, backend, ordered, threshold, explain, stream, classes, view):
    if n_jobs == 1 and backend is None:
        m = resolve_model(model)
        for p in paths:
            yield _safe(p, m, threshold, explain, stream, classes, view)
        return
    from joblib import Parallel, delayed, parallel_config

    # With the shipped model, send None: each worker loads it once (get_default_model)
    # instead of receiving a pickled copy with every batch of files. A model given as a
    # path is sent as the path, loaded (and checked) by the workers.
    m = model if model is None or isinstance(model, (str, os.PathLike)) else resolve_model(model)
    # backend=None keeps whatever joblib.parallel_config the caller has set (loky otherwise).
    with parallel_config(n_jobs=n_jobs, **({"backend": backend} if backend else {})):
        yield from Parallel(return_as="generator" if ordered else "generator_unordered")(
            delayed(_safe)(p, m, threshold, explain, stream, classes, view) for p in paths)


def _require_dask_client():
    try:
        from distributed import get_client
    except ImportError:
        raise ImportError("backend='dask' needs dask.distributed: pip install 'scoresong[dask]'") from None
    try:
        get_client()
    except ValueError:
        raise ValueError("backend='dask' runs on an existing cluster: create a "
                         "distributed.Client(address) first") from None


# Discovery lives with audio I/O; kept importable from here for existing callers.
AUDIO_EXTENSIONS = audio.AUDIO_EXTENSIONS
discover = audio.discover
