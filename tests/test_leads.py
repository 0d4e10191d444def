"""corpus.leads: instrument leads as score partners (short generated signals, no corpus)."""

import csv

import numpy as np
import pytest

pytest.importorskip("pyworld")
pytest.importorskip("scipy")

from corpus import build, leads, select, singing  # noqa: E402

SR = leads.GEN_SR
TUNES = [{"id": "t1", "phrases": [[(60, 1.0), (62, 1.0), (64, 2.0)], [(65, 1.0), (64, 1.0), (62, 1.0), (60, 2.0)]]},
         {"id": "t2", "phrases": [[(67, 0.5), (65, 0.5), (64, 1.0), (None, 1.0), (62, 2.0)]]}]


def test_line_f0_follows_notes_and_rests():
    rng = np.random.default_rng(0)
    events = [[None, 2, None], [60, 4, "a"], [64, 4, "a"], [None, 4, None], [67, 8, "a"]]
    eighth = 0.25
    f0, note_of, spans = leads.line_f0(events, eighth, rng, vibrato_share=1.0)
    s16 = eighth / 2
    expected = int(round(sum(max(1, int(round(e[1] * s16 / singing.FRAME_S))) for e in events) * singing.FRAME_S * SR))
    assert abs(f0.size - expected) <= 1
    assert len(spans) == 3
    assert np.all(f0[note_of < 0] == 0) and np.all(f0[note_of >= 0] > 0)
    # each note's median pitch is its MIDI note within 30 cents (vibrato and scoops aside)
    for (a, b), m in zip(spans, [60, 64, 67]):
        med = np.median(f0[a:b])
        assert abs(1200 * np.log2(med / (440 * 2 ** ((m - 69) / 12)))) < 30


@pytest.mark.parametrize("name", sorted(leads.INSTRUMENTS))
def test_synthesis_is_finite_band_limited_and_silent_in_rests(name):
    rng = np.random.default_rng(1)
    inst = dict(leads.INSTRUMENTS[name], noise=None)  # the harmonic part (noise: below)
    n = SR  # 1 s
    f0 = np.zeros(n)
    f0[: n // 2] = 440.0 * 2 ** ((np.mean(inst["range"]) - 69) / 12)
    env = leads.note_envelope([(0, n // 2)], n, inst, rng)
    y = leads.synthesize(f0, env, inst, rng)
    assert y.dtype == np.float32 and np.all(np.isfinite(y))
    assert np.sqrt(np.mean(y[: n // 2] ** 2)) > 1e-3
    # after the note (and the filters' tails) the line is silent
    assert np.max(np.abs(y[n // 2 + SR // 10:])) < 1e-3
    spec = np.abs(np.fft.rfft(y[: n // 2]))
    f = np.fft.rfftfreq(n // 2, 1 / SR)
    assert spec[f > 0.46 * SR].sum() < 1e-3 * spec.sum()


def test_note_envelope_attacks_and_releases():
    inst = leads.INSTRUMENTS["violin"]
    rng = np.random.default_rng(2)
    env = leads.note_envelope([(0, SR // 2), (SR, SR + SR // 4)], 2 * SR, inst, rng)
    assert env[0] == 0.0 and env.max() <= 1.0
    assert np.all(env[SR // 2: SR] == 0)  # nothing between the notes
    assert env[SR // 4] > 0.3


def test_render_lead_over_a_backing():
    pytest.importorskip("pedalboard")
    rng = np.random.default_rng(3)
    t = np.arange(int(build.CLIP_S * SR)) / SR
    clicks = (np.sin(2 * np.pi * 2 * t) > 0.99).astype(np.float32)  # a 120-bpm pulse
    backing = (0.1 * np.sin(2 * np.pi * 220 * t) + 0.3 * clicks).astype(np.float32)
    y, act, info = leads.render_lead(backing, "flute", rng, TUNES)
    assert y.shape == backing.shape and act.shape == backing.shape
    assert 0.3 < act.mean() < 1.0
    assert info["instrument"] == "flute" and info["tunes"]
    assert np.all(np.isfinite(y)) and np.sqrt(np.mean(y[act] ** 2)) > 10 * np.sqrt(np.mean(y[~act][: SR // 4] ** 2) + 1e-12)


def test_plan_draws_a_share_of_song_triplets(tmp_path):
    fields = build.FIELDS
    rows = []
    for i in range(200):
        rows.append(build.row(path=f"gen/song/{i:05d}.flac", label="song", kind="song_constructed",
                              group=f"cell{i % 5}", var_db=0.0))
        rows.append(build.row(path=f"gen/speech/{i:05d}.flac", label="score", kind="score_speech"))
        rows.append(build.row(path=f"gen/song/sinsy{i:05d}.flac", label="song", kind="song_constructed",
                              group=f"cell{i % 5}", var_db=0.0))
    rows.append(build.row(path="gen/acappella/00000.flac", label="song", kind="song_acappella"))
    man = tmp_path / "manifest.csv"
    with open(man, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    units = leads.plan(man, share=0.5, seed=7)
    assert 160 <= len(units) <= 240  # of 400 triplets
    # every stem family is drawn alike (long stems that share a prefix included)
    sinsy = sum(u["stem"].startswith("sinsy") for u in units)
    assert 0.35 < sinsy / len(units) < 0.65
    assert all(u["song"]["kind"] == "song_constructed" for u in units)
    assert units == leads.plan(man, share=0.5, seed=7)  # deterministic
    assert {u["instrument"] for u in units} <= set(leads.INSTRUMENTS)
    assert len(leads.plan(man, share=1.0, seed=7)) == 400 and not leads.plan(man, share=0.0, seed=7)
    # a larger share keeps every triplet of a smaller one (one draw per triplet)
    small = {u["stem"] for u in leads.plan(man, share=0.3, seed=7)}
    assert small <= {u["stem"] for u in units}


def test_select_appends_leads(tmp_path):
    fields = build.FIELDS
    def write(name, rows):
        with open(tmp_path / name, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    write("manifest.csv", [build.row(path="a.flac", label="score", kind="score"),
                           build.row(path="s.flac", label="song", kind="song_constructed", generator="rap")])
    write("manifest.leads.csv", [build.row(path="gen/lead/x.flac", label="score", kind="score_lead")])
    out = select.select(tmp_path, ["sinsy"], out="m.csv", leads=True)
    kinds = [r["kind"] for r in csv.DictReader(open(out))]
    assert kinds == ["score", "score_lead"]


def test_breath_noise_is_added_where_the_instrument_has_it():
    rng = np.random.default_rng(4)
    n = SR // 2
    f0 = np.full(n, 880.0)
    env = np.ones(n)
    inst = leads.INSTRUMENTS["flute"]
    clean = leads.synthesize(f0, env, dict(inst, noise=None), np.random.default_rng(4))
    noisy = leads.synthesize(f0, env, inst, rng)
    f = np.fft.rfftfreq(n, 1 / SR)
    between = (f > 1000) & (f < 9000) & (np.abs(((f + 440) % 880) - 440) > 100)  # off the harmonics
    assert np.abs(np.fft.rfft(noisy))[between].mean() > 3 * np.abs(np.fft.rfft(clean))[between].mean()


def test_every_note_keeps_its_harmonics_up_to_the_top():
    """A two-note line: the low note's harmonics reach HARMONIC_TOP_HZ, not a count set by
    the high note (render version 1 stopped them at 9 kHz / 2 here)."""
    inst = dict(leads.INSTRUMENTS["violin"], noise=None)
    n = SR
    f0 = np.where(np.arange(n) < n // 2, 220.0, 880.0)
    y = leads.synthesize(f0, np.ones(n), inst, np.random.default_rng(5))
    seg = y[SR // 10: n // 2 - SR // 10]
    spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size)))
    f = np.fft.rfftfreq(seg.size, 1 / SR)
    near = lambda hz: spec[(f > hz - 30) & (f < hz + 30)].max()  # noqa: E731
    floor = np.median(spec)
    assert near(220.0 * 30) > 100 * floor  # 6.6 kHz: above 9000 // 880 = 10 harmonics of 220 Hz
    assert near(220.0 * 45) < 10 * floor or 220.0 * 45 >= leads.HARMONIC_TOP_HZ


def test_rows_take_the_backing_rows_provenance_and_reuse_matching_clips(tmp_path, monkeypatch):
    song = build.row(path="gen/song/00007.flac", label="song", kind="song_constructed", group="cell2",
                     source_package="voicepack+pushover-data", version="1.0-1+0.0.5+git20180909-4",
                     author="Voice / Backing author", licence="GPL-2+ + GPL-3+", backing="pkgs/x.ogg",
                     var_db=1.5, density=0.4)
    bed = build.row(path="gen/backing/00007.flac", label="score", kind="score", group="cell2",
                    source_package="pushover-data", version="0.0.5+git20180909-4",
                    author="Backing author", licence="GPL-3+")
    u = dict(song=song, stem="00007", instrument="flute", seed=11, backing_row=bed)
    row = leads.lead_row(u, "flute lead")
    assert row["version"] == f"corpus.leads r{leads.RENDER_VERSION}+0.0.5+git20180909-4"
    assert row["source_package"] == "generated+pushover-data" and row["licence"] == "GPL-3+"
    assert row["group"] == "cell2" and row["var_db"] == 1.5 and row["kind"] == "score_lead"
    # a clip with a matching sidecar is reused without rendering; a mismatch renders again
    clip = tmp_path / "gen/lead/00007.flac"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(b"x")
    meta = tmp_path / "gen/lead/.meta/00007.json"
    meta.parent.mkdir(parents=True)
    import json
    meta.write_text(json.dumps(dict(instrument="flute", seed=11, render_version=leads.RENDER_VERSION,
                                    detail="flute lead (kept)")))
    monkeypatch.setattr(leads.sinsy_voice, "melodies", lambda *a, **k: TUNES)
    monkeypatch.setattr(leads, "render_lead", lambda *a, **k: pytest.fail("rendered a kept clip"))
    rows = leads.render_units([u], str(tmp_path), force=False)
    assert rows[0]["detail"] == "flute lead (kept)"
    u2 = dict(u, seed=12)  # another draw: the kept file no longer matches, so it is rendered
    # (here it gets as far as reading its backing clip, which this folder does not hold)
    again = leads.render_units([u2], str(tmp_path), force=False)
    assert "gen/backing/00007.flac" in again[0]["problem"]
    assert "gen/backing/00007.flac" in leads.render_units([u], str(tmp_path), force=True)[0]["problem"]
    assert leads.render_units([dict(u, backing_row=None)], str(tmp_path), force=False)[0]["problem"]
