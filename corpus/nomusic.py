"""The ``no_music`` class (issue 12) and its paired positives, built from the training packages.

    python -m corpus.nomusic CORPUS_DIR [--jobs 2] [--seed 12] [--force]
    python -m corpus.nomusic OUT_DIR --external [--score-set /work/external]   # test set only

Label policy: **no_music** is a clip in which no music is audible: speech or dialogue alone,
sound effects, ambience, room tone, applause, near-silence with a noise floor. Music under
speech stays **score** as long as it is audible, and the floor chosen here is **music down to
20 dB below the dialogue** (music RMS over the clip against the speech RMS over its active
part). The corpus teaches exactly that floor: every ``score_under_speech`` clip is the very
same no_music clip (identical speech samples, identical noise floor and effects) with a score
excerpt added at a level drawn uniformly from -20 to +10 dB re the speech.

Kinds written (20-s FLAC clips, 22.05 kHz mono, under ``CORPUS_DIR/gen/nomusic/``):

- ``no_music_speech``: one voice's phrases with pauses of 0.2-1.5 s; a quarter of the lines
  go through the WORLD resynthesis of ``build._spoken_line(..., vocode=True)`` (the vocoder
  that 70% of the score_speech clips have) so that the vocoder is no cue; all take
  ``mixing.vocal_chain(style="speech")``, some an extra room (EQ + reverb), most a low
  noise floor;
- ``no_music_effects``: sound effects of the training packages strung into sequences, some
  over an ambience bed;
- ``no_music_ambience``: package loops and steady sounds, generated room tone, wind, rain,
  applause, crowd babble and near-silence, at realistic low levels;
- ``no_music_speech_fx``: speech over effects and/or ambience;
- ``score_under_speech`` (label score): the partner of a no_music speech clip with music.

Grouping: the manifest's ``group`` is a cell of ``summary.json`` (``voice_cells``,
``package_cells``). A clip with a voice takes the voice's cell, and everything mixed into it
(effects, ambience, music) comes from packages of that same cell, so grouped
cross-validation never shares a voice, an effect file or a backing track across folds. Each
effects / ambience package has a cell of its own (:func:`assign_sound_cells`), as a voice
does, apart from its music's cell; ``--sound-cells music`` puts it in its music's cell
instead (model 2026.12.05.2's corpus; a package without one, sonic-pi-samples, then gets
the cell with the least no_music material). Generated beds (no package) go round the cells.

Writes ``manifest.nomusic.csv`` (the columns of ``manifest.csv``) and
``summary.nomusic.json`` (counts per kind and cell, what was excluded and why, problems).
Re-running reuses every finished clip whose plan is unchanged (``--force`` re-renders; the
seed makes the audio identical either way).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from scoresong import audio

from . import build, mixing
from .build import CLIP_S, FIELDS, GEN_SR, log
from .sources import MUSIC_NAMES, NOMUSIC_SOURCES, SOURCES

N = int(CLIP_S * GEN_SR)
#: Clips per kind (``score_under_speech`` = the pairs below).
COUNTS = {"no_music_speech": 450, "no_music_effects": 350, "no_music_ambience": 250,
          "no_music_speech_fx": 300}
#: How many clips of each speech kind get a score partner.
PAIRS = {"no_music_speech": 440, "no_music_speech_fx": 210}
#: Music level re the speech (dB), drawn uniformly; -20 dB is the label floor.
MUSIC_DB = (-20.0, 10.0)
#: Share of speech lines resynthesised by WORLD (as build's score_speech at 70%).
VOCODED = 0.25
#: Score rows of manifest.csv that may go under speech.
BACKING_KINDS = ("score", "score_rock", "score_choir")
SUB = {"no_music_speech": "speech", "no_music_effects": "effects", "no_music_ambience": "ambience",
       "no_music_speech_fx": "speech_fx", "score_under_speech": "under_speech"}
#: Version of the rendering code: a change re-renders every clip on the next run.
RENDER_VERSION = 2
SCREEN_VERSION = 1
GENERATED = dict(package="generated", version=f"corpus.nomusic r{RENDER_VERSION}",
                 licence="CC0-1.0", author="corpus.nomusic (synthesised noise)")
GENERATED_BEDS = ("room", "near_silence", "wind", "rain", "applause")


def _db(x: float) -> float:
    return float(10 ** (x / 20))


def _fit(y: np.ndarray, n: int = N) -> np.ndarray:
    return np.pad(np.asarray(y, np.float32), (0, max(0, n - len(y))))[:n]


# ----------------------------------------------------------------------------- screening
def pitch_profile(path: str) -> dict:
    """Pitch and harmonicity of a sound (its first 10 s) for the music screen.

    pYIN (librosa) gives the F0 track; *stable notes* are runs of voiced frames that stay
    within half a semitone of their median for at least 80 ms. ``hshare`` is the harmonic
    part's share of the energy (median-filtering HPSS).
    """
    import librosa

    y = build._load_gen(path)[: int(10 * GEN_SR)]
    dur = y.size / GEN_SR
    if y.size < 0.05 * GEN_SR or np.max(np.abs(y)) < 1e-4:
        return dict(dur=round(dur, 3), empty=True)
    hop, n_fft = 512, 2048
    y = np.pad(y, (0, max(0, n_fft + hop - y.size)))
    f0, voiced, _ = librosa.pyin(y, fmin=65, fmax=2100, sr=GEN_SR, frame_length=n_fft,
                                 hop_length=hop)
    midi = np.where(voiced, 69 + 12 * np.log2(np.nan_to_num(f0, nan=440.0) / 440), np.nan)
    min_len = int(np.ceil(0.08 * GEN_SR / hop))
    notes, start = [], None
    for i in range(len(midi) + 1):
        ok = i < len(midi) and not np.isnan(midi[i])
        if ok and start is not None and abs(midi[i] - np.median(midi[start:i])) <= 0.5:
            continue
        if start is not None and i - start >= min_len:
            notes.append((round(float(np.median(midi[start:i])), 2), round((i - start) * hop / GEN_SR, 3)))
        start = i if ok else None
    S = librosa.stft(y, n_fft=n_fft, hop_length=hop)
    H, P = librosa.decompose.hpss(S)
    eh, ep = float(np.sum(np.abs(H) ** 2)), float(np.sum(np.abs(P) ** 2))
    frames = 20 * np.log10(librosa.feature.rms(y=y, frame_length=n_fft, hop_length=hop)[0] + 1e-9)
    act = frames > frames.max() - 30
    return dict(dur=round(dur, 3), hshare=round(eh / (eh + ep + 1e-12), 3), notes=notes,
                active_s=round(float(act.sum()) * hop / GEN_SR, 3),
                level_sd=round(float(np.std(frames[act])), 2))


def classify(p: dict) -> tuple[str | None, bool, bool]:
    """(why it is music or None, tonal, steady) from a :func:`pitch_profile`.

    - *melodic phrase*: at least 3 stable notes on 3 or more semitones, 0.4 s of notes in
      all, at least two moves of 2 semitones or more between consecutive notes, and a
      harmonic share of 0.4 or more (so crackling noise with a wandering F0 is not one);
    - *chime*: two or more stable notes of 0.1 s or longer, 2 semitones or more apart, in
      a strongly harmonic sound (share >= 0.75): two-note jingles, alert figures and
      notification tones;
    - *tonal* (kept): a stable note of 0.15 s or longer in a harmonic sound (beeps, hums);
      a clip takes at most two different tonal effects, so beeps cannot line up into a tune;
    - *steady* (kept): 0.8 s or longer with a level that varies little (s.d. <= 4 dB over
      its active frames): usable as a looped bed.
    """
    if p.get("empty"):
        return None, False, False
    notes = p["notes"]
    semis = [round(m) for m, _ in notes]
    moves = sum(abs(a - b) >= 2 for a, b in zip(semis, semis[1:]))
    note_s = sum(d for _, d in notes)
    why = None
    if (len(notes) >= 3 and len(set(semis)) >= 3 and note_s >= 0.4 and moves >= 2
            and p["hshare"] >= 0.4):
        why = (f"melodic phrase ({len(notes)} stable notes on {len(set(semis))} semitones, "
               f"{note_s:.2f} s, harmonic share {p['hshare']:.2f})")
    else:
        long = sorted({s for s, (_, d) in zip(semis, notes) if d >= 0.1})
        if p["hshare"] >= 0.75 and len(long) >= 2 and long[-1] - long[0] >= 2:
            why = f"chime ({len(long)} held pitches {long}, harmonic share {p['hshare']:.2f})"
    tonal = any(d >= 0.15 for _, d in notes) and p["hshare"] >= 0.6
    steady = p["dur"] >= 0.8 and p["level_sd"] <= 4.0
    return why, tonal, steady


#: The pitch screen's profiles of the training packages' effect and ambience files, keyed
#: as gen/nomusic/screen.json is: the calls of the build the shipped model 2026.12.06.10
#: trained on. :func:`screen` takes a file's profile from here whenever the key (screen
#: version and file size) matches, so that every machine makes the same music / tonal /
#: steady calls: pYIN's note tracking is not bit-exact across CPUs (numpy's AVX-512 and AVX2
#: loops differ in the last bits), and one flipped tonal flag changes the plan's random draws
#: for every later clip. With numpy's AVX-512 loops on, freedroidrpg's Item_Drop_Sound_2
#: holds a 0.12-s note instead of the pinned 0.19 s and is not tonal, and 880 of the 1,350
#: units change (three other profiles move in their last digits without changing a call).
PINNED_SCREEN = Path(__file__).with_name("nomusic_screen.json")


def screen(out: Path, rels: list[str], jobs: int) -> dict[str, dict]:
    """Pitch profiles of ``rels`` (relative to ``out``), cached in gen/nomusic/screen.json;
    a profile in :data:`PINNED_SCREEN` with a matching key wins over the cache and is never
    recomputed."""
    cache_path = out / "gen" / "nomusic" / "screen.json"
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    key = {r: f"{SCREEN_VERSION}:{(out / r).stat().st_size}" for r in rels}
    fixed = json.loads(PINNED_SCREEN.read_text()) if PINNED_SCREEN.exists() else {}
    cache.update({r: fixed[r] for r in rels if fixed.get(r, {}).get("key") == key[r]})
    todo = [r for r in rels if cache.get(r, {}).get("key") != key[r]]
    if todo:
        from joblib import Parallel, delayed

        log(f"  pitch screen of {len(todo)} sounds ...")
        from corpus.numba_cache import warm_librosa_cache

        warm_librosa_cache(log=log)   # workers must not race to compile librosa (numba#10128)
        res = Parallel(n_jobs=jobs)(delayed(pitch_profile)(str(out / r)) for r in todo)
        for r, p in zip(todo, res):
            cache[r] = dict(p, key=key[r])
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps(cache, indent=0, sort_keys=True))
    return {r: cache[r] for r in rels}


# ----------------------------------------------------------------------------- inventory
def _call(v, path: str) -> str:
    return v(path) if callable(v) else v


def _is_sound(meta: dict) -> bool:
    """An inventory entry that serves as an effect or an ambience bed."""
    return bool({"effects", "ambience"} & set(meta["roles"]))


def _name_rules(src: dict) -> dict[str, str]:
    rules = dict(src.get("excluded", {}))
    if src["role"] in ("effects", "ambience"):
        rules[MUSIC_NAMES] = "music: the file name says so (jingle, fanfare, theme, victory, ...)"
    return rules


def inventory(out: Path, sources: list[dict], problems: list, fetched: dict, *,
              root_of=None) -> tuple[dict[str, dict], list[dict]]:
    """Audio files of ``sources``: {relpath: meta} and the files left out by name.

    ``root_of(pkg)`` may give an unpacked package's folder (external packages come from
    ``external.fetch``); otherwise ``build.fetch`` downloads and unpacks it under ``out``.
    """
    inv: dict[str, dict] = {}
    dropped: list[dict] = []
    for src in sources:
        pkg = src["package"]
        if pkg not in fetched:
            r = root_of(pkg) if root_of else build.fetch(pkg, out, problems)
            if r is None:
                continue
            fetched[pkg] = r
        root, version = fetched[pkg]
        rules = _name_rules(src)
        plain = {k: v for k, v in src.items() if k != "exclude"}
        files = build.source_files(plain, root, out, problems)
        if not files:
            problems.append(f"{pkg} ({src['role']}): no files matched {src['glob']}")
        for rel in files:
            why = next((w for rx, w in rules.items() if re.search(rx, rel)), None)
            if src.get("exclude") and re.search(src["exclude"], rel):
                continue
            if why:
                dropped.append(dict(path=rel, package=pkg, why=why, by="name"))
                continue
            try:
                info = audio.info(out / rel)
            except audio.AudioError as exc:
                problems.append(f"{rel}: {exc.reason}")
                continue
            if info.frames <= 0 or info.duration < 0.05:
                dropped.append(dict(path=rel, package=pkg, why="empty (< 0.05 s)", by="duration"))
                continue
            meta = inv.setdefault(rel, dict(package=pkg, version=version, licence=_call(src["licence"], rel),
                                            author=_call(src["author"], rel), duration=info.duration,
                                            roles=[]))
            meta["roles"] = sorted(set(meta["roles"]) | {src["role"]})
            if "voice" in src:
                meta["voice"] = src["voice"](rel)
            if src.get("screen") is False:
                meta["unscreened"] = src.get("screen_note", "not screened")
    return inv, dropped


def apply_screen(out: Path, inv: dict, dropped: list, jobs: int) -> dict[str, dict]:
    """Drop the effects / ambience files the pitch screen calls music; tag tonal and steady."""
    rels = sorted(r for r, m in inv.items() if _is_sound(m))
    profiles = screen(out, [r for r in rels if "unscreened" not in inv[r]], jobs)
    for r in rels:
        if r not in profiles:
            inv[r].update(tonal=False, steady=inv[r]["duration"] >= 0.8)
            continue
        why, tonal, steady = classify(profiles[r])
        if why:
            dropped.append(dict(path=r, package=inv.pop(r)["package"], why=why, by="pitch screen"))
            continue
        inv[r].update(tonal=tonal, steady=steady)
    return profiles


def music_pool(manifest: Path, root: Path, cell_of_group, prefixes=("pkgs/",)) -> dict:
    """Score excerpts of a manifest to lay under speech: {cell: [entry, ...]}; only rows
    whose path starts with one of ``prefixes`` (original tracks, not generated mixes)."""
    pool = defaultdict(list)
    with open(manifest, newline="") as fh:
        for r in csv.DictReader(fh):
            if r["label"] != "score" or not r["path"].startswith(tuple(prefixes)):
                continue
            if r["kind"] not in BACKING_KINDS + ("score_real", "score_rock_real"):
                continue
            if float(r["duration_s"]) < CLIP_S:
                continue
            pool[cell_of_group(r)].append(dict(path=r["path"], start=float(r["start_s"]), root=str(root),
                                               package=r["source_package"], version=r["version"],
                                               licence=r["licence"], author=r["author"], kind=r["kind"]))
    return dict(pool)


# ----------------------------------------------------------------------------- planning
def _by_cell(inv: dict, role: str, cell_of_pkg: dict, pred=lambda m: True) -> dict:
    out = defaultdict(lambda: defaultdict(list))
    for rel in sorted(inv):
        m = inv[rel]
        if role in m["roles"] and pred(m):
            out[cell_of_pkg[m["package"]]][m["package"]].append(rel)
    return {c: dict(v) for c, v in out.items()}


def _meta(inv: dict, rels) -> dict:
    keys = ("package", "version", "licence", "author")
    return {r: {k: inv[r][k] for k in keys} for r in rels}


def _events(rng, pool: list[str], inv: dict, n: int = 40, max_tonal: int = 2) -> list[str]:
    """``n`` effect files drawn from ``pool``, at most ``max_tonal`` different tonal ones."""
    tonal = [r for r in pool if inv[r].get("tonal")]
    keep_tonal = set(rng.permutation(tonal)[:max_tonal].tolist()) if tonal else set()
    usable = [r for r in pool if not inv[r].get("tonal") or r in keep_tonal]
    return [usable[int(i)] for i in rng.integers(len(usable), size=n)]


def _bed(rng, cell, amb: dict, inv: dict, voices_in_cell: list, voices: dict, *,
         kinds=GENERATED_BEDS, p_files: float = 0.5) -> dict:
    """An ambience bed: looped package sounds of ``cell`` or a generated one."""
    files = [r for pk in amb.get(cell, {}).values() for r in pk]
    if files and rng.random() < p_files:
        k = 1 if len(files) < 2 or rng.random() < 0.6 else 2
        return dict(type="loops", files=[str(x) for x in rng.choice(files, size=k, replace=False)])
    t = str(rng.choice(kinds))
    if t == "babble":
        vs = [str(v) for v in rng.permutation(voices_in_cell)[: int(rng.integers(4, 8))]]
        return dict(type="babble", voices=vs,
                    phrases={v: [str(p) for p in rng.permutation(voices[v])[:16]] for v in vs})
    return dict(type=t)


def plan(*, voices: dict, voice_cell: dict, inv: dict, cell_of_pkg: dict, music: dict,
         counts: dict, pairs: dict, seed: int, turns: dict | None = None) -> list[dict]:
    """Every clip to write, as JSON-able units (one no_music clip and maybe its partner).

    ``voices``: {voice: [phrase relpaths]}; ``voice_cell``: {voice: cell}; ``inv``: the
    effects / ambience inventory; ``cell_of_pkg``: {package: cell}; ``music``: {cell: [score
    excerpt]}; ``turns``: {voice: turns per round} (default 1). Units of a voice only take
    effects, ambience and music of that voice's cell.
    """
    rng = np.random.default_rng(seed)
    fx = _by_cell(inv, "effects", cell_of_pkg)
    amb = _by_cell(inv, "ambience", cell_of_pkg)
    steady = _by_cell(inv, "effects", cell_of_pkg, lambda m: m.get("steady") and "ambience" not in m["roles"])
    for c, pk in steady.items():   # long steady effects also serve as beds
        for p, rels in pk.items():
            amb.setdefault(c, {}).setdefault(p, [])
            amb[c][p] = sorted(set(amb[c][p]) | set(rels))
    by_cell, rota = defaultdict(list), defaultdict(list)
    for v in sorted(voices):
        by_cell[voice_cell[v]].append(v)
        rota[voice_cell[v]].extend([v] * (turns or {}).get(v, 1))
    cells = sorted(by_cell, key=str)
    music_order = {c: [e for e in (music.get(c) or [])] for c in cells}
    for c in cells:
        rng.shuffle(music_order[c])
    music_next = Counter()
    units: list[dict] = []

    def voice_unit(kind, i, c, k):
        vs = rota[c]
        v = vs[k % len(vs)]
        phrases = [str(p) for p in rng.permutation(voices[v])[:40]]
        u = dict(kind=kind, id=f"{SUB[kind]}/{i:05d}", cell=c, seed=int(seed * 1_000_003 + len(units)),
                 voice=v, phrases=phrases, vocode=bool(rng.random() < VOCODED),
                 gap=[0.2, round(float(rng.uniform(0.7, 1.5)), 3)],
                 target=round(float(rng.uniform(15.0, 20.0)), 3),
                 level_db=round(float(rng.uniform(-30, -16)), 2), room=bool(rng.random() < 0.35),
                 floor=(None if rng.random() < 0.3 else
                        dict(type=str(rng.choice(["room", "pink", "brown"])),
                             db=round(float(rng.uniform(-55, -35)), 2))))
        return u

    def add_pair(u):
        pool = music_order.get(u["cell"]) or []
        if not pool:
            return
        cands = []
        for _ in range(min(3, len(pool))):
            cands.append(pool[music_next[u["cell"]] % len(pool)])
            music_next[u["cell"]] += 1
        u["pair"] = dict(id=f"{SUB['score_under_speech']}/{u['id'].replace('/', '-')}",
                         candidates=cands, sparse=bool(rng.random() < 0.35),
                         music_db=round(float(rng.uniform(*MUSIC_DB)), 2))

    turn = Counter()
    for kind in ("no_music_speech", "no_music_speech_fx"):
        paired = set(rng.permutation(counts.get(kind, 0))[: pairs.get(kind, 0)].tolist())
        for i in range(counts.get(kind, 0)):
            c = cells[i % len(cells)]
            u = voice_unit(kind, i, c, turn[c])
            turn[c] += 1
            if kind == "no_music_speech_fx":
                pool = [r for pk in fx.get(c, {}).values() for r in pk]
                layer = {}
                if rng.random() < 0.75:
                    layer["events"] = (_events(rng, pool, inv) if pool and rng.random() < 0.8
                                       else dict(generated=int(rng.integers(1 << 30))))
                    layer["events_db"] = round(float(rng.uniform(-16, 2)), 2)
                if not layer or rng.random() < 0.6:
                    others = [v for v in by_cell[c] if v != u["voice"]]
                    layer["bed"] = _bed(rng, c, amb, inv, others, voices,
                                        kinds=("room", "wind", "rain", "applause")
                                        + (("babble",) if len(others) >= 4 else ()))
                    layer["bed_db"] = round(float(rng.uniform(-30, -8)), 2)
                u["fx"] = layer
            if i in paired:
                add_pair(u)
            units.append(u)

    # Effects alone: the clips are shared among the packages by their number of usable files.
    pk_files = {(c, p): rels for c, pk in fx.items() for p, rels in pk.items()}
    if pk_files and counts.get("no_music_effects"):
        keys = sorted(pk_files, key=str)
        w = np.array([len(pk_files[k]) for k in keys], float)
        alloc = np.floor(w / w.sum() * counts["no_music_effects"]).astype(int)
        for j in np.argsort(-(w / w.sum() * counts["no_music_effects"] - alloc))[
                : counts["no_music_effects"] - alloc.sum()]:
            alloc[j] += 1
        i = 0
        for (c, p), n_k in zip(keys, alloc):
            for _ in range(n_k):
                pool = list(pk_files[(c, p)])
                others = [q for q in fx[c] if q != p]
                if others and rng.random() < 0.3:
                    pool += fx[c][others[int(rng.integers(len(others)))]]
                u = dict(kind="no_music_effects", id=f"effects/{i:05d}", cell=c,
                         seed=int(seed * 1_000_003 + len(units)), events=_events(rng, pool, inv),
                         peak_db=round(float(rng.uniform(-8, -1)), 2))
                if rng.random() < 0.5:
                    u["bed"] = _bed(rng, c, amb, inv, by_cell.get(c, []), voices)
                    u["bed_db"] = round(float(rng.uniform(-30, -8)), 2)
                elif rng.random() < 0.5:
                    u["floor"] = dict(type="near_silence", db=round(float(rng.uniform(-80, -65)), 2))
                units.append(u)
                i += 1

    # Ambience alone: package loops where a cell has them, babble of a cell's voices,
    # generated beds round the cells.
    # The loop clips are shared among the cells by their number of loopable files.
    amb_cells = sorted((c for c in amb if any(amb[c].values())), key=str)
    n_amb = counts.get("no_music_ambience", 0)
    n_loops = int(round(0.3 * n_amb)) if amb_cells else 0
    n_babble = int(round(0.12 * n_amb))
    n_files = np.array([sum(len(r) for r in amb[c].values()) for c in amb_cells], float)
    loop_cells = [amb_cells[j] for j in np.searchsorted(np.cumsum(n_files) / n_files.sum(),
                                                        (np.arange(n_loops) + 0.5) / max(n_loops, 1))]
    for i in range(n_amb):
        if i < n_loops:
            c = loop_cells[i]
            bed = _bed(rng, c, amb, inv, by_cell.get(c, []), voices, p_files=1.0)
        elif i < n_loops + n_babble:
            c = cells[i % len(cells)]
            bed = _bed(rng, c, amb, inv, by_cell[c], voices, kinds=("babble",), p_files=0.0)
        else:
            c = cells[i % len(cells)]
            bed = _bed(rng, c, amb, inv, by_cell[c], voices, p_files=0.0)
        lo, hi = {"near_silence": (-78, -62), "room": (-60, -38)}.get(bed["type"], (-50, -22))
        units.append(dict(kind="no_music_ambience", id=f"ambience/{i:05d}", cell=c,
                          seed=int(seed * 1_000_003 + len(units)), bed=bed,
                          rms_db=round(float(rng.uniform(lo, hi)), 2)))
    for u in units:
        refs = set(u.get("events") if isinstance(u.get("events"), list) else [])
        for layer in (u, u.get("fx") or {}):
            if isinstance(layer.get("events"), list):
                refs |= set(layer["events"])
            if layer.get("bed", {}).get("type") == "loops":
                refs |= set(layer["bed"]["files"])
        u["meta"] = _meta(inv, sorted(refs))
    return units


# ----------------------------------------------------------------------------- generators
def _shaped_noise(n: int, rng, slope: float) -> np.ndarray:
    """Gaussian noise whose power falls as f^-slope (0 white, 1 pink, 2 brown), unit RMS."""
    spec = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1 / GEN_SR)
    spec *= np.where(f < 20, 0.0, np.maximum(f, 20.0) ** (-slope / 2))
    y = np.fft.irfft(spec, n)
    return (y / mixing.rms(y)).astype(np.float32)


def _drift(n: int, rng, depth_db: float, period_s: float = 3.0) -> np.ndarray:
    """A slow random gain curve (+-``depth_db``), smooth over about ``period_s``."""
    k = max(2, int(n / (period_s * GEN_SR)) + 2)
    pts = rng.uniform(-depth_db, depth_db, k)
    curve = np.interp(np.arange(n), np.linspace(0, n, k), pts)
    return (10 ** (curve / 20)).astype(np.float32)


def _filt(y: np.ndarray, *, hp: float | None = None, lp: float | None = None) -> np.ndarray:
    import pedalboard as pb

    fx = []
    if hp:
        fx.append(pb.HighpassFilter(cutoff_frequency_hz=float(hp)))
    if lp:
        fx.append(pb.LowpassFilter(cutoff_frequency_hz=float(min(lp, 0.45 * GEN_SR))))
    return pb.Pedalboard(fx)(y.astype(np.float32), GEN_SR) if fx else y


def _reverb(y: np.ndarray, rng, room=(0.2, 0.6), wet=(0.05, 0.2)) -> np.ndarray:
    import pedalboard as pb

    return pb.Pedalboard([pb.Reverb(room_size=float(rng.uniform(*room)), wet_level=float(rng.uniform(*wet)),
                                    dry_level=1.0, damping=float(rng.uniform(0.3, 0.7)))])(y.astype(np.float32), GEN_SR)


def _band_sweep(y: np.ndarray, rng, lo: float, hi: float, width: float, step_s: float) -> np.ndarray:
    """Pass ``y`` through a band whose centre wanders (log scale) between ``lo`` and ``hi``."""
    from scipy import signal

    f, t, Z = signal.stft(y, GEN_SR, nperseg=1024)
    k = max(2, int(len(y) / (step_s * GEN_SR)) + 2)
    centre = np.exp(np.interp(t, np.linspace(t[0], t[-1] + 1e-9, k), rng.uniform(np.log(lo), np.log(hi), k)))
    mask = np.exp(-0.5 * ((np.log(np.maximum(f, 10))[:, None] - np.log(centre)[None, :]) / width) ** 2)
    _, out = signal.istft(Z * mask, GEN_SR, nperseg=1024)
    return _fit(out, len(y))


def _bursts(n: int, rng, rate: float, dur=(0.002, 0.01), band=(800, 2500), kernels: int = 8) -> np.ndarray:
    """Poisson-timed short noise bursts (claps, rain drops), each kernel band-passed."""
    from scipy.signal import fftconvolve

    out = np.zeros(n, np.float32)
    for _ in range(kernels):
        m = int(rng.uniform(*dur) * GEN_SR) + 8
        env = np.exp(-np.arange(m) / (m / 4))
        kern = rng.standard_normal(m) * env
        c = rng.uniform(*band)
        kern = _filt(kern.astype(np.float32), hp=c / 1.6, lp=c * 1.6)
        hits = np.zeros(n, np.float32)
        k = rng.poisson(rate * n / GEN_SR / kernels)
        hits[rng.integers(n, size=k)] = rng.lognormal(0, 0.5, k)
        out += fftconvolve(hits, kern)[:n].astype(np.float32)
    return out


def generated_bed(kind: str, n: int, rng) -> np.ndarray:
    """A synthesised bed of ``kind`` (unit RMS): room tone (pink/brown noise, low-passed,
    sometimes a faint mains hum), near-silence, wind, rain, applause, pink, brown."""
    t = np.arange(n) / GEN_SR
    if kind in ("pink", "brown"):
        y = _filt(_shaped_noise(n, rng, 1.0 if kind == "pink" else 2.0), hp=25, lp=rng.uniform(2000, 8000))
    elif kind == "room":
        y = _filt(_shaped_noise(n, rng, rng.uniform(1.0, 2.0)), hp=rng.uniform(25, 80), lp=rng.uniform(600, 5000))
        y = y / mixing.rms(y)
        if rng.random() < 0.25:    # mains hum and its harmonics, far below the noise
            f0 = float(rng.choice([50.0, 60.0]))
            hum = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h ** 1.5 for h in range(1, 5))
            y = y + hum / mixing.rms(hum) * _db(-rng.uniform(12, 25))
        y = y * _drift(n, rng, 1.0, 4.0)
    elif kind == "near_silence":
        y = _filt(_shaped_noise(n, rng, rng.uniform(0.0, 1.5)), hp=20, lp=rng.uniform(3000, 10000))
    elif kind == "wind":
        y = _band_sweep(_shaped_noise(n, rng, 1.0), rng, 150, 1500, rng.uniform(0.3, 0.8), rng.uniform(0.8, 3))
        y = y * _drift(n, rng, rng.uniform(4, 10), rng.uniform(1.0, 3.0))
    elif kind == "rain":
        bed = _filt(_shaped_noise(n, rng, 1.0), hp=200, lp=rng.uniform(3000, 9000))
        drops = _bursts(n, rng, rng.uniform(40, 300), dur=(0.002, 0.012), band=(1500, 6000))
        y = bed / mixing.rms(bed) * _db(-rng.uniform(3, 12)) + drops / (mixing.rms(drops) + 1e-9)
    elif kind == "applause":
        y = _bursts(n, rng, rng.uniform(8, 60), dur=(0.003, 0.012), band=(700, 2800))
        ramp = np.clip(t / rng.uniform(0.3, 2.0), 0, 1)
        if rng.random() < 0.5:   # dies away before the end
            end = rng.uniform(10, 19.5)
            ramp = ramp * np.clip(1 - (t - end) / rng.uniform(0.5, 2.0), 0, 1)
        y = _reverb(y * ramp * _drift(n, rng, 2.0), rng, room=(0.4, 0.9), wet=(0.1, 0.35))
        y = y + 1e-3 * _shaped_noise(n, rng, 1.0)   # the hall's own noise
    else:
        raise ValueError(f"unknown bed {kind!r}")
    y = _fit(y, n)
    return (y / (mixing.rms(y) + 1e-12)).astype(np.float32)


def generated_events(n: int, seed: int) -> np.ndarray:
    """A sequence of synthesised non-tonal events (impacts, knocks, whooshes, footsteps)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, np.float32)
    pos = int(rng.uniform(0, 1.5) * GEN_SR)
    while pos < n:
        kind = rng.choice(["impact", "knock", "whoosh", "steps"])
        if kind == "whoosh":
            m = int(rng.uniform(0.3, 1.2) * GEN_SR)
            e = _band_sweep(_shaped_noise(m, rng, 0.5), rng, 300, 5000, 0.4, m / GEN_SR / 2) * np.hanning(m)
        else:
            hits = {"impact": 1, "knock": int(rng.integers(2, 5)), "steps": int(rng.integers(3, 9))}[kind]
            gap = (0.12, 0.25) if kind == "knock" else (0.35, 0.7)
            lp = rng.uniform(300, 4000)
            parts = []
            for _ in range(hits):
                m = int(rng.uniform(0.03, 0.3 if kind == "impact" else 0.08) * GEN_SR)
                burst = _filt((rng.standard_normal(m) * np.exp(-np.arange(m) / (m / 5))).astype(np.float32),
                              hp=40, lp=lp * rng.uniform(0.8, 1.25))
                parts += [burst * rng.uniform(0.6, 1.0), np.zeros(int(rng.uniform(*gap) * GEN_SR), np.float32)]
            e = np.concatenate(parts)
        e = e / (np.max(np.abs(e)) + 1e-9) * _db(-rng.uniform(0, 12))
        m = min(e.size, n - pos)
        y[pos:pos + m] += e[:m]
        pos += e.size + int(rng.uniform(0.2, 2.5) * GEN_SR)
    return y


# ----------------------------------------------------------------------------- rendering
def _load(out: Path, rel: str) -> np.ndarray:
    return build._load_gen(str(out / rel))


def effects_layer(out: Path, events, n: int, rng) -> np.ndarray:
    """Effect files placed one after another with gaps (0.1-2.5 s), sometimes overlapping,
    each peak-normalised and set 0-14 dB down; long files give an excerpt of 2-8 s."""
    if isinstance(events, dict):
        return generated_events(n, events["generated"])
    y = np.zeros(n, np.float32)
    pos = int(rng.uniform(0, 1.5) * GEN_SR)
    for rel in events:
        if pos >= n:
            break
        x = _load(out, rel)
        if x.size > 8 * GEN_SR:
            m = int(rng.uniform(2, 8) * GEN_SR)
            s = int(rng.integers(0, x.size - m))
            fade = np.minimum(1, np.minimum(np.arange(m), m - np.arange(m)) / (0.05 * GEN_SR))
            x = x[s:s + m] * fade
        x = x / (np.max(np.abs(x)) + 1e-9) * _db(-rng.uniform(0, 14))
        m = min(x.size, n - pos)
        y[pos:pos + m] += x[:m]
        step = x.size + int(rng.uniform(0.1, 2.5) * GEN_SR)
        if rng.random() < 0.2:   # the next one starts before this one ends
            step = int(x.size * rng.uniform(0.3, 0.9))
        pos += max(step, int(0.05 * GEN_SR))
    return y


def loop(x: np.ndarray, n: int, rng) -> np.ndarray:
    """``x`` repeated with crossfades from a random offset to ``n`` samples."""
    xf = int(min(0.25 * GEN_SR, x.size / 3))
    x = np.roll(x, -int(rng.integers(x.size)))
    out = np.zeros(n + x.size, np.float32)
    ramp = np.linspace(0, 1, xf, dtype=np.float32) if xf > 0 else np.zeros(0, np.float32)
    pos = 0
    while pos < n:
        seg = x.copy()
        if xf:
            seg[:xf] *= ramp
            seg[-xf:] *= ramp[::-1]
        out[pos:pos + seg.size] += seg
        pos += max(1, seg.size - xf)
    return out[:n]


def bed_layer(out: Path, bed: dict, n: int, rng) -> np.ndarray:
    """An ambience bed (unit RMS): package loops, crowd babble or a generated bed."""
    if bed["type"] == "loops":
        y = np.zeros(n, np.float32)
        for rel in bed["files"]:
            x = _load(out, rel)
            if x.size < 0.05 * GEN_SR or np.max(np.abs(x)) < 1e-4:
                continue
            lay = loop(x, n, rng)
            lay = _filt(lay, hp=rng.uniform(20, 150), lp=rng.uniform(3000, 11000))
            y += lay / (mixing.rms(lay) + 1e-12) * _db(-rng.uniform(0, 8)) * _drift(n, rng, 2.0, 5.0)
    elif bed["type"] == "babble":
        y = np.zeros(n, np.float32)
        for v in bed["voices"]:
            line, act = build._spoken_line([str(out / p) for p in bed["phrases"][v]], rng, CLIP_S, False,
                                           gap=(0.1, 0.6))
            if act.any():
                line = np.roll(_fit(line, n), int(rng.integers(n)))
                y += line / (mixing.rms(line) + 1e-12) * _db(-rng.uniform(0, 8))
        y = _reverb(_filt(y, hp=120, lp=rng.uniform(2500, 6000)), rng, room=(0.5, 0.9), wet=(0.2, 0.4))
    else:
        y = generated_bed(bed["type"], n, rng)
    y = _fit(y, n)
    return y / (mixing.rms(y) + 1e-12)


def speech_track(out: Path, u: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """The spoken line of a unit at its level (active-speech RMS ``level_db`` dBFS)."""
    import pedalboard as pb

    v, act = build._spoken_line([str(out / p) for p in u["phrases"]], rng, u["target"], u["vocode"],
                                gap=tuple(u["gap"]))
    if not act.any():
        return v, act
    v = mixing.vocal_chain(v, GEN_SR, rng, style="speech")
    if u["room"]:   # a room of its own: tilt EQ and a small reverb
        v = pb.Pedalboard([
            pb.LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(150, 400)), gain_db=float(rng.uniform(-4, 4))),
            pb.HighShelfFilter(cutoff_frequency_hz=float(rng.uniform(3000, 7000)), gain_db=float(rng.uniform(-5, 3))),
        ])(v.astype(np.float32), GEN_SR)
        v = _reverb(v, rng)
    v, act = _fit(v), _fit(act).astype(bool)
    return v / mixing.rms(v[act]) * _db(u["level_db"]), act


def _pick_music(u: dict, problems: list) -> tuple[dict, np.ndarray, float] | None:
    """The partner's score excerpt: the first audible candidate, or the sparsest one."""
    best = None
    for e in u["pair"]["candidates"]:
        try:
            y = _fit(build._load_gen(str(Path(e["root"]) / e["path"]), e["start"], CLIP_S))
        except audio.AudioError as exc:
            problems.append(f"music {e['path']}@{e['start']}: {exc.reason}")
            continue
        if mixing.rms(y) < _db(-50):
            problems.append(f"music {e['path']}@{e['start']}: silent (< -50 dBFS), not used")
            continue
        dens = build.vocal_band_density(y)
        if best is None or (u["pair"]["sparse"] and dens < best[2]):
            best = (e, y, dens)
        if not u["pair"]["sparse"]:
            break
    return best


def _parts_row(path: str, label: str, kind: str, group: str, parts: list[dict], **kw) -> dict:
    """A manifest row naming every source part (voice / effects / ambience / music), build's
    ``A + B`` convention, the music (if any) last. ``group`` None: the source package(s)."""
    seen, uniq = set(), []
    for p in parts:   # a package may come twice with two licences (hedgewars' voices and music)
        key = (p["package"], p["version"], p["licence"], p["author"])
        if key not in seen:
            seen.add(key)
            uniq.append(p)
    if not uniq:
        uniq = [GENERATED]
    source = "+".join(p["package"] for p in uniq)
    return build.row(path=path, label=label, kind=kind, group=group or source, start_s=0.0, duration_s=CLIP_S,
                     source_package=source,
                     version="+".join(p["version"] for p in uniq),
                     author=" / ".join(p["author"] for p in uniq),
                     licence=" + ".join(p["licence"] for p in uniq), generator="", **kw)


def render_unit(u: dict, out: Path, group: str, voice_meta: dict) -> list[dict]:
    """Write the clip(s) of one unit; returns their manifest rows (or a problem)."""
    rng = np.random.default_rng(u["seed"])
    problems: list[str] = []
    nm_path = f"gen/nomusic/{u['id']}.flac"
    parts, details = [], []
    refs = u.get("meta", {})
    speech = act = None
    if "voice" in u:
        speech, act = speech_track(out, u, rng)
        if not act.any():
            return [{"problem": f"{nm_path}: no usable phrase from {u['voice']}"}]
        parts.append(voice_meta[u["voice"]])
        details.append(("vocoded " if u["vocode"] else "natural ") + "speech"
                       + (", room" if u["room"] else ""))
        y = speech.copy()
        ref = mixing.rms(speech[act])
    else:
        y = np.zeros(N, np.float32)
        ref = None
    layers = u.get("fx") or u
    if isinstance(layers.get("events"), (list, dict)):
        ev = effects_layer(out, layers["events"], N, rng)
        if ref is None:
            y += ev
            ref = float(np.max(np.abs(ev))) or 1.0
            details.append("effects")
        else:
            y += ev / (mixing.rms(ev) + 1e-12) * ref * _db(layers["events_db"])
            details.append(f"effects {layers['events_db']:+.1f} dB")
        if isinstance(layers["events"], list):
            parts += [refs[r] for r in sorted(set(layers["events"]))]
        else:
            details.append("generated events")
    if layers.get("bed"):
        bed = bed_layer(out, layers["bed"], N, rng)
        db = layers.get("bed_db", 0.0)
        if ref is None:
            y += bed
        elif "voice" in u:
            y += bed * ref * _db(db)
        else:   # under effects: re the effects' RMS
            y += bed * mixing.rms(y) * _db(db)
        b = layers["bed"]
        if b["type"] == "loops":
            parts += [refs[r] for r in b["files"]]
        elif b["type"] == "babble":
            parts += [voice_meta[v] for v in b["voices"]]
        details.append(f"bed {b['type']}" + (f" {db:+.1f} dB" if ref is not None else ""))
    if u.get("floor"):
        fl = u["floor"]
        if "voice" in u:
            y += generated_bed(fl["type"], N, rng) * ref * _db(fl["db"])
            details.append(f"floor {fl['type']} {fl['db']:+.1f} dB")
        else:
            y += generated_bed(fl["type"], N, rng) * _db(fl["db"])
            details.append(f"floor {fl['type']} {fl['db']:.0f} dBFS")
    if "voice" in u:
        pass   # speech keeps its level (level_db)
    elif u["kind"] == "no_music_ambience":
        y = y / (mixing.rms(y) + 1e-12) * _db(u["rms_db"])
        details.append(f"{u['rms_db']:.0f} dBFS RMS")
    else:
        y = y / (np.max(np.abs(y)) + 1e-12) * _db(u["peak_db"])
    rows = []
    pair = None
    if u.get("pair"):
        pick = _pick_music(u, problems)
        if pick is None:
            problems.append(f"{nm_path}: no audible music candidate, no partner")
        else:
            e, music, dens = pick
            # The partner is this clip plus the music: mixing.mix would rescale the voice,
            # and the pair must keep identical speech samples; the level is as mix defines
            # it (music RMS over the clip re the speech RMS over its active part).
            gain = ref / mixing.rms(music) * _db(u["pair"]["music_db"])
            y1 = y + gain * music
            k = min(1.0, 0.98 / max(float(np.max(np.abs(y))), float(np.max(np.abs(y1)))))
            y, y1 = y * k, y1 * k
            pair = (e, y1, dens)
    if float(np.max(np.abs(y))) > 0.98:
        y = y * (0.98 / float(np.max(np.abs(y))))
    if float(np.max(np.abs(y))) <= _db(audio.SILENCE_DB + 6):
        return [{"problem": f"{nm_path}: all but silent, skipped"}] + [{"problem": p} for p in problems]
    voice = ";".join(([u["voice"]] if "voice" in u else [])
                     + (layers["bed"]["voices"] if layers.get("bed", {}).get("type") == "babble" else []))
    detail = "; ".join(details)
    p_path = f"gen/nomusic/{u['pair']['id']}.flac" if pair else ""
    build._write(out, nm_path, y)
    rows.append(_parts_row(nm_path, "no_music", u["kind"], group, parts, voice=voice,
                           detail=detail + (f"; partner:{p_path}" if pair else "")))
    if pair:
        e, y1, dens = pair
        build._write(out, p_path, y1)
        music_meta = {k: e[k] for k in ("package", "version", "licence", "author")}
        rows.append(_parts_row(p_path, "score", "score_under_speech", group, parts + [music_meta],
                               voice=voice, backing=e["path"], var_db=u["pair"]["music_db"],
                               density=dens,
                               detail=(f"partner:{nm_path}; music:{e['path']}@{e['start']} ({e['kind']})"
                                       f"; music re speech {u['pair']['music_db']:+.2f} dB; {detail}")))
    return rows + [{"problem": p} for p in problems]


def _digest(u: dict) -> str:
    return hashlib.sha1(json.dumps([RENDER_VERSION, u], sort_keys=True).encode()).hexdigest()


def render_batch(units: list[dict], out_dir: str, groups: list[str], voice_meta: dict,
                 force: bool = False) -> list[dict]:
    """Render ``units`` (reusing clips whose plan is unchanged unless ``force``)."""
    out = Path(out_dir)
    rows: list[dict] = []
    for u, g in zip(units, groups):
        side = out / "gen" / "nomusic" / ".rows" / (u["id"].replace("/", "_") + ".json")
        dig = _digest(dict(u, group=g))
        if not force and side.exists():
            cached = json.loads(side.read_text())
            if cached["digest"] == dig and all((out / r["path"]).exists() for r in cached["rows"]
                                               if "path" in r):
                rows.extend(cached["rows"])
                continue
        res = render_unit(u, out, g, voice_meta)
        side.parent.mkdir(parents=True, exist_ok=True)
        side.write_text(json.dumps(dict(digest=dig, rows=res)))
        rows.extend(res)
    return rows


# ----------------------------------------------------------------------------- the build
def voices_of(inv: dict) -> dict[str, list[str]]:
    voices = defaultdict(list)
    for rel, m in sorted(inv.items()):
        if "voice" in m["roles"]:
            voices[m["voice"]].append(rel)
    return dict(voices)


def assign_missing(cell_of_pkg: dict, inv: dict, cells: list) -> dict:
    """Cells for packages the corpus map lacks: each to the cell with the least no_music
    material so far (seconds of effects and ambience; ties to the lowest cell)."""
    load = {c: 0.0 for c in cells}
    missing = sorted({m["package"] for m in inv.values()} - set(cell_of_pkg))
    for m in inv.values():
        if m["package"] in cell_of_pkg and cell_of_pkg[m["package"]] in load and "voice" not in m["roles"]:
            load[cell_of_pkg[m["package"]]] += m["duration"]
    added = {}
    for p in missing:
        c = min(cells, key=lambda c: (load[c], str(c)))
        added[p] = c
        load[c] += sum(m["duration"] for m in inv.values() if m["package"] == p)
    return added


def assign_sound_cells(inv: dict, cells: list) -> dict:
    """Cells for the effects / ambience packages, one package to a cell where there are as
    many cells as packages, balanced by usable files otherwise (greedy, largest first; ties to
    the lowest cell).

    A package's sounds are a unit of their own, as a voice is, apart from the package's
    music: its cell need not be the cell of its score tracks. Held-out cells then hold out
    one sound package at a time and train on the others, the condition a shipped model meets
    on a new package; in 2026.12.05.2's corpus three of the five (colobot, freedroidrpg,
    hedgewars: 75% of the effects) shared their music's cell and were held out together.
    Sharing a package across roles cannot flatter a fold: its sounds are no_music and its
    music is score, so what one teaches about the package pulls the other the wrong way.
    """
    weight = Counter(m["package"] for m in inv.values() if _is_sound(m))  # as :func:`plan` draws
    load = {c: 0 for c in cells}
    out = {}
    for p in sorted(weight, key=lambda p: (-weight[p], p)):
        c = min(cells, key=lambda c: load[c])   # the first of the least loaded
        out[p] = c
        load[c] += weight[p]
    return out


def sound_cells_for(rule: str, inv: dict, cell_of_pkg: dict, cells: list) -> tuple[dict, dict]:
    """({sound package: cell}, {package: cell} assigned for want of a music cell) under
    ``rule`` (one of :data:`SOUND_CELLS`). ``cell_of_pkg`` (the music cells) is not changed."""
    _check_rule(rule)
    if rule == "package":
        return assign_sound_cells(inv, cells), {}
    assigned = assign_missing(cell_of_pkg, inv, cells)
    cells_of = {**cell_of_pkg, **assigned}
    return {p: cells_of[p] for p in sorted({m["package"] for m in inv.values() if _is_sound(m)})}, assigned


def _check_rule(rule: str) -> None:
    if rule not in SOUND_CELLS:
        raise ValueError(f"sound_cells must be one of {SOUND_CELLS}, not {rule!r}")


def check_roles(inv: dict, manifest: Path) -> None:
    """Refuse a sound file that is also score material in ``manifest`` (``corpus.build``'s
    manifest.csv): a package's sounds may have a cell apart from its music only if no file
    is both."""
    with open(manifest, newline="", encoding="utf-8") as fh:
        score = {r["path"] for r in csv.DictReader(fh) if r["label"] == "score"}
    both = sorted(set(inv) & score)
    if both:
        raise ValueError(f"{len(both)} file(s) are both score in {manifest.name} and "
                         f"effects / ambience: {both[:5]}")


def run(out: Path, units: list[dict], *, group_of, voice_meta: dict, jobs: int, force: bool) -> tuple[list, list]:
    """Render all units in batches (a voice's units together, to reuse its phrases)."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    from corpus.nomusic import render_batch as _render   # importable by the workers
    from corpus.numba_cache import warm_librosa_cache

    if units:
        warm_librosa_cache(log=log)   # workers must not race to compile librosa (numba#10128)

    by_key = defaultdict(list)
    for u in units:
        by_key[u.get("voice") or u["kind"]].append(u)
    batches = [us[k:k + 12] for us in by_key.values() for k in range(0, len(us), 12)]
    rows, problems = [], []
    with tqdm(total=len(units), desc="no_music", unit="unit", file=sys.stderr, disable=None) as bar:
        for res, b in zip(Parallel(n_jobs=jobs, return_as="generator")(
                delayed(_render)(b, str(out), [group_of(u) for u in b], voice_meta, force)
                for b in batches), batches):
            for r in res:
                (problems.append(r["problem"]) if "problem" in r else rows.append(r))
            bar.update(len(b))
    order = {}
    for i, u in enumerate(units):
        order[f"gen/nomusic/{u['id']}.flac"] = 2 * i
        if u.get("pair"):
            order[f"gen/nomusic/{u['pair']['id']}.flac"] = 2 * i + 1
    rows.sort(key=lambda r: order.get(r["path"], 1 << 40))
    return rows, problems


def write_outputs(out: Path, rows: list, summary: dict, manifest_name: str, summary_name: str) -> None:
    with open(out / manifest_name, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    (out / summary_name).write_text(json.dumps(summary, indent=1))


def summarise(rows: list, problems: list, dropped: list, seconds: float, **extra) -> dict:
    by_kind_cell = Counter((r["kind"], r["group"]) for r in rows)
    under = [r for r in rows if r["kind"] == "score_under_speech"]
    music_db = np.array([float(r["var_db"]) for r in under]) if under else np.zeros(0)
    return {
        "clips": len(rows),
        "by_label": dict(Counter(r["label"] for r in rows)),
        "by_kind": dict(Counter(r["kind"] for r in rows)),
        "by_kind_and_group": {f"{k}|{g}": n for (k, g), n in sorted(by_kind_cell.items())},
        "by_group": dict(sorted(Counter(r["group"] for r in rows).items())),
        "vocoded_speech": sum("vocoded speech" in r["detail"] for r in rows if r["label"] == "no_music"),
        "natural_speech": sum("natural speech" in r["detail"] for r in rows if r["label"] == "no_music"),
        "music_re_speech_db": ({"min": round(float(music_db.min()), 2), "max": round(float(music_db.max()), 2),
                                "below_-10": int((music_db < -10).sum()), "n": int(music_db.size)}
                               if music_db.size else {}),
        "backing_kinds": dict(Counter(re.search(r"\((\w+)\)", r["detail"]).group(1) for r in under)),
        "backing_density_tertiles": ([round(float(x), 3) for x in
                                      np.percentile([float(r["density"]) for r in under], [33, 67])]
                                     if under else []),
        "voices": sorted({v for r in rows for v in r["voice"].split(";") if v}),
        "licences": sorted({r["licence"] for r in rows}),
        "excluded": sorted(dropped, key=lambda d: (d["package"], d["path"])),
        "excluded_counts": dict(Counter(f"{d['package']}|{d['by']}" for d in dropped)),
        "problems": problems,
        "seconds": round(seconds, 1),
        **extra,
    }


#: How effects / ambience packages get their cells: ``"package"`` (a cell per sound package,
#: :func:`assign_sound_cells`) or ``"music"`` (the cell of the package's score tracks, as
#: model 2026.12.05.2's corpus was built).
SOUND_CELLS = ("package", "music")


def build_corpus(out: Path, *, jobs: int = 2, seed: int = 12, force: bool = False,
                 counts: dict | None = None, pairs: dict | None = None,
                 sound_cells: str = "package") -> dict:
    """Build the no_music clips of the training corpus in ``out`` (a built ``corpus.build``).

    ``sound_cells`` (one of :data:`SOUND_CELLS`) says how the effects and ambience packages
    are grouped; speech and the music laid under it keep the cells of ``summary.json``.
    """
    _check_rule(sound_cells)   # before any download
    t0 = time.time()
    counts = dict(COUNTS if counts is None else counts)
    pairs = dict(PAIRS if pairs is None else pairs)
    cmap = json.loads((out / "summary.json").read_text())
    voice_cell, cell_of_pkg = dict(cmap["voice_cells"]), dict(cmap["package_cells"])
    problems: list[str] = []
    fetched: dict = {}
    log("[1/4] inventory: voices, effects, ambience")
    voice_srcs = [s for s in SOURCES if s["role"] == "voice"]
    vinv, dropped = inventory(out, voice_srcs, problems, fetched)
    voices = voices_of(vinv)
    skipped = sorted(set(voices) - set(voice_cell))
    voices = {v: ps for v, ps in voices.items() if v in voice_cell}
    inv, dropped_fx = inventory(out, NOMUSIC_SOURCES, problems, fetched)
    dropped += dropped_fx
    log("[2/4] music screen")
    apply_screen(out, inv, dropped, jobs)
    for d in dropped:
        log(f"  excluded {d['path']} ({d['by']}): {d['why']}")
    cells = sorted(set(voice_cell.values()))
    check_roles(inv, out / "manifest.csv")
    sound_cell, assigned = sound_cells_for(sound_cells, inv, cell_of_pkg, cells)
    cell_of_pkg.update(assigned)
    music = music_pool(out / "manifest.csv", out, lambda r: int(r["group"].removeprefix("cell")))
    for c, es in music.items():
        bad = {e["package"] for e in es if cell_of_pkg.get(e["package"]) != c}
        if bad:
            problems.append(f"cell{c}: manifest score rows of {sorted(bad)} disagree with package_cells")
    log("[3/4] planning")
    units = plan(voices=voices, voice_cell=voice_cell, inv=inv, cell_of_pkg=sound_cell, music=music,
                 counts=counts, pairs=pairs, seed=seed)
    voice_meta = {v: {k: vinv[ps[0]][k] for k in ("package", "version", "licence", "author")}
                  for v, ps in voices.items()}
    log(f"[4/4] rendering {len(units)} units ({sum('pair' in u for u in units)} with a score partner)")
    rows, render_problems = run(out, units, group_of=lambda u: f"cell{u['cell']}", voice_meta=voice_meta,
                                jobs=jobs, force=force)
    problems += render_problems
    summary = summarise(rows, problems, dropped, time.time() - t0,
                        voices_without_cell=skipped, assigned_package_cells=assigned,
                        package_cells={p: c for p, c in sorted(cell_of_pkg.items())},
                        sound_cells_rule=sound_cells,
                        sound_cells={p: c for p, c in sorted(sound_cell.items())},
                        packages={p: v for p, (_, v) in sorted(fetched.items())},
                        seed=seed, counts_requested=counts, pairs_requested=pairs,
                        effects_files={c: {p: len(r) for p, r in pk.items()}
                                       for c, pk in _by_cell(inv, "effects", sound_cell).items()},
                        ambience_files={c: {p: len(r) for p, r in pk.items()}
                                        for c, pk in _by_cell(inv, "ambience", sound_cell).items()})
    write_outputs(out, rows, summary, "manifest.nomusic.csv", "summary.nomusic.json")
    log(json.dumps({k: summary[k] for k in ("clips", "by_label", "by_kind", "by_group", "seconds")}, indent=1))
    if problems:
        log(f"WARNING: {len(problems)} problem(s), see summary.nomusic.json")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.nomusic", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="the corpus folder (built by corpus.build), or with "
                                           "--external the test set's folder")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--force", action="store_true", help="re-render every clip")
    ap.add_argument("--external", action="store_true",
                    help="build the external no_music test set instead (corpus.nomusic_external)")
    ap.add_argument("--score-set", type=Path, default=None,
                    help="with --external: the external score set (corpus.external), default /work/external")
    ap.add_argument("--sound-cells", choices=SOUND_CELLS, default="package",
                    help="group effects / ambience by their own package (default) or put them in "
                         "their package's music cell (model 2026.12.05.2's corpus)")
    a = ap.parse_args(argv)
    if a.external:
        from . import nomusic_external

        s = nomusic_external.build_external(a.out, jobs=a.jobs, seed=a.seed, force=a.force,
                                            score_set=a.score_set)
    else:
        s = build_corpus(a.out, jobs=a.jobs, seed=a.seed, force=a.force, sound_cells=a.sound_cells)
    return 0 if s["clips"] else 1


if __name__ == "__main__":
    sys.exit(main())
