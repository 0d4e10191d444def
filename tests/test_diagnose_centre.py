"""corpus.diagnose_centre's centre extraction keeps what is equal in both channels and drops
what is panned hard or in anti-phase; a mono input passes unchanged; the summary counts what
it says. Tolerances: the STFT's edges (one window at each end) are left out of level checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from corpus.diagnose_centre import N_FFT, centre_only, summarise

SR = 22050
T = np.arange(2 * SR) / SR
MID = slice(N_FFT, -N_FFT)


def db(x):
    return 10 * np.log10(np.mean(np.square(x[MID])) + 1e-20)


def test_mono_passes_unchanged():
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    np.testing.assert_array_equal(centre_only(y, SR), y)
    np.testing.assert_array_equal(centre_only(y[None, :], SR), y)


def test_centre_is_kept_and_hard_panned_or_antiphase_content_dropped():
    voice = 0.3 * np.sin(2 * np.pi * 440 * T)
    guitar = 0.3 * np.sin(2 * np.pi * 196 * T)
    # The same signal in both channels is the mid itself: kept to within 0.1 dB, same shape.
    both = centre_only(np.stack([voice, voice]), SR)
    assert db(both) == pytest.approx(db(voice), abs=0.1)
    assert np.corrcoef(both[MID], voice[MID])[0, 1] > 0.999
    # Hard left: |M| = |S|, so nothing is left (below -40 dB of the input).
    assert db(centre_only(np.stack([guitar, 0 * guitar]), SR)) < db(guitar) - 40
    # Anti-phase (L = -R): the mid is zero.
    assert db(centre_only(np.stack([guitar, -guitar]), SR)) < db(guitar) - 40
    # A centred voice with a hard-left guitar at another pitch: the voice survives (its
    # bins hold no side), the guitar's bins are emptied.
    mix = centre_only(np.stack([voice + guitar, voice]), SR)
    spec = np.abs(np.fft.rfft(mix[MID]))
    f = np.fft.rfftfreq(mix[MID].size, 1 / SR)
    at = lambda hz: spec[np.argmin(np.abs(f - hz))]  # noqa: E731
    assert at(440) > 100 * at(196)


def test_summary_counts_and_skips_failures():
    rows = [{"label": "song", "group": "a"}, {"label": "song", "group": "a"},
            {"label": "score", "group": "b"}, {"label": "score", "group": "b"}]
    v = {"as_is_voiced": 0.1, "centre_voiced": 0.4}
    scores = [{"channels": 2, "as_is": 0.05, "centre": 0.6, **v},
              {"channels": 2, "as_is": 0.2, "centre": 0.3, **v},
              {"channels": 2, "as_is": 0.01, "centre": 0.15, **v},
              {"error": "CorruptAudioError: x"}]
    s = summarise(rows, scores, 0.1)
    assert s["failed"] == 1
    assert (s["as_is"]["songs_found"], s["centre"]["songs_found"]) == (1, 2)
    assert (s["as_is"]["score_called_song"], s["centre"]["score_called_song"]) == (0, 1)
    assert s["as_is"]["roc_auc"] == 1.0 and s["centre"]["roc_auc"] == 1.0
    a = next(g for g in s["groups"] if g["group"] == "a")
    assert a["n"] == 2 and a["centre"]["median"] == pytest.approx(0.45)
    assert a["centre"]["voiced_median"] == pytest.approx(0.4)
    assert s["ways"] == ["as_is", "centre"]      # only the ways every score has


def test_downmix_way_is_scored_and_rendered(tmp_path, tiny_model):
    """score_item scores the channel average too; a mono file gives three equal scores."""
    import soundfile as sf

    from corpus.diagnose_centre import render, score_item

    sr = 16000
    t = np.arange(6 * sr) / sr
    y = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(tmp_path / "m.wav", y, sr)
    out = score_item(tmp_path / "m.wav", model=str(tiny_model[0]))
    assert "error" not in out, out
    assert out["as_is"] == pytest.approx(out["downmix"]) == pytest.approx(out["centre"], abs=1e-3)
    rows = [{"label": "song", "group": "a"}, {"label": "score", "group": "b"}]
    scores = [dict(out, channels=1), dict(out, channels=1)]
    text = render({"set": summarise(rows, scores, 0.5)}, "v")
    assert "| downmix |" in text and "as is → downmix → centre only" in text


def _manifest(path, rows):
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_centre_copy_replaces_stereo_excerpts_and_keeps_the_rest(tmp_path, monkeypatch):
    import csv

    import soundfile as sf

    from corpus.diagnose_centre import centre_copy

    voice = (0.3 * np.sin(2 * np.pi * 440 * T)).astype(np.float32)
    guitar = (0.3 * np.sin(2 * np.pi * 196 * T)).astype(np.float32)
    late = np.where(T >= 0.5, voice, 0).astype(np.float32)      # the voice starts at 0.5 s
    sf.write(tmp_path / "stereo.wav", np.stack([late + guitar, late], axis=1), SR)
    sf.write(tmp_path / "mono.wav", voice, SR)
    sf.write(tmp_path / "surround.wav", np.stack([voice] * 6, axis=1), SR)
    sf.write(tmp_path / "short.wav", np.stack([voice[:1000], voice[:1000]], axis=1), SR)
    rows = [{"path": "stereo.wav", "label": "song", "group": "g1", "start_s": "0.5", "duration_s": "1.0"},
            {"path": "mono.wav", "label": "score", "group": "g2", "start_s": "0.0", "duration_s": "1.0"},
            {"path": "missing.wav", "label": "score", "group": "g3", "start_s": "", "duration_s": ""},
            {"path": "surround.wav", "label": "score", "group": "g4", "start_s": "", "duration_s": ""},
            {"path": "short.wav", "label": "score", "group": "g5", "start_s": "", "duration_s": ""}]
    _manifest(tmp_path / "manifest.csv", rows)
    monkeypatch.chdir(tmp_path)                      # relative arguments, as on a command line
    dest, counts = centre_copy(Path("manifest.csv"), Path("out"), jobs=1)
    new = list(csv.DictReader(open(dest)))
    assert [r["label"] for r in new] == ["song", "score", "score", "score", "score"]
    assert [r["group"] for r in new] == ["g1", "g2", "g3", "g4", "g5"]
    assert all(Path(r["path"]).is_absolute() and (Path(r["path"]).exists() or "missing" in r["path"])
               for r in new)
    # The stereo excerpt became its own clip: the 1 s from 0.5 s (the voice throughout: an
    # excerpt from 0 would begin with 0.5 s of silence), centre only (the guitar gone).
    clip, sr = sf.read(new[0]["path"])
    assert sr == SR and clip.ndim == 1 and clip.size == SR
    assert (new[0]["start_s"], new[0]["duration_s"]) == ("", "")
    assert np.abs(clip[: SR // 4]).max() > 0.2
    spec = np.abs(np.fft.rfft(clip[N_FFT:-N_FFT]))
    f = np.fft.rfftfreq(clip[N_FFT:-N_FFT].size, 1 / SR)
    assert spec[np.argmin(np.abs(f - 440))] > 100 * spec[np.argmin(np.abs(f - 196))]
    # Mono, unreadable, six-channel and too-short rows keep their file and excerpt.
    assert new[1]["path"] == str(tmp_path / "mono.wav") and new[1]["start_s"] == "0.0"
    assert [new[i]["path"] for i in (2, 3, 4)] == [str(tmp_path / n) for n in
                                                  ("missing.wav", "surround.wav", "short.wav")]
    assert counts["centre"] == 1 and counts["mono"] == 1
    kept = sorted(k for k in counts if k.startswith("kept"))
    assert len(kept) == 3 and any("6 channels" in k for k in kept) and any("window" in k for k in kept)


def test_centre_copy_of_a_manifest_without_excerpt_columns(tmp_path):
    import csv

    import soundfile as sf

    from corpus.diagnose_centre import centre_copy

    voice = (0.3 * np.sin(2 * np.pi * 440 * T)).astype(np.float32)
    sf.write(tmp_path / "a.wav", np.stack([voice, voice], axis=1), SR)
    _manifest(tmp_path / "m.csv", [{"path": "a.wav", "label": "song", "group": "g"}])
    dest, counts = centre_copy(tmp_path / "m.csv", tmp_path / "out", jobs=1)
    (row,) = list(csv.DictReader(open(dest)))
    assert set(row) == {"path", "label", "group"} and counts == {"centre": 1}


def test_centre_only_refuses_what_it_cannot_do():
    y = np.zeros((2, 4 * N_FFT), np.float32)
    with pytest.raises(ValueError, match="y.T"):
        centre_only(y.T, SR)
    with pytest.raises(ValueError, match="3 channels"):
        centre_only(np.zeros((3, 4 * N_FFT), np.float32), SR)
    with pytest.raises(ValueError, match="window"):
        centre_only(np.zeros((2, 100), np.float32), SR)


def test_summary_of_a_set_where_everything_failed():
    s = summarise([{"label": "song", "group": "a"}], [{"error": "EmptyAudioError: x"}], 0.1)
    assert s == {"items": 1, "failed": 1, "threshold": 0.1, "groups": []}
