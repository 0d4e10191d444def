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


def test_manifest_fields_are_the_external_sets():
    assert es.FIELDS is external.FIELDS
