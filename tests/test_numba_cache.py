"""corpus.numba_cache: librosa's numba functions are compiled once before the builders'
workers start, and a cache that crashes (numba issue #10128) is deleted and rebuilt.

The child process is replaced by a stub here (compiling librosa takes 20 s); the real child
runs in every corpus build (tests/test_corpus_build.py builds one)."""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("librosa")
from corpus import numba_cache  # noqa: E402


def _results(*codes):
    calls = []

    def fake(timeout):
        calls.append(timeout)
        rc = codes[len(calls) - 1]
        return subprocess.CompletedProcess(["python"], rc, "", f"line1\nFatal Python error {rc}\n")

    return fake, calls


def _cache(tmp_path, monkeypatch):
    files = [tmp_path / "beat.__beat_track_dp-1.py311.nbi", tmp_path / "beat.__beat_track_dp-1.py311.1.nbc"]
    for f in files:
        f.write_bytes(b"x")
    monkeypatch.setattr(numba_cache, "librosa_cache_files", lambda: list(files))
    monkeypatch.setattr(numba_cache, "_warm", False)   # a new process
    return files


def test_a_cache_that_runs_is_left_alone(tmp_path, monkeypatch):
    files = _cache(tmp_path, monkeypatch)
    fake, calls = _results(0)
    monkeypatch.setattr(numba_cache, "_run_child", fake)
    heard = []
    numba_cache.warm_librosa_cache(log=heard.append)
    assert len(calls) == 1 and not heard and all(f.exists() for f in files)
    numba_cache.warm_librosa_cache(log=heard.append)   # once per process: nothing left to compile
    assert len(calls) == 1


def test_a_crashing_cache_is_deleted_and_compiled_again(tmp_path, monkeypatch):
    files = _cache(tmp_path, monkeypatch)
    fake, calls = _results(-11, 0)
    monkeypatch.setattr(numba_cache, "_run_child", fake)
    heard = []
    numba_cache.warm_librosa_cache(log=heard.append)
    assert len(calls) == 2 and not any(f.exists() for f in files)
    assert len(heard) == 1 and "exit status -11" in heard[0] and "2 cache files" in heard[0]


def test_librosa_that_fails_on_an_empty_cache_is_an_error_with_its_output(tmp_path, monkeypatch):
    _cache(tmp_path, monkeypatch)
    fake, _ = _results(-11, 1)
    monkeypatch.setattr(numba_cache, "_run_child", fake)
    with pytest.raises(RuntimeError, match=r"(?s)exit status 1 on an empty numba cache.*Fatal Python error 1"):
        numba_cache.warm_librosa_cache(log=lambda m: None)


def test_cache_files_are_librosas_own():
    """Whatever exists is under librosa's package folder and is a numba index or code file."""
    import librosa
    from pathlib import Path

    root = Path(librosa.__file__).parent
    for p in numba_cache.librosa_cache_files():
        assert root in p.parents and p.suffix in {".nbi", ".nbc"} and p.parent.name == "__pycache__"
