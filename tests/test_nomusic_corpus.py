"""corpus.nomusic offline: the grouping and pairing of the plan, and a rendered pair made of
short generated signals (no package, no download)."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("pedalboard")
pytest.importorskip("pyworld")

from corpus import nomusic as nm  # noqa: E402
from corpus.build import GEN_SR  # noqa: E402
from corpus.mixing import rms  # noqa: E402

COUNTS = {"no_music_speech": 6, "no_music_effects": 4, "no_music_ambience": 6, "no_music_speech_fx": 6}
PAIRS = {"no_music_speech": 5, "no_music_speech_fx": 3}


def _meta(pkg, role, **kw):
    return dict(package=pkg, version="1", licence="CC0-1.0", author=pkg, duration=1.0, roles=[role], **kw)


def _world(tmp_path=None):
    """Voices in two cells, effects only in cell 0, ambience only in cell 1, music in both."""
    voices = {f"v{c}{k}": [f"pkgs/voice{c}/v{c}{k}_{j}.wav" for j in range(6)] for c in (0, 1) for k in range(5)}
    voice_cell = {v: int(v[1]) for v in voices}
    inv = {f"pkgs/fx0/e{j}.wav": _meta("fx0", "effects", tonal=j < 3, steady=False) for j in range(8)}
    inv.update({f"pkgs/amb1/a{j}.wav": _meta("amb1", "ambience", tonal=False, steady=True) for j in range(3)})
    cell_of_pkg = {"fx0": 0, "amb1": 1, "m0": 0, "m1": 1}
    music = {c: [dict(path=f"pkgs/m{c}/t{j}.wav", start=0.0, root=str(tmp_path or "."), package=f"m{c}",
                      version="1", licence="CC0-1.0", author="m", kind="score") for j in range(4)]
             for c in (0, 1)}
    return voices, voice_cell, inv, cell_of_pkg, music


def _plan(seed=3, **kw):
    voices, voice_cell, inv, cell_of_pkg, music = _world(**kw)
    return nm.plan(voices=voices, voice_cell=voice_cell, inv=inv, cell_of_pkg=cell_of_pkg, music=music,
                   counts=COUNTS, pairs=PAIRS, seed=seed), voice_cell, inv, cell_of_pkg


def test_plan_keeps_every_part_of_a_clip_in_its_voices_cell():
    units, voice_cell, inv, cell_of_pkg = _plan()
    assert units == _plan()[0]                                    # same seed, same plan
    assert len({u["id"] for u in units}) == len(units)
    assert Counter_(u["kind"] for u in units) == COUNTS
    assert sum("pair" in u for u in units) == sum(PAIRS.values())
    for u in units:
        layer = u.get("fx") or u
        voices = ([u["voice"]] if "voice" in u else []) + layer.get("bed", {}).get("voices", [])
        assert all(voice_cell[v] == u["cell"] for v in voices), u["id"]
        files = (layer["events"] if isinstance(layer.get("events"), list) else []) \
            + layer.get("bed", {}).get("files", [])
        assert all(cell_of_pkg[inv[f]["package"]] == u["cell"] for f in files), u["id"]
        assert set(u["meta"]) == set(files)
        if "pair" in u:
            assert u["kind"] in ("no_music_speech", "no_music_speech_fx")
            assert {cell_of_pkg[e["package"]] for e in u["pair"]["candidates"]} == {u["cell"]}
            assert -20 <= u["pair"]["music_db"] <= 10
        if isinstance(layer.get("events"), list):                  # at most two different beeps
            assert len({f for f in layer["events"] if inv[f]["tonal"]}) <= 2


def Counter_(it):
    from collections import Counter

    return dict(Counter(it))


def test_music_screen_rules():
    melodic = dict(dur=1.5, hshare=0.9, level_sd=6.0, notes=[(60, 0.2), (64, 0.2), (67, 0.3), (72, 0.3)])
    chime = dict(dur=1.0, hshare=0.95, level_sd=6.0, notes=[(65, 0.4), (48, 0.4)])
    beep = dict(dur=0.3, hshare=0.99, level_sd=3.0, notes=[(74, 0.2)])
    engine = dict(dur=2.0, hshare=0.9, level_sd=2.0, notes=[(44, 0.5), (43, 0.3), (44, 0.6)])
    crackle = dict(dur=1.0, hshare=0.2, level_sd=8.0, notes=[(60, 0.1), (63, 0.1), (58, 0.1), (62, 0.1)])
    assert nm.classify(melodic)[0].startswith("melodic")
    assert nm.classify(chime)[0].startswith("chime")
    assert nm.classify(beep) == (None, True, False)
    assert nm.classify(engine) == (None, True, True)
    assert nm.classify(crackle)[0] is None


def _syllables(rng, n=6):
    t = np.arange(int(0.5 * GEN_SR)) / GEN_SR
    f0 = rng.uniform(100, 220)
    y = sum(np.sin(2 * np.pi * f0 * h * t * (1 + 0.1 * t)) / h for h in range(1, 6))
    return (0.3 * y * np.hanning(t.size)).astype(np.float32)


def test_rendered_pair_is_the_same_speech_with_music_at_the_drawn_level(tmp_path):
    rng = np.random.default_rng(0)
    units, voice_cell, inv, _ = _plan(tmp_path=tmp_path)
    for rel in {p for u in units for p in u.get("phrases", [])}:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, _syllables(rng), GEN_SR)
    for c in (0, 1):
        t = np.arange(25 * GEN_SR) / GEN_SR
        for j in range(4):
            (tmp_path / f"pkgs/m{c}").mkdir(parents=True, exist_ok=True)
            chord = sum(np.sin(2 * np.pi * f * t) for f in (220 * (j + 1), 277, 330)) * 0.1
            sf.write(tmp_path / f"pkgs/m{c}/t{j}.wav", chord.astype(np.float32), GEN_SR)
    u = next(u for u in units if u["kind"] == "no_music_speech" and "pair" in u)
    u = dict(u, floor=None, room=False, vocode=False)
    vm = {v: dict(package=f"voice{c}", version="1", licence="CC0-1.0", author="x") for v, c in voice_cell.items()}
    rows = nm.render_batch([u], str(tmp_path), [f"cell{u['cell']}"], vm)
    assert [r["label"] for r in rows] == ["no_music", "score"]
    nm_row, sc_row = rows
    assert nm_row["detail"].endswith(f"partner:{sc_row['path']}") and nm_row["path"] in sc_row["detail"]
    assert nm_row["group"] == sc_row["group"] == f"cell{u['cell']}"
    assert sc_row["source_package"].endswith(f"+m{u['cell']}") and sc_row["licence"] == "CC0-1.0 + CC0-1.0"
    y0, _ = sf.read(tmp_path / nm_row["path"], dtype="float32")
    y1, _ = sf.read(tmp_path / sc_row["path"], dtype="float32")
    speech, act = nm.speech_track(tmp_path, u, np.random.default_rng(u["seed"]))
    k = float(np.dot(y0, speech) / np.dot(speech, speech))          # the pair's common scale
    assert np.max(np.abs(y0 - k * speech)) < 1e-3                   # the no_music clip is the speech
    music = y1 - y0
    ratio_db = 20 * np.log10(rms(music) / rms(k * speech[act]))
    assert ratio_db == pytest.approx(float(sc_row["var_db"]), abs=0.1)
    # a second run reuses the clips; a forced one rewrites the same samples
    assert nm.render_batch([u], str(tmp_path), [f"cell{u['cell']}"], vm) == rows
    nm.render_batch([u], str(tmp_path), [f"cell{u['cell']}"], vm, force=True)
    assert np.array_equal(sf.read(tmp_path / sc_row["path"], dtype="float32")[0], y1)


def _sounds(counts: dict, role="effects") -> dict:
    return {f"pkgs/{p}/s{j}.wav": _meta(p, role) for p, n in counts.items() for j in range(n)}


def test_sound_cells_give_each_sound_package_a_cell_of_its_own():
    # The training corpus's case (usable files per package, loops being some of the same
    # files): five sound packages, five cells, three of them sharing one music cell.
    inv = _sounds({"hedgewars": 71, "colobot": 68, "hyperrogue": 56, "freedroid": 51, "sonicpi": 9})
    for j in range(3):   # loops that are effects too count once
        inv[f"pkgs/colobot/s{j}.wav"]["roles"] = ["ambience", "effects"]
    cells = [0, 1, 2, 3, 4]
    got = nm.assign_sound_cells(inv, cells)
    assert got == {"hedgewars": 0, "colobot": 1, "hyperrogue": 2, "freedroid": 3, "sonicpi": 4}
    assert nm.assign_sound_cells(dict(reversed(list(inv.items()))), cells) == got   # order-free
    assert nm.assign_sound_cells(inv, [4, 3, 2, 1, 0])["hedgewars"] == 4   # ties: first given cell


def test_sound_cells_balance_files_when_packages_outnumber_cells():
    counts = {"a": 40, "b": 35, "c": 20, "d": 18, "e": 9, "f": 7, "g": 3}
    inv = _sounds(counts)
    inv.update(_sounds({"amb": 12}, role="ambience"))
    got = nm.assign_sound_cells(inv, ["x", "y", "z"])
    # greedy, largest first (a b c d amb e f g), each to the first least loaded cell:
    # a->x 40, b->y 35, c->z 20, d->z 38, amb->y 47, e->z 47, f->x 47, g->x 50
    assert got == {"a": "x", "b": "y", "c": "z", "d": "z", "amb": "y", "e": "z", "f": "x", "g": "x"}


def test_sound_cells_rules():
    inv = _sounds({"fx0": 5, "fx1": 3})
    music_cells = {"fx0": 1, "m0": 0}          # fx1 has no music, so no music cell
    got, assigned = nm.sound_cells_for("package", inv, music_cells, [0, 1])
    assert (got, assigned) == ({"fx0": 0, "fx1": 1}, {})
    got, assigned = nm.sound_cells_for("music", inv, music_cells, [0, 1])
    assert got == {"fx0": 1, "fx1": assigned["fx1"]} and set(assigned) == {"fx1"}
    assert music_cells == {"fx0": 1, "m0": 0}  # not changed in place
    with pytest.raises(ValueError, match="sound_cells"):
        nm.sound_cells_for("voice", inv, music_cells, [0, 1])


def test_a_sound_file_that_is_also_score_is_refused(tmp_path):
    inv = _sounds({"fx0": 2})
    man = tmp_path / "manifest.csv"
    man.write_text("path,label\npkgs/other/t.ogg,score\npkgs/fx0/s1.wav,song\n")
    nm.check_roles(inv, man)                    # a song row is not score material
    man.write_text("path,label\npkgs/fx0/s1.wav,score\n")
    with pytest.raises(ValueError, match="both score"):
        nm.check_roles(inv, man)


def test_plan_with_sound_cells_keeps_effects_apart_from_their_music_cell():
    # fx0's sounds may sit in cell 1 although its music would be cell 0: a clip of cell 1
    # then takes fx0's effects, and its score partner still takes cell 1's music.
    voices, voice_cell, inv, cell_of_pkg, music = _world()
    sound = {"fx0": 1, "amb1": 0}
    units = nm.plan(voices=voices, voice_cell=voice_cell, inv=inv, cell_of_pkg=sound, music=music,
                    counts=COUNTS, pairs=PAIRS, seed=3)
    fx_units = [u for u in units if u["kind"] == "no_music_effects"]
    assert fx_units and all(u["cell"] == 1 for u in fx_units)
    for u in units:
        layer = u.get("fx") or u
        files = (layer["events"] if isinstance(layer.get("events"), list) else []) \
            + layer.get("bed", {}).get("files", [])
        assert all(sound[inv[f]["package"]] == u["cell"] for f in files), u["id"]
        if "pair" in u:
            assert {e["package"] for e in u["pair"]["candidates"]} == {f"m{u['cell']}"}


def test_build_corpus_refuses_an_unknown_sound_cells_rule(tmp_path):
    with pytest.raises(ValueError, match="sound_cells"):
        nm.build_corpus(tmp_path, sound_cells="voice")


def test_pitch_screen_takes_the_pinned_profiles_whatever_this_machine_measures(tmp_path, monkeypatch):
    """The screen's music / tonal calls come from corpus/nomusic_screen.json, not from this
    CPU's pYIN: with numpy's AVX-512 loops, freedroidrpg's Item_Drop_Sound_2 measures a
    0.12-s note (not tonal) instead of the pinned 0.19 s (tonal), and the plan's draws
    change for 880 of the 1,350 units. A file of another size (another package version) is
    measured as before."""
    import json

    import corpus.numba_cache

    pinned = json.loads(nm.PINNED_SCREEN.read_text())
    rel = "pkgs/freedroidrpg-data/usr/share/freedroidrpg/data/sound/effects/item_sounds/Item_Drop_Sound_2.ogg"
    size = int(pinned[rel]["key"].split(":")[1])
    other = "pkgs/x/new.ogg"
    for r, n in ((rel, size), (other, 1000)):
        (tmp_path / r).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / r).write_bytes(b"\0" * n)   # only the size is read
    # A cache written on another machine, and a pYIN that hears the other CPU's note.
    stale = dict(pinned[rel], notes=[[83.19, 0.116]])
    (tmp_path / "gen" / "nomusic").mkdir(parents=True)
    (tmp_path / "gen" / "nomusic" / "screen.json").write_text(json.dumps({rel: stale}))
    measured = []
    monkeypatch.setattr(nm, "pitch_profile", lambda path: measured.append(path) or
                        dict(dur=0.187, hshare=0.939, notes=[(83.19, 0.116)], active_s=0.1, level_sd=2.0))
    monkeypatch.setattr(corpus.numba_cache, "warm_librosa_cache", lambda **kw: None)
    prof = nm.screen(tmp_path, [rel, other], jobs=1)
    assert measured == [str(tmp_path / other)]
    assert prof[rel] == pinned[rel]
    assert nm.classify(prof[rel]) == (None, True, False)      # the pinned call: tonal
    assert nm.classify(prof[other])[1] is False               # this machine's call: not tonal
