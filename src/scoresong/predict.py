"""Whole-file decisions: :func:`predict`, :func:`predict_proba`, :func:`predict_many`."""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator


from .audio import AudioError
from .features import extract_features
from .model import Model, load_model

__all__ = ["Prediction", "PredictionFailure", "predict", "predict_proba", "predict_many",
           "get_default_model"]

_lock = threading.Lock()
_default: Model | None = None


def get_default_model() -> Model:
    """The shipped model, loaded once per process."""
    global _default
    with _lock:
        if _default is None:
            _default = load_model()
        return _default


@dataclass(frozen=True)
class Prediction:
    """The decision for one file.

    Attributes
    ----------
    path : str
    label : {"score", "song"}
    probability : float
        Calibrated probability that the file is a song (a lead vocal with lyrics).
    duration : float
        Seconds of audio analysed.
    model_version : str
    """

    path: str
    label: str
    probability: float
    duration: float
    model_version: str

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


def _model(model) -> Model:
    if model is None:
        return get_default_model()
    if isinstance(model, Model):
        return model
    return load_model(model)


def predict(path, *, model=None, threshold: float | None = None) -> Prediction:
    """Classify one audio file as ``"score"`` or ``"song"``.

    Parameters
    ----------
    path : str or os.PathLike
        Any format libsndfile reads; streamed, so length does not matter.
    model : Model, path or None
        Default: the shipped model in ``models/``.
    threshold : float, optional
        P(song) at or above which the label is ``"song"``; default: the model's.

    Returns
    -------
    Prediction

    Raises
    ------
    scoresong.AudioError
        The file cannot be analysed (the subclass and message say why).

    Examples
    --------
    >>> import scoresong
    >>> scoresong.predict("cue.ogg")  # doctest: +SKIP
    Prediction(path='cue.ogg', label='score', probability=0.03, duration=212.4, ...)
    """
    m = _model(model)
    f = extract_features(path)
    p = float(m.song_probability(f.values)[0])
    thr = m.threshold if threshold is None else threshold
    return Prediction(str(path), "song" if p >= thr else "score", round(p, 4), round(f.duration, 3), m.version)


def predict_proba(path, *, model=None) -> float:
    """Calibrated probability that ``path`` is a song."""
    return predict(path, model=model).probability


def _safe(path, model) -> Prediction | PredictionFailure:
    try:
        return predict(path, model=model)
    except AudioError as exc:
        return PredictionFailure(str(path), type(exc).__name__, exc.reason)


def predict_many(paths: Iterable, *, model=None, n_jobs: int = 1) -> Iterator[Prediction | PredictionFailure]:
    """Classify many files; a bad file yields a :class:`PredictionFailure` and the run goes on.

    Results come in input order. With ``n_jobs != 1`` files are spread over processes
    (joblib), each loading the model once.
    """
    paths = [str(p) for p in paths]
    if n_jobs == 1:
        m = _model(model)
        for p in paths:
            yield _safe(p, m)
        return
    from joblib import Parallel, delayed

    # With the shipped model, send None: each worker loads it once (get_default_model)
    # instead of receiving a pickled copy with every batch of files.
    m = None if model is None else _model(model)
    yield from Parallel(n_jobs=n_jobs, return_as="generator")(delayed(_safe)(p, m) for p in paths)


AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".caf", ".w64", ".rf64"}


def discover(paths: Iterable) -> list[str]:
    """Expand directories recursively into the audio files they hold (sorted)."""
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, _, files in os.walk(p):
                out.extend(str(Path(root) / f) for f in sorted(files)
                           if Path(f).suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(str(p))
    return out
