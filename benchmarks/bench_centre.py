"""What the mid/side front end costs: estimated before it was built, and measured as built
(``scoresong.predict(..., view="centre")``) in the same run (issue 11).

    python benchmarks/bench_centre.py FILE [--repeat 5] [--load-max 1.0]

``models/centre.trained.diagnosis.md`` shows that hearing only the centre of the stereo image
finds most of the real stereo songs the shipped model misses. Done in the feature core, every
file would need, instead of one mono signal resampled and one STFT:

- both mid ``(L + R) / 2`` and side ``(L - R) / 2`` resampled to 16 kHz (one two-channel
  soxr call),
- two STFTs on the analysis grid (one call on a two-row array),
- the centre power ``max(|M| - |S|, 0) ** 2`` (elementwise, float32).

This script times both front ends on the same file, in the same run, with scoresong's own
functions (:class:`scoresong.spectrum.Spectrum`, soxr at the quality scoresong uses), and
``scoresong.predict`` for context. It reports the extra seconds and two ratios to the current
floor (decode + resample + one STFT): the floor of the mid/side front end, and the end to end
plus the extra work, an upper bound for a build where the extra work is not overlapped with
decoding. Since the centre became an input option (``view="centre"``), the run also times
``scoresong.predict(FILE, view="centre")`` end to end, back to back with the default, and
reports its ratio to the floor and to today's end to end. Results go to
``benchmarks/results/centre-NAME.md`` (``--tag`` appends a name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_hotpath import decode_native, machine, peak_rss_mb, timed, wait_for_quiet  # noqa: E402


def centre_power(power_mid: np.ndarray, power_side: np.ndarray) -> np.ndarray:
    """``max(|M| - |S|, 0) ** 2`` from the two power spectrograms (float32, in place on a copy)."""
    c = np.sqrt(power_mid)
    c -= np.sqrt(power_side)
    np.maximum(c, 0, out=c)
    c *= c
    return c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench_centre.py", description=__doc__.split("\n")[0])
    ap.add_argument("file", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--load-max", type=float, default=None, metavar="L",
                    help="wait (up to 10 minutes) until the 1-minute load average is below L")
    ap.add_argument("--out", type=Path, default=HERE / "results")
    ap.add_argument("--tag", default="", help="appended to the results' name (centre-FILE-TAG.md)")
    ap.add_argument("--long-minutes", type=float, default=30.0,
                    help="peak memory of both views on this file and on a WAV of it repeated to this "
                         "length (0 to skip)")
    a = ap.parse_args(argv)

    import soxr

    import scoresong
    from scoresong import audio
    from scoresong.spectrum import HOP, N_FFT, Spectrum, stft_frames

    rep = a.repeat
    wait_for_quiet(a.load_max)
    loads = [os.getloadavg()[0]]
    res = {}
    res["decode"], (raw, sr0) = timed(lambda: decode_native(a.file), rep)
    if raw.shape[1] < 2:
        print(f"{a.file}: mono; a mid/side front end costs nothing extra on it", file=sys.stderr)
        return 2
    dur = raw.shape[0] / sr0
    pad = lambda y: np.concatenate([np.zeros((N_FFT - HOP) // 2, np.float32), y,  # noqa: E731
                                    np.zeros((N_FFT + HOP) // 2, np.float32)])
    # The current front end: the mono mix, resampled, one STFT.
    mono = raw.mean(axis=1)
    res["mono: resample"], y16 = timed(lambda: soxr.resample(mono, sr0, audio.ANALYSIS_SR, quality="MQ"), rep)
    yp = pad(y16.astype(np.float32))
    res["mono: one STFT"], spec = timed(lambda: Spectrum.from_padded(yp, audio.ANALYSIS_SR), rep)
    # The mid/side front end.
    ms = np.stack([(raw[:, 0] + raw[:, 1]) / 2, (raw[:, 0] - raw[:, 1]) / 2], axis=1)
    res["mid/side: resample (2 channels)"], ms16 = timed(
        lambda: soxr.resample(ms, sr0, audio.ANALYSIS_SR, quality="MQ"), rep)
    mp, sp = pad(ms16[:, 0].astype(np.float32)), pad(ms16[:, 1].astype(np.float32))
    res["mid/side: two STFTs"], (pm, ps) = timed(lambda: (stft_frames(mp), stft_frames(sp)), rep)
    res["mid/side: centre power"], _ = timed(lambda: centre_power(pm, ps), rep)
    res["floor (decode + resample + one STFT)"] = res["decode"] + res["mono: resample"] + res["mono: one STFT"]
    res["mid/side floor (decode + its front end)"] = (res["decode"] + res["mid/side: resample (2 channels)"]
                                                     + res["mid/side: two STFTs"] + res["mid/side: centre power"])
    extra = res["mid/side floor (decode + its front end)"] - res["floor (decode + resample + one STFT)"]
    res["end to end: scoresong.predict (today)"], _ = timed(lambda: scoresong.predict(a.file), rep)
    res["end to end: scoresong.predict(view='centre')"], _ = timed(
        lambda: scoresong.predict(a.file, view="centre"), rep)
    loads.append(os.getloadavg()[0])
    floor, e2e = res["floor (decode + resample + one STFT)"], res["end to end: scoresong.predict (today)"]
    e2c = res["end to end: scoresong.predict(view='centre')"]
    ratios = {"mid/side floor / floor": res["mid/side floor (decode + its front end)"] / floor,
              "end to end today / floor": e2e / floor,
              "(end to end today + extra work) / floor: upper bound, nothing overlapped": (e2e + extra) / floor,
              "end to end view='centre' / floor": e2c / floor,
              "end to end view='centre' / mid/side floor": e2c / res["mid/side floor (decode + its front end)"],
              "end to end view='centre' / end to end today": e2c / e2e}
    lines = ["# Mid/side front end: estimated, and as built (view='centre')", "",
             f"- file: `{a.file.name}` ({dur:.1f} s, {sr0} Hz, {raw.shape[1]} ch)",
             f"- machine: {machine()}",
             f"- scoresong {scoresong.__version__}, best of {rep} runs, {time.strftime('%Y-%m-%d %H:%M')}",
             f"- load average (1 min) at the start and the end: {loads[0]:.2f}, {loads[1]:.2f}", "",
             "| stage | seconds | s per audio minute |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:.3f} | {60 * v / dur:.4f} |" for k, v in res.items()]
    lines += ["", f"Extra work of the mid/side front end: {extra:.3f} s ({60 * extra / dur:.4f} s per audio minute).",
              "", "| ratio | value |", "|---|---:|"]
    lines += [f"| {k} | {v:.2f} |" for k, v in ratios.items()]
    mem = {}
    if a.long_minutes > 0:
        import tempfile

        import soundfile as sf

        with tempfile.TemporaryDirectory() as tmp:
            long_path = Path(tmp) / "long.wav"
            with sf.SoundFile(long_path, "w", sr0, raw.shape[1], subtype="PCM_16") as f:
                for _ in range(int(np.ceil(a.long_minutes * 60 / dur))):
                    f.write(raw)
            long_min = sf.info(str(long_path)).duration / 60
            for view in ("mix", "centre"):
                for label, path in ((f"this file ({dur / 60:.1f} min)", a.file),
                                    (f"{long_min:.0f}-minute WAV", long_path)):
                    mem[f"view={view!r}, {label}"] = peak_rss_mb(
                        f"import scoresong; scoresong.predict({str(path)!r}, view={view!r})")
        lines += ["", "| peak memory (max RSS of a fresh process) | MB |", "|---|---:|"]
        lines += [f"| {k} | {v:.0f} |" for k, v in mem.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    name = f"centre-{a.file.stem}" + (f"-{a.tag}" if a.tag else "")
    (a.out / f"{name}.md").write_text(text)
    (a.out / f"{name}.json").write_text(json.dumps(
        {"file": a.file.name, "duration_s": dur, "machine": machine(), "load_average": loads,
         "seconds": res, "extra_s": extra, "ratios": ratios, "peak_rss_mb": mem}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
