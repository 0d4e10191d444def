"""Music or not on film-like reels: scoresong against inaSpeechSegmenter (issue 12).

    python benchmarks/bench_inaseg.py CORPUS_DIR --external EXT_DIR EXT_NOMUSIC_DIR \\
        --ina-python INA_VENV/bin/python [--n 12] [--items 12] [--seed 0]

Builds the reels of ``corpus/film_eval.py`` (same seed, same reels as
``models/film.report.md``: score, songs, dialogue alone, effects alone and dialogue over
score, joined by silent gaps and crossfades), runs ``scoresong.timeline`` on each in this
process and inaSpeechSegmenter on the same WAV files in its own interpreter
(``ina_worker.py``), and scores both the same way:

- **music-presence frame accuracy** on the 0.1 s grid: music (score or song; inaSpeechSegmenter's
  ``music``) against everything else (no_music, silence; its ``speech``, ``noise``,
  ``noEnergy``), overall and inside each kind of stretch;
- **music-presence boundary F** (±3 s): where music starts or stops (``mir_eval``);
- seconds per hour of audio for each tool, on this machine (each on its own, not overlapped).

inaSpeechSegmenter gives each frame one label (speech, music or noise), so where dialogue
lies over music it often says ``speech``: our label policy calls those stretches
(``dialogue_score``) score. The per-stretch table shows what that costs it, and the row
without those stretches compares the two where both tools claim to answer.

Setting up inaSpeechSegmenter offline (0.6.8 is the last release whose package carries its
weights; newer ones download them at run time)::

    python3 -m venv INA_VENV
    INA_VENV/bin/pip install "tensorflow-cpu==2.15.1" "numpy==1.23.5" scipy soundfile \\
        scikit-image pandas matplotlib pytextgrid pyannote.algorithms "pyannote.core<5"
    INA_VENV/bin/pip install --no-deps --no-binary :all: inaSpeechSegmenter==0.6.8

Writes ``benchmarks/results/inaseg-film.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from corpus import film_eval  # noqa: E402
from corpus.timeline_eval import GRID, SR, boundary_hits, boundaries, labels_on_grid  # noqa: E402

INA_MUSIC = ("music",)


def presence(iv, music) -> list[tuple[float, float, str]]:
    """Intervals relabelled ``music`` / ``other`` and merged."""
    out = []
    for a, b, lab in iv:
        lab = "music" if lab in music else "other"
        if out and out[-1][2] == lab and a <= out[-1][1] + 1e-6:
            out[-1] = (out[-1][0], b, lab)
        else:
            out.append((a, b, lab))
    return out


def ina_intervals(segments, duration) -> list[tuple[float, float, str]]:
    """inaSpeechSegmenter's segments, clipped to the reel, gaps filled with ``noEnergy``."""
    out, t = [], 0.0
    for lab, a, b in sorted(segments, key=lambda s: s[1]):
        a, b = max(a, t), min(b, duration)
        if a > t:
            out.append((t, a, "noEnergy"))
        if b > a:
            out.append((a, b, lab))
            t = b
    if t < duration:
        out.append((t, duration, "noEnergy"))
    return out


def score(ref, est, music, parts, duration) -> dict:
    """Presence frames right (overall and per part) and presence boundary hits."""
    g_ref = np.isin(labels_on_grid(ref, duration), film_eval.MUSIC)
    g_est = np.isin(labels_on_grid(est, duration), music)
    rp, ep = presence(ref, film_eval.MUSIC), presence(est, music)
    per = {}
    for part in film_eval.WEIGHTS:
        sel = parts == part
        per[part] = (int(sel.sum()), int((g_ref[sel] == g_est[sel]).sum()))
    return {"frames": int(g_ref.size), "correct": int((g_ref == g_est).sum()), "per_part": per,
            "hits": boundary_hits(rp, ep), "ref_b": len(boundaries(rp)), "est_b": len(boundaries(ep))}


def summarise(rows: list[dict]) -> dict:
    f = sum(r["frames"] for r in rows)
    h, nr, ne = (sum(r[k] for r in rows) for k in ("hits", "ref_b", "est_b"))
    p, rc = (h / ne if ne else 0.0), (h / nr if nr else 0.0)
    per = {}
    for part in film_eval.WEIGHTS:
        n = sum(r["per_part"][part][0] for r in rows)
        c = sum(r["per_part"][part][1] for r in rows)
        if n:
            per[part] = {"minutes": round(n * GRID / 60, 1), "accuracy": c / n}
    # Without the dialogue-over-score stretches (which inaSpeechSegmenter cannot answer).
    n_wo = sum(r["frames"] - r["per_part"]["dialogue_score"][0] for r in rows)
    c_wo = sum(r["correct"] - r["per_part"]["dialogue_score"][1] for r in rows)
    return {"presence_accuracy": sum(r["correct"] for r in rows) / f,
            "presence_accuracy_without_dialogue_score": c_wo / n_wo if n_wo else float("nan"),
            "boundary_precision": p, "boundary_recall": rc,
            "boundary_f": 2 * p * rc / (p + rc) if p + rc else 0.0,
            "ref_boundaries": nr, "est_boundaries": ne, "per_part": per}


def build_set(rows, *, n, items, seed, tmp: Path, name: str):
    """The reels of ``film_eval.evaluate_set`` (same rng use, so the same reels)."""
    pool = film_eval.pools(rows)
    rng = np.random.default_rng(seed)
    reels = []
    for k in range(n):
        sig, ref, spans = film_eval.build_reel(pool, rng, items)
        p = tmp / f"{name}{k:02d}.wav"
        sf.write(p, sig, SR, subtype="FLOAT")
        d = sig.size / SR
        reels.append({"path": str(p), "ref": ref, "duration": d,
                      "parts": film_eval._parts_on_grid(spans, d)})
    return reels


def markdown(report: dict) -> str:
    L = ["# Music or not on film-like reels: scoresong and inaSpeechSegmenter", "",
         f"- machine: {report['machine']}; {report['date']}",
         f"- scoresong model {report['model_version']}, default timeline settings; "
         f"inaSpeechSegmenter {report['ina_version']} (`vad_engine='smn'`: speech / music / noise)",
         f"- reels: `corpus/film_eval.py` seed {report['seed']}, {report['n']} per set, "
         f"{report['items']} stretches each: the reels of `models/film.report.md`",
         "- music = score or song (ours) / `music` (inaSpeechSegmenter); everything else is not music",
         "", "inaSpeechSegmenter gives each frame one label (speech, music or noise), so where dialogue "
         "lies over music it often says speech; our label policy calls those stretches (`dialogue_score`) "
         "score. The row *without dialogue over score* compares the two where both claim to answer.",
         "Seconds per hour: each tool alone on this machine, after one untimed warm-up call each "
         "(both from reading the 16 kHz WAV file: inaSpeechSegmenter's time includes computing its "
         "features, and leaves out the ffmpeg conversion its front end normally runs, not needed "
         "for these files).",
         "Boundary F compares each tool's output as a user gets it: our timeline's segments are "
         "smoothed by its three-state model and their changes moved to a nearby silent gap or change "
         "of evidence; inaSpeechSegmenter's are used as it "
         "returns them, so a music piece it interrupts with a short speech or noise label counts as "
         "extra boundaries. Merging its short gaps would raise its figure; we did not tune such a "
         "post-process for it.", ""]
    for name, s in report["sets"].items():
        a, b = s["scoresong"], s["ina"]
        L += [f"## {name}", "", f"{s['note']}", "",
              "| | scoresong | inaSpeechSegmenter |", "|---|---:|---:|",
              f"| **music-presence frame accuracy** | **{a['presence_accuracy']:.3f}** | "
              f"**{b['presence_accuracy']:.3f}** |",
              f"| ... without dialogue over score | {a['presence_accuracy_without_dialogue_score']:.3f} | "
              f"{b['presence_accuracy_without_dialogue_score']:.3f} |",
              f"| music start/stop boundary F (±3 s) | {a['boundary_f']:.3f} | {b['boundary_f']:.3f} |",
              f"| boundary precision / recall | {a['boundary_precision']:.3f} / {a['boundary_recall']:.3f} | "
              f"{b['boundary_precision']:.3f} / {b['boundary_recall']:.3f} |",
              f"| seconds per hour of audio | {s['seconds_per_hour']['scoresong']:.1f} | "
              f"{s['seconds_per_hour']['ina']:.1f} |", "",
              "Music-presence accuracy inside each kind of stretch (silent gaps excluded):", "",
              "| stretch | minutes | scoresong | inaSpeechSegmenter |", "|---|---:|---:|---:|"]
        for part, v in a["per_part"].items():
            L.append(f"| {part} | {v['minutes']} | {v['accuracy']:.3f} | {b['per_part'][part]['accuracy']:.3f} |")
        L.append("")
    return "\n".join(L) + "\n"


def main(argv=None) -> int:
    import scoresong
    from scoresong.model import resolve_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--external", type=Path, nargs=2, metavar=("EXT", "EXT_NOMUSIC"))
    ap.add_argument("--ina-python", required=True, help="the interpreter inaSpeechSegmenter is installed in")
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "inaseg-film")
    a = ap.parse_args(argv)
    model = resolve_model(None)
    sets = {"corpus-test": (film_eval._rows(a.corpus / "manifest.csv", {"cell3", "cell4"})
                            + film_eval._rows(a.corpus / "manifest.nomusic.csv", {"cell3", "cell4"}),
                            "The training corpus's cells 3-4 (material the shipped model trained on; "
                            "inaSpeechSegmenter never saw it).")}
    if a.external:
        sets["external"] = (film_eval._rows(a.external[0] / "manifest.csv")
                            + film_eval._rows(a.external[1] / "manifest.csv"),
                            "External real score and songs, external voices and effects: nothing of it "
                            "trained or tuned scoresong (honest for both tools).")
    ina_version = subprocess.run(
        [a.ina_python, "-c", "import importlib.metadata as m; print(m.version('inaSpeechSegmenter'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="scoresong-ina-"))
    report = {"date": time.strftime("%Y-%m-%d"), "model_version": model.version, "ina_version": ina_version,
              "seed": a.seed, "n": a.n, "items": a.items,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"Python {platform.python_version()}", "sets": {}}
    for name, (rows, note) in sets.items():
        reels = build_set(rows, n=a.n, items=a.items, seed=a.seed, tmp=tmp, name=name)
        hours = sum(r["duration"] for r in reels) / 3600
        ours, t_ours = [], 0.0
        scoresong.timeline(reels[0]["path"], model=model)  # warm-up, untimed (as for the other tool)
        for r in reels:
            t0 = time.perf_counter()
            tl = scoresong.timeline(r["path"], model=model)
            t_ours += time.perf_counter() - t0
            est = [(s.start, s.end, s.label) for s in tl.segments]
            ours.append(score(r["ref"], est, film_eval.MUSIC, r["parts"], r["duration"]))
        jobs, got = tmp / f"{name}.jobs.json", tmp / f"{name}.ina.json"
        jobs.write_text(json.dumps([r["path"] for r in reels]))
        # Keras prints a progress bar per batch on stdout: not wanted here.
        subprocess.run([a.ina_python, str(HERE / "ina_worker.py"), str(jobs), str(got)], check=True,
                       stdout=subprocess.DEVNULL)
        res = json.loads(got.read_text())
        ina, t_ina = [], 0.0
        for r in reels:
            t_ina += res[r["path"]]["seconds"]
            est = ina_intervals(res[r["path"]]["segments"], r["duration"])
            ina.append(score(r["ref"], est, INA_MUSIC, r["parts"], r["duration"]))
        report["sets"][name] = {"note": note, "hours": round(hours, 3),
                                "scoresong": summarise(ours), "ina": summarise(ina),
                                "seconds_per_hour": {"scoresong": t_ours / hours, "ina": t_ina / hours}}
        print(name, json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "per_part"}
                                for k, v in report["sets"][name].items() if k in ("scoresong", "ina")}),
              flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    a.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
