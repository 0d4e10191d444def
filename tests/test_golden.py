"""Golden values: what the shipped model sees must not change unnoticed (issue 14).

The bundled excerpts' file vectors, segment values, a few frame-level tracks and the shipped
model's P(song) are stored in ``tests/data/golden/features-schema{N}.npz``. Any change to
them fails here. When a change is meant, bump ``FEATURE_SCHEMA_VERSION``, retrain the model
and regenerate the file with ``python tests/data/make_golden.py`` (see its docstring).

Tolerances (float32 features; the same library versions give identical values, other CPUs
and BLAS/FFT builds move them in the last digits):

- file vector and segment values: ``rtol=2e-4, atol=2e-5`` for every value;
- frame tracks: ``rtol=1e-3, atol=1e-3`` for 99.5% of frames of each track (a pitch or
  onset decision can flip on a near-tie), and the track's mean within ``rtol=1e-3``;
- P(song) of the shipped model: within ``2e-4``.

A 2% change of the STFT window (``window ** 1.02``) moves far more than that; see
``tests/README.md`` for the mutations this suite was checked against.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import scoresong
from scoresong.features import FEATURE_SCHEMA_VERSION

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

REGEN = "regenerate with `python tests/data/make_golden.py` only if the change is meant"


@pytest.fixture(scope="module")
def golden():
    p = make_golden.golden_path()
    assert p.exists(), f"no golden values for feature schema {FEATURE_SCHEMA_VERSION}: {REGEN}"
    with np.load(p, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def current(golden):
    return {str(name): scoresong.extract_features(DATA / str(name), frames=True)
            for name in golden["files"]}


def test_golden_file_is_for_this_schema_and_these_excerpts(golden):
    assert int(golden["schema"]) == FEATURE_SCHEMA_VERSION
    assert sorted(str(f) for f in golden["files"]) == sorted(p.name for p in DATA.glob("*.ogg"))
    assert tuple(golden["names"]) == scoresong.features.feature_names(), (
        f"the feature names changed without a schema bump: {REGEN}")


def test_file_vectors_unchanged(golden, current):
    for i, name in enumerate(golden["files"]):
        got = current[str(name)].values
        want = golden[f"values/{i}"]
        bad = ~np.isclose(got, want, rtol=2e-4, atol=2e-5)
        names = [str(n) for n in np.array(golden["names"])[bad]][:8]
        assert not bad.any(), f"{name}: {bad.sum()} of {bad.size} file-vector values changed ({names}); {REGEN}"


def test_segment_values_unchanged(golden, current):
    for i, name in enumerate(golden["files"]):
        got = current[str(name)].segment_values
        want = golden[f"segments/{i}"]
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5, err_msg=f"{name}; {REGEN}")


def test_frame_tracks_unchanged(golden, current):
    for i, name in enumerate(golden["files"]):
        want = golden[f"frames/{i}"]
        for k, track in enumerate(golden["tracks"]):
            got = current[str(name)].frames[str(track)]
            assert got.shape == want[k].shape, (name, track)
            ok = np.isclose(got, want[k], rtol=1e-3, atol=1e-3, equal_nan=True)
            assert ok.mean() >= 0.995, f"{name} {track}: {100 * (1 - ok.mean()):.1f}% of frames changed; {REGEN}"
            np.testing.assert_allclose(np.nanmean(got), np.nanmean(want[k]), rtol=1e-3, atol=1e-4,
                                       err_msg=f"{name} {track}")


def test_shipped_model_answers_unchanged(golden, current):
    model = scoresong.load_model()
    if str(golden["model_version"]) != model.version:
        pytest.fail(f"the shipped model is {model.version}, the golden file was made with "
                    f"{golden['model_version']}: after a retrain, {REGEN}")
    for i, name in enumerate(golden["files"]):
        p = float(model.song_probability(current[str(name)].values)[0])
        assert p == pytest.approx(float(golden[f"p_song/{i}"]), abs=2e-4), name
