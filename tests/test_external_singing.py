"""corpus.external_singing: the source table and the excerpt placement (no network, no audio)."""

import pytest

from corpus import external, external_singing as es

MEASURES = "start;measure\n" + "\n".join(f"{0.5 + 2.5 * (m - 1):.3f};{m}" for m in range(1, 41))


def test_sources_well_formed():
    members = [s["member"] for s in es.SOURCES]
    assert len(members) == len(set(members))
    for s in es.SOURCES:
        assert s["dist"] in es.SDISTS
        assert s["label"] == "song"
        assert s["kind"] in ("song_lied_real", "song_acappella_real")
        assert s["member"].startswith(es.SDISTS[s["dist"]][1].replace(".tar.gz", "") + "/")
        for key in ("licence", "author", "group", "evidence"):
            assert s[key], (s["member"], key)
        assert ("measures" in s) == (s["kind"] == "song_lied_real")
    for version, name, digest in es.SDISTS.values():
        assert name.endswith(".tar.gz") and version in name
        assert len(digest) == 64 and int(digest, 16) >= 0


def test_read_measures():
    rows = es.read_measures("start;measure\n0.238662132;1\n2.489886621;2\n\n4.85;2.500\n")
    assert rows == [(0.238662132, 1.0), (2.489886621, 2.0), (4.85, 2.5)]


def test_lied_starts_skip_intro_and_postlude():
    m = es.read_measures(MEASURES)  # 40 measures of 2.5 s, measure 1 at 0.5 s
    starts = es.lied_starts(m, dur=200.0, n=3)
    lo = 0.5 + 2.5 * es.INTRO_MEASURES  # measure 7
    hi = 0.5 + 2.5 * (40 - es.POSTLUDE_MEASURES - 1)  # start of measure 36
    assert len(starts) == 3
    assert starts[0] == pytest.approx(lo)
    assert starts[-1] + es.CLIP_S == pytest.approx(hi, abs=0.01)
    assert all(b > a for a, b in zip(starts, starts[1:]))


def test_lied_starts_fewer_windows_when_the_span_is_short():
    m = es.read_measures(MEASURES)
    # the file ends at 60 s: span 15.5 .. 60 s holds two disjoint 20-s windows at most
    starts = es.lied_starts(m, dur=60.0, n=6)
    assert len(starts) == 2
    assert starts[0] >= 15.5 - 1e-9 and starts[-1] + es.CLIP_S <= 60.0 + 1e-9
    assert es.lied_starts(m, dur=30.0, n=6) == []  # 15.5 .. 30 s: shorter than 20 s


def test_lied_starts_rejects_missing_positions():
    with pytest.raises(ValueError):
        es.lied_starts([], dur=100.0)
    with pytest.raises(ValueError):
        es.lied_starts([(0.0, 1.0), (2.0, 2.0)], dur=100.0)


def test_unpack_refuses_non_files(tmp_path):
    import io
    import tarfile
    arc = tmp_path / "a.tar.gz"
    with tarfile.open(arc, "w:gz") as tf:
        d = tarfile.TarInfo("pkg/dir"); d.type = tarfile.DIRTYPE; tf.addfile(d)
        f = tarfile.TarInfo("pkg/f.txt"); data = b"hello"; f.size = len(data)
        tf.addfile(f, io.BytesIO(data))
    es.unpack(arc, ["pkg/f.txt"], tmp_path / "out")
    assert (tmp_path / "out/pkg/f.txt").read_bytes() == b"hello"
    with pytest.raises(ValueError, match="not a regular file"):
        es.unpack(arc, ["pkg/dir"], tmp_path / "out2")


def _tarball(path, files):
    import io
    import tarfile
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_build_from_local_sdists_with_a_score_set(tmp_path, monkeypatch):
    """A tiny sdist in OUT/sdists (no network): a Lied placed by its measures, a short clip
    used whole, the score set's rows added with paths relative to OUT; a wrong hash is refused."""
    import csv
    import hashlib
    import io

    import numpy as np
    import soundfile as sf

    sr = 8000
    def wav(seconds):
        buf = io.BytesIO()
        sf.write(buf, np.zeros(int(seconds * sr), np.float32) + 0.01, sr, format="WAV")
        return buf.getvalue()

    out = tmp_path / "out"
    (out / "sdists").mkdir(parents=True)
    arc = out / "sdists" / "demo-1.0.tar.gz"
    _tarball(arc, {"demo-1.0/song.wav": wav(100.0), "demo-1.0/song.csv": MEASURES.encode(),
                   "demo-1.0/short.wav": wav(9.0)})
    digest = hashlib.sha256(arc.read_bytes()).hexdigest()
    monkeypatch.setattr(es, "SDISTS", {"demo": ("1.0", "demo-1.0.tar.gz", digest)})
    base = dict(dist="demo", label="song", licence="CC0", author="someone", evidence="test")
    monkeypatch.setattr(es, "SOURCES", [
        dict(base, member="demo-1.0/song.wav", measures="demo-1.0/song.csv", kind="song_lied_real", group="g1"),
        dict(base, member="demo-1.0/short.wav", kind="song_acappella_real", group="g2")])
    score = tmp_path / "score"
    (score / "pkgs").mkdir(parents=True)
    with open(score / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=external.FIELDS)
        w.writeheader()
        w.writerow({f: "" for f in external.FIELDS} | dict(path="pkgs/a.ogg", label="score", kind="score_real"))
    rows = es.build(out, score_set=score, per_song=2)
    songs = [r for r in rows if r["label"] == "song"]
    assert [r["kind"] for r in songs] == ["song_lied_real"] * 2 + ["song_acappella_real"]
    assert songs[0]["start_s"] == pytest.approx(15.5)  # measure 7
    assert songs[-1]["start_s"] == 0.0 and songs[-1]["duration_s"] == pytest.approx(9.0)
    assert rows[-1]["path"] == "../score/pkgs/a.ogg" and (out / rows[-1]["path"]).resolve() == (score / "pkgs/a.ogg").resolve()
    assert (out / "pkgs/demo/demo-1.0/song.wav").exists()
    monkeypatch.setattr(es, "SDISTS", {"demo": ("1.0", "demo-1.0.tar.gz", "0" * 64)})
    with pytest.raises(RuntimeError, match="SHA-256"):
        es.build(out)
