"""Batch runs over a library: results streamed to CSV or JSON Lines as files complete,
resumable, and safe to interrupt.

Every result is written as one whole line and flushed, so an interrupted run (Ctrl-C, a
killed job) leaves a valid file; a line cut short by a crash is dropped when the run is
resumed. ``resume=True`` reads the output, skips every path already in it (classified or
failed: a failure is a result too) and appends the rest.

The settings that decide a label (the model, its threshold, the classes asked for, the
view, the media stream) are kept beside the output in ``OUTPUT.settings.json``
(:func:`settings_file`); a resumed run with other settings is refused
(:class:`BatchSettingsError`), so one file never mixes the answers of two settings. A file
written before that sidecar existed is checked on its rows' ``model_version`` only (and
gets no sidecar, since its other settings are unknown). The model's settings are read from
its ``.json``; a model path this process cannot read (one that exists on Dask workers only)
gets no sidecar and no check.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from .prediction import PredictionFailure, predict_many

__all__ = ["run_batch", "BatchSummary", "BatchSettingsError", "completed_paths", "read_results",
           "settings_file", "to_dataframe", "FIELDS"]

#: Columns of a CSV result file (JSON Lines records carry the same keys).
#: ``probability`` is P(song); ``p_no_music`` is P(no_music) from a three-class model (empty
#: from a two-class one, or with ``classes=("score", "song")``).
FIELDS = ["path", "label", "probability", "p_no_music", "duration", "model_version", "error", "reason"]


#: What :func:`settings_file` appends to a result file's name.
SETTINGS_SUFFIX = ".settings.json"


class BatchSettingsError(ValueError):
    """A run asked to resume a result file made with other settings (model, threshold,
    classes or view): its answers would not be comparable with the rows already there."""


def settings_file(output) -> Path:
    """Where :func:`run_batch` keeps the settings a result file was made with.

    Parameters
    ----------
    output : path
        A result file.

    Returns
    -------
    Path
        ``OUTPUT.settings.json``: JSON with ``model_version``, ``threshold``, ``classes``,
        ``view`` and ``stream``.
    """
    return Path(str(output) + SETTINGS_SUFFIX)


def _model_meta(model) -> dict | None:
    """The metadata of the model a ``model=`` argument names, read from its ``.json`` without
    loading the estimator (a Dask or process-pool run loads it in its workers only); ``None``
    when this process cannot read it (a path that exists on the workers only)."""
    from .model import Model, ModelError, _read_meta, default_model_path

    if isinstance(model, Model):
        return model.meta
    try:
        return _read_meta(default_model_path() if model is None else Path(model).with_suffix(".json"))
    except (OSError, ModelError):
        return None


def _run_settings(model, threshold, classes, view, stream) -> dict | None:
    """The settings that decide a label, as the run will apply them (the model's own
    threshold when none is given; the classes the answers can take); ``None`` when the
    model's metadata cannot be read here."""
    from .model import _three_class
    from .prediction import _two_classes

    meta = _model_meta(model)
    if meta is None:
        return None
    three = _three_class(meta)
    t = float(meta.get("threshold", 0.5) if threshold is None else threshold)
    return {"model_version": str(meta.get("model_version", "unknown")),
            "threshold": round(t, 6),     # a float32 0.1 and 0.1 are the same setting
            "classes": ["score", "song"] if _two_classes(classes) or not three else ["no_music", "score", "song"],
            "view": view, "stream": stream}


def _check_resume(output, fmt: str, settings: dict) -> bool:
    """Refuse to resume ``output`` with settings other than those it was made with.

    Returns whether the sidecar may be (re)written: not for a file made before sidecars
    existed, whose threshold, classes and view are unknown (only its rows' model version
    is checked, on every resume)."""
    if not Path(output).exists():
        return True                      # nothing to mix with (a stale sidecar is replaced)
    side = settings_file(output)
    if side.exists():
        try:
            old = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            old = exc
        if not isinstance(old, dict):
            raise BatchSettingsError(f"{side}: cannot read the settings of {output} ({old}); "
                                     "remove it to resume without the check")
        diff = [f"{k} {old.get(k)!r} -> {v!r}" for k, v in settings.items() if old.get(k) != v]
        if diff:
            raise BatchSettingsError(
                f"{output} was made with other settings ({'; '.join(diff)}): resume it with the "
                "settings it was started with, or write to another file")
        return True
    versions = _model_versions(output, fmt) - {"", None}
    if versions - {settings["model_version"]}:
        raise BatchSettingsError(
            f"{output} holds answers of model {', '.join(sorted(versions))}, this run uses "
            f"{settings['model_version']}: resume it with that model, or write to another file")
    return False


def _write_settings(output, settings: dict) -> None:
    """Write the sidecar whole or not at all (a temporary file, then a rename)."""
    side = settings_file(output)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, side)


@dataclass
class BatchSummary:
    """What a batch run did."""

    output: str | None
    total: int = 0
    skipped: int = 0
    classified: int = 0
    failed: list[PredictionFailure] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.classified + len(self.failed)


def _fmt(output, fmt: str | None) -> str:
    if fmt:
        return fmt
    if output and Path(output).suffix.lower() in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    return "csv" if output else "table"


def _record(r) -> dict:
    if isinstance(r, PredictionFailure):
        return {"path": r.path, "label": "", "probability": "", "p_no_music": "", "duration": "",
                "model_version": "", "error": r.error, "reason": r.reason}
    q = (getattr(r, "probabilities", None) or {}).get("no_music", "")
    d = {"path": r.path, "label": r.label, "probability": r.probability, "p_no_music": q,
         "duration": getattr(r, "duration", ""), "model_version": getattr(r, "model_version", ""),
         "error": "", "reason": ""}
    if hasattr(r, "contributions"):  # an Explanation
        d["explanation"] = [{"feature": c.feature, "effect": c.effect} for c in r.contributions]
    return d


def _complete_lines(path: Path) -> bytes:
    """The file's content up to its last newline (a line cut short by a crash is dropped)."""
    data = path.read_bytes()
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def _whole_records(output, fmt: str | None) -> list[dict]:
    """The records of a result file's whole lines, leniently: a line that is not a JSON
    object (JSON Lines) is skipped, undecodable bytes are replaced. (:func:`read_results`
    is the strict reader.)"""
    p = Path(output)
    if not p.exists():
        return []
    text = _complete_lines(p).decode("utf-8", errors="replace")
    if _fmt(output, fmt) != "jsonl":
        return list(csv.DictReader(io.StringIO(text)))
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def _model_versions(output, fmt: str | None) -> set:
    """The ``model_version`` values of a result file's whole lines."""
    return {r.get("model_version") for r in _whole_records(output, fmt)}


def completed_paths(output, *, fmt: str | None = None) -> set[str]:
    """Paths that already have a result (or an error) in a CSV / JSONL result file."""
    return {r["path"] for r in _whole_records(output, fmt) if r.get("path")}


def _import_pandas():
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError('results as a DataFrame need pandas: pip install "scoresong[pandas]"') from exc
    return pd


#: Text columns of a result DataFrame (pandas' nullable "string" dtype: <NA> where empty).
_TEXT = ("path", "label", "model_version", "error", "reason")


def to_dataframe(results):
    """Results as a :class:`pandas.DataFrame` (needs ``pip install "scoresong[pandas]"``).

    Parameters
    ----------
    results : iterable
        :class:`~scoresong.Prediction`, :class:`~scoresong.PredictionFailure` or
        explanation objects (what :func:`scoresong.predict_many` yields), or record dicts
        with the keys of :data:`FIELDS` (as in a result file).

    Returns
    -------
    pandas.DataFrame
        One row per result, failures included, columns :data:`FIELDS` (plus ``explanation``,
        a list of ``{"feature", "effect"}`` per row, when any result has one): ``path``,
        ``label``, ``model_version``, ``error`` and ``reason`` of dtype ``string`` (``<NA>``
        where empty: the label of a failure, the error of a success), ``probability``,
        ``p_no_music`` and ``duration`` ``float64`` (``NaN`` for a failure, and for
        ``p_no_music`` from a two-class model or a file written before it existed). Select the failures with
        ``df[df.error.notna()]``.
    """
    pd = _import_pandas()
    recs = [r if isinstance(r, dict) else _record(r) for r in results]
    cols = list(FIELDS) + (["explanation"] if any("explanation" in r for r in recs) else [])
    df = pd.DataFrame({c: [r.get(c) for r in recs] for c in cols}, columns=cols)
    for c in _TEXT:
        df[c] = pd.Series([None if v is None or v == "" else str(v) for v in df[c]], index=df.index,
                          dtype="string")
    for c in ("probability", "p_no_music", "duration"):
        df[c] = pd.Series([None if v is None or v == "" else float(v) for v in df[c]], index=df.index,
                          dtype="float64")
    return df


def _file_records(path, fmt: str | None = None) -> list[dict]:
    p = Path(path)
    text = _complete_lines(p).decode("utf-8")
    if _fmt(path, fmt) == "jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return list(csv.DictReader(io.StringIO(text)))


def read_results(path, *, fmt: str | None = None):
    """A result file of :func:`run_batch` (``scoresong predict --output``) as a DataFrame.

    CSV or JSON Lines (from the suffix, as when written, or ``fmt``); a line cut short by a
    crash at the end of the file is dropped, as ``resume`` does. Needs
    ``pip install "scoresong[pandas]"``; the columns and dtypes are those of
    :func:`to_dataframe`.
    """
    _import_pandas()
    return to_dataframe(_file_records(path, fmt))


class _Writer:
    def __init__(self, output, fmt: str, resume: bool):
        self.fmt = fmt
        self.fields = FIELDS
        if output is None:
            self.fh, self.own = sys.stdout, False
        else:
            p = Path(output)
            p.parent.mkdir(parents=True, exist_ok=True)
            keep = _complete_lines(p) if resume and p.exists() else b""
            # Rewrite only when a partial last line has to go; otherwise append.
            if resume and p.exists() and len(keep) != p.stat().st_size:
                with open(p, "wb") as fh:
                    fh.write(keep)
            self.fh = open(p, "a" if resume else "w", newline="", encoding="utf-8")
            self.own = True
            if keep:
                if fmt == "csv":  # append in the file's own columns (it may predate p_no_music)
                    head = next(csv.reader(io.StringIO(keep.decode("utf-8", errors="replace"))), None)
                    self.fields = head or FIELDS
                return
        if fmt == "csv":
            self._line(",".join(FIELDS) + "\r\n")
        elif fmt == "table":
            self._line(f"{'label':8} {'P(song)':>7} {'seconds':>8}  path\n")

    def _line(self, s: str):
        self.fh.write(s)
        self.fh.flush()

    def write(self, r):
        d = _record(r)
        if self.fmt == "csv":
            buf = io.StringIO()
            csv.DictWriter(buf, fieldnames=self.fields, extrasaction="ignore").writerow(d)
            line = buf.getvalue()
        elif self.fmt == "jsonl":
            line = json.dumps(d) + "\n"
        elif isinstance(r, PredictionFailure):
            line = f"{'ERROR':8} {'':7} {'':8}  {r.path}  ({r.error}: {r.reason})\n"
        else:
            line = f"{r.label:8} {r.probability:7.3f} {getattr(r, 'duration', 0):8.1f}  {r.path}\n"
            if hasattr(r, "contributions"):
                line += "\n".join("    " + s for s in str(r).splitlines()[1:]) + "\n"
        self._line(line)  # one write + flush per result: an interruption never splits a line

    def close(self):
        if self.own:
            self.fh.close()


def run_batch(paths: Iterable, output=None, *, fmt: str | None = None, resume: bool = False,
              model=None, n_jobs: int = 1, backend: str | None = None, threshold: float | None = None,
              explain: bool = False, progress: bool | None = None, on_error=None,
              stream: int | None = None, classes=None, view: str = "mix") -> BatchSummary:
    """Classify files and stream each result to ``output`` as soon as it is ready.

    Parameters
    ----------
    paths : iterable of path
        Audio files (see :func:`scoresong.audio.discover`), or one open binary file
        (standard input) with ``n_jobs=1``.
    output : path, optional
        Result file; standard output when ``None``.
    fmt : {"csv", "jsonl", "table"}, optional
        Default: from the suffix (``.jsonl`` / ``.json`` → JSON Lines, else CSV), ``table``
        on standard output.
    resume : bool
        Skip paths already in ``output`` and append to it.
    model, n_jobs, backend, threshold, explain, stream, classes, view
        As for :func:`scoresong.predict_many`. The model's version, the threshold, the
        classes, the view and the stream are written to :func:`settings_file` beside
        ``output``.
    progress : bool, optional
        Progress bar on standard error (needs ``tqdm``); default: when it is a terminal.
    on_error : callable, optional
        Called with each :class:`PredictionFailure` as it happens.

    Returns
    -------
    BatchSummary
        Counts, the failures, and whether the run was interrupted (Ctrl-C stops the run,
        keeps every line written so far, and returns instead of raising).

    Raises
    ------
    BatchSettingsError
        ``resume`` with a model, threshold, classes, view or stream other than the output
        was made with, or with an unreadable settings file (nothing is written).
    """
    t0 = time.time()
    fmt = _fmt(output, fmt)
    paths = [p if hasattr(p, "read") else str(p) for p in paths]
    summary = BatchSummary(str(output) if output else None, total=len(paths))
    if resume:
        if output is None:
            raise ValueError("resume needs an output file")
        done = completed_paths(output, fmt=fmt)
        todo = [p for p in paths if p not in done]
        summary.skipped = len(paths) - len(todo)
        paths = todo
    # predict_many checks its settings when called: a bad one fails here, before the output
    # file is opened (and, without resume, emptied); so does a resume with other settings.
    it = predict_many(paths, model=model, n_jobs=n_jobs, backend=backend, ordered=False,
                      threshold=threshold, explain=explain, stream=stream, classes=classes, view=view)
    settings = _run_settings(model, threshold, classes, view, stream) if output is not None else None
    if settings is not None and resume and not _check_resume(output, fmt, settings):
        settings = None                  # a file from before sidecars: keep checking its rows only
    writer = _Writer(output, fmt, resume)
    if settings is not None:
        _write_settings(output, settings)
    if progress is None:
        progress = sys.stderr.isatty()
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(paths), desc="files", unit="file", file=sys.stderr)
        except ImportError:
            pass
    try:
        for r in it:
            writer.write(r)
            if isinstance(r, PredictionFailure):
                summary.failed.append(r)
                if on_error:
                    on_error(r)
            else:
                summary.classified += 1
            if bar:
                bar.update()
    except KeyboardInterrupt:
        summary.interrupted = True
        close = getattr(it, "close", None)
        if close:
            try:
                close()
            except Exception:  # noqa: BLE001 - workers being torn down
                pass
    finally:
        if bar:
            bar.close()
        writer.close()
    summary.seconds = round(time.time() - t0, 2)
    return summary

