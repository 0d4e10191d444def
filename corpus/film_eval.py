"""Evaluate :func:`scoresong.timeline` on film-like reels (issue 12): score, songs, dialogue
alone, effects alone and dialogue over score, joined by silent gaps and crossfades.

    python -m corpus.film_eval CORPUS_DIR [--external EXT_DIR EXT_NOMUSIC_DIR] [--n 12] \\
        [--items 12] [--breakdown] [--out models/film.report]

Each reel strings ``--items`` stretches together. A stretch is one of five *parts*, drawn
with film-like weights (``WEIGHTS``) and never the same part twice in a row:

====================  =====================================================  ==========
part                  made of                                                label
====================  =====================================================  ==========
``score``             score excerpt(s), 30-75 s                              score
``song``              1-3 song clips of one kind back to back (20-60 s)      song
``dialogue``          1-3 ``no_music_speech`` clips of one voice group       no_music
``effects``           1-3 ``no_music_effects`` / ``_ambience`` / ``_speech_fx``  no_music
``dialogue_score``    1-3 ``score_under_speech`` clips (music -20..+10 dB)   score
====================  =====================================================  ==========

Between stretches: a 1.5-4 s silent gap or a 1-2 s equal-power crossfade (the label changes
at its middle), as in :mod:`corpus.timeline_eval`, whose metrics are reused:

- **music-presence frame accuracy**: on the 0.1 s grid, music (score or song) against
  everything else (no_music and silence);
- **3-class frame accuracy**: score / song / no_music / silence must all match;
- **boundary F** (±3 s) of label changes (``mir_eval.segment.detection``).

Beside them, the same two figures against a **level-defined silence reference**
(:func:`level_reference`): the reel's reference labels every sample of a clip with the
clip's part, so the quiet padding at a speech or effect clip's edges counts as no_music, and
the gap between two no_music stretches counts as silence. The timeline does the opposite
on purpose (silence is audio below -60 dB for at least ``min_silence`` s; quiet between two
no_music stretches is part of them, by the label policy: see
:func:`scoresong.segmentation.timeline`). The second reference applies that definition to
the reel's own samples, so the two figures together say how much of a shortfall is that
convention and how much is hearing. The clip-based figures stay the headline.
``--breakdown`` adds which reference changes are missed and which detected ones match none,
by the labels on either side (:func:`boundary_breakdown`).

Two sets, reported separately:

- ``corpus-test``: cells 3-4 of the training corpus (``manifest.csv`` +
  ``manifest.nomusic.csv``). The shipped model trained on every cell's clips, so this
  measures the segmentation on familiar material;
- ``external`` (with ``--external``): the external real set (real score and real songs,
  ``corpus.external``) and the external no_music set (other voices, other effect packages,
  ``corpus.nomusic --external``): nothing of it trained or tuned anything.

The timeline runs with its default settings (chosen earlier on the score/song development
reels); nothing is tuned on these reels.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

from corpus import excerpt_span
from scoresong.features import SILENT_SEGMENT_DB
from scoresong.segmentation import silent_intervals

from .timeline_eval import GRID, SR, TOL, _merge, boundaries, boundary_hits, boundary_prf, labels_on_grid

#: Share of each part among a reel's stretches (a film is mostly dialogue, effects and score).
WEIGHTS = {"score": 0.25, "dialogue_score": 0.2, "dialogue": 0.2, "effects": 0.2, "song": 0.15}
LABEL = {"score": "score", "song": "song", "dialogue": "no_music", "effects": "no_music",
         "dialogue_score": "score"}
MUSIC = ("score", "song")


def _load(path: Path, start: float, dur: float | None) -> np.ndarray:
    from scoresong import audio

    y, _ = audio.load(str(path), sr=SR, offset=start, duration=dur, check_silence=False, min_duration=0.0)
    return y


def pools(rows: list[dict]) -> dict[str, list[dict]]:
    """The rows each part draws from (``rows`` carry an absolute ``_file``)."""
    k = lambda r: r.get("kind", "")  # noqa: E731
    return {
        # Long original score tracks (the corpus's pkgs/ files) or 20-s real score excerpts.
        "score": [r for r in rows if r["label"] == "score" and (
            r["path"].startswith("pkgs/") or k(r) in ("score_real", "score_rock_real"))],
        "song": [r for r in rows if r["label"] == "song" and k(r) != "song_acappella_real"],
        "dialogue": [r for r in rows if k(r) == "no_music_speech"],
        "effects": [r for r in rows if k(r) in ("no_music_effects", "no_music_ambience", "no_music_speech_fx")],
        "dialogue_score": [r for r in rows if k(r) == "score_under_speech"],
    }


def source_of(row: dict) -> str:
    """What a clip is made of, for the per-source breakdown: a song's singing generator
    (constructed songs) or its source package (real songs, everything else)."""
    return row.get("generator") or row.get("source_package") or row.get("kind", "")


def stretch(part: str, pool: list[dict], rng, *, pieces: list | None = None) -> np.ndarray:
    """One stretch of ``part`` from its pool (see the module docstring). With ``pieces``
    (a list), each clip's (samples, :func:`source_of`) is appended to it, in order; the
    random draws are the same either way."""
    first = pool[rng.integers(len(pool))]
    if part == "score" and first["path"].startswith("pkgs/"):
        info = sf.info(first["_file"])
        dur = float(rng.uniform(30, 75))
        start = float(rng.uniform(0, max(info.duration - dur, 0)))
        y = _load(first["_file"], start, dur)
        if pieces is not None:
            pieces.append((y.size, source_of(first)))
        return y
    # 1-3 clips of the same group and kind, back to back (score: up to 4 real 20-s excerpts).
    same = [r for r in pool if r.get("group") == first.get("group") and r.get("kind") == first.get("kind")]
    n = int(rng.integers(2, 5)) if part == "score" else int(rng.integers(1, 4))
    rows = [first] + [same[rng.integers(len(same))] for _ in range(n - 1)]
    ys = [_load(r["_file"], *excerpt_span(r)) for r in rows]
    if pieces is not None:
        pieces.extend((y.size, source_of(r)) for y, r in zip(ys, rows))
    return np.concatenate(ys)


def build_reel(pool: dict[str, list[dict]], rng, n_items: int, *, clips: list | None = None):
    """One reel: (signal, reference intervals [(start, end, label)], the stretches
    [(start, end, part)]). With ``clips`` (a list), each clip's (start, end, part, source)
    is appended to it (times before crossfades are applied to the clip edges: a clip at
    a crossfade keeps its own extent); the reel is the same either way."""
    parts_avail = [p for p in WEIGHTS if pool.get(p)]
    w = np.array([WEIGHTS[p] for p in parts_avail])
    w /= w.sum()
    items, last = [], None
    while len(items) < n_items:
        part = str(rng.choice(parts_avail, p=w))
        if part == last:
            continue
        pieces = []
        y = stretch(part, pool[part], rng, pieces=pieces)
        if y.size < 5 * SR:
            continue
        peak = max(float(np.max(np.abs(y))), 1e-6)
        items.append((y / peak * 0.5, part, pieces))
        last = part
    sig = np.zeros(0, np.float32)
    ref, spans = [], []
    for k, (y, part, pieces) in enumerate(items):
        lab = LABEL[part]
        if k == 0:
            start, sig = 0.0, y.astype(np.float32)
        elif rng.random() < 0.5:
            gap = np.zeros(int(rng.uniform(1.5, 4.0) * SR), np.float32)
            ref.append((sig.size / SR, (sig.size + gap.size) / SR, "silence"))
            start = (sig.size + gap.size) / SR
            sig = np.concatenate([sig, gap, y])
        else:
            n = int(rng.uniform(1.0, 2.0) * SR)
            fade = np.sin(np.linspace(0, np.pi / 2, n)).astype(np.float32)
            mixed = sig[-n:] * fade[::-1] + y[:n] * fade
            start = (sig.size - n / 2) / SR
            ref[-1] = (ref[-1][0], start, ref[-1][2])
            spans[-1] = (spans[-1][0], start, spans[-1][2])
            sig = np.concatenate([sig[:-n], mixed, y[n:]])
        ref.append((start, sig.size / SR, lab))
        spans.append((start, sig.size / SR, part))
        if clips is not None:
            t = (sig.size - y.size) / SR
            for n_samples, src in pieces:
                clips.append((t, t + n_samples / SR, part, src))
                t += n_samples / SR
    return sig.astype(np.float32), _merge(ref), spans


def _parts_on_grid(ref_parts, duration):
    """Which part each grid point belongs to (for the per-part accuracy)."""
    t = np.arange(0, duration, GRID) + GRID / 2
    out = np.full(t.size, "gap", dtype=object)
    for a, b, p in ref_parts:
        out[(t >= a) & (t < b)] = p
    return out


#: Level (dB re full scale, RMS over a grid cell) below which a cell is quiet, and the
#: shortest quiet run that counts as silence: the timeline's own definition
#: (``features.SILENT_SEGMENT_DB`` and ``timeline(min_silence=1.0)``).
QUIET_DB = SILENT_SEGMENT_DB
MIN_SILENCE_S = 1.0


def _runs(g: np.ndarray) -> list[tuple[float, float, str]]:
    """Grid labels -> intervals (start, end, label) of equal neighbours."""
    if g.size == 0:
        return []
    cut = np.flatnonzero(g[1:] != g[:-1]) + 1
    a = np.concatenate([[0], cut])
    b = np.concatenate([cut, [g.size]])
    return [(i * GRID, j * GRID, str(g[i])) for i, j in zip(a, b)]


def level_reference(ref, sig: np.ndarray, *, sr: int = SR, quiet_db: float = QUIET_DB,
                    min_silence: float = MIN_SILENCE_S) -> list[tuple[float, float, str]]:
    """The reel's reference with silence defined by level, as the timeline defines it.

    Every run of at least ``min_silence`` s of 0.1-s grid cells whose RMS is below
    ``quiet_db`` dBFS becomes ``silence``, except a run with no_music on both sides (in the
    clip-based reference, just outside the run): that one becomes ``no_music`` (quiet between
    dialogue and effects is part of them, by the label policy). A run at the reel's start or
    end stays silence. Everything else keeps the clip-based label.

    Returns
    -------
    list of (start, end, label) on the 0.1-s grid, contiguous from 0.
    """
    duration = sig.size / sr
    g = labels_on_grid(ref, duration).astype(object)
    hop = int(round(GRID * sr))
    n = g.size
    x = np.zeros(n * hop, np.float64)
    x[: min(sig.size, x.size)] = sig[: x.size]
    rms_db = 10 * np.log10(np.mean(x.reshape(n, hop) ** 2, axis=1) + 1e-20)
    out = g.copy()
    # The quiet runs, found by the timeline's own run finder on the 10-Hz cell levels.
    for t0, t1 in silent_intervals(rms_db, 1 / GRID, floor_db=quiet_db, min_duration=min_silence):
        a, b = int(round(t0 / GRID)), int(round(t1 / GRID))
        inner = a > 0 and b < n and g[a - 1] == "no_music" and g[b] == "no_music"
        out[a:b] = "no_music" if inner else "silence"
    return _runs(out)


def score_reel(ref, est, duration, sig: np.ndarray | None = None) -> dict:
    """Frame and boundary figures of one reel; with ``sig`` (the reel's samples at ``SR``)
    also against :func:`level_reference` (keys ending in ``_level``)."""
    g_ref, g_est = labels_on_grid(ref, duration), labels_on_grid(est, duration)
    m_ref, m_est = np.isin(g_ref, MUSIC), np.isin(g_est, MUSIC)
    hits = boundary_hits(ref, est)
    confusion = Counter(zip(g_ref.tolist(), g_est.tolist()))
    out = {"frames": int(g_ref.size), "correct": int((g_ref == g_est).sum()),
           "presence_correct": int((m_ref == m_est).sum()),
           "ref_boundaries": len(boundaries(_merge(ref))), "est_boundaries": len(boundaries(_merge(est))),
           "hits": hits, "confusion": {f"{a}->{b}": int(c) for (a, b), c in confusion.items()}}
    if sig is not None:
        lref = level_reference(ref, sig)
        g_lev = labels_on_grid(lref, duration)
        out.update(correct_level=int((g_lev == g_est).sum()), hits_level=boundary_hits(lref, est),
                   ref_boundaries_level=len(boundaries(_merge(lref))))
    return out


def boundary_breakdown(ref, est, *, tol: float = TOL) -> dict[str, Counter]:
    """Which reference label changes are matched (``hit``) or not (``missed``), and which
    detected changes match none (``false``), keyed ``"before->after"``; the one-to-one
    matching within ``±tol`` s that the boundary F uses."""
    import mir_eval

    ref, est = _merge(ref), _merge(est)
    rb = [(ref[k][0], f"{ref[k - 1][2]}->{ref[k][2]}") for k in range(1, len(ref))]
    eb = [(est[k][0], f"{est[k - 1][2]}->{est[k][2]}") for k in range(1, len(est))]
    pairs = mir_eval.util.match_events(np.array([t for t, _ in rb]), np.array([t for t, _ in eb]), tol) \
        if rb and eb else []
    mr, me = {i for i, _ in pairs}, {j for _, j in pairs}
    out = {"hit": Counter(), "missed": Counter(), "false": Counter()}
    for i, (_, key) in enumerate(rb):
        out["hit" if i in mr else "missed"][key] += 1
    for j, (_, key) in enumerate(eb):
        if j not in me:
            out["false"][key] += 1
    return out


def summarise(results: list[dict]) -> dict:
    f = sum(r["frames"] for r in results)
    h = sum(r["hits"] for r in results)
    nr = sum(r["ref_boundaries"] for r in results)
    ne = sum(r["est_boundaries"] for r in results)
    p, rc, bf = boundary_prf(h, ne, nr)
    conf = Counter()
    for r in results:
        conf.update(r["confusion"])
    out = {"reels": len(results), "frames": f,
           "music_presence_accuracy": sum(r["presence_correct"] for r in results) / f,
           "frame_accuracy_3class": sum(r["correct"] for r in results) / f,
           "boundary_precision": p, "boundary_recall": rc, "boundary_f": bf,
           "ref_boundaries": nr, "est_boundaries": ne,
           "confusion_share": {k: v / f for k, v in sorted(conf.items(), key=lambda kv: -kv[1])}}
    if results and all("correct_level" in r for r in results):
        hl = sum(r["hits_level"] for r in results)
        nl = sum(r["ref_boundaries_level"] for r in results)
        pl, rl, bfl = boundary_prf(hl, ne, nl)
        out.update(frame_accuracy_3class_level=sum(r["correct_level"] for r in results) / f,
                   boundary_precision_level=pl, boundary_recall_level=rl,
                   boundary_f_level=bfl, ref_boundaries_level=nl)
    return out


def _sources_on_grid(clips, parts_grid, duration):
    """Which clip source each grid point belongs to (``""`` in gaps and where the clip's
    extent reaches into a neighbouring stretch's side of a crossfade)."""
    t = np.arange(0, duration, GRID) + GRID / 2
    out = np.full(t.size, "", dtype=object)
    for a, b, part, src in clips:
        sel = (t >= a) & (t < b) & (parts_grid == part)
        out[sel] = src
    return out


def per_source(records, sources, part: str = "song") -> dict:
    """3-class and music-presence accuracy inside the stretches of ``part``, by the source
    of each clip (:func:`source_of`): for constructed songs, the singing generator."""
    acc = {}
    for (g_ref, g_est, g_part), g_src in zip(records, sources):
        sel = g_part == part
        for src in np.unique(g_src[sel]):
            if not src:
                continue
            m = sel & (g_src == src)
            n, c, pc = acc.get(src, (0, 0, 0))
            acc[src] = (n + int(m.sum()), c + int((g_ref[m] == g_est[m]).sum()),
                        pc + int((np.isin(g_ref[m], MUSIC) == np.isin(g_est[m], MUSIC)).sum()))
    return {src: {"minutes": round(n * GRID / 60, 1), "accuracy_3class": c / n,
                  "music_presence_accuracy": pc / n}
            for src, (n, c, pc) in sorted(acc.items(), key=lambda kv: -kv[1][0]) if n}


def per_part(records) -> dict:
    """Accuracy (3-class and music presence) inside each kind of stretch (gaps excluded)."""
    out = {}
    for part in WEIGHTS:
        n = c = pc = 0
        for g_ref, g_est, g_part in records:
            sel = g_part == part
            n += int(sel.sum())
            c += int((g_ref[sel] == g_est[sel]).sum())
            pc += int((np.isin(g_ref[sel], MUSIC) == np.isin(g_est[sel], MUSIC)).sum())
        if n:
            out[part] = {"minutes": round(n * GRID / 60, 1), "accuracy_3class": c / n,
                         "music_presence_accuracy": pc / n}
    return out


def evaluate_set(name: str, rows: list[dict], *, n: int, items: int, seed: int, model, tmp: Path,
                 plot: Path | None = None, align: str = "centred", refine: str = "sides",
                 breakdown: bool = False) -> dict:
    import scoresong

    pool = pools(rows)
    rng = np.random.default_rng(seed)
    results, records, sources, secs, audio_s, counts = [], [], [], 0.0, 0.0, Counter()
    tally = {"hit": Counter(), "missed": Counter(), "false": Counter()}
    for k in range(n):
        clips = []
        sig, ref, spans = build_reel(pool, rng, items, clips=clips)
        counts.update(p for *_, p in spans)
        p = tmp / f"{name}{k:02d}.wav"
        sf.write(p, sig, SR, subtype="FLOAT")
        d = sig.size / SR
        t0 = time.perf_counter()
        tl = scoresong.timeline(p, model=model, align=align, refine=refine)
        secs += time.perf_counter() - t0
        audio_s += d
        est = [(s.start, s.end, s.label) for s in tl.segments]
        results.append(score_reel(ref, est, d, sig))
        if breakdown:
            for k2, c in boundary_breakdown(ref, est).items():
                tally[k2].update(c)
        records.append((labels_on_grid(ref, d), labels_on_grid(est, d), _parts_on_grid(spans, d)))
        sources.append(_sources_on_grid(clips, records[-1][2], d))
        if k == 0 and plot is not None:
            tl.plot(plot, marks=boundaries(ref), title=f"{name} reel 0: shaded = detected, dotted = reference")
    out = summarise(results)
    out.update(per_part=per_part(records), song_by_source=per_source(records, sources),
               stretches=dict(counts), audio_minutes=round(audio_s / 60, 1),
               seconds=round(secs, 1))
    if breakdown:
        out["boundary_breakdown"] = {k: dict(v.most_common()) for k, v in tally.items()}
    return out


def markdown(r: dict) -> str:
    lines = ["# Film-like reels: timeline evaluation with no_music", "",
             "Reels of score, songs, dialogue alone, effects alone and dialogue over score "
             "(weights " + ", ".join(f"{k} {v:.0%}" for k, v in WEIGHTS.items()) + "), joined by "
             "1.5-4 s silent gaps or 1-2 s crossfades; see `corpus/film_eval.py`. Default timeline "
             "settings (window placement " + r.get("align", "centred") + ", change refinement "
             + r.get("refine", "none") + "), nothing tuned on these reels. Model "
             + r["model_version"] + ".", "",
             "*Level-defined silence reference*: the reels' reference labels each clip whole, so a "
             "speech or effect clip's quiet padding counts as no_music and a gap between two no_music "
             "stretches as silence; the timeline calls audio below -60 dBFS for 1 s or more silence, "
             "except between two no_music stretches (the label policy). The second reference applies "
             "that definition to the reels' samples (`film_eval.level_reference`): the difference "
             "between the two figures is that convention, not hearing. The clip-based figures are "
             "the headline.", ""]
    for name, s in r["sets"].items():
        kind = ("the training corpus's cells 3-4: score, dialogue and effects of the packages the model "
                "trained on (it trained on clips of every cell), but the songs of those cells whatever their "
                "singing generator, including generators a model may not have trained on (the shipped model "
                "trains on three of five: `corpus.select.SHIPPED_GENERATORS`; see the songs by generator below)"
                if name == "corpus-test" else
                "external real score and songs + external voices and effects: nothing of it trained "
                "or tuned anything (honest)")
        lines += [f"## {name}", "", kind + ".", "",
                  "| metric | value |", "|---|---:|",
                  f"| reels | {s['reels']} ({s['audio_minutes']} min of audio) |",
                  f"| **music-presence frame accuracy** (music = score or song) | **{s['music_presence_accuracy']:.3f}** |",
                  f"| **3-class frame accuracy** (silence included) | **{s['frame_accuracy_3class']:.3f}** |",
                  f"| boundary precision / recall (±3 s) | {s['boundary_precision']:.3f} / {s['boundary_recall']:.3f} |",
                  f"| **boundary F (±3 s)** | **{s['boundary_f']:.3f}** |",
                  f"| reference / detected boundaries | {s['ref_boundaries']} / {s['est_boundaries']} |",
                  *([f"| 3-class frame accuracy / boundary F, level-defined silence reference (see below) | "
                     f"{s['frame_accuracy_3class_level']:.3f} / {s['boundary_f_level']:.3f} |"]
                    if "boundary_f_level" in s else []),
                  f"| processing time | {s['seconds']} s |", "",
                  "Inside each kind of stretch (silent gaps excluded):", "",
                  "| stretch | minutes | 3-class acc. | music-presence acc. |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['minutes']} | {v['accuracy_3class']:.3f} | {v['music_presence_accuracy']:.3f} |"
                  for k, v in s["per_part"].items()]
        if s.get("song_by_source"):
            lines += ["", "Inside the song stretches, by what each clip is made of (constructed songs: the "
                      "singing generator; real songs: the package):", "",
                      "| song source | minutes | 3-class acc. | music-presence acc. |", "|---|---:|---:|---:|"]
            lines += [f"| {k} | {v['minutes']} | {v['accuracy_3class']:.3f} | {v['music_presence_accuracy']:.3f} |"
                      for k, v in s["song_by_source"].items()]
        lines += ["", "Largest frame confusions (reference -> detected, share of frames):", "",
                  "| reference -> detected | share |", "|---|---:|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in list(s["confusion_share"].items())[:10] if "->" in k]
        lines.append("")
        if "boundary_breakdown" in s:
            bd = s["boundary_breakdown"]
            keys = sorted(set(bd["hit"]) | set(bd["missed"]),
                          key=lambda k: (-bd["missed"].get(k, 0), -bd["hit"].get(k, 0), k))
            lines += ["Reference label changes by the labels on either side, matched within ±3 s or missed; "
                      "and detected changes that match none:", "",
                      "| reference change | matched | missed |", "|---|---:|---:|"]
            lines += [f"| {k} | {bd['hit'].get(k, 0)} | {bd['missed'].get(k, 0)} |" for k in keys]
            lines += ["", "| detected change matching none | count |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in bd["false"].items()]
            lines.append("")
    return "\n".join(lines) + "\n"


def _rows(manifest: Path, cells=None) -> list[dict]:
    rows = list(csv.DictReader(open(manifest)))
    for r in rows:
        r["_file"] = str(manifest.parent / r["path"])
    return [r for r in rows if cells is None or r.get("group") in cells]


def main(argv=None) -> int:
    from scoresong.model import resolve_model
    from scoresong.segmentation import ALIGNS, REFINES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="folder with manifest.csv and manifest.nomusic.csv")
    ap.add_argument("--external", type=Path, nargs=2, metavar=("EXT", "EXT_NOMUSIC"),
                    help="the external real set and the external no_music set")
    ap.add_argument("--n", type=int, default=12, help="reels per set")
    ap.add_argument("--items", type=int, default=12, help="stretches per reel")
    ap.add_argument("--model", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--align", default="centred", choices=ALIGNS,
                    help="where each decision's window sits (scoresong.timeline's align)")
    ap.add_argument("--refine", default="sides", choices=REFINES,
                    help="how grid changes move before snapping (scoresong.timeline's refine)")
    ap.add_argument("--breakdown", action="store_true",
                    help="add which reference changes are missed and which detected ones match none")
    ap.add_argument("--out", type=Path, default=Path("models/film.report"))
    a = ap.parse_args(argv)
    model = resolve_model(a.model)
    tmp = Path(tempfile.mkdtemp(prefix="scoresong-film-"))
    sets = {"corpus-test": _rows(a.corpus / "manifest.csv", {"cell3", "cell4"})
            + _rows(a.corpus / "manifest.nomusic.csv", {"cell3", "cell4"})}
    if a.external:
        sets["external"] = _rows(a.external[0] / "manifest.csv") + _rows(a.external[1] / "manifest.csv")
    report = {"model_version": model.version, "seed": a.seed, "items_per_reel": a.items, "align": a.align,
              "refine": a.refine,
              "date": time.strftime("%Y-%m-%d"), "weights": WEIGHTS, "sets": {}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    for name, rows in sets.items():
        report["sets"][name] = evaluate_set(name, rows, n=a.n, items=a.items, seed=a.seed, model=model,
                                            tmp=tmp, plot=a.out.with_name(f"{a.out.name}.{name}.png"),
                                            align=a.align, refine=a.refine, breakdown=a.breakdown)
        print(name, {k: v for k, v in report["sets"][name].items()
                     if k not in ("confusion_share", "boundary_breakdown")}, flush=True)
    a.out.with_name(a.out.name + ".json").write_text(json.dumps(report, indent=1))
    a.out.with_name(a.out.name + ".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
