"""Batch benchmark: a library of real files with corrupt ones, interrupted, then resumed.

    python benchmarks/bench_batch.py --from DIR [--n 220] [--jobs 2] [--interrupt-after 60]
    python benchmarks/bench_batch.py --quick          # CI-sized: the bundled test excerpts

What it does, with the CLI a user runs (``scoresong predict LIB --jobs N --output res.csv``):

1. builds a library folder of ``--n`` audio files picked evenly from ``--from`` (symlinks, in
   nested folders) plus five bad files (truncated Ogg, text named .wav, empty file, a WAV
   header without data, random bytes named .flac);
2. starts the run, sends SIGINT (Ctrl-C) after ``--interrupt-after`` seconds, and checks that
   the output parses as CSV with whole rows only;
3. resumes with ``--resume`` and checks that no path is classified twice and every file,
   bad ones included, ends up with exactly one row;
4. samples the summed RSS of the process tree (main + workers) every 0.25 s, and reports the
   peak in the first and the second half of the files done, to show memory stays flat.

Results go to ``benchmarks/results/batch-*.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AUDIO = {".ogg", ".wav", ".flac", ".opus", ".mp3"}


def build_library(src: Path, n: int, dest: Path, min_bytes: int = 8000) -> tuple[list[Path], list[Path]]:
    files = sorted(p for p in src.rglob("*") if p.suffix.lower() in AUDIO and p.is_file()
                   and p.stat().st_size >= min_bytes)
    if len(files) < n:
        raise SystemExit(f"{src}: only {len(files)} audio files, asked for {n}")
    step = len(files) / n
    picked = [files[int(k * step)] for k in range(n)]
    good = []
    for k, f in enumerate(picked):
        d = dest / f"shelf{k % 7}" / f"box{k % 3}"
        d.mkdir(parents=True, exist_ok=True)
        link = d / f"{k:04d}_{f.name}"
        link.symlink_to(f.resolve())
        good.append(link)
    bad_dir = dest / "shelf0" / "damaged"
    bad_dir.mkdir(parents=True, exist_ok=True)
    ogg = next(f for f in picked if f.suffix == ".ogg")
    bad = {"truncated.ogg": ogg.read_bytes()[:4000], "readme.wav": b"this is not audio\n",
           "empty.ogg": b"", "header_only.wav": _wav_header_only(),
           "noise.flac": os.urandom(20000)}
    for name, data in bad.items():
        (bad_dir / name).write_bytes(data)
    return good, sorted(bad_dir.iterdir())


def _wav_header_only() -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(0, np.float32), 44100, format="WAV")
    return buf.getvalue()


def tree_rss_mb(pid: int) -> float:
    """Summed VmRSS of a process and its descendants (MB)."""
    total = 0
    todo = [pid]
    seen = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo.extend(int(c) for c in fh.read().split())
        except OSError:
            continue
    return total / 1024


def run(cmd: list[str], out: Path, *, interrupt_after: float | None) -> dict:
    """Run the CLI, sampling memory and rows written; SIGINT after ``interrupt_after`` s."""
    t0 = time.perf_counter()
    # SIGINT back to its default in the child: a shell starts background jobs with SIGINT
    # ignored, and Python then never turns it into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    samples: list[tuple[float, int, float]] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rows = max(0, _count_lines(out) - 1)
            samples.append((time.perf_counter() - t0, rows, tree_rss_mb(proc.pid)))
            time.sleep(0.25)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    interrupted = False
    if interrupt_after is not None:
        try:
            proc.wait(timeout=interrupt_after)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
            interrupted = True
    stdout, stderr = proc.communicate()
    stop.set()
    th.join()
    return {"returncode": proc.returncode, "seconds": round(time.perf_counter() - t0, 2),
            "interrupted": interrupted, "stderr_tail": stderr[-600:], "samples": samples}


def _count_lines(p: Path) -> int:
    try:
        return p.read_bytes().count(b"\n")
    except OSError:
        return 0


def memory_halves(samples, total_rows: int) -> tuple[float, float]:
    first = [m for _, r, m in samples if r <= total_rows / 2]
    second = [m for _, r, m in samples if r > total_rows / 2]
    return (max(first) if first else 0.0, max(second) if second else 0.0)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", help="folder to pick real audio files from")
    ap.add_argument("--n", type=int, default=220)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--min-bytes", type=int, default=200_000,
                    help="only pick files at least this large (music tracks rather than sound effects)")
    ap.add_argument("--interrupt-after", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="CI-sized: the bundled excerpts, interrupt after 4 s")
    ap.add_argument("--out", default=str(HERE / "results"))
    a = ap.parse_args(argv)
    if a.quick:
        a.src, a.n, a.interrupt_after, a.min_bytes = str(ROOT / "tests" / "data"), 7, 4.0, 0
    if not a.src:
        ap.error("--from DIR or --quick")
    tmp = Path(tempfile.mkdtemp(prefix="scoresong-batch-"))
    try:
        good, bad = build_library(Path(a.src), a.n, tmp / "library", a.min_bytes)
        out = tmp / "results.csv"
        cmd = [sys.executable, "-m", "scoresong.cli", "predict", str(tmp / "library"), "--jobs", str(a.jobs),
               "--output", str(out), "--no-progress"]
        first = run(cmd, out, interrupt_after=a.interrupt_after)
        with open(out, newline="") as fh:
            rows1 = list(csv.DictReader(fh))
        text = out.read_text()
        valid_after_interrupt = text.endswith("\n") and all(r["path"] and (r["label"] or r["error"]) for r in rows1)
        second = run(cmd + ["--resume"], out, interrupt_after=None)
        with open(out, newline="") as fh:
            rows = list(csv.DictReader(fh))
        paths = [r["path"] for r in rows]
        expected = {str(p) for p in good + bad}
        failed = sorted(Path(r["path"]).name for r in rows if r["error"])
        planted = sorted(p.name for p in bad)
        errors: dict[str, int] = {}
        for r in rows:
            if r["error"]:
                errors[r["error"]] = errors.get(r["error"], 0) + 1
        total = len(expected)
        peak1, peak2 = memory_halves(first["samples"] + [(t + first["seconds"], r, m) for t, r, m in second["samples"]],
                                     total)
        audio_s = sum(float(r["duration"] or 0) for r in rows)
        res = {
            "library": {"from": a.src, "files": len(good), "bad_files": len(bad)},
            "jobs": a.jobs,
            "first_run": {"seconds": first["seconds"], "interrupted": first["interrupted"],
                          "rows_written": len(rows1), "returncode": first["returncode"],
                          "output_valid": valid_after_interrupt},
            "resumed_run": {"seconds": second["seconds"], "returncode": second["returncode"],
                            "rows_added": len(rows) - len(rows1), "stderr": second["stderr_tail"].strip()},
            "every_file_once": sorted(paths) == sorted(expected),
            "duplicates": len(paths) - len(set(paths)),
            "failed_reported": failed,
            "planted_bad_files_reported": all(p in failed for p in planted),
            "errors_by_type": errors,
            "audio_hours": round(audio_s / 3600, 2),
            "files_per_second": round(total / (first["seconds"] + second["seconds"]), 2),
            "peak_tree_rss_mb": {"first_half_of_files": round(peak1), "second_half_of_files": round(peak2)},
            "machine": f"{_cpu()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
            "date": time.strftime("%Y-%m-%d"),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    name = "batch-quick" if a.quick else f"batch-{a.n}"
    outdir = Path(a.out)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / f"{name}.json").write_text(json.dumps(res, indent=2))
    md = markdown(res)
    (outdir / f"{name}.md").write_text(md)
    print(md)
    ok = (res["every_file_once"] and res["first_run"]["output_valid"] and not res["duplicates"]
          and res["planted_bad_files_reported"])
    return 0 if ok else 1


def _cpu() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def markdown(r: dict) -> str:
    f, s = r["first_run"], r["resumed_run"]
    return "\n".join([
        "# Batch benchmark: interrupted and resumed", "",
        f"- library: {r['library']['files']} real files from `{r['library']['from']}` "
        f"({r['audio_hours']} h of audio) + {r['library']['bad_files']} bad files, nested folders",
        f"- command: `scoresong predict LIB --jobs {r['jobs']} --output results.csv`, Ctrl-C (SIGINT) "
        f"after {f['seconds']:.0f} s, then the same with `--resume`",
        f"- machine: {r['machine']}; {r['date']}", "",
        "| | value |", "|---|---|",
        f"| first run: rows written before Ctrl-C | {f['rows_written']} (interrupted: {f['interrupted']}, "
        f"exit {f['returncode']}) |",
        f"| output valid after Ctrl-C (whole rows, parses as CSV) | {f['output_valid']} |",
        f"| resumed run: rows added, seconds | {s['rows_added']}, {s['seconds']:.1f} s (exit {s['returncode']}) |",
        f"| every file exactly once in the output | {r['every_file_once']} (duplicates: {r['duplicates']}) |",
        f"| the 5 planted bad files reported with their error | {r['planted_bad_files_reported']} |",
        f"| files that failed, by error type | {', '.join(f'{k} {v}' for k, v in r['errors_by_type'].items()) or 'none'} |",
        f"| throughput over both runs | {r['files_per_second']} files/s |",
        f"| peak RSS of the process tree, first / second half of the files | "
        f"{r['peak_tree_rss_mb']['first_half_of_files']} / {r['peak_tree_rss_mb']['second_half_of_files']} MB |",
        "", f"Resumed run's summary line: `{s['stderr'].splitlines()[-1] if s['stderr'] else ''}`", ""])


if __name__ == "__main__":
    sys.exit(main())
