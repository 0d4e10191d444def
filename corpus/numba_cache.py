"""librosa's compiled numba functions, compiled once before parallel workers start.

librosa decorates its inner loops (``beat_track``'s dynamic programme, ``pyin``'s Viterbi,
``estimate_tuning``'s parabolic interpolation) with ``numba`` and ``cache=True``: the first
call compiles them and writes the machine code next to librosa's sources (``*.nbi`` /
``*.nbc`` under its ``__pycache__``). Two processes compiling the same ``guvectorize``
function at the same moment can write an index and a code file that do not belong together
(numba issue #10128, open as of numba 0.68); from then on *every* call of that function, in
every later process, segfaults. The corpus builders start two or more joblib workers on a
fresh environment, which is exactly that race: on 2026-12-05 ``python -m corpus.build DIR
--jobs 2`` crashed with SIGSEGV in ``beat_track`` on a new virtual environment, and kept
crashing with ``--jobs 1`` (the cache it had written was the fault). Reproduced by starting
two ``beat_track`` calls at once on an empty cache: one trial in three left a cache that
segfaults.

:func:`warm_librosa_cache` removes the race: it runs every librosa function the builders
use once, in a child process, before any worker starts, so that the workers only read the
cache. A child that crashes means the cache on disk is already broken (an earlier run lost
the race): its files are deleted (numba recompiles them) and the child runs once more.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

__all__ = ["warm_librosa_cache", "exercise_librosa", "librosa_cache_files"]


def exercise_librosa(sr: int = 22050) -> None:
    """Call each librosa function the corpus builders call (on 3 s of a tone in noise), so
    that numba compiles and caches them all."""
    import numpy as np
    import librosa

    rng = np.random.default_rng(0)
    t = np.arange(3 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    librosa.effects.trim(y, top_db=35)                                # corpus.build: phrases
    librosa.feature.chroma_stft(y=y, sr=sr)                           # key (estimate_tuning)
    librosa.beat.beat_track(y=y, sr=sr, units="time")                 # tempo and beat grid
    librosa.pyin(y, fmin=65, fmax=2100, sr=sr, frame_length=2048, hop_length=512)  # nomusic screen
    S = librosa.stft(y, n_fft=2048, hop_length=512)
    librosa.decompose.hpss(S)
    librosa.feature.rms(y=y, frame_length=2048, hop_length=512)


def librosa_cache_files() -> list[Path]:
    """The numba cache files beside the installed librosa (``*.nbi`` and ``*.nbc``)."""
    import importlib.util

    spec = importlib.util.find_spec("librosa")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(list(spec.submodule_search_locations)[0])
    return sorted(p for pat in ("*.nbi", "*.nbc") for p in root.rglob(f"__pycache__/{pat}"))


#: Set once the cache has run in a child: later calls in this process (corpus.nomusic warms
#: before its screen and again before rendering) have nothing left to compile.
_warm = False


def _run_child(timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1])   # the folder holding the corpus package
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "from corpus.numba_cache import exercise_librosa; exercise_librosa()"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)


def warm_librosa_cache(*, log: Callable[[str], None] = print, timeout: float = 600.0) -> None:
    """Compile librosa's numba functions in one child process before workers start (once
    per process).

    Parameters
    ----------
    log : callable
        Hears what was done when the cache had to be repaired.
    timeout : float
        Seconds the child may take (the first compilation takes 10-30 s on 2 cores).

    Raises
    ------
    RuntimeError
        The child fails twice, the second time on a freshly emptied cache: librosa itself
        does not run here; the message carries the child's last lines of output.
    """
    global _warm
    if _warm:
        return
    first = _run_child(timeout)
    if first.returncode == 0:
        _warm = True
        return
    stale = librosa_cache_files()
    log(f"  librosa's numba cache does not run (exit status {first.returncode}): deleting its "
        f"{len(stale)} cache files (numba issue #10128) and compiling again")
    for p in stale:
        p.unlink(missing_ok=True)
    second = _run_child(timeout)
    if second.returncode != 0:
        tail = "\n".join((second.stderr or "").strip().splitlines()[-8:])
        raise RuntimeError(f"librosa does not run in this environment (exit status "
                           f"{second.returncode} on an empty numba cache):\n{tail}")
    _warm = True
