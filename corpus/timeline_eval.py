"""Evaluate :func:`scoresong.timeline` on long recordings with known boundaries.

    python -m corpus.timeline_eval CORPUS_DIR [--n 12] [--items 12] [--out models/timeline.report]

Each test recording concatenates ``--items`` excerpts from the corpus manifest, drawn from one
corpus cell: score excerpts of 30-75 s cut from the original game-music tracks (``pkgs/``),
and song stretches of one to three constructed 20 s songs back to back (``gen/``; 20-60 s).
Labels alternate, so every join between items is a label change. Between items there is
either a silent gap of 1.5-4 s or a 1-2 s equal-power crossfade. Every sample's label is
known (``silence`` in gaps; in a crossfade, the label changes at its middle).

Metrics, as the timeline issue defines them:

- frame accuracy on a 0.1 s grid (silence counts as a label; the labels at the grid's
  points come from ``mir_eval.util.interpolate_intervals``);
- boundary precision / recall / F-measure (``mir_eval.segment.detection``, window ±3 s,
  the start and end of the recording left out): a detected label change matches a
  reference label change within ±3 s whatever the labels on either side (a score-to-song
  change can match a song-to-silence one), each matched at most once (a maximum matching).
  Pooled over recordings: matches / detected and matches / reference changes.

Recordings from cells 0-2 are the *development* set (used to choose the window, ``switch``
and ``song_break``); cells 3-4 are reported. The shipped model was trained on clips of every cell, so
this measures the segmentation, not generalisation to unseen music: that is the model card's
job.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import mir_eval
import numpy as np
import soundfile as sf

SR = 16000
GRID = 0.1
TOL = 3.0


def _load(path: str, start: float, dur: float) -> np.ndarray:
    from scoresong import audio

    y, _ = audio.load(path, sr=SR, offset=start, duration=dur, check_silence=False, min_duration=0.0)
    return y


def build(rows: list[dict], root: Path, rng: np.random.Generator, n_items: int):
    """One recording: (signal, reference intervals [(start, end, label)])."""
    scores = [r for r in rows if r["label"] == "score" and r["path"].startswith("pkgs/")]
    songs = [r for r in rows if r["kind"] == "song_constructed"]
    parts, labels = [], []
    last = None
    while len(parts) < n_items:
        lab = "song" if (last == "score" or (last is None and rng.random() < 0.5)) else "score"
        if lab == "score":
            r = scores[rng.integers(len(scores))]
            info = sf.info(str(root / r["path"]))
            dur = float(rng.uniform(30, 75))
            start = float(rng.uniform(0, max(info.duration - dur, 0)))
            y = _load(str(root / r["path"]), start, dur)
        else:  # a song stretch: 1-3 constructed 20 s clips back to back (20-60 s)
            clips = [songs[rng.integers(len(songs))] for _ in range(int(rng.integers(1, 4)))]
            y = np.concatenate([_load(str(root / r["path"]), float(r["start_s"] or 0),
                                      float(r["duration_s"] or 20)) for r in clips])
        if y.size < 5 * SR:
            continue
        parts.append(y / max(np.max(np.abs(y)), 1e-6) * 0.5)
        labels.append(lab)
        last = lab
    sig = np.zeros(0, np.float32)
    ref = []  # (start, end, label)
    for k, (y, lab) in enumerate(zip(parts, labels)):
        if k == 0:
            start = 0.0
            sig = y.astype(np.float32)
        elif rng.random() < 0.5:  # silent gap
            gap = np.zeros(int(rng.uniform(1.5, 4.0) * SR), np.float32)
            ref.append((sig.size / SR, (sig.size + gap.size) / SR, "silence"))
            start = (sig.size + gap.size) / SR
            sig = np.concatenate([sig, gap, y])
        else:  # equal-power crossfade
            n = int(rng.uniform(1.0, 2.0) * SR)
            fade = np.sin(np.linspace(0, np.pi / 2, n)).astype(np.float32)
            mixed = sig[-n:] * fade[::-1] + y[:n] * fade
            start = (sig.size - n / 2) / SR
            ref[-1] = (ref[-1][0], start, ref[-1][2])
            sig = np.concatenate([sig[:-n], mixed, y[n:]])
        ref.append((start, sig.size / SR, lab))
    return sig, _merge(ref)


def _merge(iv):
    out = []
    for a, b, lab in iv:
        if out and out[-1][2] == lab and a <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], b, lab)
        else:
            out.append((a, b, lab))
    return out


def _intervals(iv) -> np.ndarray:
    return np.array([(a, b) for a, b, _ in iv], float).reshape(-1, 2)


def labels_on_grid(iv, duration: float) -> np.ndarray:
    """Label at the centre of each 0.1 s cell; ``silence`` where no interval is."""
    t = np.arange(0, duration, GRID) + GRID / 2
    return np.array(mir_eval.util.interpolate_intervals(_intervals(iv), [lab for *_, lab in iv], t,
                                                        fill_value="silence"), dtype=object)


def boundaries(iv) -> list[float]:
    """Times where the label changes (the inner boundaries once equal neighbours merge)."""
    return [iv[k][0] for k in range(1, len(iv)) if iv[k][2] != iv[k - 1][2]]


def boundary_hits(ref, est, tol: float = TOL) -> int:
    """How many reference label changes a detected one matches within ±tol, one to one:
    ``mir_eval.segment.detection`` on the label-merged intervals, start and end trimmed."""
    ref, est = _intervals(_merge(ref)), _intervals(_merge(est))
    if len(ref) < 2 or len(est) < 2:  # no label change on one side (mir_eval would warn)
        return 0
    _, recall, _ = mir_eval.segment.detection(ref, est, window=tol, trim=True)
    n_ref = len(mir_eval.util.intervals_to_boundaries(ref)) - 2  # recall's denominator
    return int(round(recall * n_ref))


def score_one(ref, est, duration):
    g_ref, g_est = labels_on_grid(ref, duration), labels_on_grid(est, duration)
    br, be = boundaries(_merge(ref)), boundaries(_merge(est))
    hits = boundary_hits(ref, est)
    # Where the wrong frames are: within ±TOL of a reference boundary, or inside an item.
    t = np.arange(g_ref.size) * GRID + GRID / 2
    near = (np.min(np.abs(t[:, None] - np.array(br)[None, :]), axis=1) <= TOL if br
            else np.zeros(t.size, bool))
    wrong = g_ref != g_est
    far = wrong & ~near
    return {"frames": int(g_ref.size), "correct": int((g_ref == g_est).sum()),
            "ref_boundaries": len(br), "est_boundaries": len(be), "hits": hits,
            "err_near_boundary": int((wrong & near).sum()),
            "err_song_as_score": int((far & (g_ref == "song") & (g_est == "score")).sum()),
            "err_score_as_song": int((far & (g_ref == "score") & (g_est == "song")).sum()),
            "err_silence": int((far & ((g_ref == "silence") | (g_est == "silence"))).sum())}


def boundary_prf(hits: int, n_est: int, n_ref: int) -> tuple[float, float, float]:
    """Boundary precision, recall and F from matched, detected and reference counts."""
    p = hits / n_est if n_est else 0.0
    rc = hits / n_ref if n_ref else 0.0
    return p, rc, 2 * p * rc / (p + rc) if p + rc else 0.0


def summarise(results) -> dict:
    f = sum(r["frames"] for r in results)
    c = sum(r["correct"] for r in results)
    h = sum(r["hits"] for r in results)
    nr = sum(r["ref_boundaries"] for r in results)
    ne = sum(r["est_boundaries"] for r in results)
    p, rc, bf = boundary_prf(h, ne, nr)
    return {"recordings": len(results), "frame_accuracy": c / f if f else 0.0,
            "boundary_precision": p, "boundary_recall": rc, "boundary_f": bf,
            "ref_boundaries": nr, "est_boundaries": ne,
            **{k: sum(r[k] for r in results) / f if f else 0.0
               for k in ("err_near_boundary", "err_song_as_score", "err_score_as_song", "err_silence")}}


def main(argv=None) -> int:
    import scoresong
    from scoresong.segmentation import ALIGNS, REFINES

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="folder with the corpus manifest.csv")
    ap.add_argument("--n", type=int, default=12, help="recordings per split")
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--switch", type=float, nargs="*", default=[0.05, 0.1])
    ap.add_argument("--song-break", type=float, nargs="*", default=[0.0, 0.1, 0.2])
    ap.add_argument("--window", type=int, nargs="*", default=[1, 2, 3, 4], help="segments per decision")
    ap.add_argument("--align", nargs="*", default=["centred"], choices=ALIGNS,
                    help="where each decision's window sits (scoresong.timeline's align)")
    ap.add_argument("--refine", nargs="*", default=["sides"], choices=REFINES,
                    help="how grid changes move before snapping (scoresong.timeline's refine)")
    ap.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ap.add_argument("--out", type=Path, default=Path("models/timeline.report"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--long-hours", type=float, default=3.0,
                    help="also time a file this long (test recordings repeated) and its peak memory")
    a = ap.parse_args(argv)
    rows = list(csv.DictReader(open(a.corpus / "manifest.csv")))
    rng = np.random.default_rng(a.seed)
    tmp = Path(tempfile.mkdtemp(prefix="scoresong-tl-"))
    sets = {}
    for split, cells in (("dev", {"cell0", "cell1", "cell2"}), ("test", {"cell3", "cell4"})):
        pool = [r for r in rows if r["group"] in cells]
        recs = []
        for k in range(a.n):
            sig, ref = build(pool, a.corpus, rng, a.items)
            p = tmp / f"{split}{k:02d}.wav"
            sf.write(p, sig, SR, subtype="FLOAT")
            recs.append((p, ref, sig.size / SR))
        sets[split] = recs
    t0 = time.time()
    grid = {}
    # Stream each development recording once; every setting reuses that analysis.
    from scoresong.segmentation import analyse

    from scoresong.model import resolve_model

    model = resolve_model(a.model)
    dev = [(analyse(p), ref, d) for p, ref, d in sets["dev"]]
    for al in [(x, r) for x in a.align for r in a.refine]:
        for w in a.window:
            for s in a.switch:
                for b in a.song_break:
                    res = [score_one(ref, _est(scoresong.timeline(an, window=w * 5.12, switch=s, song_break=b,
                                                                  model=model, align=al[0],
                                                                  refine=al[1])), d)
                           for an, ref, d in dev]
                    grid[(w, s, b, al)] = summarise(res)
                    print(f"dev window {w} switch {s} song_break {b} align {al[0]} refine {al[1]}: {grid[(w, s, b, al)]}",
                          flush=True)
    best = max(grid, key=lambda k: (grid[k]["frame_accuracy"] + grid[k]["boundary_f"]))
    w, s, b, al = best
    t1 = time.time()
    # The test set runs through the public function, end to end (decode included).
    test = [score_one(ref, _est(scoresong.timeline(p, window=w * 5.12, switch=s, song_break=b,
                                                   model=model, align=al[0], refine=al[1])), d)
            for p, ref, d in sets["test"]]
    secs = time.time() - t1
    audio_s = sum(d for _, _, d in sets["test"])
    report = {"dev_grid": {f"window={k[0]} switch={k[1]} song_break={k[2]}"
                           + ("" if len(a.align) == 1 else f" align={k[3][0]}")
                           + ("" if len(a.refine) == 1 else f" refine={k[3][1]}"): v for k, v in grid.items()},
              "chosen": {"window_segments": w, "switch": s, "song_break": b, "align": al[0],
                         "refine": al[1]},
              "model_version": model.version, "test": summarise(test),
              "test_audio_minutes": round(audio_s / 60, 1), "test_seconds": round(secs, 1),
              "items_per_recording": a.items, "seed": a.seed, "date": time.strftime("%Y-%m-%d"),
              "dev_seconds": round(t1 - t0, 1)}
    if a.long_hours > 0:
        report["long_file"] = long_file_memory([p for p, _, _ in sets["test"]], tmp, a.long_hours, w, s, b,
                                               model=a.model, align=al[0], refine=al[1])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_name(a.out.name + ".json").write_text(json.dumps(report, indent=1))
    a.out.with_name(a.out.name + ".md").write_text(markdown(report))
    # One example plot from the test set.
    p, ref, d = sets["test"][0]
    scoresong.timeline(p, window=w * 5.12, switch=s, song_break=b, model=model, align=al[0],
                       refine=al[1]).plot(
        a.out.with_name(a.out.name + ".png"), marks=boundaries(ref),
        title="test recording 0: shaded = detected, dotted = reference boundaries")
    print(markdown(report))
    return 0


def long_file_memory(paths, tmp: Path, hours: float, w: int, s: float, b: float, *,
                     model=None, align: str = "centred", refine: str = "sides") -> dict:
    """Peak RSS (VmHWM) of a fresh process running the timeline on one test recording and on
    a file of ``hours`` made by repeating the test recordings (16-bit WAV, written in pieces)."""
    import subprocess
    import sys

    long = tmp / "long.wav"
    target = hours * 3600 * SR
    with sf.SoundFile(long, "w", SR, 1, subtype="PCM_16") as f:
        written = 0
        while written < target:
            for p in paths:
                y, _ = sf.read(p, dtype="float32")
                f.write(y[: int(target - written)])
                written += min(y.size, int(target - written))
                if written >= target:
                    break
    out = {}
    for label, path in (("one test recording", paths[0]), (f"{hours:g}-hour file", long)):
        code = ("import resource, time, scoresong; t = time.perf_counter(); "
                f"tl = scoresong.timeline({str(path)!r}, window={w * 5.12}, switch={s}, song_break={b}, "
                f"model={None if model is None else str(model)!r}, align={align!r}, refine={refine!r}); "
                "print(time.perf_counter() - t, tl.duration, len(tl.segments)); "
                "print(open('/proc/self/status').read())")
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        first, rest = r.stdout.split("\n", 1)
        secs, dur, nseg = first.split()
        hwm = next(int(x.split()[1]) for x in rest.splitlines() if x.startswith("VmHWM"))
        out[label] = {"audio_minutes": round(float(dur) / 60, 1), "seconds": round(float(secs), 1),
                      "segments": int(nseg), "peak_rss_mb": round(hwm / 1024)}
    long.unlink()
    return out


def _est(tl):
    return [(s.start, s.end, s.label) for s in tl.segments]


def markdown(r: dict) -> str:
    t = r["test"]
    lines = ["# Timeline evaluation", "",
             f"Concatenations of {r['items_per_recording']} corpus excerpts (score 30-75 s cut from the "
             "original tracks, song stretches of 1-3 constructed 20 s songs), with 1.5-4 s silent gaps or 1-2 s crossfades "
             "between them; see `corpus/timeline_eval.py`. "
             + ("Development recordings from corpus cells 0-2 chose the window, the switch prior and "
                "song_break; " if len(r["dev_grid"]) > 1 else
                "One setting was given, so the development recordings (corpus cells 0-2) chose nothing; ")
             + "the test recordings come from cells 3-4. "
             "The shipped model was trained on clips of all cells, so this measures the segmentation, "
             "not generalisation.", "",
             ("Chosen on the development set" if len(r["dev_grid"]) > 1 else "Settings")
             + f": window {r['chosen']['window_segments']} segment(s) "
             f"({5.12 * r['chosen']['window_segments']:.2f} s), switch prior {r['chosen']['switch']}, "
             f"song_break {r['chosen']['song_break']}, window placement {r['chosen'].get('align', 'centred')}, "
             f"change refinement {r['chosen'].get('refine', 'none')}"
             + (f"; model {r['model_version']}." if r.get("model_version") else "."), "",
             "| test set | value |", "|---|---:|",
             f"| recordings | {t['recordings']} ({r['test_audio_minutes']} min of audio) |",
             f"| frame accuracy (0.1 s grid, silence included) | {t['frame_accuracy']:.3f} |",
             f"| boundary precision (±3 s) | {t['boundary_precision']:.3f} |",
             f"| boundary recall (±3 s) | {t['boundary_recall']:.3f} |",
             f"| **boundary F-measure (±3 s)** | **{t['boundary_f']:.3f}** |",
             f"| reference / detected boundaries | {t['ref_boundaries']} / {t['est_boundaries']} |",
             f"| processing time | {r['test_seconds']} s |", "",
             "Where the wrong frames are (share of all frames):", "",
             "| error | share |", "|---|---:|",
             f"| within ±3 s of a reference boundary | {t['err_near_boundary']:.3f} |",
             f"| inside a song, called score | {t['err_song_as_score']:.3f} |",
             f"| inside a score, called song | {t['err_score_as_song']:.3f} |",
             f"| silence missed or invented | {t['err_silence']:.3f} |", ""]
    if r.get("long_file"):
        lines += ["Memory on a long file (fresh process, peak RSS):", "",
                  "| file | audio | seconds | segments | peak RSS |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['audio_minutes']} min | {v['seconds']} | {v['segments']} | {v['peak_rss_mb']} MB |"
                  for k, v in r["long_file"].items()]
        lines.append("")
    lines += [
             "Development grid (frame accuracy / boundary F):", "",
             "| setting | frame acc. | boundary F |", "|---|---:|---:|"]
    lines += [f"| {k} | {v['frame_accuracy']:.3f} | {v['boundary_f']:.3f} |" for k, v in r["dev_grid"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
