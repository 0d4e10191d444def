"""The CLI says what is wrong with bad input in one line, and lets a bug through as a
traceback: it catches the library's typed errors only, never every ``ValueError``."""

from __future__ import annotations

import pytest
import soundfile as sf

import scoresong.features
import scoresong.training  # noqa: F401 - imported before any test patches what it imports
from scoresong import cli

from .conftest import SR, tone


@pytest.fixture
def wav(tmp_path):
    p = tmp_path / "t.wav"
    sf.write(p, tone(220, 3.0), SR)
    return p


def test_a_bug_is_a_traceback_not_an_error_line(wav, monkeypatch, capsys):
    def broken(*a, **k):
        raise ValueError("a bug inside the library")

    monkeypatch.setattr(scoresong.features, "extract_features", broken)
    with pytest.raises(ValueError, match="a bug inside the library"):
        cli.main(["features", str(wav)])
    assert "error:" not in capsys.readouterr().err


@pytest.mark.parametrize("argv, fragment", [
    (["train", "{tmp}", "-o", "{tmp}/m", "--label", "ambient"], "NAME=score, NAME=song or NAME=no_music"),
    (["train", "{tmp}", "-o", "{tmp}/m", "--label", "ambient=choir"], "NAME=score, NAME=song or NAME=no_music"),
    (["train", "{tmp}", "-o", "{tmp}/m", "--jobs", "0"], "number of processes"),
    (["predict", "{wav}", "--threshold", "1.5"], "probability in [0, 1]"),
    (["evaluate", "m.json", "{tmp}", "--threshold", "nan"], "probability in [0, 1]"),
    (["features", "{wav}", "--stream", "-1"], "index of an audio stream"),
    (["explain", "{wav}", "--top", "0"], "positive whole number"),
    (["predict", "{wav}", "--resume"], "--resume needs --output"),
    (["predict", "{wav}", "--backend", "dask"], "--scheduler"),
])
def test_bad_options_are_usage_errors(argv, fragment, wav, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path, wav=wav) for a in argv]
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


def _manifest(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case, fragment", [
    ("one_label", "training needs both labels"),
    ("no_label_column", "path,label"),
    ("bad_weight", "not a number"),
    ("no_group_column", "no column 'album'"),
])
def test_a_bad_corpus_is_one_error_line(case, fragment, wav, tmp_path, capsys):
    args = []
    if case == "one_label":
        corpus = _manifest(tmp_path / "c.csv", f"path,label\n{wav},song\n")
    elif case == "no_label_column":
        corpus = _manifest(tmp_path / "c.csv", f"path\n{wav}\n")
    elif case == "bad_weight":
        corpus = _manifest(tmp_path / "c.csv", f"path,label,weight\n{wav},song,heavy\n")
    else:
        corpus = _manifest(tmp_path / "c.csv", f"path,label\n{wav},song\n{wav},score\n")
        args = ["--groups", "album"]
    assert cli.main(["train", corpus, "-o", str(tmp_path / "m"), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err


def test_evaluating_on_files_that_all_fail_is_one_error_line(tmp_path, capsys):
    from scoresong.model import resolve_model  # noqa: F401 - the shipped model must load

    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00")
    corpus = _manifest(tmp_path / "c.csv", f"path,label\n{bad},song\n")
    shipped = scoresong.features.__file__.replace("features/__init__.py", "_model/scoresong.json")
    assert cli.main(["evaluate", shipped, corpus, "-o", str(tmp_path / "ev")]) == 1
    assert "no item could be analysed" in capsys.readouterr().err


def test_a_timeline_setting_out_of_range_is_one_error_line(wav, capsys):
    assert cli.main(["timeline", str(wav), "--switch", "1.5"]) == 1
    assert "error: timeline: switch must be a probability strictly between 0 and 1" in capsys.readouterr().err


def test_every_error_and_warning_class_is_exported_at_top_level():
    """A user catches what the library raises without knowing which module raises it:
    every exception and warning class defined in scoresong is ``scoresong.<Name>`` and in
    ``__all__``. The classes are found by walking the package, so a new one must be exported
    for this to pass. The lazy ones (timeline, inference forms, estimator) keep
    ``import scoresong`` from importing their modules."""
    import importlib
    import inspect
    import pkgutil
    import subprocess
    import sys

    import scoresong

    found = {}
    for mod in pkgutil.walk_packages(scoresong.__path__, "scoresong."):
        if mod.name.startswith("scoresong.cli") or mod.name.endswith("__main__"):
            continue
        m = importlib.import_module(mod.name)
        for name, obj in vars(m).items():
            if (inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == m.__name__
                    and not name.startswith("_")):
                found[name] = obj
    assert len(found) >= 20, sorted(found)
    missing = sorted(n for n in found if n not in scoresong.__all__)
    assert not missing, f"not in scoresong.__all__: {missing}"
    assert all(getattr(scoresong, n) is cls for n, cls in found.items())
    code = ("import sys, scoresong\n"
            "bad = [m for m in ('scoresong.segmentation', 'scoresong.inference', 'scoresong.training', 'sklearn')"
            " if m in sys.modules]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
