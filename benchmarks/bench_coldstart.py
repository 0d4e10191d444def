"""Cold start: a whole ``scoresong predict FILE`` process on a short file, from exec to exit.

    python benchmarks/bench_coldstart.py [FILE] [--runs 5] [--out benchmarks/results]

Without FILE, a 10 s 44.1 kHz stereo Ogg Vorbis file is generated. After one untimed run
(which fills the page cache and writes any missing ``.pyc``), it reports:

- **whole process**: wall time of ``python -m scoresong.cli predict FILE`` (and of the
  ``scoresong`` entry point when it is installed beside this Python), median / min / max of
  ``--runs`` fresh processes: what a shell loop or an editor plug-in pays per file;
- **breakdown** (medians over ``--runs`` fresh processes): interpreter start
  (``python -c pass``), ``import numpy``, ``import scipy.fft`` (beyond numpy), the rest of
  ``import scoresong``, loading the shipped model, and the analysis
  (``scoresong.predict(FILE)``); whether scikit-learn was imported, and which form predicted;
- **skops path** (unless ``--no-skops``): loading the same model from its ``.skops`` file
  alone (what every start paid before the inference form: the scikit-learn import plus
  skops), in a fresh process after ``import scoresong``.

The machine's load average is recorded beside the figures: on a shared machine, other
processes' work shows up in wall times. Results are printed as Markdown and written to
``--out`` as ``coldstart[-TAG].md`` / ``.json``. Nothing here asserts a time; the test
suite runs ``--runs 1`` only to check that the script works.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROBE = r"""
import time, json, sys
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import scipy.fft
t2 = time.perf_counter()
import scoresong
t3 = time.perf_counter()
m = scoresong.load_model()
t4 = time.perf_counter()
r = scoresong.predict(sys.argv[1], model=m)
t5 = time.perf_counter()
print(json.dumps({"import numpy": t1 - t0, "import scipy.fft (beyond numpy)": t2 - t1,
                  "import scoresong (the rest)": t3 - t2, "load the model": t4 - t3,
                  "analysis (scoresong.predict)": t5 - t4, "label": r.label,
                  "sklearn imported": "sklearn" in sys.modules,
                  "predicted with": "inference form" if getattr(m, "inference", None) is not None
                                    else "skops estimator"}))
"""

SKOPS_PROBE = r"""
import time, json, sys
import scoresong
t0 = time.perf_counter()
m = scoresong.load_model(sys.argv[1])
t1 = time.perf_counter()
assert getattr(m, "inference", None) is None
print(json.dumps({"load through skops (sklearn import + skops)": t1 - t0}))
"""


def machine() -> str:
    """The machine's description, as the hot-path benchmark writes it."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_hotpath import machine as _machine

    return _machine()


def make_file(path: Path, seconds: float = 10.0, sr: int = 44100) -> Path:
    """A short music-like stereo Ogg Vorbis: a chord with vibrato over a little noise."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    vib = 1 + 0.01 * np.sin(2 * np.pi * 5.5 * t)
    y = sum(0.12 * np.sin(2 * np.pi * f * vib * t) for f in (220.0, 277.2, 329.6))
    y = y * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t) ** 2)
    y = y + 0.02 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, np.stack([y, 0.9 * y], 1).astype(np.float32), sr, format="OGG", subtype="VORBIS")
    return path


def wall(cmd: list[str], env=None) -> tuple[float, str]:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt, r.stdout


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": xs}


def skops_only_copy(tmp: Path) -> Path:
    """The shipped model without its inference form: the .json and .skops only."""
    from scoresong.model import default_model_path

    src = default_model_path()
    meta = json.loads(src.read_text())
    meta.pop("inference", None)
    shutil.copy(src.with_name(meta["estimator_file"]), tmp / meta["estimator_file"])
    js = tmp / src.name
    js.write_text(json.dumps(meta))
    return js


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", nargs="?", help="audio file (default: a generated 10 s Ogg Vorbis)")
    ap.add_argument("--runs", type=int, default=5, help="fresh processes per measurement")
    ap.add_argument("--no-skops", action="store_true", help="skip the skops-path comparison")
    ap.add_argument("--tag", default="", help="suffix of the result file names")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)

    import scoresong

    tmp = Path(tempfile.mkdtemp(prefix="scoresong-coldstart-"))
    path = Path(a.file) if a.file else make_file(tmp / "ten_seconds.ogg")
    py = sys.executable
    cli = [py, "-m", "scoresong.cli", "predict", str(path)]
    entry = Path(py).with_name("scoresong")
    load_before = os.getloadavg()

    wall(cli)  # untimed: page cache, .pyc
    res: dict = {"file": path.name, "machine": machine(), "scoresong": scoresong.__version__,
                 "date": time.strftime("%Y-%m-%d %H:%M"), "runs": a.runs}
    res["whole process: python -m scoresong.cli predict"] = summary([wall(cli)[0] for _ in range(a.runs)])
    if entry.exists():
        res["whole process: scoresong predict (entry point)"] = summary(
            [wall([str(entry), "predict", str(path)])[0] for _ in range(a.runs)])

    start = [wall([py, "-c", "pass"])[0] for _ in range(a.runs)]
    probes = [json.loads(wall([py, "-c", PROBE, str(path)])[1]) for _ in range(a.runs)]
    parts = {"interpreter start (python -c pass)": statistics.median(start)}
    for k, v in probes[0].items():
        if isinstance(v, float):
            parts[k] = statistics.median(p[k] for p in probes)
    res["breakdown (medians)"] = parts
    res["sklearn imported"] = any(p["sklearn imported"] for p in probes)
    res["predicted with"] = probes[0]["predicted with"]
    res["label"] = probes[0]["label"]
    if not a.no_skops:
        js = skops_only_copy(tmp)
        loads = [json.loads(wall([py, "-c", SKOPS_PROBE, str(js)])[1]) for _ in range(a.runs)]
        k = "load through skops (sklearn import + skops)"
        res[k] = summary([x[k] for x in loads])
    res["load average (1, 5, 15 min) before / after"] = [[round(x, 2) for x in load_before],
                                                          [round(x, 2) for x in os.getloadavg()]]
    shutil.rmtree(tmp, ignore_errors=True)

    md = report(res)
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    name = "coldstart" + (f"-{a.tag}" if a.tag else "")
    (a.out / f"{name}.json").write_text(json.dumps(res, indent=2))
    (a.out / f"{name}.md").write_text(md)
    return 0


def report(res: dict) -> str:
    lines = ["# Cold start", "",
             f"- file: `{res['file']}`; machine: {res['machine']}",
             f"- scoresong {res['scoresong']}, {res['runs']} fresh processes per figure, {res['date']}",
             f"- load average before / after: {res['load average (1, 5, 15 min) before / after']}", "",
             "| whole process | median s | min s | max s |", "|---|---:|---:|---:|"]
    for k, v in res.items():
        if k.startswith("whole process") or k.startswith("load through skops"):
            lines.append(f"| {k} | {v['median']:.3f} | {v['min']:.3f} | {v['max']:.3f} |")
    lines += ["", "| breakdown (fresh process) | median s |", "|---|---:|"]
    for k, v in res["breakdown (medians)"].items():
        lines.append(f"| {k} | {v:.3f} |")
    lines += ["", f"Predicted with the {res['predicted with']} (label {res['label']}); scikit-learn "
              f"imported: {'yes' if res['sklearn imported'] else 'no'}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
