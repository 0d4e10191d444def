"""Regenerate the golden feature values the tests compare against.

    python tests/data/make_golden.py

Run it only when a change to the features is *meant* (and then bump
``FEATURE_SCHEMA_VERSION`` in ``src/scoresong/features/__init__.py``, retrain the shipped
model) or when the shipped model is retrained (its P(song) per excerpt is stored too).
``tests/test_golden.py`` fails on any other change, with tolerances stated there.

Writes ``tests/data/golden/features-schema{N}.npz`` (plain arrays, no pickles): for each
bundled excerpt its file vector, its segment values, a few frame-level tracks and the
shipped model's P(song), plus the feature names, the schema version and the model version.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "src"))

import scoresong  # noqa: E402
from scoresong.features import FEATURE_SCHEMA_VERSION  # noqa: E402

#: Frame-level tracks kept (one or two per family, the ones most statistics derive from).
TRACKS = ("texture.centroid", "texture.mfcc1", "texture.flatness", "vocal.pitch_strength",
          "vocal.fluct_vibrato_share", "vocal.voiceband_env_db", "orchestral.loudness_db",
          "orchestral.onset_strength", "orchestral.harmonic_share")


def golden_path() -> Path:
    return HERE / "golden" / f"features-schema{FEATURE_SCHEMA_VERSION}.npz"


def compute() -> dict:
    files = sorted(HERE.glob("*.ogg"))
    model = scoresong.load_model()
    out = {"files": np.array([f.name for f in files]), "tracks": np.array(TRACKS),
           "schema": np.array(FEATURE_SCHEMA_VERSION), "model_version": np.array(model.version)}
    for i, f in enumerate(files):
        feat = scoresong.extract_features(f, frames=True)
        if i == 0:
            out["names"] = np.array(feat.names)
            out["segment_names"] = np.array(feat.segment_names)
        out[f"values/{i}"] = feat.values
        out[f"segments/{i}"] = feat.segment_values
        out[f"frames/{i}"] = np.stack([feat.frames[k] for k in TRACKS])
        out[f"p_song/{i}"] = np.array(model.song_probability(feat.values)[0])
    return out


def main() -> int:
    p = golden_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(p, **compute())
    print(f"wrote {p} ({p.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
