"""End to end: build a tiny corpus from real Debian packages (real download, no mocks).

One small score package (pushover-data, 32 MB) and one voice pack (asterisk-core-sounds-en-wav,
18 MB). The tests that download are marked ``network`` (``-m "not network"`` leaves them out)
and skipped where there is no apt-get; the others run offline. All need the corpus extra
(pyworld, pedalboard).
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyworld")
pytest.importorskip("pedalboard")

from corpus import build as B  # noqa: E402
from corpus import singing  # noqa: E402

PACKAGES = {"pushover-data", "asterisk-core-sounds-en-wav"}
#: Backing triplets of the tiny corpus (song, backing alone, speech over it): 2 keeps the
#: build near 20 s on 2 cores.
TRIPLETS = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny corpus (downloads two packages); only for tests marked ``network``."""
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("needs apt-get and dpkg-deb")
    out = tmp_path_factory.mktemp("corpus")
    t = time.time()
    summary = B.build(out, jobs=1, triplets=TRIPLETS, sinsy=0, packages=PACKAGES)
    return out, summary, time.time() - t


def rows_of(out):
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.network
def test_manifest_records_provenance(tiny):
    out, summary, _ = tiny
    rows = rows_of(out)
    assert list(rows[0].keys()) == B.FIELDS
    assert summary["problems"] == []
    for r in rows:
        assert r["label"] in ("score", "song")
        for col in ("source_package", "version", "licence", "author", "group"):
            assert r[col], (col, r)
        assert (out / r["path"]).exists()
        assert r["group"].startswith("cell")
    assert {"pushover-data", "asterisk-core-sounds-en-wav+pushover-data"} <= {r["source_package"] for r in rows}
    versions = {r["version"] for r in rows if r["source_package"] == "pushover-data"}
    assert len(versions) == 1 and versions.pop()[0].isdigit()


@pytest.mark.network
def test_every_backing_under_a_voice_also_appears_alone_and_under_speech(tiny):
    out, _, _ = tiny
    rows = rows_of(out)
    by_index = {}
    for r in rows:
        if r["path"].startswith("gen/"):
            idx = Path(r["path"]).stem
            by_index.setdefault(idx, {})[r["kind"]] = r
    assert len(by_index) == TRIPLETS
    for idx, kinds in by_index.items():
        assert {"song_constructed", "score", "score_speech"} <= set(kinds), idx
        assert len({k["backing"] for k in kinds.values()}) == 1
        assert len({k["group"] for k in kinds.values()}) == 1
        song = kinds["song_constructed"]
        assert song["voice"] == "asterisk:Allison" and -6 <= float(song["var_db"]) <= 6


@pytest.mark.network
def test_constructed_clips_decode_to_20_seconds(tiny):
    from scoresong import audio

    out, _, _ = tiny
    for r in rows_of(out):
        if r["path"].startswith("gen/") and "stems" not in r["path"]:
            y, sr = audio.load(out / r["path"])
            assert abs(y.size / sr - 20.0) < 0.05


@pytest.mark.network
def test_constructed_vocal_is_sung_not_spoken(tiny):
    """The a cappella line has vibrato and long notes; the speech it came from has neither."""
    from scoresong import audio, extract_features

    out, _, _ = tiny
    acap = [r for r in rows_of(out) if r["kind"] == "song_acappella"]
    assert acap
    sung = extract_features(out / acap[0]["path"]).as_dict()
    phrases = sorted((out / "pkgs/asterisk-core-sounds-en-wav").rglob("*.wav"))[:80]
    speech = np.concatenate([audio.load(p, min_duration=0, check_silence=False)[0] for p in phrases])[: 20 * 16000]
    spoken = extract_features(speech, 16000).as_dict()
    assert sung["vocal.vibrato_frames_frac:mean"] > 0.25 > spoken["vocal.vibrato_frames_frac:mean"]
    assert sung["vocal.contour_long_frac:mean"] > spoken["vocal.contour_long_frac:mean"] + 0.2


@pytest.mark.network
def test_second_run_reuses_everything(tiny):
    out, first, _ = tiny
    before = {p: p.stat().st_mtime_ns for p in (out / "gen").rglob("*.flac")}
    t = time.time()
    again = B.build(out, jobs=1, triplets=TRIPLETS, sinsy=0, packages=PACKAGES)
    assert time.time() - t < 30
    assert again["by_kind"] == first["by_kind"]
    after = {p: p.stat().st_mtime_ns for p in (out / "gen").rglob("*.flac")}
    assert before == after


@pytest.mark.network
def test_bad_package_is_reported_not_silent(tmp_path):
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get")
    problems = []
    assert B.fetch("no-such-package-scoresong-test", tmp_path, problems) is None
    assert problems and "no-such-package-scoresong-test" in problems[0]


def test_excerpts_and_cells():
    assert B.excerpt_starts(10.0, dense=False) == [0.0]
    s = B.excerpt_starts(1500.0, dense=False)  # a 25-minute loop: capped at 15 excerpts
    assert len(s) == 15 and s[-1] + B.CLIP_S <= 1500.0
    cells = B.assign_cells({f"p{i}": float(i + 1) for i in range(10)})
    assert set(cells.values()) == set(range(B.N_CELLS))


def test_note_contour_has_requested_vibrato():
    rng = np.random.default_rng(0)
    f0 = singing.note_contour(400, 60.0, None, rng)  # 2 s note at C4
    cents = 1200 * np.log2(f0 / 261.63)
    tail = cents[200:]  # after the scoop and the vibrato onset
    assert 15 < (tail.max() - tail.min()) / 2 < 100  # 20-80 cents depth plus drift
    assert abs(np.median(tail)) < 20


def test_stereo_backing_mix_puts_the_voice_in_the_centre(tmp_path):
    """Over a stereo backing the vocal is mixed to the centre: the side is the backing's
    alone, and the downmix is the mono mix (same ratio, measured on the downmix)."""
    import soundfile as sf

    from corpus import mixing

    rng = np.random.default_rng(3)
    n = B.GEN_SR * 2
    bed = (0.1 * rng.standard_normal((2, n))).astype(np.float32)
    voice = (0.2 * np.sin(2 * np.pi * 220 * np.arange(n) / B.GEN_SR)).astype(np.float32)
    act = np.ones(n, bool)
    st = mixing.mix(bed, voice, act, 3.0)
    mono = mixing.mix(bed.mean(axis=0), voice, act, 3.0)
    assert st.shape == (2, n)
    # Neither mix reaches the 0.98 peak that would rescale it: exact up to float32 rounding.
    np.testing.assert_allclose(st.mean(axis=0), mono, atol=1e-6)
    np.testing.assert_allclose((st[0] - st[1]) / 2, (bed[0] - bed[1]) / 2, atol=1e-6)
    # _load_stereo reads the same span as _load_gen, and declines a mono file.
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([bed[0], -bed[1]]).T.repeat(3, axis=0)[: 3 * n], B.GEN_SR, subtype="FLOAT")
    x = B._load_stereo(str(p), 0.5, n)
    assert x.shape == (2, n)
    mono_read = B._load_gen(str(p), 0.5, B.CLIP_S)
    np.testing.assert_allclose(x.mean(axis=0)[: mono_read.size], mono_read[:n], atol=1e-6)
    sf.write(tmp_path / "m.wav", bed[0], B.GEN_SR, subtype="FLOAT")
    assert B._load_stereo(str(tmp_path / "m.wav"), 0.0, n) is None


def test_stereo_share_draws_whole_triplets_reproducibly():
    """--stereo-mixes SHARE: each triplet is stereo or mono as a whole, by a draw of its
    own (the same at every run, independent of the build's other draws)."""
    draws = [B._stereo_draw(0, i, 0.5) for i in range(2000)]
    assert draws == [B._stereo_draw(0, i, 0.5) for i in range(2000)]
    # Binomial(2000, 0.5): sd 22, so 1000 +- 110 is five standard deviations.
    assert abs(sum(draws) - 1000) < 110
    assert not any(B._stereo_draw(0, i, 0.0) for i in range(50))
    assert all(B._stereo_draw(0, i, 1.0) for i in range(50))
    assert draws != [B._stereo_draw(1, i, 0.5) for i in range(2000)]
    with pytest.raises(ValueError, match="share"):
        B.build(Path("/nonexistent/never-written"), stereo_mixes=1.5)


def test_stereo_var_offset_helpers(tmp_path):
    """--stereo-var-offset DB: the levels of a stereo triplet's voices move by DB (its
    backing alone keeps none); a mono file is not stereo, an unreadable one neither."""
    import soundfile as sf

    rows = [{"var_db": 3.25}, {"var_db": ""}, {"var_db": -5.5}]
    B._offset_levels(rows, -6.0)
    assert rows == [{"var_db": -2.75}, {"var_db": ""}, {"var_db": -11.5}]
    B._offset_levels(rows, 0.0)
    assert rows == [{"var_db": -2.75}, {"var_db": ""}, {"var_db": -11.5}]
    sf.write(tmp_path / "s.wav", np.zeros((100, 2), np.float32), 16000)
    sf.write(tmp_path / "m.wav", np.zeros(100, np.float32), 16000)
    (tmp_path / "x.wav").write_bytes(b"not audio")
    assert [B._channels(tmp_path / n) for n in ("s.wav", "m.wav", "x.wav", "none.wav")] == [2, 1, 0, 0]


def test_a_triplet_is_reused_only_if_mixed_as_now(tmp_path):
    """Reuse needs the clips *and* the same mix (stereo or not, the offset): a stamp written
    with the clips says how they were mixed; a corpus from before stamps is read from its
    backing-alone clip's channels, with no offset (the only level earlier builds used)."""
    import json

    import soundfile as sf

    assert B._mix_plan(True, -6) == {"stereo": True, "offset": -6.0}
    assert B._mix_plan(False, -6) == {"stereo": False, "offset": 0.0}   # mono voices never move
    sf.write(tmp_path / "st.flac", np.zeros((100, 2), np.float32), 16000)
    sf.write(tmp_path / "mo.flac", np.zeros(100, np.float32), 16000)
    stamp = tmp_path / ".mix" / "00001.json"
    assert B._mixed_as(stamp, tmp_path / "st.flac") == B._mix_plan(True, 0.0)
    assert B._mixed_as(stamp, tmp_path / "mo.flac") == B._mix_plan(False, 0.0)
    assert B._mixed_as(stamp, tmp_path / "st.flac") != B._mix_plan(True, -6.0)  # so re-rendered
    stamp.parent.mkdir()
    stamp.write_text(json.dumps(B._mix_plan(True, -6.0)))
    assert B._mixed_as(stamp, tmp_path / "mo.flac") == B._mix_plan(True, -6.0)


@pytest.mark.parametrize("share, offset", [(0.0, -6.0), (0.5, float("nan"))])
def test_stereo_var_offset_needs_stereo_mixes_and_a_number(share, offset):
    with pytest.raises(ValueError, match="stereo_var_offset"):
        B.build(Path("/nonexistent/never-written"), stereo_mixes=share, stereo_var_offset=offset)
