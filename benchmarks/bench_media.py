"""Media files read through FFmpeg (PyAV): speed on AAC and memory on a long video.

    python benchmarks/bench_media.py SOURCE_AUDIO [--long-minutes 180] [--repeat 3]

1. Encodes 4 minutes of SOURCE_AUDIO as AAC in an .m4a (stereo, 44.1 kHz, 160 kbit/s) and
   runs ``bench_hotpath.py`` on it: end to end against that file's own floor (FFmpeg
   decode + resample + one STFT).
2. Writes a 10-minute and a ``--long-minutes`` MP4 (a small H.264 video track and an AAC
   track, the audio looping SOURCE_AUDIO), streaming so the files never sit in memory, and
   measures the peak RSS of ``scoresong.predict`` on each in a fresh process: memory must
   not grow with the length of a film. More figures per file say where growth comes from:
   the RSS that ``av.open`` adds (a fixed cost, plus FFmpeg's index: the MP4 demuxer reads
   the whole sample table into an entry per packet, so the long file's excess over the short
   one is the index of its extra packets), the same with the demuxer options that might
   avoid it (``ignore_editlist``, ``advanced_editlist=0``, ``fflags=ignidx``), and the peak
   with glibc's mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``; by default glibc raises it
   after a large block is freed, such as that index while it grows, and later buffers then
   stay in the heap: the peak varies by run). The default runs drop any ``MALLOC_*``
   variable of the caller's environment.

Results are printed as Markdown and written to ``benchmarks/results/media-*.md|json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench_hotpath  # noqa: E402


def source_signal(path, rate: int, seconds: float) -> np.ndarray:
    """``seconds`` of SOURCE_AUDIO as stereo float32 ``(2, n)`` at ``rate``."""
    from scoresong import audio

    y, _ = audio.load(path, sr=rate, duration=seconds)
    return np.stack([y, y])


def write_media(path: Path, audio_2ch: np.ndarray, rate: int, minutes: float, *, fmt: str,
                video: bool, bit_rate: int = 160_000) -> Path:
    """Stream ``minutes`` of ``audio_2ch`` (looped) into an AAC track (+ a 64x48 video)."""
    import av

    n_total = int(minutes * 60 * rate)
    with av.open(str(path), "w", format=fmt) as out:
        vs = None
        if video:
            vs = out.add_stream("libx264", rate=2)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
            vs.options = {"preset": "ultrafast"}
        st = out.add_stream("aac", rate=rate, layout="stereo")
        st.bit_rate = bit_rate
        fs = 1024
        src_n = audio_2ch.shape[1] - audio_2ch.shape[1] % fs
        pos = 0
        next_video = 0.0
        img = np.full((48, 64, 3), 100, np.uint8)
        k_video = 0
        while pos < n_total:
            i = pos % src_n
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio_2ch[:, i:i + fs]), format="fltp",
                                            layout="stereo")
            fr.sample_rate, fr.pts, fr.time_base = rate, pos, Fraction(1, rate)
            for pkt in st.encode(fr):
                out.mux(pkt)
            pos += fs
            if vs is not None and pos / rate >= next_video:
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = k_video
                k_video += 1
                next_video += 0.5
                for pkt in vs.encode(vf):
                    out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
        if vs is not None:
            for pkt in vs.encode(None):
                out.mux(pkt)
    return path


#: Demuxer options tried against the index's memory (``av.open(..., options=...)``).
OPEN_OPTIONS = {"default": {}, "ignore_editlist=1": {"ignore_editlist": "1"},
                "advanced_editlist=0": {"advanced_editlist": "0"}, "fflags=ignidx": {"fflags": "ignidx"}}


def open_rss_mb(path, options: dict | None = None) -> tuple[float, int]:
    """RSS (MB) that opening ``path`` with PyAV adds in a fresh process (after importing it),
    and the packet count of its streams (``(mb, packets)``)."""
    code = ("import av\n"
            "def rss():\n"
            "    return int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0])\n"
            f"a = rss(); c = av.open({str(path)!r}, options={dict(options or {})!r}); "
            "print((rss() - a) / 1024, sum(s.frames for s in c.streams))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mb, packets = r.stdout.strip().splitlines()[-1].split()
    return float(mb), int(packets)


def default_env() -> dict:
    """This environment without glibc's ``MALLOC_*`` tunables (the 'default allocator' runs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", help="any audio file the music is taken from (4 minutes or longer is best)")
    ap.add_argument("--long-minutes", type=float, default=180.0)
    ap.add_argument("--short-minutes", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-runs", type=int, default=3, help="fresh processes per memory figure")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--keep", type=Path, default=None, metavar="DIR",
                    help="write the encoded files to DIR and keep them; files already there are "
                         "reused (encoding the long MP4 takes minutes)")
    ap.add_argument("--load-max", type=float, default=None, metavar="L",
                    help="wait (up to 10 minutes) until the 1-minute load average is below L")
    a = ap.parse_args(argv)

    tmp = a.keep if a.keep is not None else Path(tempfile.mkdtemp(prefix="scoresong-media-"))
    tmp.mkdir(parents=True, exist_ok=True)
    rate = 44100
    sig = source_signal(a.source, rate, 240.0)

    def encoded(path: Path, *args, **kw) -> Path:
        if a.keep is not None and path.exists():
            return path
        return write_media(path, *args, **kw)

    m4a = encoded(tmp / f"{Path(a.source).stem}-aac.m4a", sig, rate, sig.shape[1] / rate / 60,
                  fmt="ipod", video=False)
    print(f"{m4a} ({m4a.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    bench_hotpath.wait_for_quiet(a.load_max)
    bench_hotpath.main([str(m4a), "--repeat", str(a.repeat), "--long-minutes", "0", "--no-naive",
                        "--out", str(a.out)] + (["--load-max", str(a.load_max)] if a.load_max else []))

    mem, secs, sizes, loads, fixed, opened, packets = {}, {}, {}, {}, {}, {}, {}
    fixed_env = {**default_env(), "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    for minutes in (a.short_minutes, a.long_minutes):
        p = encoded(tmp / f"film-{minutes:g}min.mp4", sig, rate, minutes, fmt="mp4", video=True)
        sizes[minutes] = p.stat().st_size / 1e6
        bench_hotpath.wait_for_quiet(a.load_max)
        loads[minutes] = os.getloadavg()[0]
        code = f"import scoresong; scoresong.predict({str(p)!r})"
        runs, t_best = [], None
        for _ in range(a.memory_runs):
            t0 = time.perf_counter()
            runs.append(bench_hotpath.peak_rss_mb(code, env=default_env()))
            t = time.perf_counter() - t0
            t_best = t if t_best is None else min(t_best, t)
        mem[minutes], secs[minutes] = runs, t_best
        fixed[minutes] = [bench_hotpath.peak_rss_mb(code, env=fixed_env)
                          for _ in range(a.memory_runs)]
        opened[minutes] = {}
        for name, opts in OPEN_OPTIONS.items():
            opened[minutes][name], packets[minutes] = open_rss_mb(p, opts)
        if a.keep is None:
            p.unlink()
    lo, hi = a.short_minutes, a.long_minutes
    ratios = [x / y for x in mem[hi] for y in mem[lo]]
    ratio = float(np.median(mem[hi]) / np.median(mem[lo]))
    ratio_fixed = float(np.median(fixed[hi]) / np.median(fixed[lo]))
    growth = float(np.median(mem[hi]) - np.median(mem[lo]))
    growth_fixed = float(np.median(fixed[hi]) - np.median(fixed[lo]))
    growth_pairs = [x - y for x in mem[hi] for y in mem[lo]]
    growth_index = opened[hi]["default"] - opened[lo]["default"]
    extra_packets = packets[hi] - packets[lo]
    lines = ["# Media files through FFmpeg: memory on a long video", "",
             f"- machine: {bench_hotpath.machine()}", f"- {time.strftime('%Y-%m-%d')}",
             f"- {a.memory_runs} fresh processes per peak figure (median, min-max)", "",
             "| MP4 (H.264 video + AAC stereo 44.1 kHz) | size MB | packets | peak RSS MB | peak RSS MB, "
             "mmap threshold fixed | RSS added by `av.open` MB (fixed cost + index) | best seconds "
             "(incl. process start) | × real time | load average |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def spread(v):
        return f"{np.median(v):.0f} ({min(v):.0f}-{max(v):.0f})"

    for minutes in (lo, hi):
        lines.append(f"| {minutes:g} minutes | {sizes[minutes]:.0f} | {packets[minutes]} | {spread(mem[minutes])} | "
                     f"{spread(fixed[minutes])} | {opened[minutes]['default']:.1f} | {secs[minutes]:.1f} | "
                     f"{minutes * 60 / secs[minutes]:.0f} | {loads[minutes]:.1f} |")
    lines += ["", f"Peak memory, {hi:g} min / {lo:g} min: **{ratio:.3f}** (medians; every pair of "
              f"runs: {min(ratios):.3f}-{max(ratios):.3f}); growth {growth:.1f} MB at the medians "
              f"({min(growth_pairs):.1f} to {max(growth_pairs):.1f} over pairs of runs).",
              f"With the mmap threshold fixed: {ratio_fixed:.3f}, a growth of {growth_fixed:.1f} MB. "
              f"Of it, `av.open` of the long file adds {growth_index:.1f} MB more than of the short one: "
              f"the index of its {extra_packets} extra packets, "
              f"{growth_index * 1048576 / max(extra_packets, 1):.0f} B each.", "",
              "| `av.open` option | RSS added, " + " | RSS added, ".join(f"{m:g} min" for m in (lo, hi)) + " |",
              "|---|---:|---:|"]
    for name in OPEN_OPTIONS:
        lines.append(f"| {name} | " + " | ".join(f"{opened[m][name]:.1f}" for m in (lo, hi)) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "media-long-mp4.md").write_text(text)
    (a.out / "media-long-mp4.json").write_text(json.dumps(
        {"machine": bench_hotpath.machine(), "date": time.strftime("%Y-%m-%d"),
         **{k: {f"{m:g}": v[m] for m in v} for k, v in (
             ("peak_rss_mb", mem), ("peak_rss_mb_mmap_threshold_fixed", fixed), ("open_rss_mb", opened),
             ("packets", packets), ("seconds", secs), ("size_mb", sizes), ("load_average", loads))},
         "ratio": ratio, "ratio_pairs": [min(ratios), max(ratios)], "growth_mb": growth,
         "growth_mb_pairs": [min(growth_pairs), max(growth_pairs)], "ratio_mmap_threshold_fixed": ratio_fixed,
         "growth_mb_mmap_threshold_fixed": growth_fixed, "growth_mb_open": growth_index,
         "extra_packets": extra_packets}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
