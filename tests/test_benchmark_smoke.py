"""The benchmark script runs in its CI-sized form (no timing is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_hotpath.py"), "--quick",
                        "--no-naive", "--long-minutes", "1", "--out", str(tmp_path), "--tag", "smoke"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hotpath-smoke.json", "hotpath-smoke.md"]
    res = json.loads((tmp_path / "hotpath-smoke.json").read_text())
    for stage in ("decode", "resample", "stft", "floor", "end to end: scoresong.predict"):
        assert res["seconds"][stage] > 0
    assert all(v > 0 for v in res["peak_rss_mb"].values())
    assert "| end to end / floor" in (tmp_path / "hotpath-smoke.md").read_text()


def test_hotpath_benchmark_refuses_a_file_name_as_its_output_folder(tmp_path):
    """``--out run1.json`` used to become a folder holding hotpath-<file>.json: refused now."""
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_hotpath.py"), "--quick",
                        "--out", str(tmp_path / "run1.json")], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert r.returncode == 2 and "--out is a folder" in r.stderr
    assert not (tmp_path / "run1.json").exists()


def test_quick_batch_benchmark_interrupts_and_resumes(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_batch.py"), "--quick",
                        "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "batch-quick.json").read_text())
    assert res["every_file_once"] and res["first_run"]["output_valid"] and res["duplicates"] == 0
    assert res["planted_bad_files_reported"] and len(res["failed_reported"]) == 5


def test_coldstart_benchmark_runs(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_coldstart.py"), "--runs", "1",
                        "--no-skops", "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "coldstart.json").read_text())
    assert res["whole process: python -m scoresong.cli predict"]["median"] > 0
    assert res["predicted with"] == "inference form" and not res["sklearn imported"]


def test_media_benchmark_runs(tmp_path):
    """Seconds-long files: checks the script end to end (encoding, the .m4a hot path, the
    memory figures and their decomposition), not the figures."""
    src = ROOT / "tests" / "data" / "score_hyperrogue-hr3-jungle.ogg"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_media.py"), str(src),
                        "--long-minutes", "1", "--short-minutes", "0.5", "--repeat", "1",
                        "--memory-runs", "1", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((tmp_path / "media-long-mp4.json").read_text())
    for key in ("peak_rss_mb", "peak_rss_mb_mmap_threshold_fixed"):
        assert set(res[key]) == {"0.5", "1"}
        assert all(len(v) == 1 and v[0] > 0 for v in res[key].values())
    assert set(res["open_rss_mb"]["1"]) == {"default", "ignore_editlist=1", "advanced_editlist=0", "fflags=ignidx"}
    assert res["packets"]["1"] > res["packets"]["0.5"] > 0
    assert res["extra_packets"] == res["packets"]["1"] - res["packets"]["0.5"]
    assert res["ratio"] > 0 and res["ratio_mmap_threshold_fixed"] > 0 and "growth_mb_open" in res
    md = (tmp_path / "media-long-mp4.md").read_text()
    assert md.startswith("# Media files through FFmpeg")
    assert "| 0.5 minutes |" in md and "| 1 minutes |" in md
    assert "With the mmap threshold fixed" in md and "| fflags=ignidx |" in md


def test_centre_front_end_benchmark_runs_and_refuses_mono(tmp_path):
    import numpy as np
    import soundfile as sf

    sr = 44100
    t = np.arange(8 * sr) / sr
    centre = 0.1 * np.sin(2 * np.pi * 440 * t)  # view='centre' needs something in the centre
    left = 0.2 * np.sin(2 * np.pi * 220 * t) + centre
    right = 0.2 * np.sin(2 * np.pi * 330 * t) + centre
    sf.write(tmp_path / "stereo.ogg", np.stack([left, right], 1), sr, format="OGG", subtype="VORBIS")
    sf.write(tmp_path / "mono.ogg", left, sr, format="OGG", subtype="VORBIS")
    bench = str(ROOT / "benchmarks" / "bench_centre.py")
    r = subprocess.run([sys.executable, bench, str(tmp_path / "stereo.ogg"), "--repeat", "1",
                        "--long-minutes", "0.3", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "centre-stereo.json").read_text())
    assert all(v > 0 for v in res["seconds"].values())
    # The mid/side front end does strictly more work than the mono one it replaces.
    assert res["seconds"]["mid/side floor (decode + its front end)"] > res["seconds"]["decode"]
    assert set(res["ratios"]) == {"mid/side floor / floor", "end to end today / floor",
                                  "(end to end today + extra work) / floor: upper bound, nothing overlapped",
                                  "end to end view='centre' / floor", "end to end view='centre' / mid/side floor",
                                  "end to end view='centre' / end to end today"}
    # Peak memory of both views, on the file and on a longer WAV of it.
    assert len(res["peak_rss_mb"]) == 4 and all(v > 50 for v in res["peak_rss_mb"].values())
    r = subprocess.run([sys.executable, bench, str(tmp_path / "mono.ogg"), "--repeat", "1",
                        "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and "mono" in r.stderr
