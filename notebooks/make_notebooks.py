"""Write the notebooks of this folder from the cells below (``python notebooks/make_notebooks.py``),
then execute them in place so that the committed copies show their outputs.

Editing a notebook in Jupyter is fine too; this script only keeps them reviewable as code.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).parent

EXPLORE = [
    ("md", """# Exploring scoresong's features on real music

What tells a song from a score cue? This notebook looks at the evidence scoresong computes, on
the eight real 10-second excerpts bundled with the tests (`tests/data`, CC-BY-SA-3.0, see its
`ATTRIBUTION.md`): sung and spoken voice over the same backing, a cappella singing, a
lead guitar, orchestral and electronic score, and the same voice speaking alone (no music).

Everything comes from **one STFT** per block (16 kHz, 1024-point window, 16 ms hop); the vocal
evidence is a harmonic-sum predominant pitch (vibrato, contour length, glides) and Lehner's
fluctogram."""),
    ("code", """from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import scoresong
from scoresong import audio
from scoresong.spectrum import Spectrum

plt.rcParams["figure.dpi"] = 64   # keeps the saved notebook small
DATA = Path("..") / "tests" / "data"
files = sorted(DATA.glob("*.ogg"))
[f.name for f in files]"""),
    ("md", """## The decision on each excerpt

The file name starts with the expected label. `predict` gives calibrated probabilities of the
three labels; the label is the one whose probability is largest against its prior (the two
thresholds are the training priors: the balanced-error rule). Between score and song that is
`song` when P(song | music) reaches the song threshold; `no_music` needs P(no_music) above the
presence threshold, and more when the music verdict is clear."""),
    ("code", """model = scoresong.load_model()
print(f"model {model.version}, labels {model.classes}, thresholds: no_music {model.presence_threshold:.3f}, "
      f"song {model.threshold:.3f}")
for f in files:
    r = scoresong.predict(f)
    probs = "  ".join(f"{k} {v:.3f}" for k, v in r.probabilities.items())
    print(f"{r.label:8}  {probs}   {f.name}")"""),
    ("md", """## Audio already in memory

The same calls take a signal (`y` with `sr=`, librosa's `(n,)` or `(channels, n)`), the bytes
of a file, a file object, or an iterator of blocks (live or very long input, constant memory).
The answer is the same as for the path."""),
    ("code", """import io

import soundfile as sf

f = DATA / "song_allison-sung-over-armygeddon.ogg"
y, sr = sf.read(f, dtype="float32")          # mono here; soundfile's (n, channels) would be passed as y.T
blocks = (y[i:i + 4000] for i in range(0, y.size, 4000))
for source, kw in [(f, {}), (y, {"sr": sr}), (f.read_bytes(), {}), (io.BytesIO(f.read_bytes()), {}), (blocks, {"sr": sr})]:
    r = scoresong.predict(source, **kw)
    print(f"{r.path if r.path.startswith('<') else 'path':8}  {r.label:8}  P(song) = {r.probability:.4f}")"""),
    ("md", """## Sung against spoken: the same voice over the same backing

Two excerpts share the backing and the speaker; in one the words are sung, in the other spoken.
The log-mel spectrogram with the predominant pitch on top shows the difference the vocal
features measure: singing holds notes (long, flat or vibrato contours), speech glides."""),
    ("code", """pair = [DATA / "song_allison-sung-over-armygeddon.ogg", DATA / "score_allison-speech-over-armygeddon.ogg"]
fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
for ax, f in zip(axes, pair):
    y, _ = audio.load(f)
    # Pad as the feature core does (centred frames): 384 samples before, 640 after.
    spec = Spectrum.from_padded(np.pad(y, (384, 640)), audio.ANALYSIS_SR)
    t = np.arange(spec.n_frames) / spec.frame_rate
    ax.pcolormesh(t, spec.logfreq_freqs, 20 * np.log10(spec.logfreq.T + 1e-6), cmap="magma", shading="auto")
    fr = scoresong.extract_features(f, frames=True).frames
    hz = 10 * 2 ** (fr["vocal.pitch_cents"] / 1200)
    voiced = fr["vocal.voiced"] > 0
    ax.plot(t[: hz.size], np.where(voiced, hz, np.nan)[: t.size], lw=1.5, color="cyan", label="predominant pitch (voiced)")
    ax.set(yscale="log", ylim=(60, 4000), ylabel="Hz", title=f.name)
    ax.legend(loc="upper right", fontsize=8)
axes[-1].set_xlabel("seconds")
fig.tight_layout()"""),
    ("md", """## The frame evidence behind the vocal statistics

Vibrato ratio (share of modulation energy at 4–8 Hz in the pitch contour), the fluctogram's
vibrato share (the same, measured in sub-bands, which survives a louder accompaniment), and
the length of continuous pitch contours."""),
    ("code", """keys = ["vocal.vibrato_ratio", "vocal.fluct_vibrato_share", "vocal.contour_run_s", "orchestral.harmonic_share"]
fig, axes = plt.subplots(len(keys), 1, figsize=(10, 7), sharex=True)
for f in files:
    fr = scoresong.extract_features(f, frames=True).frames
    t = np.arange(fr[keys[0]].size) / 62.5
    style = "-" if f.name.startswith("song") else ":"
    for ax, k in zip(axes, keys):
        ax.plot(t, fr[k], style, lw=1, label=f.name.split("_", 1)[1][:28])
for ax, k in zip(axes, keys):
    ax.set_ylabel(k.split(".")[1], fontsize=8)
axes[0].legend(fontsize=6, ncol=2, loc="upper right")
axes[-1].set_xlabel("seconds (solid: songs, dotted: score)")
fig.tight_layout()"""),
    ("md", """## The file vector the model reads

Each 5.12 s segment gets 80 statistics; the file vector is their mean and 90th percentile over
the non-silent segments (160 values). A few of them, per excerpt:"""),
    ("code", """show = ["vocal.vibrato_ratio_mean:mean", "vocal.fluct_vibrato_share_mean:mean", "vocal.contour_long_frac:mean",
        "vocal.glide_rate_mean:mean", "orchestral.harmonic_share_mean:mean"]
print(f"{'file':45}" + "".join(f"{s.split('.')[1][:22]:>24}" for s in show))
for f in files:
    d = scoresong.extract_features(f).as_dict()
    print(f"{f.name[:45]:45}" + "".join(f"{d[s]:24.3f}" for s in show))"""),
    ("md", """## Why was it called a song?

`scoresong.explain` swaps each statistic for the values of typical training clips and measures
how far the model's log-odds move: positive effects pushed towards *song*."""),
    ("code", """print(scoresong.explain(DATA / "song_allison-sung-over-chaos-god.ogg", top=6))
print()
print(scoresong.explain(DATA / "score_allison-speech-over-armygeddon.ogg", top=6))"""),
]

RETRAIN = [
    ("md", """# Retraining scoresong on your own corpus and reading the report

Point `SCORESONG_CORPUS` at your labelled library before starting Jupyter: a folder with one
sub-folder per label (`score/`, `song/`, and `no_music/` for a three-class model, grouped by
the next folder level, e.g. album) or a CSV manifest `path,label[,group][,weight]`. Without
it, this notebook builds a *tiny* two-class corpus from the seven score and song excerpts
bundled with the tests so that it runs anywhere (the test suite runs it that way);
the numbers on that corpus mean nothing, the workflow is the point."""),
    ("code", """import os
import shutil
import tempfile
from pathlib import Path

import scoresong

corpus = os.environ.get("SCORESONG_CORPUS")
work = Path(tempfile.mkdtemp(prefix="scoresong-nb-"))
if corpus is None:
    corpus = work / "corpus"
    for f in sorted((Path("..") / "tests" / "data").glob("*.ogg")):
        label = f.name.split("_")[0]                 # file names start with the label
        if label not in ("score", "song"):           # one no_music clip cannot train a class
            continue
        (corpus / label / f.stem).mkdir(parents=True)  # one group (album) per excerpt
        shutil.copy(f, corpus / label / f.stem / f.name)
c = scoresong.read_corpus(corpus)
print(f"{len(c)} items, layout {c.layout}, groups: {len({i.group for i in c})}, ignored labels: {c.ignored}")"""),
    ("md", """## Train with nested grouped cross-validation

Groups (albums, composers, source packages) never straddle a fold: the evaluation answers
"how well does it do on music from sources it has not seen". The feature cache is keyed by
file content, so the second run below extracts nothing."""),
    ("code", """tiny = os.environ.get("SCORESONG_CORPUS") is None
model, report = scoresong.train(
    corpus, out=work / "model" / "mine", cache_dir=work / "cache",
    candidates=("logreg",) if tiny else ("hgb", "logreg"),   # gradient boosting needs hundreds of clips
    log=lambda m: None)
cv = report["cv"]
print(f"balanced accuracy {cv['balanced_accuracy']:.3f}, F1 {cv['f1_song']:.3f}, ROC-AUC {cv['roc_auc']:.3f}")
print("features:", report["features"])"""),
    ("code", """_, again = scoresong.train(corpus, out=work / "model" / "mine", cache_dir=work / "cache",
                          candidates=("logreg",) if tiny else ("hgb", "logreg"), evaluate=False, log=lambda m: None)
print("second run:", again["features"])   # everything served from the cache"""),
    ("md", """## The report

Written beside the model: `mine.report.md` (tables), `.json` (everything), `.png` (calibration
curve, confusion matrix, accuracy per kind) and `.predictions.csv` (every out-of-fold
probability)."""),
    ("code", """from IPython.display import Image, Markdown, display

stem = work / "model" / "mine.report"
display(Image(filename=str(stem) + ".png"))
display(Markdown(Path(str(stem) + ".md").read_text()))"""),
    ("md", """## The operating threshold

The model says *song* when P(song) reaches its threshold (the training song prior). Trading
recall of songs for fewer false alarms is a matter of moving it:"""),
    ("code", """import csv

with open(str(stem) + ".predictions.csv") as fh:
    rows = list(csv.DictReader(fh))
for thr in (0.2, 0.35, 0.5, 0.65):
    songs = [r for r in rows if r["label"] == "song"]
    scores = [r for r in rows if r["label"] == "score"]
    rec = sum(float(r["p_song"]) >= thr for r in songs) / max(len(songs), 1)
    fa = sum(float(r["p_song"]) >= thr for r in scores) / max(len(scores), 1)
    print(f"threshold {thr:.2f}: songs found {rec:.0%}, scores called song {fa:.0%}")"""),
    ("md", """## Using the new model, and comparing it with the shipped one"""),
    ("code", """mine = scoresong.load_model(work / "model" / "mine.json")   # hash-checked, no code executed
f = next(Path(corpus).rglob("*.ogg")) if tiny else c.items[0].path
print(scoresong.predict(f, model=mine))
print(scoresong.explain(f, model=mine, top=4))
shipped = scoresong.evaluate(scoresong.load_model(), corpus, cache_dir=work / "cache", out=work / "shipped-eval")
print(f"shipped model on this corpus: balanced accuracy {shipped['cv']['balanced_accuracy']}")"""),
]


def build(cells, name: str, execute: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if execute:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for cells, name in ((EXPLORE, "01_explore_features.ipynb"), (RETRAIN, "02_retrain_on_your_corpus.ipynb")):
        print("wrote", build(cells, name))
