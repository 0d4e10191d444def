"""Hot-path benchmark: per stage, the floor, end to end, and a plain librosa pipeline.

    python benchmarks/bench_hotpath.py FILE [--repeat 3] [--long-minutes 120]
    python benchmarks/bench_hotpath.py --quick          # CI-sized: a generated 30 s OGG

Reports seconds, real-time factor (audio seconds per second of compute) and peak memory:

- stages: decode (libsndfile, native rate; FFmpeg through PyAV for files libsndfile cannot
  read, e.g. AAC in .m4a), resample (soxr to 16 kHz), one STFT, each feature
  family (frame + segment statistics), the classifier;
- floor: decode + resample + one STFT of the same file (with the experimental
  ``features.CENTRE_FAMILIES`` or ``CENTRE_VIEWS`` set, a stereo file's centre adds the side's resampling
  and STFT: a stage of its own, outside the floor, inside end to end);
- end to end: ``scoresong.predict(path)`` as a user calls it (streamed, chunked, the next
  blocks decoded on a second core), and the same with decoding inline on one core;
- naive: the same kind of feature set written the straightforward way with librosa calls
  (load, mfcc, spectral_centroid/bandwidth/rolloff/flatness/contrast, hpss, onset_strength,
  beat_track, rms), each computing its own STFT;
- peak memory (max RSS) of end-to-end runs in fresh processes, on the file and on a long file
  made by repeating it (``--long-minutes``), to show memory is flat in length.

Results are printed as Markdown and written to ``benchmarks/results/``.
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


def timed(fn, repeat):
    best = np.inf
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def naive_librosa(path):
    """The feature set the straightforward way: every call does its own STFT."""
    import librosa

    y, sr = librosa.load(path, sr=22050, mono=True)
    feats = [librosa.feature.mfcc(y=y, sr=sr, n_mfcc=14),
             librosa.feature.spectral_centroid(y=y, sr=sr),
             librosa.feature.spectral_bandwidth(y=y, sr=sr),
             librosa.feature.spectral_rolloff(y=y, sr=sr),
             librosa.feature.spectral_flatness(y=y),
             librosa.feature.spectral_contrast(y=y, sr=sr),
             librosa.feature.rms(y=y)]
    h, p = librosa.effects.hpss(y)
    onset = librosa.onset.onset_strength(y=y, sr=sr)
    tempo, _ = librosa.beat.beat_track(onset_envelope=onset, sr=sr)
    return [f.mean(axis=1) for f in feats] + [np.sum(h ** 2) / (np.sum(p ** 2) + 1e-9), tempo]


def decode_native(path):
    """The decode floor: the whole file as float32 ``(n, channels)`` at its own rate, read
    with the library scoresong itself uses for it (libsndfile, else FFmpeg via PyAV)."""
    try:
        return sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError:
        import av

        with av.open(str(path)) as c:
            st = c.streams.audio[0]
            parts = [f.to_ndarray() for f in c.decode(st)]  # fltp: (channels, n) per frame
        return np.concatenate(parts, axis=1).T, int(st.codec_context.sample_rate)


def describe(path) -> str:
    try:
        i = sf.info(str(path))
        return f"{i.format}/{i.subtype}"
    except sf.LibsndfileError:
        from scoresong import audio

        i = audio.info(path)
        return f"{i.format}/{i.subtype} (FFmpeg)"


def peak_rss_mb(code: str, *, env: dict | None = None) -> float:
    """Peak RSS (MB) of a fresh Python process running ``code``.

    Read from VmHWM in /proc/self/status, which belongs to the new process image:
    getrusage's ru_maxrss is not usable here, as Linux carries the forking parent's peak
    into the child across exec. ``env``: the child's environment (default: this one's).
    """
    r = subprocess.run([sys.executable, "-c", code + "\nprint(open('/proc/self/status').read()"
                        ".split('VmHWM:')[1].split()[0])"], capture_output=True, text=True, check=True,
                       env=env)
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def wait_for_quiet(load_max: float | None, timeout: float = 600.0) -> None:
    """Wait until the 1-minute load average is below ``load_max`` (at most ``timeout`` s).

    The development machine is shared: other processes' work shows in wall times, so the
    results record the load they were taken under."""
    if load_max is None:
        return
    t0 = time.monotonic()
    while os.getloadavg()[0] >= load_max and time.monotonic() - t0 < timeout:
        time.sleep(5)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?")
    ap.add_argument("--quick", action="store_true", help="CI-sized run on a generated 30 s OGG")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--long-minutes", type=float, default=120.0,
                    help="length of the long file for the memory check (0 to skip)")
    ap.add_argument("--no-naive", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results",
                    help="folder for hotpath-TAG.md and hotpath-TAG.json (default: benchmarks/results)")
    ap.add_argument("--tag", default=None,
                    help="name of this run's results (default: the file's stem, or 'quick'), so that "
                         "runs compared back to back do not overwrite each other")
    ap.add_argument("--load-max", type=float, default=None, metavar="L",
                    help="wait (up to 10 minutes) until the 1-minute load average is below L")
    a = ap.parse_args(argv)
    if a.out.suffix.lower() in (".md", ".json"):
        ap.error(f"--out is a folder (results go to {a.out}/hotpath-TAG.md and .json), not a file: {a.out}")

    import soxr

    import scoresong
    from scoresong import audio
    from scoresong.features import VIEW_FAMILIES, _segment_features, _views, frame_features, reads_stereo
    from scoresong.features import _mel_freqs, _Shared
    from scoresong.model import get_default_model
    from scoresong.spectrum import HOP, N_FFT, Spectrum, one_blas_thread, stft_frames

    tmp = Path(tempfile.mkdtemp(prefix="scoresong-bench-"))
    if a.quick:
        from tests.conftest import tone  # noqa: F401  (only for the quick synthetic file)

        sr0 = 44100
        t = np.arange(30 * sr0) / sr0
        y = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.random.default_rng(0).standard_normal(t.size)
        path = tmp / "quick.ogg"
        sf.write(path, np.stack([y, y], 1), sr0, format="OGG", subtype="VORBIS")
        a.long_minutes = min(a.long_minutes, 3.0)
        a.repeat = 1
    else:
        if not a.file:
            ap.error("FILE is required unless --quick")
        path = Path(a.file)
    rep = a.repeat
    model = get_default_model()

    wait_for_quiet(a.load_max)
    loads = [os.getloadavg()[0]]
    res = {}
    res["decode"], (raw, sr0) = timed(lambda: decode_native(path), rep)
    dur = raw.shape[0] / sr0
    mono = raw.mean(axis=1)
    res["resample"], y16 = timed(lambda: soxr.resample(mono, sr0, audio.ANALYSIS_SR, quality="MQ"), rep)
    pad_l, pad_r = (N_FFT - HOP) // 2, (N_FFT + HOP) // 2
    yp = np.concatenate([np.zeros(pad_l, np.float32), y16.astype(np.float32), np.zeros(pad_r, np.float32)])
    res["stft"], spec = timed(lambda: Spectrum.from_padded(yp, audio.ANALYSIS_SR), rep)
    res["floor"] = res["decode"] + res["resample"] + res["stft"]
    if raw.shape[1] == 2 and reads_stereo():
        # With features.CENTRE_FAMILIES or CENTRE_VIEWS set (experiments, off in the shipped
        # schema) a stereo file's centre costs the side's resampling, its STFT and the
        # centre magnitude.
        side = (raw[:, 0] - raw[:, 1]) / 2

        def centre():
            s16 = soxr.resample(side, sr0, audio.ANALYSIS_SR, quality="MQ")
            sp = np.concatenate([np.zeros(pad_l, np.float32), s16.astype(np.float32), np.zeros(pad_r, np.float32)])
            return Spectrum(spec.power, spec.sr).centre(stft_frames(sp))

        res["centre: side resample + STFT + centre magnitude"], cspec = timed(centre, rep)
    else:
        cspec = None

    def family(fam, on_centre):
        def run():
            src = cspec if cspec is not None and on_centre else spec
            s = Spectrum(src.power, src.sr)  # fresh derived-view cache
            # As the feature core does: the MFCCs only where the family reads them (the
            # pitch-only view never does).
            shared = _Shared(s, _mel_freqs(s.sr))
            with one_blas_thread():  # as features.frame_features runs every family
                return VIEW_FAMILIES[fam].frame_features(s, shared)
        return run

    for name, fam, on_centre in _views():
        if name != fam and cspec is None:
            continue    # a mono file's second view is copied from the first
        res[f"features: {name} (frame)"], _ = timed(family(fam, on_centre), rep)
    fr = frame_features(spec, cspec)
    n = spec.n_frames // 320
    idx = (320 * np.arange(max(n, 1)))[:, None] + np.arange(min(320, spec.n_frames))[None, :]
    res["features: segment statistics"], _ = timed(lambda: _segment_features(fr, idx, spec.frame_rate), rep)
    feat = scoresong.extract_features(path)
    res["predict (classifier)"], _ = timed(lambda: model.song_probability(feat.values), rep)
    res["end to end: scoresong.predict"], pred = timed(lambda: scoresong.predict(path), rep)
    # The same with decoding inline, on one core: what each process of a batch run with one
    # process per core pays (decoding ahead on a second core shortens the wall time, not the work).
    import scoresong.features as _features

    ahead = _features.audio.prefetch
    _features.audio.prefetch = lambda blocks, **kw: blocks
    try:
        res["end to end, decoding inline (one core)"], _ = timed(lambda: scoresong.predict(path), rep)
    finally:
        _features.audio.prefetch = ahead
    loads.append(os.getloadavg()[0])
    if not a.no_naive:
        res["naive librosa pipeline"], _ = timed(lambda: naive_librosa(str(path)), 1)

    code = f"import scoresong; scoresong.predict({str(path)!r})"
    mem = {"end to end, this file": peak_rss_mb(code),
           "import + model load only": peak_rss_mb("import scoresong;"
                                                   "from scoresong.model import get_default_model; get_default_model()")}
    long_path = None
    if a.long_minutes > 0:
        long_path = tmp / "long.wav"
        reps = int(np.ceil(a.long_minutes * 60 / dur))
        with sf.SoundFile(long_path, "w", sr0, raw.shape[1], subtype="PCM_16") as f:
            for _ in range(reps):
                f.write(raw)
        long_dur = sf.info(str(long_path)).duration
        t0 = time.perf_counter()
        mem[f"end to end, {long_dur / 60:.0f}-minute WAV"] = peak_rss_mb(
            f"import scoresong; scoresong.predict({str(long_path)!r})")
        res[f"end to end, {long_dur / 60:.0f}-minute WAV (incl. process start)"] = time.perf_counter() - t0

    e2e = res["end to end: scoresong.predict"]
    lines = ["# Hot-path benchmark", "", f"- file: `{path.name}` ({dur:.1f} s, {sr0} Hz, "
             f"{raw.shape[1]} ch, {describe(path)})", f"- machine: {machine()}",
             f"- scoresong {scoresong.__version__}, best of {rep} runs, {time.strftime('%Y-%m-%d %H:%M')}",
             f"- load average (1 min) at the start and the end of the timings: {loads[0]:.2f}, "
             f"{loads[1]:.2f} (2 cores; other processes' work shows in wall times)", "",
             "| stage | seconds | × real time | s per audio minute |", "|---|---:|---:|---:|"]
    for k, v in res.items():
        d = dur if "minute WAV" not in k else long_dur
        lines.append(f"| {k} | {v:.3f} | {d / v:.0f} | {60 * v / d:.3f} |")
    lines += ["", "| ratio | value |", "|---|---:|",
              f"| end to end / floor (decode + resample + one STFT) | {e2e / res['floor']:.2f} |",
              f"| end to end on one core / floor (the cost per process in a batch) | "
              f"{res['end to end, decoding inline (one core)'] / res['floor']:.2f} |"]
    if "naive librosa pipeline" in res:
        lines.append(f"| naive librosa / end to end (speed-up) | {res['naive librosa pipeline'] / e2e:.1f} |")
    lines += ["", "| peak memory (max RSS of a fresh process) | MB |", "|---|---:|"]
    lines += [f"| {k} | {v:.0f} |" for k, v in mem.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    a.out.mkdir(parents=True, exist_ok=True)
    tag = a.tag or ("quick" if a.quick else path.stem)
    (a.out / f"hotpath-{tag}.md").write_text(text)
    (a.out / f"hotpath-{tag}.json").write_text(json.dumps(
        {"file": path.name, "duration_s": dur, "machine": machine(), "load_average": loads,
         "seconds": res, "peak_rss_mb": mem},
        indent=1))
    if long_path:
        long_path.unlink()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    raise SystemExit(main())
