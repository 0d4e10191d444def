"""Whole-file decisions: :func:`predict`, :func:`predict_proba`, :func:`predict_many`."""

from __future__ import annotations

import os
import threading
from functools import lru_cache
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


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> Model:
    return load_model(path)


def _model(model) -> Model:
    if model is None:
        return get_default_model()
    if isinstance(model, Model):
        return model
    js = Path(model).with_suffix(".json").resolve()
    try:
        mtime = js.stat().st_mtime_ns
    except OSError:
        return load_model(model)  # raises the clear error
    return _load_cached(str(js), mtime)


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


def _safe(path, model, threshold=None, explain=False):
    try:
        if explain:
            from .explanation import explain as _explain

            return _explain(path, model=_model(model), threshold=threshold)
        return predict(path, model=model, threshold=threshold)
    except AudioError as exc:
        return PredictionFailure(str(path), type(exc).__name__, exc.reason)


def predict_many(paths: Iterable, *, model=None, n_jobs: int = 1, backend: str | None = None,
                 ordered: bool = True, threshold: float | None = None, explain: bool = False
                 ) -> Iterator[Prediction | PredictionFailure]:
    """Classify many files; a bad file yields a :class:`PredictionFailure` and the run goes on.

    Parameters
    ----------
    paths : iterable of path
        Files (use :func:`discover` to expand folders).
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

    Yields
    ------
    Prediction, Explanation or PredictionFailure

    Examples
    --------
    >>> for r in scoresong.predict_many(discover(["library/"]), n_jobs=-1):   # doctest: +SKIP
    ...     print(r.path, getattr(r, "label", r.reason))
    """
    paths = [str(p) for p in paths]
    if backend == "dask":
        _require_dask_client()
    if n_jobs == 1 and backend is None:
        m = _model(model)
        for p in paths:
            yield _safe(p, m, threshold, explain)
        return
    from joblib import Parallel, delayed, parallel_config

    # With the shipped model, send None: each worker loads it once (get_default_model)
    # instead of receiving a pickled copy with every batch of files. A model given as a
    # path is sent as the path, loaded (and checked) by the workers.
    m = model if model is None or isinstance(model, (str, os.PathLike)) else _model(model)
    # backend=None keeps whatever joblib.parallel_config the caller has set (loky otherwise).
    with parallel_config(n_jobs=n_jobs, **({"backend": backend} if backend else {})):
        yield from Parallel(return_as="generator" if ordered else "generator_unordered")(
            delayed(_safe)(p, m, threshold, explain) for p in paths)


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
