"""Two models on the same file, interleaved: does a model change cost prediction time?

    python benchmarks/bench_models.py FILE OLD_MODEL.json [NEW_MODEL.json] [--repeat 7]

``NEW_MODEL`` defaults to the shipped model. Each repeat runs ``scoresong.predict`` once
with each model, alternating, in one process (so the machine's load drifts over both
alike), and times the classifier alone (``Model.parts`` on the file's vector, 500 calls).
Prints best and median seconds, their ratio, and writes ``benchmarks/results/models.md``.

Used for issue 12: a three-class model evaluates two inference forms (music or not, then
song or score) where a two-class model evaluates one; the features are the same.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    import scoresong
    from scoresong.model import load_model

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("old")
    ap.add_argument("new", nargs="?")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "models.md")
    a = ap.parse_args(argv)
    models = [load_model(a.old), load_model(a.new)]
    X = np.asarray(scoresong.extract_features(a.file).values)[None]
    rows = []
    times = {m.version: [] for m in models}
    scoresong.predict(a.file, model=models[0])  # warm the caches of the first call
    for _ in range(a.repeat):
        for m in models:
            t = time.perf_counter()
            scoresong.predict(a.file, model=m)
            times[m.version].append(time.perf_counter() - t)
    for m in models:
        t = time.perf_counter()
        for _ in range(500):
            m.parts(X)
        clf_ms = (time.perf_counter() - t) / 500 * 1e3
        v = times[m.version]
        rows.append((m.version, ", ".join(m.classes), min(v), float(np.median(v)), clf_ms))
    ratio = rows[1][2] / rows[0][2]
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    md = ["# Two models, one file", "",
          f"- file: `{Path(a.file).name}`; {a.repeat} interleaved runs of `scoresong.predict` per model",
          f"- machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average at the end {load}", "",
          "| model | classes | predict best (s) | median (s) | classifier alone (ms) |",
          "|---|---|---:|---:|---:|"]
    md += [f"| {v} | {c} | {b:.3f} | {med:.3f} | {ms:.3f} |" for v, c, b, med, ms in rows]
    md += ["", f"New / old, best of {a.repeat}: **{ratio:.3f}**", ""]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
