"""Offline tests of corpus.festival_eval's score writer and mixing (no festival needed)."""

import re

import numpy as np
import pytest

fe = pytest.importorskip("corpus.festival_eval")
from corpus.mixing import rms  # noqa: E402


def _tune():
    notes = [[60, 1.0], [62, 0.5], [64, 0.5], [None, 1.0], [65, 1.0], [67, 2.0], [65, 0.5],
             [64, 0.5], [62, 1.0], [60, 2.0]]
    return {"title": "test air", "notes": notes}


def test_note_name_uses_festivals_octaves():
    assert fe.note_name(69) == "A5"        # singing-mode.scm: A5 = 440 Hz = MIDI 69
    assert fe.note_name(60) == "C5"
    assert fe.note_name(61) == "C#5"


def test_plan_gives_every_syllable_a_note_and_stays_in_range():
    lyrics = ["the water is wide", "and neither have i wings to fly"]
    counts = {w: 1 for line in lyrics for w in line.split()} | {"water": 2, "neither": 2}
    for seed in range(20):
        song = fe.plan_song(np.random.default_rng(seed), _tune(), lyrics, counts, centre=52)
        for word, syls in song.events:
            if word is not None:
                assert len(syls) == counts[word]
        assert 0.3 <= song.quarter_s <= 1.0
        assert song.seconds() <= 18.5 or len(song.lines) == 1
        assert abs(song.transpose - (52 - 64)) <= 2      # the tune's median (64) to 52, ±2


def test_xml_beats_and_notes_match_per_word():
    song = fe.plan_song(np.random.default_rng(0), _tune(), ["the water is wide"],
                        {"the": 1, "water": 2, "is": 1, "wide": 1}, centre=52)
    xml = fe.song_xml(song)
    assert xml.startswith('<?xml version="1.0"?>') and "</SINGING>" in xml
    bpm = float(re.search(r'BPM="([\d.]+)"', xml).group(1))
    assert bpm == pytest.approx(50.0 / song.quarter_s, rel=1e-3)
    for beats, notes, word in re.findall(r'BEATS="([^"]+)"><PITCH NOTE="([^"]+)">(\w+)<', xml):
        assert beats.count(",") == notes.count(",")           # one entry per syllable
        assert beats.count("+") == notes.count("+")           # melisma notes paired
    total = sum(float(b) for m in re.findall(r'BEATS="([^"]+)"', xml) for b in re.split("[,+]", m))
    assert total * 50.0 / bpm == pytest.approx(song.seconds(), rel=1e-3)


def test_mix_sets_the_vocal_to_accompaniment_ratio():
    rng = np.random.default_rng(1)
    n = fe.SR * 4
    back = 0.05 * rng.standard_normal(n)                  # quiet: no mix is rescaled
    voc = np.zeros(n)
    voc[n // 4: n // 2] = 0.3 * np.sin(2 * np.pi * 220 * np.arange(n // 4) / fe.SR)
    act = fe.active_mask(voc)
    for var in fe.VAR_DB:
        y = fe.mix_at(back, voc, var)
        assert np.max(np.abs(y)) < 0.98
        assert 20 * np.log10(rms((y - back)[act]) / rms(back)) == pytest.approx(var, abs=0.05)


def test_render_checks_and_production_stay_finite():
    sr = 16000
    assert fe.render_problem(np.zeros(100), sr).startswith("empty")
    assert fe.render_problem(np.full(sr, np.nan), sr) == "not finite"
    assert fe.render_problem(np.zeros(sr), sr) == "silent"
    clipped = np.sin(np.linspace(0, 200, sr)) * 2
    assert fe.render_problem(np.clip(clipped, -1, 1), sr) == "clipped"
    ok = 0.5 * np.sin(np.linspace(0, 2000, sr))
    assert fe.render_problem(ok, sr) is None
    y = fe.produce(fe.to_sr(ok, sr), np.random.default_rng(0))
    assert np.all(np.isfinite(y)) and rms(y) > 0
