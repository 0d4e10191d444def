"""The ``view`` option: what the model hears of a stereo source (the mono mix, the default,
or the centre of the image). The feature core is the one the centre experiments use
(tests/test_centre.py); here: the option reaches every entry point, leaves mono input and
the default path alone, is cached apart, and says clearly when the centre is silent."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import scoresong
from scoresong import extract_features
from scoresong.audio import SilentAudioError

from .conftest import SR, noise, tone


def _voice_in_wide_noise(dur=12.0, seed=0):
    """A sung-like tone (vibrato) panned to the centre, under louder decorrelated noise."""
    rng = np.random.default_rng(seed)
    v = tone(262, dur, vibrato_hz=5.5, vibrato_cents=50, amp=0.1)
    left = 0.25 * rng.standard_normal(v.size).astype(np.float32)
    right = 0.25 * rng.standard_normal(v.size).astype(np.float32)
    return np.stack([left + v, right + v])


def test_default_view_is_the_mix():
    x = _voice_in_wide_noise()
    np.testing.assert_array_equal(extract_features(x, SR).values,
                                  extract_features(x, SR, view="mix").values)
    np.testing.assert_array_equal(extract_features(x, SR).values,
                                  extract_features(x.mean(axis=0), SR).values)


@pytest.mark.parametrize("channels", [1, 6])
def test_centre_view_of_a_source_without_a_stereo_image_is_its_mix(channels):
    y = tone(220, 6.0, vibrato_hz=5.5, vibrato_cents=40) + noise(6.0, amp=0.05)
    x = y if channels == 1 else np.stack([y * (1 + 0.1 * c) for c in range(channels)])
    np.testing.assert_array_equal(extract_features(x, SR, view="centre").values,
                                  extract_features(x, SR).values)


def test_centre_view_hears_the_centred_voice_under_a_wide_band():
    x = _voice_in_wide_noise()
    mix = extract_features(x, SR).as_dict()
    centre = extract_features(x, SR, view="centre").as_dict()
    assert list(mix) == list(centre)                       # same names: any model reads both
    # Measured: 0.0 voiced in the downmix, about 0.5 in the centre (test_centre.py's case).
    assert mix["vocal.voiced_frac:mean"] < 0.1 and centre["vocal.voiced_frac:mean"] > 0.35
    # Every family reads the centre: the wide noise is mostly gone from the level too.
    assert centre["orchestral.loudness_mean_db:mean"] < mix["orchestral.loudness_mean_db:mean"] - 3


def test_centre_view_is_the_same_from_a_file_as_from_the_array(tmp_path):
    x = 0.6 * _voice_in_wide_noise(dur=8.0)
    p = tmp_path / "st.flac"
    sf.write(p, x.T, SR, subtype="PCM_24")
    np.testing.assert_allclose(extract_features(p, view="centre").values,
                               extract_features(x, SR, view="centre").values, rtol=1e-5, atol=1e-6)


def test_predict_passes_the_view_on():
    x = _voice_in_wide_noise()
    from scoresong.model import get_default_model

    m = get_default_model()
    for view in ("mix", "centre"):
        q, s = (float(v[0]) for v in m.parts(extract_features(x, SR, view=view).values))
        assert scoresong.predict(x, sr=SR, view=view).probabilities["no_music"] == pytest.approx(q, abs=1e-4)
    assert scoresong.predict(x, sr=SR, view="centre").probabilities != scoresong.predict(x, sr=SR).probabilities


def test_a_hard_panned_file_is_silent_in_the_centre_and_says_so():
    y = tone(330, 6.0)
    x = np.stack([y, np.zeros_like(y)])                     # everything hard left
    assert scoresong.predict(x, sr=SR).label in ("score", "song", "no_music")
    with pytest.raises(SilentAudioError, match="centre of the stereo image"):
        scoresong.predict(x, sr=SR, view="centre")


def test_a_bad_view_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="view must be one of"):
        scoresong.predict(tmp_path / "missing.wav", view="side")
    with pytest.raises(ValueError, match="view must be one of"):
        list(scoresong.predict_many([tmp_path / "missing.wav"], view="left"))


def test_predict_many_and_batch_carry_the_view(tmp_path):
    x = 0.6 * _voice_in_wide_noise(dur=8.0)
    p = tmp_path / "st.wav"
    sf.write(p, x.T, SR)
    one = scoresong.predict(p, view="centre")
    many = list(scoresong.predict_many([p, p], view="centre", n_jobs=2))
    assert [r.probabilities for r in many] == [one.probabilities] * 2
    from scoresong.batch import run_batch, read_results

    out = tmp_path / "r.csv"
    run_batch([p], out, view="centre", progress=False)
    assert float(read_results(out)["probability"].iloc[0]) == pytest.approx(one.probability, abs=1e-4)


def test_the_cache_keeps_the_views_apart(tmp_path):
    from scoresong.cache import extract_items, schema_key
    from scoresong.dataset import Item

    assert schema_key("centre") != schema_key() and schema_key("mix") == schema_key()
    x = 0.6 * _voice_in_wide_noise(dur=8.0)
    p = tmp_path / "st.wav"
    sf.write(p, x.T, SR)
    items = [Item(str(p), "song", "g")]
    cache = tmp_path / "cache"
    a = extract_items(items, cache_dir=cache, progress=False)
    b = extract_items(items, cache_dir=cache, progress=False, view="centre")
    assert a.counts["extracted"] == 1 and b.counts["extracted"] == 1     # not served the mix's
    a2 = extract_items(items, cache_dir=cache, progress=False)
    b2 = extract_items(items, cache_dir=cache, progress=False, view="centre")
    assert a2.counts["cached"] == 1 and b2.counts["cached"] == 1
    np.testing.assert_array_equal(a2.X, a.X)
    np.testing.assert_array_equal(b2.X, b.X)
    assert not np.allclose(a.X, b.X)
    np.testing.assert_allclose(b.X[0], extract_features(p, view="centre").values, rtol=1e-6)


def test_cli_view_option(tmp_path, capsys):
    from scoresong.cli import main

    x = 0.6 * _voice_in_wide_noise(dur=8.0)
    p = tmp_path / "st.wav"
    sf.write(p, x.T, SR)
    assert main(["predict", str(p), "--view", "centre", "--format", "jsonl"]) == 0
    import json

    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert got["probability"] == pytest.approx(scoresong.predict(p, view="centre").probability, abs=1e-4)
    assert main(["features", str(p), "--view", "centre"]) == 0
    feats = json.loads(capsys.readouterr().out)["features"]
    assert feats["vocal.voiced_frac:mean"] == pytest.approx(
        extract_features(p, view="centre").as_dict()["vocal.voiced_frac:mean"], rel=1e-5)
    with pytest.raises(SystemExit):
        main(["predict", str(p), "--view", "side"])


def test_evaluate_reads_the_view_and_says_which(tmp_path):
    from scoresong.training import evaluate

    rows = ["path,label,group"]
    for k, lab in enumerate(("song", "score")):
        x = 0.6 * _voice_in_wide_noise(dur=8.0, seed=k)
        sf.write(tmp_path / f"{k}.wav", x.T, SR)
        rows.append(f"{k}.wav,{lab},g{k}")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    rep = evaluate(scoresong.model.get_default_model(), str(tmp_path / "m.csv"), view="centre", plot=False)
    assert rep["view"] == "centre" and "view: centre" in rep["title"]
    got = {r["path"]: float(r["p_song"]) for r in rep["predictions"]}
    for k in range(2):
        pr = scoresong.predict(tmp_path / f"{k}.wav", view="centre").probabilities
        want = pr["song"] / (pr["song"] + pr["score"])       # the report's p_song: P(song | music)
        assert got[str(tmp_path / f"{k}.wav")] == pytest.approx(want, abs=2e-3)


@pytest.mark.parametrize("channels", [1, 2])
def test_a_quiet_file_is_not_blamed_on_the_centre_unless_it_is_stereo(tmp_path, channels):
    y = tone(330, 6.0, amp=10 ** (-75 / 20))                # under -60 dB in mix and centre alike
    x = y if channels == 1 else np.stack([y, y])
    for view in ("mix", "centre"):
        with pytest.raises(SilentAudioError, match="no segment louder than") as e:
            scoresong.predict(x, sr=SR, view=view)
        assert ("centre of the stereo image" in str(e.value)) == (channels == 2 and view == "centre")


def test_bad_settings_fail_before_a_batch_touches_its_output(tmp_path):
    from scoresong.batch import run_batch

    out = tmp_path / "r.csv"
    out.write_text("kept\n")
    with pytest.raises(ValueError, match="view must be one of"):
        run_batch([tmp_path / "a.wav"], out, view="center", progress=False)
    with pytest.raises(ValueError, match="classes"):
        run_batch([tmp_path / "a.wav"], out, classes=("song",), progress=False)
    assert out.read_text() == "kept\n"
    with pytest.raises(ValueError, match="view must be one of"):
        scoresong.predict_many([tmp_path / "a.wav"], view="center")   # at the call, not at next()


def test_cli_predict_reads_standard_input(tmp_path):
    import json
    import subprocess
    import sys

    x = 0.6 * _voice_in_wide_noise(dur=8.0)
    p = tmp_path / "st.flac"
    sf.write(p, x.T, SR)
    for view in ("mix", "centre"):
        r = subprocess.run([sys.executable, "-m", "scoresong.cli", "predict", "-", "--format", "jsonl",
                            "--view", view], stdin=open(p, "rb"), capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout.strip().splitlines()[-1])
        assert got["path"] == "<stdin>"
        assert got["probability"] == pytest.approx(scoresong.predict(p, view=view).probability, abs=1e-4)
    r = subprocess.run([sys.executable, "-m", "scoresong.cli", "predict", "-", str(p)], stdin=open(p, "rb"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "must be the only file" in r.stderr


def test_predict_proba_takes_the_view():
    x = _voice_in_wide_noise()
    assert scoresong.predict_proba(x, sr=SR, view="centre") == scoresong.predict(x, sr=SR, view="centre").probability
