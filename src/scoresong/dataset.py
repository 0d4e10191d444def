"""Labelled corpora: a CSV manifest or a folder of label sub-folders, read into :class:`Item` s.

Two layouts are understood:

* a **folder** with one sub-folder per label::

      corpus/score/<album>/....ogg
      corpus/song/<album>/....flac
      corpus/vocalise/....wav        # an extra label, mapped with label_map={"vocalise": "score"}

  The first sub-folder under a label folder is the default group (an album, a composer).
* a **CSV manifest** with at least ``path,label`` and optionally ``group``, ``weight``,
  ``kind``, ``start_s``, ``duration_s`` and any other columns (``corpus/build.py`` writes
  one). Relative paths are resolved against the manifest's folder.

The labels are ``score``, ``song`` and ``no_music`` (no music audible: dialogue alone,
effects, ambience; a corpus without it trains the two-class model as before). Any other
label is an *extra label*: mapped through ``label_map``
when given (the original name is kept as the item's ``kind`` so reports break it out),
otherwise the item is left out and counted in :attr:`Corpus.ignored`.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

__all__ = ["Item", "Corpus", "read_corpus", "CorpusError", "LABELS", "NO_MUSIC", "ALL_LABELS"]

#: The two music labels (what the song model tells apart).
LABELS = ("score", "song")
#: The label of audio with no music audible (dialogue alone, effects, ambience).
NO_MUSIC = "no_music"
#: Every label a corpus may carry, in the order of a three-class model's columns.
ALL_LABELS = (NO_MUSIC, "score", "song")


class CorpusError(ValueError):
    """A corpus that cannot be read, trained or evaluated on: a manifest without the
    ``path,label`` columns, a row :func:`read_corpus` refuses (an empty path, a weight that is
    not a non-negative number), a manifest that is not UTF-8 CSV, a ``label_map`` onto an
    unknown label; in training, one label missing, too few groups for grouped
    cross-validation, or no item that could be analysed. A ``ValueError``, so callers that
    caught that before still do; the message names the file (and line) at fault."""


@dataclass(frozen=True)
class Item:
    """One labelled example: a file or an excerpt of one.

    Attributes
    ----------
    path : str
    label : {"score", "song", "no_music"}
    group : str
        Cross-validation group: items of one group are always in the same fold.
    kind : str
        Finer label for the report (the original label or folder name, or the manifest's
        ``kind`` column).
    source : str
        Where the item came from (package, album), for the per-source breakdown.
    start_s, duration_s : float
        The excerpt to analyse (``duration_s=None``: to the end).
    weight : float
        Sample weight in training (manifest column ``weight``; default 1).
    extra : dict
        The row's other columns as read (strings), e.g. a manifest's ``voice``,
        ``var_db`` or ``generator``; for folders ``folder`` and ``parent``. Not part of
        equality or hashing.
    """

    path: str
    label: str
    group: str
    kind: str = ""
    source: str = ""
    start_s: float = 0.0
    duration_s: float | None = None
    weight: float = 1.0
    extra: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Corpus:
    """What :func:`read_corpus` found."""

    items: list[Item]
    ignored: dict[str, int] = field(default_factory=dict)
    layout: str = "manifest"

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    def __getitem__(self, k):
        return self.items[k]


#: Row keys that :class:`Item` holds itself (``file`` is the folder reader's copy of the path).
_ITEM_COLUMNS = frozenset({"path", "file", "label", "kind", "start_s", "duration_s", "weight"})


def _rows_from_folder(root: Path) -> list[dict]:
    from .audio import discover

    rows = []
    for label_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for f in discover([label_dir]):
            rel = Path(f).relative_to(label_dir)
            folder = rel.parts[0] if len(rel.parts) > 1 else Path(f).stem
            rows.append({"path": f, "label": label_dir.name, "folder": f"{label_dir.name}/{folder}",
                         "parent": str(Path(f).parent), "file": f})
    return rows


def _rows_from_manifest(p: Path) -> list[dict]:
    try:
        return _read_manifest_rows(p)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{p}: not a UTF-8 CSV manifest ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise CorpusError(f"{p}: not a readable CSV manifest ({exc})") from None


def _read_manifest_rows(p: Path) -> list[dict]:
    rows = []
    with open(p, newline="", encoding="utf-8-sig") as fh:  # -sig: a spreadsheet's BOM
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise CorpusError(f"{p}: a manifest needs at least the columns path,label "
                             f"(found {reader.fieldnames})")
        for line, r in enumerate(reader, start=2):
            fp = Path(r["path"] or "")
            if not r["path"]:
                raise CorpusError(f"{p}:{line}: empty path")
            if not fp.is_absolute():
                fp = p.parent / fp
            r = {k: (v or "").strip() for k, v in r.items() if k is not None}
            r["path"] = str(fp)
            r["file"] = str(fp)
            r["_line"] = line
            rows.append(r)
    return rows


def _float(r: dict, key: str, default, where: str, *, positive: bool = False):
    """Column ``key`` of row ``r`` as a finite number >= 0 (> 0 with ``positive``), or
    ``default`` when empty."""
    v = r.get(key, "")
    if v == "":
        return default
    try:
        x = float(v)
    except ValueError:
        raise CorpusError(f"{where}: column {key!r} is not a number: {v!r}") from None
    if not (math.isfinite(x) and (x > 0 if positive else x >= 0)):
        raise CorpusError(f"{where}: column {key!r} must be a finite number {'>' if positive else '>='} 0, "
                          f"got {x}")
    return x


def read_corpus(corpus, *, groups: str | Callable[[dict], str] | None = None,
                label_map: Mapping[str, str] | None = None) -> Corpus:
    """Read a labelled corpus.

    Parameters
    ----------
    corpus : str or os.PathLike
        A CSV manifest or a folder of label sub-folders (see the module docstring).
    groups : str or callable, optional
        What groups the cross-validation: a manifest column (``"group"``, ``"album"``,
        ``"composer"``, ``"source_package"``...), for folders ``"folder"`` (the default: the
        first sub-folder under the label), ``"parent"`` (the file's own folder) or
        ``"file"``; or a function of the row (a dict of the columns) returning the group.
        Default: the ``group`` column if present, else each file is its own group.
    label_map : mapping, optional
        Extra labels to fold into ``score`` / ``song`` / ``no_music``, e.g.
        ``{"vocalise": "score", "rap": "song", "sfx": "no_music"}``. Labels are compared
        case-insensitively.

    Returns
    -------
    Corpus
        ``items`` and the count of items per ``ignored`` label.

    Examples
    --------
    >>> c = read_corpus("my_library/", label_map={"choir": "score"})   # doctest: +SKIP
    >>> len(c), c.ignored                                              # doctest: +SKIP
    (1250, {'unsure': 12})
    """
    p = Path(corpus)
    if not p.exists():
        raise FileNotFoundError(f"{p}: corpus not found")
    layout = "folder" if p.is_dir() else "manifest"
    rows = _rows_from_folder(p) if layout == "folder" else _rows_from_manifest(p)
    lmap = {k.lower(): v.lower() for k, v in (label_map or {}).items()}
    if bad := set(lmap.values()) - set(ALL_LABELS):
        raise CorpusError(f"label_map must map onto {ALL_LABELS}, got {sorted(bad)}")
    if groups is None:
        groups = "folder" if layout == "folder" else ("group" if rows and "group" in rows[0] else "file")
    if isinstance(groups, str) and rows and groups not in rows[0]:
        raise CorpusError(f"{p}: no column {groups!r} to group by; columns: "
                         f"{sorted(k for k in rows[0] if not k.startswith('_'))}")
    items, ignored = [], Counter()
    for r in rows:
        where = f"{p}:{r.get('_line', r['path'])}"
        raw = r["label"].strip()
        label = raw.lower()
        label = lmap.get(label, label)
        if label not in ALL_LABELS:
            ignored[raw] += 1
            continue
        group = groups(r) if callable(groups) else r[groups]
        weight = _float(r, "weight", 1.0, where)
        start_s = _float(r, "start_s", 0.0, where)
        duration_s = _float(r, "duration_s", None, where, positive=True)
        kind = r.get("kind") or (raw if raw.lower() != label else label)
        source = (r.get("source_package") or "").split("+")[-1]
        extra = {k: v for k, v in r.items() if k not in _ITEM_COLUMNS and not k.startswith("_")}
        items.append(Item(r["path"], label, str(group or r["path"]), kind, source,
                          start_s, duration_s, weight, extra))
    return Corpus(items, dict(ignored), layout)
