"""Listening-free sanity report: does each singing generator behave like real singing?

    python -m corpus.report CORPUS_DIR [--out DIR]

For every song ``generator`` of the manifest (its a cappella lines; for rap, which has no
a cappella clips, its mixes), for real singing (the hedgewars Singer pack's raw phrases,
chained) and for real speech (fillets-ng Dutch dialogue, chained), it tabulates pitch and
timing statistics measured by scoresong's own features: share of vibrato frames, share of
contour frames in notes of 0.3 s or longer, share of contour frames holding a note
(plateaus), note and voicing onsets per second, glide rate, pitch range. Each generator's
distance to the real singer is the table's point: a generator whose habits differ from
real singing (v1's vibrato on every note) shows it here. It also draws spectrograms
(0-4 kHz) with the predominant-pitch track of one line of each group.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from scoresong import audio, extract_features


def _chain(paths, seconds=20.0):
    ys, total = [], 0
    for p in paths:
        try:
            y, _ = audio.load(p, min_duration=0, check_silence=False)
        except audio.AudioError:
            continue
        ys += [y, np.zeros(int(0.3 * audio.ANALYSIS_SR), np.float32)]
        total += y.size
        if total > seconds * audio.ANALYSIS_SR:
            break
    return np.concatenate(ys)[: int(seconds * audio.ANALYSIS_SR)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.report")
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    out = a.out or a.corpus / "report"
    out.mkdir(parents=True, exist_ok=True)
    rows = list(csv.DictReader(open(a.corpus / "manifest.csv")))
    singer = sorted((a.corpus / "pkgs/hedgewars-data").glob("usr/share/games/hedgewars/Data/Sounds/voices/Singer/*.ogg"))
    speech = sorted((a.corpus / "pkgs/fillets-ng-data-nl").glob("usr/share/games/fillets-ng/sound/*/nl/*.ogg"))
    rng = np.random.default_rng(0)
    groups = {"real singing (Singer pack, raw phrases)": [_chain(list(rng.permutation(singer))) for _ in range(8)]}
    gens = sorted({r.get("generator", "") for r in rows if r["label"] == "song"} - {""})
    for g in gens:
        acap = [r for r in rows if r.get("generator") == g and r["kind"] == "song_acappella"]
        what = "a cappella"
        if not acap:
            acap, what = [r for r in rows if r.get("generator") == g and r["kind"] == "song_constructed"], "mixes"
        pick = [acap[int(i)] for i in rng.permutation(len(acap))[:30]]
        groups[f"{g} ({what})"] = [audio.load(a.corpus / r["path"])[0] for r in pick]
    groups["real speech (fillets-ng nl)"] = [_chain(list(rng.permutation(speech)[:60])) for _ in range(8)]
    stats = {}
    keys = ["vocal.vibrato_frames_frac:mean", "vocal.contour_long_frac:mean", "vocal.plateau_frac:mean",
            "vocal.plateau_onsets_per_s:mean", "vocal.voicing_onsets_per_s:mean",
            "vocal.contour_len_mean:mean", "vocal.glide_rate_mean:mean", "vocal.pitch_range_st:mean",
            "vocal.voiced_frac:mean"]
    frames = {}
    for g, ys in groups.items():
        vals = [extract_features(y, audio.ANALYSIS_SR, frames=True) for y in ys if y.size > audio.ANALYSIS_SR]
        stats[g] = {k.split(".")[1].split(":")[0]: [round(float(np.median([v.as_dict()[k] for v in vals])), 3),
                                                    len(vals)] for k in keys}
        frames[g] = (ys[0], vals[0].frames)
    (out / "pitch_stats.json").write_text(json.dumps(stats, indent=1))
    short = [k.split(".")[1].split(":")[0] for k in keys]
    md = ["| group | n | " + " | ".join(short) + " |", "|---|---:|" + "---:|" * len(short)]
    for g, st in stats.items():
        md.append(f"| {g} | {st[short[0]][1]} | " + " | ".join(f"{st[k][0]:g}" for k in short) + " |")
    (out / "pitch_stats.md").write_text("Medians per group of per-line feature means (scoresong's own "
                                        "pitch tracker).\n\n" + "\n".join(md) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from scoresong.spectrum import HOP, Spectrum

    fig, axes = plt.subplots(len(frames), 1, figsize=(12, 3.2 * len(frames)), sharex=True)
    for ax, (g, (y, fr)) in zip(axes, frames.items()):
        y = y[: 12 * audio.ANALYSIS_SR]
        pad = np.zeros(384, np.float32)
        spec = Spectrum.from_padded(np.concatenate([pad, y, np.zeros(640, np.float32)]), audio.ANALYSIS_SR)
        t = np.arange(spec.n_frames) * HOP / audio.ANALYSIS_SR
        db = 10 * np.log10(spec.power.T + 1e-10)
        ax.pcolormesh(t, spec.freqs, db, vmin=db.max() - 80, vmax=db.max(), shading="auto", cmap="magma")
        f0 = 10 * 2 ** (fr["vocal.pitch_cents"][: t.size] / 1200)
        vib = fr["vocal.vibrato_ratio"][: t.size]
        ax.plot(t, f0, ".", ms=1.5, color="cyan", label="predominant pitch")
        ax.plot(t, np.where(vib > 0.5, f0, np.nan), ".", ms=2.5, color="lime", label="vibrato frames")
        ax.set_ylim(0, 4000)
        ax.set_ylabel("Hz")
        s = stats[g]
        ax.set_title(f"{g}: vibrato frames {s['vibrato_frames_frac'][0]:.2f}, "
                     f"long-note share {s['contour_long_frac'][0]:.2f}, glide {s['glide_rate_mean'][0]:.0f} c/s "
                     f"(medians over {s['vibrato_frames_frac'][1]} lines)", fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out / "constructed_vs_real.png", dpi=80)
    print(json.dumps(stats, indent=1))
    print(f"written {out / 'constructed_vs_real.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
