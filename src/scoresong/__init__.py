"""scoresong: tell an instrumental score cue from a song with a lead vocal, offline.

>>> import scoresong
>>> scoresong.predict("cue.ogg")            # doctest: +SKIP
Prediction(path='cue.ogg', label='score', probability=0.031, duration=212.4, model_version='...')
"""

__version__ = "0.1.0"

from .audio import (AudioError, AudioFileNotFoundError, CorruptAudioError, DecoderWarning,  # noqa: E402
                    EmptyAudioError, NoAudioStreamError, NonFiniteAudioError, NotAudioError, SilentAudioError, TooShortAudioError,
                    UnreadableAudioError, UnsupportedAudioError)
from .dataset import CorpusError  # noqa: E402
from .features import FEATURE_SCHEMA_VERSION, Features, NonFiniteFeatureWarning, extract_features  # noqa: E402
from .model import (ModelError, ModelIntegrityError, ModelSchemaError,  # noqa: E402
                    UnsafeModelError, load_model)
from .prediction import Prediction, PredictionFailure, predict, predict_many, predict_proba  # noqa: E402


#: Names imported when first asked for, so that `import scoresong` and a prediction never load
#: their modules: ScoreSongClassifier needs scikit-learn (about a second to import); the
#: timeline's and the inference forms' errors live beside the code that raises them.
_LAZY = {"ScoreSongClassifier": "estimator", "TimelineSettingError": "segmentation",
         "InferenceFormError": "inference", "PickledDataError": "inference",
         "BatchSettingsError": "batch"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def train(corpus, **kwargs):
    """Train and evaluate a model on a labelled corpus; see :func:`scoresong.training.train`."""
    from .training import train as _train

    return _train(corpus, **kwargs)


def explain(source, **kwargs):
    """The features that pushed the decision on a file, an array (``sr=``) or a block stream;
    see :func:`scoresong.explanation.explain`."""
    from .explanation import explain as _explain

    return _explain(source, **kwargs)


def timeline(source, **kwargs):
    """Label a long recording (a file, an array with ``sr=`` or a block stream) over time
    (score / song / silence); see :func:`scoresong.segmentation.timeline`."""
    from .segmentation import timeline as _timeline

    return _timeline(source, **kwargs)


def read_corpus(corpus, **kwargs):
    """Read a labelled corpus (CSV manifest or label folders); see :mod:`scoresong.dataset`."""
    from .dataset import read_corpus as _read

    return _read(corpus, **kwargs)


def evaluate(model, corpus, **kwargs):
    """Evaluate a model on a labelled corpus; see :func:`scoresong.training.evaluate`."""
    from .training import evaluate as _evaluate

    return _evaluate(model, corpus, **kwargs)


__all__ = [
    "predict", "predict_proba", "predict_many", "extract_features", "load_model", "train", "evaluate",
    "explain", "read_corpus", "timeline",
    "Prediction", "PredictionFailure", "Features", "ScoreSongClassifier", "FEATURE_SCHEMA_VERSION",
    "AudioError", "AudioFileNotFoundError", "UnreadableAudioError", "NotAudioError",
    "CorruptAudioError", "EmptyAudioError", "TooShortAudioError", "SilentAudioError",
    "NonFiniteAudioError", "UnsupportedAudioError", "NoAudioStreamError",
    "ModelError", "ModelIntegrityError", "ModelSchemaError", "UnsafeModelError",
    "InferenceFormError", "PickledDataError", "CorpusError", "TimelineSettingError", "BatchSettingsError",
    "DecoderWarning", "NonFiniteFeatureWarning",
]
