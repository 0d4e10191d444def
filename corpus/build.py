"""Build the scoresong training corpus from Debian packages, reproducibly.

    python -m corpus.build OUT_DIR [--jobs 2] [--triplets 1100] [--packages a,b,...]

Downloads each source with ``apt-get download`` (no installation, no maintainer scripts),
unpacks it with ``dpkg-deb -x`` (and zip ``.pk3`` archives inside), cuts score excerpts,
and constructs the song class: real speech sung on a melody in the key of a real backing
(see :mod:`corpus.singing`), mixed at -6..+6 dB vocal-to-accompaniment ratio, **paired**
with the same backing alone (score) and with speech over it (score_speech).

Every source package and every voice is assigned to one of five *cells*; constructed clips
only combine a voice and a backing of the same cell, and the manifest's ``group`` is the
cell, so grouped cross-validation never shares a package, a backing track or a voice across
folds.

Re-running reuses downloads, extractions and finished clips. Problems (a package that
fails to download, a file that fails to decode) are reported and skipped, and the summary
says so.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import glob as globmod
import hashlib
import json
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from scoresong import audio

from . import mixing, singing
from .sources import GENERATORS, SOURCES, kind_of

CLIP_S = 20.0
GEN_SR = 22050
N_CELLS = 5
FIELDS = ["path", "label", "kind", "source_package", "version", "author", "licence", "group",
          "start_s", "duration_s", "voice", "backing", "var_db", "detail", "generator", "density"]

#: Generators that turn a spoken voice pack into a lead vocal (a voice takes them in turn).
SPEECH_GENERATORS = ("speech2sing_v1", "speech2sing_v2", "speech2sing_v2", "rap")
PRODUCTIONS = ("plain", "double", "harmony")


def _sinsy_available(problems: list) -> bool:
    try:
        from . import sinsy_voice  # noqa: F401
        import pysinsy  # noqa: F401
    except ImportError as exc:
        problems.append(f"sinsy generator skipped: {exc} (pip install -e '.[corpus]')")
        return False
    return True


def _sinsy_version() -> str:
    """pysinsy's version (with music21's, whose corpus gives the melodies)."""
    from importlib.metadata import version

    return f"{version('pysinsy')} (music21 {version('music21')})"


def _sinsy_licence() -> str:
    from . import sinsy_voice

    return (f"{sinsy_voice.SINSY_LICENCE}; melodies: "
            + " / ".join(sinsy_voice.MELODY_LICENCE.values()))


def _sinsy_variants() -> list[str]:
    from . import sinsy_voice

    return list(sinsy_voice.voice_variants())


def _sinsy_range(variant: str) -> tuple[float, float]:
    """MIDI range for the melody centre of a Sinsy voice variant."""
    from . import sinsy_voice

    c = float(sinsy_voice.voice_centre(variant))
    return c - 2.0, c + 2.0


#: Backing tracks with drums / full band, preferred under rap and for dense mixes.
DENSE_PACKAGES = {"warzone2100-music", "fretsonfire-songs-muldjord"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- fetching
def fetch(pkg: str, out: Path, problems: list) -> tuple[Path, str] | None:
    """Download and unpack ``pkg`` under ``out``; returns (root, version) or None on failure."""
    debs = out / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        log(f"  downloading {pkg} ...")
        r = subprocess.run(["apt-get", "download", pkg], cwd=debs, capture_output=True, text=True)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
        if r.returncode != 0 or not found:
            problems.append(f"package {pkg}: download failed: {(r.stderr or r.stdout).strip()[:300]}")
            return None
    deb = found[-1]
    try:
        version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        root = out / "pkgs" / pkg
        marker = root / ".extracted"
        if not marker.exists() or marker.read_text() != version:
            root.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, capture_output=True)
            marker.write_text(version)
    except subprocess.CalledProcessError as exc:
        problems.append(f"package {pkg}: unpacking failed: {exc.stderr}")
        return None
    return root, version


def source_files(src: dict, root: Path, out: Path, problems: list) -> list[str]:
    """Paths (relative to ``out``) of the audio files a source names."""
    base = root
    if "archive" in src:
        arc = root / src["archive"]
        base = root / "_archive" / Path(src["archive"]).name
        # One marker per set of globs: two sources of one archive (effects and ambience)
        # each extract their own members.
        tag = hashlib.sha1("\n".join(_globs(src)).encode()).hexdigest()[:12]
        marker = base / f".extracted-{tag}"
        if not marker.exists():
            try:
                with zipfile.ZipFile(arc) as z:
                    members = [m for m in z.namelist()
                               if any(fnmatch.fnmatch(m, g) for g in _globs(src))]
                    z.extractall(base, members)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("ok")
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append(f"{src['package']}: archive {src['archive']} unreadable: {exc}")
                return []
    paths = set()
    for g in _globs(src):
        paths.update(globmod.glob(str(base / g), recursive=True))
    if src.get("exclude"):
        paths = {p for p in paths if not re.search(src["exclude"], p)}
    return sorted(str(Path(p).relative_to(out)) for p in paths)


def _globs(src: dict) -> list[str]:
    g = src["glob"]
    return g if isinstance(g, list) else [g]


def _author(src: dict, path: str) -> str:
    a = src["author"]
    return a(path) if callable(a) else a


# ----------------------------------------------------------------------------- planning
def excerpt_starts(dur: float, *, dense: bool) -> list[float]:
    """Evenly spaced 20-s excerpt starts; long loops give at most 15 (20 for rock/stems)."""
    if dur < CLIP_S:
        return [0.0]
    n = int(dur // 12) if dense else int(dur // 25)
    n = max(1, min(n, 20 if dense else 15))
    span = dur - CLIP_S
    return [round((i + 0.5) * span / n, 2) for i in range(n)]


def assign_cells(weights: dict[str, float]) -> dict[str, int]:
    """Greedy balanced assignment of keys to cells by weight (deterministic)."""
    load = [0.0] * N_CELLS
    out = {}
    for k, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0])):
        c = int(np.argmin(load))
        out[k] = c
        load[c] += w
    return out


def row(**kw) -> dict:
    r = {f: "" for f in FIELDS}
    r.update({k: v for k, v in kw.items() if k in r})
    return r


def clip_row(path: str, cell: int, backing: str, bm: dict, v_meta: dict | None, kind: str, label: str,
             var=None, detail: str = "", voice_name: str = "", generator: str = "") -> dict:
    """Manifest row of a constructed clip over ``backing`` (its inventory entry ``bm``).

    A clip with a voice part (``v_meta``: package, version, licence, author of the voice or
    synthesiser) names both parts, ``voice + backing``.
    """
    def both(key, sep):
        return bm[key] if v_meta is None else f"{v_meta[key]}{sep}{bm[key]}"

    return row(path=path, label=label, kind=kind, source_package=both("package", "+"),
               version=both("version", "+"), author=both("author", " / "), licence=both("licence", " + "),
               group=f"cell{cell}", start_s=0.0, duration_s=CLIP_S, voice=voice_name, backing=backing,
               var_db="" if var is None else round(var, 2), detail=detail, generator=generator)


# ----------------------------------------------------------------------------- generation
@lru_cache(maxsize=64)
def _load_gen(path: str, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    y, _ = audio.load(path, sr=GEN_SR, offset=offset, duration=duration, min_duration=0.0,
                      check_silence=False)
    return y


@lru_cache(maxsize=400)
def _trimmed(path: str) -> np.ndarray | None:
    """A voice phrase, trimmed and peak-normalised to 0.5; None if unusable."""
    import librosa

    try:
        y = _load_gen(path)
    except audio.AudioError:
        return None
    if y.size < 0.3 * GEN_SR or np.max(np.abs(y)) < 1e-3:
        return None
    y, _ = librosa.effects.trim(y, top_db=35)
    if y.size < 0.3 * GEN_SR:
        return None
    return (y / (np.max(np.abs(y)) + 1e-9) * 0.5).astype(np.float32)


@lru_cache(maxsize=160)  # a phrase's WORLD analysis is ~5 MB; batches use <= 80 phrases
def _phrase(path: str) -> tuple[np.ndarray, singing.World] | None:
    """A voice phrase (trimmed) and its WORLD analysis; None if unusable."""
    y = _trimmed(path)
    if y is None:
        return None
    return y, singing.analyse(y, GEN_SR)


def _key_tempo(y: np.ndarray) -> tuple[int, str, float, np.ndarray]:
    """Key, tempo (folded into 70-160 bpm) and beat times (s) of a backing: one beat tracking."""
    import librosa

    chroma = librosa.feature.chroma_stft(y=y, sr=GEN_SR)
    tonic, mode = singing.estimate_key(chroma.mean(axis=1))
    bpm, beats = librosa.beat.beat_track(y=y, sr=GEN_SR, units="time")
    tempo = float(np.atleast_1d(bpm)[0]) or 100.0
    while tempo > 160:
        tempo /= 2
    while tempo < 70:
        tempo *= 2
    return tonic, mode, tempo, np.asarray(beats, dtype=float)


def vocal_band_density(y: np.ndarray, sr: int = GEN_SR) -> float:
    """How full the 200-4000 Hz band is: the share of its time-frequency cells within 30 dB
    of the excerpt's loudest (99th percentile) cell. Sparse ambient ~0.1-0.3, a full band
    with drums and distorted guitars ~0.6-0.9."""
    n_fft, hop = 1024, 512
    if y.size < n_fft:
        return 0.0
    frames = np.lib.stride_tricks.sliding_window_view(y, n_fft)[::hop] * np.hanning(n_fft)
    mag = np.abs(np.fft.rfft(frames, axis=1))
    f = np.fft.rfftfreq(n_fft, 1 / sr)
    band = 20 * np.log10(mag[:, (f >= 200) & (f <= 4000)] + 1e-9)
    return round(float(np.mean(band > np.percentile(band, 99) - 30)), 3)


def _offset_levels(rows: list[dict], offset: float) -> None:
    """Move every row's vocal-to-accompaniment level (``var_db``) by ``offset`` dB, in
    place; rows without a voice over a backing (backing alone, a cappella) keep ``""``."""
    if offset:
        for r in rows:
            if r["var_db"] != "":
                r["var_db"] = round(float(r["var_db"]) + offset, 2)


def _mix_plan(stereo: bool, offset: float) -> dict:
    """How a triplet is mixed: in stereo or not, and its voices' level offset (dB; only a
    stereo triplet's voices move)."""
    return {"stereo": bool(stereo), "offset": float(offset) if stereo else 0.0}


def _mixed_as(stamp: Path, backing_clip: Path) -> dict:
    """How an existing triplet was mixed: its stamp (``gen/.mix/STEM.json``, written with its
    clips), or for a corpus built before stamps, its backing-alone clip's channels and no
    offset (the only level any earlier build used)."""
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return _mix_plan(_channels(backing_clip) == 2, 0.0)


def _channels(path) -> int:
    """A file's channel count (0 when it cannot be read)."""
    try:
        return int(sf.info(str(path)).channels)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return 0


def _load_stereo(path: str, offset: float, n: int) -> np.ndarray | None:
    """A stereo backing's excerpt as ``(2, n)`` at :data:`GEN_SR` (the same span as
    :func:`_load_gen` reads, both channels resampled with the same soxr quality), or None
    for a file that is not two-channel or cannot be read that way."""
    import soxr

    try:
        with sf.SoundFile(path) as f:
            if f.channels != 2:
                return None
            src_sr = int(f.samplerate)
            f.seek(int(round(offset * src_sr)))
            x = f.read(int(round(CLIP_S * src_sr)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return None
    if src_sr != GEN_SR:
        x = soxr.resample(x, src_sr, GEN_SR, quality="MQ")
    x = np.ascontiguousarray(x.T, dtype=np.float32)
    return np.pad(x, ((0, 0), (0, max(0, n - x.shape[1]))))[:, :n]


def _write(out: Path, rel: str, y: np.ndarray) -> None:
    """Write a clip as 16-bit FLAC: ``(n,)`` mono or ``(2, n)`` stereo."""
    p = out / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp.flac")
    y = np.clip(y, -1, 1)
    sf.write(tmp, y.T if y.ndim == 2 else y, GEN_SR, subtype="PCM_16", format="FLAC")
    tmp.replace(p)


def _sung_line(phrases: list[str], rng, notes, eighth, target_s, real_sung: bool,
               generator: str = "speech2sing_v1", formant: float = 1.0):
    pieces = []
    total = 0.0
    centre = np.median(notes)
    for p in phrases:
        ph = _phrase(p)
        if ph is None:
            continue
        _, w = ph
        if real_sung:
            v = w.f0[w.f0 > 0]
            if v.size == 0:
                continue
            m = 69 + 12 * np.log2(np.median(v) / 440)
            tgt = notes[np.argmin(np.abs(notes - (centre + rng.uniform(-3, 3))))]
            sw = singing.shift(w, tgt - m)
        elif generator == "speech2sing_v2":
            sw = singing.sing_v2(w, notes, eighth, rng, formant=formant)
        else:
            sw = singing.sing(w, notes, eighth, rng)
        if sw.n < 20:
            continue
        y = singing.synthesize(sw)
        pieces.append(y)
        total += y.size / GEN_SR + 2 * eighth
        if total > target_s:
            break
    return singing.line(pieces, GEN_SR, target_s, rng, gap=(eighth, 3 * eighth))


def _spoken_line(phrases: list[str], rng, target_s, vocode: bool, gap=(0.15, 0.7)):
    """Phrases of one voice chained with pauses drawn from ``gap`` (s); with ``vocode`` each
    phrase is resynthesised by WORLD (only then is it analysed)."""
    pieces = []
    total = 0.0
    for p in phrases:
        ph = _phrase(p) if vocode else _trimmed(p)
        if ph is None:
            continue
        y = singing.synthesize(ph[1]) if vocode else ph
        pieces.append(y)
        total += y.size / GEN_SR + 0.4
        if total > target_s:
            break
    return singing.line(pieces, GEN_SR, target_s, rng, gap=gap)


def _vocalise(phrases: list[str], rng, notes, eighth, target_s):
    """Wordless singing: one vowel (a held spectral envelope) sung legato on a melody."""
    for p in phrases:
        ph = _phrase(p)
        if ph is None:
            continue
        _, w = ph
        syl = singing.syllables(w)
        if not syl:
            continue
        a, b = max(syl, key=lambda s: s[1] - s[0])
        mid = (a + b) // 2
        tune = singing.melody(int(target_s / (3 * eighth)) + 2, notes, rng)
        f0s, n_total = [], 0
        prev = None
        for m in tune:
            n = int(rng.choice([2, 3, 4, 6]) * eighth / singing.FRAME_S)
            f0s.append(singing.note_contour(n, m, prev, rng))
            prev = m
            n_total += n
        f0 = np.concatenate(f0s)
        sp = np.repeat(w.sp[mid:mid + 1], n_total, axis=0)
        ap = np.repeat(w.ap[mid:mid + 1], n_total, axis=0)
        env = np.clip(np.minimum(np.arange(n_total), n_total - np.arange(n_total)) / 40, 0, 1)
        sp = sp * (env[:, None] ** 2 + 1e-8)
        y = singing.synthesize(singing.World(f0, sp, ap, GEN_SR))
        return singing.line([y], GEN_SR, target_s, rng, gap=(0.2, 0.4))
    return None


def make_clips(specs: list[dict], out_dir: str) -> list[dict]:
    """Generate the clips of ``specs`` (all for one voice, to reuse its analyses)."""
    out = Path(out_dir)
    rows: list[dict] = []
    for s in specs:
        s = dict(s, rows=[dict(r) for r in s["rows"]])  # levels move below: never the caller's
        rng = np.random.default_rng(s["seed"])
        try:
            backing = _load_gen(str(out / s["backing"]), s["start_s"], CLIP_S)
        except audio.AudioError as exc:
            rows.append({"problem": f"backing {s['backing']}: {exc.reason}"})
            continue
        n_clip = int(CLIP_S * GEN_SR)
        backing = np.pad(backing, (0, max(0, n_clip - backing.size)))[:n_clip]
        density = vocal_band_density(backing)
        for r in s["rows"]:
            r["density"] = "" if r["kind"] == "song_acappella" else density
        stereo = bool(s.get("stereo")) and _channels(out / s["backing"]) == 2
        mixed = _mix_plan(stereo, s.get("stereo_var_offset", 0.0))
        _offset_levels(s["rows"], mixed["offset"])  # 0 (no change) unless stereo
        stamp = out / "gen" / ".mix" / (Path(s["rows"][0]["path"]).stem + ".json")
        alone = next((r for r in s["rows"] if r["kind"] == "score"), s["rows"][0])
        if all((out / r["path"]).exists() for r in s["rows"]) and _mixed_as(stamp, out / alone["path"]) == mixed:
            rows.extend(s["rows"])
            continue
        if mixing.rms(backing) < 10 ** (-50 / 20):
            # A silent stretch of a track (colobot's music010/011 have some): a mix scaled to
            # it would be silent too. Report and skip the whole triplet.
            rows.append({"problem": f"backing {s['backing']}@{s['start_s']}: silent (< -50 dBFS), "
                                    f"triplet {Path(s['rows'][0]['path']).stem} skipped"})
            continue
        # Mixes over a stereo backing stay stereo with the voice in the centre, as records
        # and film mixes place a lead vocal or dialogue; analysis (key, tempo, density)
        # and mixing levels use the mono downmix, so the mixes' downmix is the mono mix.
        bst = _load_stereo(str(out / s["backing"]), s["start_s"], n_clip) if stereo else None
        mix_bed = backing if bst is None else bst
        tonic, mode, tempo, beats = _key_tempo(backing)
        eighth = 30.0 / tempo
        target = float(rng.uniform(15.0, 19.5))
        written = []
        for r in s["rows"]:
            kind, detail = r["kind"], r["detail"]
            if kind == "score":
                y = mix_bed
            elif kind in ("song_constructed", "song_acappella") or detail == "vocalise":
                gen = s.get("generator", "speech2sing_v1")
                if "centre" not in s:
                    if gen == "sinsy":
                        s["centre"] = float(rng.uniform(*s["sinsy_range"]))
                    else:
                        ph = [p for p in (_phrase(x) for x in s["phrases_sing"][:8]) if p is not None]
                        med = singing.median_f0([p[1] for p in ph])
                        lift = 0 if s["real_sung"] or gen == "rap" else rng.uniform(3, 9)
                        c = 69 + 12 * np.log2(med / 440) + lift
                        s["centre"] = float(np.clip(c, 45, 76))
                notes = singing.scale_notes(tonic, mode, s["centre"] - 6, s["centre"] + 6)
                if detail == "vocalise":
                    res = _vocalise(s["phrases_sing"], rng, notes, eighth, target)
                    if res is None:
                        rows.append({"problem": f"{r['path']}: no vowel found for a vocalise"})
                        continue
                    v, act = res
                    v = mixing.vocal_chain(v, GEN_SR, rng, style="sung")
                    y = mixing.mix(mix_bed, v, act, float(r["var_db"]))
                else:
                    if "sung" not in s:
                        v, act = _lead_vocal(s, gen, rng, beats, notes, eighth, target)
                        s["sung"] = (v, act)
                    v, act = s["sung"]
                    if not act.any():
                        rows.append({"problem": f"{r['path']}: no usable sung phrase from {r['voice']}"})
                        continue
                    if kind == "song_acappella":
                        y = np.pad(v, (0, max(0, n_clip - v.size)))[:n_clip]
                        y = y / (np.max(np.abs(y)) + 1e-9) * 0.7
                    else:
                        y = mixing.mix(mix_bed, v, act, float(r["var_db"]))
            elif kind == "score_speech":
                v, act = _spoken_line(s["phrases_speak"], rng, target, vocode=s["vocode_speech"])
                if not act.any():
                    rows.append({"problem": f"{r['path']}: no usable spoken phrase from {r['voice']}"})
                    continue
                v = mixing.vocal_chain(v, GEN_SR, rng, style="speech")
                y = mixing.mix(mix_bed, v, act, float(r["var_db"]))
            elif kind == "score_choir" and detail.startswith("choir_pad"):
                sample = _load_gen(str(out / s["choir_sample"]))
                base = 60.0  # ambi_choir is pitched around C4
                scale = singing.scale_notes(tonic, mode, 48, 72)
                chords = []
                for _ in range(int(rng.integers(3, 6))):
                    root = rng.choice(scale[:8])
                    chords.append([root, root + (3 if mode == "minor" else 4), root + 7, root + 12])
                pad = mixing.choir_pad(sample, GEN_SR, chords, base, CLIP_S, rng)
                act = np.ones(pad.size, bool)
                y = mixing.mix(mix_bed, pad, act, float(r["var_db"]))
            else:
                continue
            _write(out, r["path"], y)
            written.append(r)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps(mixed))
        rows.extend(written)
    return rows


def _lead_vocal(s: dict, gen: str, rng, beats, notes, eighth, target):
    """The produced lead vocal line of a song spec, by its generator."""
    if gen == "rap":
        ph = [p for p in (_phrase(x) for x in s["phrases_sing"]) if p is not None]
        v, act = singing.rap_line(ph, GEN_SR, beats, target, rng)
    elif gen == "sinsy":
        from . import sinsy_voice

        v, act, info = sinsy_voice.sung_line(notes, eighth, target, rng, sr=GEN_SR, voice=s["sinsy_voice"])
        s["sinsy_info"] = info
    else:
        v, act = _sung_line(s["phrases_sing"], rng, notes, eighth, target, s["real_sung"],
                            generator=gen, formant=s.get("formant", 1.0))
    if not act.any():
        return v, act
    if gen == "speech2sing_v1":
        # v1 keeps its original production, so its figures stay comparable with the old card.
        return mixing.vocal_chain(v, GEN_SR, rng, style="sung"), act
    prod = s.get("production", "plain")
    if prod in ("double", "harmony"):
        v, act = mixing.double_and_harmonise(v, act, GEN_SR, rng, mode=prod,
                                             harmony=int(rng.choice([3, 4, -5, 7])))
    if rng.random() < 0.75:
        v = mixing.pop_vocal_chain(v, GEN_SR, rng, eighth_s=eighth)
    else:
        v = mixing.vocal_chain(v, GEN_SR, rng, style="sung")
    return v, act


def _stereo_draw(seed: int, i: int, share: float) -> bool:
    """Whether triplet ``i`` (its song, its backing alone and its speech partner alike, so
    that the format says nothing about the label) is mixed in stereo: a draw of its own
    generator, so the share changes no other draw of the build (the same voices, backings,
    levels and seeds at every share). A draw in [0, 1) makes share 0 never and 1 always."""
    return bool(np.random.default_rng([seed, i, 6]).random() < share)


# ----------------------------------------------------------------------------- main
def build(out: Path, *, jobs: int = 2, triplets: int = 1100, sinsy: int = 0,
          packages: set[str] | None = None, seed: int = 0, stereo_mixes: float = 0.0,
          stereo_var_offset: float = 0.0) -> dict:
    t0 = time.time()
    stereo_mixes = float(stereo_mixes)   # True / False from older callers: every / no triplet
    if not 0.0 <= stereo_mixes <= 1.0:
        raise ValueError(f"stereo_mixes is the share of triplets mixed in stereo, got {stereo_mixes}")
    stereo_var_offset = float(stereo_var_offset)
    if not np.isfinite(stereo_var_offset) or (stereo_var_offset and not stereo_mixes):
        raise ValueError(f"stereo_var_offset moves the voices of stereo triplets (finite dB, with "
                         f"stereo_mixes > 0), got {stereo_var_offset} with stereo_mixes {stereo_mixes}")
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    srcs = [s for s in SOURCES if packages is None or s["package"] in packages]
    fetched: dict[str, tuple[Path, str]] = {}
    log(f"[1/4] fetching {len({s['package'] for s in srcs})} packages")
    for pkg in sorted({s["package"] for s in srcs}):
        r = fetch(pkg, out, problems)
        if r:
            fetched[pkg] = r
            log(f"  {pkg} {r[1]}")
    log("[2/4] inventory")
    inv: dict[str, dict] = {}       # relpath -> info
    by_role: dict[str, list] = defaultdict(list)
    for src in srcs:
        if src["package"] not in fetched:
            continue
        root, version = fetched[src["package"]]
        files = source_files(src, root, out, problems)
        if not files:
            problems.append(f"{src['package']} ({src['role']}): no files matched {src['glob']}")
        for rel in files:
            try:
                i = audio.info(out / rel)
            except audio.AudioError as exc:
                problems.append(f"{rel}: {exc.reason}")
                continue
            if i.frames <= 0:
                problems.append(f"{rel}: no samples")
                continue
            if src["role"] == "score" and i.duration < src.get("min_duration", 0):
                continue  # stingers
            meta = dict(package=src["package"], version=version, licence=src["licence"],
                        author=_author(src, rel), duration=i.duration, role=src["role"])
            if "voice" in src:
                meta["voice"] = src["voice"](rel)
            inv[rel] = meta
            by_role[src["role"]].append(rel)

    # Cells: packages of backing material, and voices, balanced by duration.
    pkg_w = Counter()
    for rel in by_role["score"] + by_role["stems"]:
        pkg_w[inv[rel]["package"]] += inv[rel]["duration"]
    pkg_cell = assign_cells(dict(pkg_w))
    voices: dict[str, list[str]] = defaultdict(list)
    for rel in by_role["voice"] + by_role["singer"]:
        voices[inv[rel]["voice"]].append(rel)
    voice_dur = {v: sum(inv[r]["duration"] for r in rs) for v, rs in voices.items()}
    voices = {v: rs for v, rs in voices.items() if voice_dur[v] >= 8.0}
    # Voices go round-robin in order of duration, so every cell gets a similar number of
    # voices (balancing by duration would give the two longest voices a cell each, alone).
    by_dur = sorted(voices, key=lambda v: (-voice_dur[v], v))
    voice_cell = {v: i % N_CELLS for i, v in enumerate(by_dur)}
    if packages is not None and len(set(pkg_cell.values())) < N_CELLS:
        # Tiny builds: put every voice with the backing packages that exist.
        cells = sorted(set(pkg_cell.values())) or [0]
        voice_cell = {v: cells[i % len(cells)] for i, v in enumerate(sorted(voices))}

    rows: list[dict] = []
    log("[3/4] excerpts of score tracks and stems")
    for rel in by_role["score"]:
        m = inv[rel]
        kind = kind_of(m["package"], rel)
        for st in excerpt_starts(m["duration"], dense=kind != "score"):
            rows.append(row(path=rel, label="score", kind=kind, source_package=m["package"],
                            version=m["version"], author=m["author"], licence=m["licence"],
                            group=f"cell{pkg_cell[m['package']]}", start_s=st,
                            duration_s=min(CLIP_S, round(m["duration"], 2)), backing=rel))
    for rel in by_role["narration"]:
        m = inv[rel]
        cell = pkg_cell.get(m["package"], 0)
        starts = np.arange(0, max(m["duration"] - CLIP_S, 0) + 1e-6, 10.0)
        for st in starts:
            rows.append(row(path=rel, label="score", kind="score_speech", source_package=m["package"],
                            version=m["version"], author=m["author"], licence=m["licence"],
                            group=f"cell{cell}", start_s=round(float(st), 2),
                            duration_s=min(CLIP_S, round(m["duration"], 2)), detail="narration"))
    stem_tracks = []
    for rel in by_role["stems"]:
        m = inv[rel]
        song = out / rel
        guitar = song.with_name("guitar.ogg")
        variants = {"backing": rel}
        if guitar.exists():
            variants["guitar"] = str(guitar.relative_to(out))
            for db in (6, 12):
                gen = f"gen/stems/{song.parent.name}_guitar+{db}dB.flac"
                if not (out / gen).exists():
                    b = _load_gen(str(song))
                    g = _load_gen(str(guitar))
                    n = min(b.size, g.size)
                    y = b[:n] + g[:n] * 10 ** (db / 20)
                    _write(out, gen, y / max(1.0, float(np.max(np.abs(y))) / 0.98))
                variants[f"guitar+{db}dB"] = gen
        for name, path in variants.items():
            dur = sf.info(str(out / path)).duration
            for st in excerpt_starts(dur, dense=True):
                rows.append(row(path=path, label="score", kind="score_rock", source_package=m["package"],
                                version=m["version"], author=m["author"], licence=m["licence"],
                                group=f"cell{pkg_cell[m['package']]}", start_s=st,
                                duration_s=CLIP_S, backing=rel, detail=f"stem:{name}"))
        stem_tracks.append(rel)

    # Constructed clips.
    log(f"[4/4] constructing {triplets} paired song / score / score_speech clips")
    rng = np.random.default_rng(seed)
    backings_by_cell: dict[int, list[str]] = defaultdict(list)
    for rel in by_role["score"] + stem_tracks:
        backings_by_cell[pkg_cell[inv[rel]["package"]]].append(rel)
    dense_by_cell: dict[int, list[str]] = defaultdict(list)
    for rel in by_role["score"] + stem_tracks:
        m = inv[rel]
        if m["package"] in DENSE_PACKAGES or kind_of(m["package"], rel) == "score_rock":
            dense_by_cell[pkg_cell[m["package"]]].append(rel)
    voices_by_cell: dict[int, list[str]] = defaultdict(list)
    for v in sorted(voices):
        # The real singer is the scarcest and most valuable voice: it takes three turns.
        voices_by_cell[voice_cell[v]].extend([v] * (3 if v == "hedgewars:Singer" else 1))
    choir = by_role["choir_sample"][0] if by_role["choir_sample"] else None
    specs_by_voice: dict[str, list] = defaultdict(list)
    cells = [c for c in range(N_CELLS) if backings_by_cell[c] and voices_by_cell[c]]
    if triplets and not cells:
        problems.append("no cell has both a backing and a voice: no constructed clips")
    counter = Counter()
    arng = np.random.default_rng(seed + 104729)   # extra a cappella turns of the real singer
    for i in range(triplets if cells else 0):
        c = cells[i % len(cells)]
        vs = voices_by_cell[c]
        voice = vs[counter[c] % len(vs)]
        real_sung = voice == "hedgewars:Singer"
        # Each voice goes through the generators in turn, round after round.
        gen = "singer" if real_sung else SPEECH_GENERATORS[(counter[c] // len(vs)) % len(SPEECH_GENERATORS)]
        counter[c] += 1
        pool = backings_by_cell[c]
        if dense_by_cell[c] and (gen == "rap" or rng.random() < 0.3):
            pool = dense_by_cell[c]
        bk = pool[int(rng.integers(len(pool)))]
        bm = inv[bk]
        st = round(float(rng.uniform(0, max(bm["duration"] - CLIP_S, 0))), 2)
        phrases = list(voices[voice])
        rng.shuffle(phrases)
        if real_sung:
            others = [v for v in vs if v != voice] or [v for v in voices if v != voice]
            partner = others[int(rng.integers(len(others)))] if others else voice
            speak = list(voices[partner])
            rng.shuffle(speak)
        else:
            partner = voice
            half = max(1, len(phrases) // 2)
            speak = phrases[half:] or phrases
            phrases = phrases[:half]
        vm = inv[voices[voice][0]]
        pm = inv[voices[partner][0]]

        def mk(kind, sub, label, v_meta, *args, **kw):
            return clip_row(f"gen/{sub}/{i:05d}.flac", c, bk, bm, v_meta, kind, label, *args, **kw)

        var_song = rng.uniform(0, 6) if gen == "rap" else rng.uniform(-6, 6)
        spec_rows = [
            mk("song_constructed", "song", "song", vm, var_song, GENERATORS[gen], voice, gen),
            mk("score", "backing", "score", None, detail=f"paired_backing:{bk}@{st}"),
            mk("score_speech", "speech", "score", pm, rng.uniform(-6, 6), "dialogue", partner),
        ]
        # Every fifth round over the cells the sung line is also written alone (all cells get
        # some). Not for rap: without its beat, rhythmic speech alone is just speech.
        # The round rule aliases with the voice rotation where a cell has 10 voice turns
        # (cell1: its 8 voices + the Singer's two extra turns), so the real singer would get
        # no a cappella clip: a third of its songs also get one, from a separate stream.
        if ((i // len(cells)) % 5 == 0 and gen != "rap") or (real_sung and arng.random() < 0.3):
            spec_rows.append(mk("song_acappella", "acappella", "song", vm, None, GENERATORS[gen], voice, gen))
        if (i // len(cells)) % 4 == 1:
            spec_rows.append(mk("score_choir", "vocalise", "score", vm, rng.uniform(-6, 3), "vocalise", voice))
        if choir and (i // len(cells)) % 7 == 3:
            cm = inv[choir]
            r = mk("score_choir", "choirpad", "score", cm, rng.uniform(-6, 3), "choir_pad")
            spec_rows.append(r)
        spec = dict(seed=seed * 100003 + i, backing=bk, start_s=st, rows=spec_rows,
                    phrases_sing=[str(out / x) for x in phrases[:40]],
                    phrases_speak=[str(out / x) for x in speak[:40]], real_sung=real_sung,
                    vocode_speech=bool(rng.random() < 0.7) and gen != "rap", choir_sample=choir,
                    generator=gen, production=str(rng.choice(PRODUCTIONS, p=[.5, .3, .2])),
                    formant=float(rng.uniform(0.88, 1.14)) if gen == "speech2sing_v2" and rng.random() < 0.6 else 1.0,
                    stereo=_stereo_draw(seed, i, stereo_mixes), stereo_var_offset=stereo_var_offset)
        specs_by_voice[voice].append(spec)

    # Songs of the statistical singing synthesiser: its voice variants take turns over the
    # cells (one singer model, so the variants are not independent voices: the
    # leave-one-generator-out table is the honest figure for it). Each is paired with the
    # backing alone and a speaker of the cell talking over it, like the triplets above.
    sinsy_ok = _sinsy_available(problems) if sinsy else False
    variants = _sinsy_variants() if sinsy_ok else []
    srng = np.random.default_rng(seed + 7919)
    sm = (dict(package="pysinsy", version=_sinsy_version(), licence=_sinsy_licence(),
               author="Sinsy / Nagoya Institute of Technology (HTS voice), music21 corpus melodies")
          if sinsy_ok else None)
    for j in range(sinsy if sinsy_ok and cells else 0):
        i = triplets + j
        c = cells[j % len(cells)]
        variant = variants[j % len(variants)]
        pool = backings_by_cell[c]
        if dense_by_cell[c] and srng.random() < 0.3:
            pool = dense_by_cell[c]
        bk = pool[int(srng.integers(len(pool)))]
        bm = inv[bk]
        st = round(float(srng.uniform(0, max(bm["duration"] - CLIP_S, 0))), 2)
        vs = sorted(set(voices_by_cell[c]) - {"hedgewars:Singer"}) or sorted(voices)
        partner = vs[int(srng.integers(len(vs)))]
        speak = list(voices[partner])
        srng.shuffle(speak)
        pm = inv[voices[partner][0]]
        name = f"sinsy:{variant}"

        def mk2(kind, sub, label, v_meta, *args, **kw):
            # Own file names: the triplets' numbering may change with --triplets.
            return clip_row(f"gen/{sub}/sinsy{j:05d}.flac", c, bk, bm, v_meta, kind, label, *args, **kw)

        spec_rows = [
            mk2("song_constructed", "song", "song", sm, srng.uniform(-6, 6), GENERATORS["sinsy"], name, "sinsy"),
            mk2("score", "backing", "score", None, detail=f"paired_backing:{bk}@{st}"),
            mk2("score_speech", "speech", "score", pm, srng.uniform(-6, 6), "dialogue", partner),
        ]
        if (j // len(cells)) % 5 == 0:
            spec_rows.append(mk2("song_acappella", "acappella", "song", sm, None, GENERATORS["sinsy"], name, "sinsy"))
        lo, hi = _sinsy_range(variant)
        spec = dict(seed=seed * 100003 + i, backing=bk, start_s=st, rows=spec_rows, phrases_sing=[],
                    phrases_speak=[str(out / x) for x in speak[:40]], real_sung=False,
                    vocode_speech=bool(srng.random() < 0.7), choir_sample=choir, generator="sinsy",
                    sinsy_voice=variant, sinsy_range=(lo, hi),
                    production=str(srng.choice(PRODUCTIONS, p=[.5, .3, .2])),
                    stereo=_stereo_draw(seed, i, stereo_mixes), stereo_var_offset=stereo_var_offset)
        specs_by_voice[name].append(spec)

    from joblib import Parallel, delayed
    from tqdm import tqdm

    # Workers must find make_clips by its module name, also when run as ``python -m``.
    from corpus.build import make_clips as _make_clips
    from corpus.numba_cache import warm_librosa_cache

    if specs_by_voice:
        warm_librosa_cache(log=log)   # workers must not race to compile librosa (numba#10128)

    batches = []
    for specs in specs_by_voice.values():
        for k in range(0, len(specs), 10):
            batches.append(specs[k:k + 10])
    gen_rows: list[dict] = []
    with tqdm(total=sum(len(b) for b in batches), desc="constructing", unit="triplet",
              file=sys.stderr, disable=None) as bar:
        for res, b in zip(Parallel(n_jobs=jobs, return_as="generator")(
                delayed(_make_clips)(b, str(out)) for b in batches), batches):
            gen_rows.extend(res)
            bar.update(len(b))
    for r in gen_rows:
        if "problem" in r:
            problems.append(r["problem"])
        else:
            rows.append(r)

    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    summary = summarise(rows, problems, time.time() - t0, pkg_cell, voice_cell, fetched)
    summary["stereo_mixes"] = stereo_mixes
    summary["stereo_var_offset"] = stereo_var_offset
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "problems.txt").write_text("\n".join(problems) + ("\n" if problems else ""))
    log(json.dumps({k: summary[k] for k in ("clips", "minutes", "by_label", "by_kind", "n_voices",
                                            "n_authors", "seconds")}, indent=1))
    if problems:
        log(f"WARNING: {len(problems)} problem(s); the corpus lacks what they name "
            f"(see {out / 'problems.txt'}):")
        for p in problems[:20]:
            log(f"  - {p}")
    return summary


def summarise(rows, problems, seconds, pkg_cell, voice_cell, fetched) -> dict:
    by_kind = Counter(r["kind"] for r in rows)
    by_label = Counter(r["label"] for r in rows)
    minutes = defaultdict(float)
    for r in rows:
        minutes[r["kind"]] += float(r["duration_s"]) / 60
    by_src = Counter((r["source_package"].split("+")[-1], r["kind"]) for r in rows)
    return {
        "clips": len(rows),
        "minutes": {k: round(v, 1) for k, v in minutes.items()},
        "by_label": dict(by_label),
        "by_kind": dict(by_kind),
        "by_backing_package_and_kind": {f"{a}|{b}": n for (a, b), n in sorted(by_src.items())},
        "n_voices": len({r["voice"] for r in rows if r["voice"]}),
        "voices": sorted({r["voice"] for r in rows if r["voice"]}),
        "n_authors": len({r["author"] for r in rows if r["label"] == "score" and "/" not in r["author"]}),
        "package_cells": pkg_cell,
        "voice_cells": voice_cell,
        "packages": {k: v[1] for k, v in fetched.items()},
        "licences": sorted({r["licence"] for r in rows}),
        "problems": problems,
        "seconds": round(seconds, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.build", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output directory (reused by later runs)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--triplets", type=int, default=1100,
                    help="paired song / backing / speech clips to construct")
    ap.add_argument("--sinsy", type=int, default=260,
                    help="songs of the Sinsy singing synthesiser (paired like the triplets)")
    ap.add_argument("--packages", default=None,
                    help="comma-separated subset of source packages (for tiny test builds)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stereo-mixes", type=float, nargs="?", const=1.0, default=0.0,
                    metavar="SHARE",
                    help="mix this share of the triplets over a stereo backing in stereo, the "
                         "voice in the centre (alone: every one, the schema-6 trials; 0.5: the "
                         "schema-7 trial, models/schema7.ab.md; default 0: mono, as the shipped "
                         "model was trained)")
    ap.add_argument("--stereo-var-offset", type=float, default=0.0, metavar="DB",
                    help="add DB to the vocal-to-accompaniment level of every voice (song, "
                         "dialogue, vocalise, choir pad) of a triplet mixed in stereo (-6: the "
                         "schema-8 trial's corpus E, models/schema8.ab.md, where a stereo voice "
                         "sits -12 to 0 dB under its band and the centre must carry it; "
                         "default 0)")
    a = ap.parse_args(argv)
    pk = set(a.packages.split(",")) if a.packages else None
    s = build(a.out, jobs=a.jobs, triplets=a.triplets, sinsy=a.sinsy, packages=pk, seed=a.seed,
              stereo_mixes=a.stereo_mixes, stereo_var_offset=a.stereo_var_offset)
    return 0 if s["clips"] else 1


if __name__ == "__main__":
    sys.exit(main())
