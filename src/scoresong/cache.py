"""Feature extraction over a corpus, in parallel, with a cache keyed by file content.

A cached vector is found again by the file's *content* (a BLAKE2b digest), the excerpt
(start, duration) and the feature schema (version plus a fingerprint of the feature names),
never by path: renaming or moving a corpus keeps its cache, editing a file in place does
not serve stale features, and adding ten files to ten thousand extracts ten.

Digests themselves are remembered in ``DIR/digests.json`` by (path, size, mtime), so a
rerun reads unchanged files once to confirm nothing, not to hash them again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import AudioError
from .dataset import Item
from .features import FEATURE_SCHEMA_VERSION, check_view, extract_features, feature_names

__all__ = ["extract_items", "Extraction", "file_digest", "schema_key"]


def file_digest(path) -> str:
    """BLAKE2b-128 hex digest of a file's content."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def schema_key(view: str = "mix") -> str:
    """Schema version plus a fingerprint of the feature names (and the view, when it is not
    the mix): a cache never serves vectors of another feature set, even if someone forgets
    to bump the version, nor the centre's values for the mix's."""
    names = "\n".join(feature_names()).encode()
    key = f"{FEATURE_SCHEMA_VERSION}-{hashlib.sha256(names).hexdigest()[:16]}"
    return key if check_view(view) == "mix" else f"{key}+{view}"


def _features_of(digest: str, start: float, duration: float | None, schema: str, path: str) -> np.ndarray:
    # The cache key is (digest, start, duration, schema); ``path`` only says where to read.
    return extract_features(path, offset=start, duration=duration).values


def _centre_features_of(digest: str, start: float, duration: float | None, schema: str, path: str
                        ) -> np.ndarray:
    # view="centre" (a function of its own: editing _features_of would void every mix cache).
    return extract_features(path, offset=start, duration=duration, view="centre").values


class _Digests:
    """(path, size, mtime_ns) -> content digest, persisted in the cache folder."""

    def __init__(self, folder: Path | None):
        self.file = folder / "digests.json" if folder else None
        self.known: dict[str, str] = {}
        if self.file and self.file.exists():
            try:
                self.known = json.loads(self.file.read_text())
            except (OSError, ValueError):
                self.known = {}
        self.hashed = 0

    def __call__(self, path: str) -> str | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
        if key not in self.known:
            try:
                self.known[key] = file_digest(path)
            except OSError:
                return None
            self.hashed += 1
        return self.known[key]

    def save(self):
        if self.file:
            tmp = self.file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.known))
            os.replace(tmp, self.file)


def _one(item: Item, digest: str | None, cached, schema: str):
    """(vector or None, error or None, "cached" | "extracted" | "failed")."""
    if digest is None:
        if not os.path.isfile(item.path):
            return None, f"{item.path}: AudioFileNotFoundError: no such file", "failed"
        if not os.access(item.path, os.R_OK):
            return None, f"{item.path}: UnreadableAudioError: permission denied", "failed"
        digest = "-"  # no cache: the key is not used
    try:
        hit = cached.check_call_in_cache(digest, item.start_s, item.duration_s, schema, item.path) \
            if hasattr(cached, "check_call_in_cache") else False
        v = cached(digest, item.start_s, item.duration_s, schema, item.path)
        return v, None, "cached" if hit else "extracted"
    except AudioError as exc:
        return None, f"{exc.path}: {type(exc).__name__}: {exc.reason}", "failed"


@dataclass
class Extraction:
    """Feature vectors of a list of items.

    Attributes
    ----------
    X : np.ndarray [shape=(n_ok, d)]
    ok : np.ndarray [shape=(n_ok,)]
        Indices into the items of the rows of ``X``.
    errors : list of str
        One line per failed item: path, error type, reason.
    counts : dict
        ``cached`` (served from the cache), ``extracted`` (computed now), ``failed``,
        ``hashed`` (files whose content digest was computed this run) and ``seconds``.
    """

    X: np.ndarray
    ok: np.ndarray
    errors: list[str] = field(default_factory=list)
    counts: dict = field(default_factory=dict)

    def __iter__(self):  # X, ok, errors = extract_items(...)
        return iter((self.X, self.ok, self.errors))


def extract_items(items: list[Item], *, n_jobs: int = 1, cache_dir=None, progress: bool = True,
                  view: str = "mix") -> Extraction:
    """Feature vectors of ``items``; failures are returned, never raised.

    Parameters
    ----------
    items : list of Item
    n_jobs : int
        Worker processes (joblib; ``-1``: all cores).
    cache_dir : path, optional
        Feature cache folder (created if missing); ``None`` computes everything.
    progress : bool
        Show a progress bar on standard error (needs ``tqdm``).
    view : {"mix", "centre"}
        What the features hear of a stereo file (:func:`scoresong.extract_features`);
        cached apart.

    Returns
    -------
    Extraction
    """
    from joblib import Memory, Parallel, delayed

    t0 = time.time()
    folder = Path(cache_dir) if cache_dir else None
    if folder:
        folder.mkdir(parents=True, exist_ok=True)
    mem = Memory(str(folder) if folder else None, verbose=0)
    cached = mem.cache(_features_of if check_view(view) == "mix" else _centre_features_of, ignore=["path"])
    digests = _Digests(folder)
    schema = schema_key(view)
    keys = [digests(i.path) if folder else None for i in items]
    digests.save()
    it = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(
        delayed(_one)(i, k, cached, schema) for i, k in zip(items, keys))
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(it, total=len(items), desc="features", unit="file", file=sys.stderr)
        except ImportError:
            pass
    rows, ok, errors = [], [], []
    counts = {"cached": 0, "extracted": 0, "failed": 0}
    for k, (v, err, status) in enumerate(it):
        counts[status] += 1
        if err is None:
            rows.append(v)
            ok.append(k)
        else:
            errors.append(err)
    counts["hashed"] = digests.hashed
    counts["seconds"] = round(time.time() - t0, 1)
    d = len(feature_names())
    X = np.vstack(rows) if rows else np.zeros((0, d), np.float32)
    return Extraction(X, np.array(ok, dtype=int), errors, counts)
