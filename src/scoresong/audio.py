"""Audio input: decoding, down-mixing, resampling and block streaming.

Nothing else in scoresong decodes audio. Files are read with libsndfile (through
:mod:`soundfile`: WAV, FLAC, OGG/Vorbis, Opus, MP3, AIFF, CAF, ...), mixed to mono
and resampled with soxr to the single analysis rate. Long files are read in blocks
so memory stays bounded whatever the file's length or channel count.

Every failure is raised as a subclass of :class:`AudioError` that carries the path
and a human-readable reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

__all__ = [
    "AudioError",
    "AudioFileNotFoundError",
    "UnreadableAudioError",
    "NotAudioError",
    "CorruptAudioError",
    "EmptyAudioError",
    "TooShortAudioError",
    "SilentAudioError",
    "NonFiniteAudioError",
    "UnsupportedAudioError",
    "AudioInfo",
    "info",
    "load",
    "stream",
    "prefetch",
    "ANALYSIS_SR",
    "MIN_DURATION",
    "SILENCE_DB",
]

#: The one analysis rate every feature is computed at (Hz).
ANALYSIS_SR = 16000
#: Shortest input (seconds) the model is asked to judge.
MIN_DURATION = 1.0
#: A file whose peak stays below this level (dBFS) is "all silent".
SILENCE_DB = -80.0
#: Lowest source sample rate accepted (a lower rate cannot hold a voice's harmonics).
MIN_SOURCE_SR = 4000
#: Bytes of decoded multichannel audio held at once while streaming.
_BLOCK_BYTES = 8 * 1024 * 1024


class AudioError(Exception):
    """Base class of every input error; ``path`` and ``reason`` say what and why."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The path does not exist or is not a regular file."""


class UnreadableAudioError(AudioError, PermissionError):
    """The file exists but cannot be opened (permissions, a directory, ...)."""


class NotAudioError(AudioError):
    """The file is not in any audio format libsndfile recognises."""


class CorruptAudioError(AudioError):
    """The container is recognised but decoding fails (truncated or damaged data)."""


class EmptyAudioError(AudioError):
    """The file holds no samples."""


class TooShortAudioError(AudioError):
    """The file is shorter than :data:`MIN_DURATION`."""


class SilentAudioError(AudioError):
    """Every sample is below :data:`SILENCE_DB`."""


class NonFiniteAudioError(AudioError):
    """The file holds NaN or infinite samples."""


class UnsupportedAudioError(AudioError):
    """Readable audio that cannot be analysed (e.g. a sample rate below 4 kHz)."""


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says."""

    path: str
    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


def _open(path) -> sf.SoundFile:
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(path, "no such file")
    if p.is_dir():
        raise UnreadableAudioError(path, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise UnreadableAudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise EmptyAudioError(path, "file is empty (0 bytes)")
    try:
        return sf.SoundFile(str(p))
    except sf.LibsndfileError as exc:
        msg = str(exc)
        low = msg.lower()
        if "format not recognised" in low or "unknown format" in low or "not recognised" in low:
            raise NotAudioError(path, "not a recognised audio format") from exc
        raise CorruptAudioError(path, f"cannot decode header ({msg})") from exc
    except (OSError, RuntimeError) as exc:
        raise CorruptAudioError(path, f"cannot open ({exc})") from exc


def info(path) -> AudioInfo:
    """Read the header of ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.

    Returns
    -------
    AudioInfo
        Sample rate, channels, frames, container format and subtype.

    Raises
    ------
    AudioError
        Missing, unreadable, non-audio or corrupt file.
    """
    with _open(path) as f:
        return AudioInfo(str(path), int(f.samplerate), int(f.channels), int(f.frames),
                         str(f.format), str(f.subtype))


def _to_mono(block: np.ndarray) -> np.ndarray:
    """Channel average of a ``(n, channels)`` float32 block.

    Summed column by column: ``block.mean(axis=1)`` reduces along the short, contiguous
    channel axis and costs ten times more (a third of the decode time of a stereo file);
    for stereo the result is bit-identical.
    """
    ch = block.shape[1]
    if ch == 1:
        return block[:, 0]
    mono = block[:, 0] + block[:, 1]
    for c in range(2, ch):
        mono += block[:, c]
    return mono / np.float32(ch)


def stream(path, *, sr: int = ANALYSIS_SR, offset: float = 0.0,
           duration: float | None = None, block_duration: float = 60.0,
           quality: str = "MQ") -> Iterator[np.ndarray]:
    """Decode ``path`` block by block as mono float32 at ``sr``.

    Memory is bounded by ``block_duration`` (and by a byte budget for files with many
    channels), never by the file's length. Concatenating the blocks gives the same
    signal as :func:`load`.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.
    sr : int
        Output sample rate.
    offset, duration : float
        Start (s) and length (s) of the excerpt to read; ``None`` reads to the end.
    block_duration : float
        Approximate seconds of output per block.
    quality : {"QQ", "LQ", "MQ", "HQ", "VHQ"}
        soxr resampling quality. "MQ" keeps the pass band flat far beyond what the
        features use (they stop at 7.6 kHz) at a fraction of "HQ"'s cost.

    Yields
    ------
    np.ndarray [shape=(n,), dtype=float32]
        Consecutive blocks of the mono, resampled signal.

    Raises
    ------
    AudioError
        The subclass says why: missing, not audio, corrupt, empty, non-finite,
        unsupported rate. Silence and minimum length are checked by callers
        (see :func:`load`) because they need the whole signal.

    Examples
    --------
    >>> total = sum(len(b) for b in stream("cue.ogg"))  # doctest: +SKIP
    """
    f = _open(path)
    with f:
        src_sr = int(f.samplerate)
        if src_sr < MIN_SOURCE_SR:
            raise UnsupportedAudioError(path, f"sample rate {src_sr} Hz is below {MIN_SOURCE_SR} Hz")
        if f.channels < 1:
            raise CorruptAudioError(path, "header reports no channels")
        start = int(round(offset * src_sr))
        if f.frames <= 0 and f.seekable():
            raise EmptyAudioError(path, "file holds no samples")
        if start:
            try:
                f.seek(min(start, max(f.frames - 1, 0)))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise CorruptAudioError(path, f"cannot seek to {offset:.1f} s ({exc})") from exc
        remaining = None if duration is None else int(round(duration * src_sr))
        frames_per_block = int(block_duration * src_sr)
        frames_per_block = max(4096, min(frames_per_block, _BLOCK_BYTES // (4 * f.channels)))
        resampler = None if src_sr == sr else soxr.ResampleStream(
            src_sr, sr, 1, dtype="float32", quality=quality)
        n_read = 0
        while remaining is None or remaining > 0:
            want = frames_per_block if remaining is None else min(frames_per_block, remaining)
            try:
                block = f.read(want, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise CorruptAudioError(
                    path, f"decoding failed after {n_read / src_sr:.1f} s ({exc})") from exc
            n = block.shape[0]
            last = n < want
            if n:
                mono = _to_mono(block)
                if not np.isfinite(mono).all():
                    raise NonFiniteAudioError(
                        path, f"non-finite samples (NaN or inf) near {n_read / src_sr:.1f} s")
                n_read += n
                if remaining is not None:
                    remaining -= n
                out = mono if resampler is None else resampler.resample_chunk(mono, last=last)
                if out.size:
                    yield np.ascontiguousarray(out, dtype=np.float32)
            elif resampler is not None:
                out = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if out.size:
                    yield out.astype(np.float32, copy=False)
            if last:
                break
        if n_read == 0:
            raise EmptyAudioError(path, "file holds no samples" if not start
                                  else f"no samples after offset {offset:.1f} s")


def prefetch(blocks: Iterator[np.ndarray], *, depth: int = 4) -> Iterator[np.ndarray]:
    """Run a block iterator (e.g. :func:`stream`) one step ahead in a background thread.

    Decoding (libsndfile) and resampling (soxr) release the GIL, so on a machine with a
    free core the next blocks are decoded while the caller analyses the current chunk. At
    most ``depth`` blocks wait in the queue (mono, at the analysis rate: about 1.5 MB each
    for :func:`stream`'s blocks), so memory stays bounded. Errors raised by the
    iterator (:class:`AudioError` ...) are raised here, in order, in the caller's thread;
    closing this generator early stops the thread.

    Parameters
    ----------
    blocks : iterator of np.ndarray
    depth : int
        Blocks decoded ahead.

    Yields
    ------
    np.ndarray
        The same blocks, in the same order.
    """
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work():
        try:
            for b in blocks:
                if not put(("ok", b)):
                    return
            put(("ok", done))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(("err", exc))
        finally:
            close = getattr(blocks, "close", None)
            if close is not None and stop.is_set():
                close()

    th = threading.Thread(target=work, name="scoresong-decode", daemon=True)
    th.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "err":
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        th.join()


def load(path, *, sr: int = ANALYSIS_SR, offset: float = 0.0, duration: float | None = None,
         min_duration: float = MIN_DURATION, check_silence: bool = True,
         quality: str = "MQ") -> tuple[np.ndarray, int]:
    """Decode a whole file (or an excerpt) to mono float32 at ``sr``.

    Use :func:`stream` for long files; this reads everything into memory.

    Parameters
    ----------
    path : str or os.PathLike
        Audio file.
    sr : int
        Output sample rate.
    offset, duration : float
        Excerpt start and length in seconds.
    min_duration : float
        Raise :class:`TooShortAudioError` below this many seconds.
    check_silence : bool
        Raise :class:`SilentAudioError` when the peak is below :data:`SILENCE_DB`.
    quality : str
        soxr quality, see :func:`stream`.

    Returns
    -------
    y : np.ndarray [shape=(n,), dtype=float32]
    sr : int

    Examples
    --------
    >>> y, sr = load("cue.ogg", offset=30, duration=20)  # doctest: +SKIP
    """
    blocks = list(stream(path, sr=sr, offset=offset, duration=duration, quality=quality))
    y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    check_signal(y, sr, path=path, min_duration=min_duration, check_silence=check_silence)
    return y, sr


def check_signal(y: np.ndarray, sr: int, *, path="<array>", min_duration: float = MIN_DURATION,
                 check_silence: bool = True) -> None:
    """Raise the matching :class:`AudioError` if ``y`` cannot be analysed.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono signal.
    sr : int
        Its sample rate.
    path : str
        Name used in the error message.
    min_duration : float
        Shortest acceptable length in seconds.
    check_silence : bool
        Whether an all-silent signal is an error.
    """
    if y.size and not np.isfinite(y).all():
        raise NonFiniteAudioError(path, "non-finite samples (NaN or inf)")
    check_levels(y.size, float(np.max(np.abs(y))) if y.size else 0.0, sr, path=path,
                 min_duration=min_duration, check_silence=check_silence)


class LevelMeter:
    """Sample count and peak of a block stream, measured as the blocks pass through.

    Streaming callers wrap their blocks with :meth:`watch` and call :meth:`check` once the
    stream is consumed, which applies :func:`check_levels`.
    """

    def __init__(self):
        self.n_samples = 0
        self.peak = 0.0

    def watch(self, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for b in blocks:
            if b.size:
                self.peak = max(self.peak, float(np.max(np.abs(b))))
                self.n_samples += b.size
            yield b

    def check(self, sr: int, *, path="<array>") -> None:
        check_levels(self.n_samples, self.peak, sr, path=path)


def check_levels(n_samples: int, peak: float, sr: int, *, path="<array>",
                 min_duration: float = MIN_DURATION, check_silence: bool = True) -> None:
    """Raise the matching :class:`AudioError` from a signal's length and peak alone.

    Streaming callers track ``n_samples`` and ``peak`` block by block and check once at the
    end; :func:`check_signal` does the same for a whole array.
    """
    if n_samples == 0:
        raise EmptyAudioError(path, "no samples")
    dur = n_samples / sr
    if dur < min_duration:
        raise TooShortAudioError(path, f"{dur:.2f} s is shorter than the {min_duration:.1f} s minimum")
    if check_silence and peak <= 10 ** (SILENCE_DB / 20):
        raise SilentAudioError(path, f"all samples below {SILENCE_DB:.0f} dBFS")
