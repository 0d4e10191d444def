"""Audio input: decoding, down-mixing, resampling and block streaming.

Nothing else in scoresong decodes audio. Every entry point (:func:`scoresong.predict`,
:func:`~scoresong.timeline`, :func:`~scoresong.explain`, :func:`~scoresong.extract_features`)
takes any of these *sources* and hands it to :func:`stream`:

- a **path** (``str`` or ``os.PathLike``);
- **bytes** (``bytes``, ``bytearray``, ``memoryview``) or a binary **file-like object**
  (``io.BytesIO``, an open file, an upload), decoded exactly like a file;
- a **numpy array** ``y`` with ``sr=`` its sample rate: mono ``(n,)`` or multichannel
  ``(channels, n)`` (librosa's convention: channels first);
- an **iterator of blocks** with ``sr=`` (each block shaped like an array above), for live
  or very long input: analysed in constant memory, on the same streaming path as files.

Files and bytes are read with libsndfile (through :mod:`soundfile`: WAV, FLAC,
OGG/Vorbis, Opus, MP3, AIFF, CAF, ...) where it reads them, and with FFmpeg's decoders
(through PyAV, whose wheels carry them; no system ffmpeg) for the rest: AAC/M4A, ALAC,
MP4/MOV/MKV/WebM/AVI (first audio stream unless ``stream=`` says otherwise), WMA,
AC-3/E-AC-3 in any channel layout. Whatever the source, the signal is mixed to mono (the
plain channel average) and resampled with soxr to the single analysis rate, block by block
so memory stays bounded whatever the length or channel count. The same audio given as a
file, bytes, an array or a block stream gives the same samples (to float tolerance).

Every failure is raised as a subclass of :class:`AudioError` that carries the source's
name (its path, or ``"<array>"``, ``"<stream>"``, ``"<bytes>"``) and a human-readable
reason. Arguments of the wrong kind (a ``(frames, channels)`` array, integer samples, a
missing or non-positive ``sr``) raise :class:`ValueError` / :class:`TypeError` saying what
was expected.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import threading
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

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
    "NoAudioStreamError",
    "DecoderWarning",
    "AudioInfo",
    "info",
    "load",
    "stream",
    "prefetch",
    "analysis_blocks",
    "source_name",
    "is_file_source",
    "discover",
    "AUDIO_EXTENSIONS",
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
#: Most channels an array may have (a 2-D array with more rows is not ``(channels, n)``).
MAX_CHANNELS = 64
#: Bytes of decoded multichannel audio held at once while streaming.
_BLOCK_BYTES = 8 * 1024 * 1024

#: Extensions of what libsndfile reads.
_SNDFILE_EXTENSIONS = frozenset({
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".caf",
    ".w64", ".rf64"})
#: Extensions only FFmpeg (PyAV) reads: AAC/ALAC, video containers, Windows Media, Dolby.
#: A file with one of them that FFmpeg cannot open is damaged.
_FFMPEG_EXTENSIONS = frozenset({
    ".m4a", ".m4b", ".aac", ".mp4", ".m4v", ".mov", ".3gp", ".mkv", ".mka", ".webm", ".avi",
    ".wma", ".asf", ".wmv", ".ac3", ".eac3", ".ec3", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg",
    ".flv", ".amr", ".mp2"})
#: File extensions :func:`discover` collects from folders: both of the above.
AUDIO_EXTENSIONS = _SNDFILE_EXTENSIONS | _FFMPEG_EXTENSIONS
#: FFmpeg demuxers of containers that may hold video and no audio (for the clear error).
_VIDEO_CONTAINERS = ("mov", "mp4", "matroska", "webm", "avi", "asf", "mpegts", "mpeg", "flv",
                     "ogg", "3gp", "mxf", "nut", "rm")
#: FFmpeg demuxers whose duration comes from an index (so a shortfall means truncation).
_INDEXED_CONTAINERS = ("mov", "mp4", "matroska", "webm", "asf", "avi")
#: FFmpeg demuxers that "recognise" any text or image: not audio for us.
_NOT_AUDIO_DEMUXERS = ("tty", "image2", "png_pipe", "jpeg_pipe", "gif", "webp_pipe", "svg_pipe",
                       "bmp_pipe", "srt", "webvtt", "ass", "subviewer", "json")


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
    """The data is not in any audio or media format the decoders recognise."""


class CorruptAudioError(AudioError):
    """The container is recognised but decoding fails (truncated or damaged data)."""


class EmptyAudioError(AudioError):
    """The source holds no samples."""


class TooShortAudioError(AudioError):
    """The source is shorter than :data:`MIN_DURATION`."""


class SilentAudioError(AudioError):
    """Every sample is below :data:`SILENCE_DB`."""


class NonFiniteAudioError(AudioError):
    """The source holds NaN or infinite samples."""


class UnsupportedAudioError(AudioError):
    """Readable audio that cannot be analysed (e.g. a sample rate below 4 kHz)."""


class NoAudioStreamError(AudioError):
    """A media file (e.g. a video) with no audio stream, or not the one asked for."""


class DecoderWarning(UserWarning):
    """A decoder reported damage it worked around (e.g. an MP3 frame it skipped).

    Decoders print such notes on the process's standard error; scoresong captures them and
    issues them as warnings naming the file, so nothing reaches the terminal unasked and a
    caller can filter them or turn them into errors (``warnings.simplefilter("error",
    DecoderWarning)``).
    """


_FD2_LOCK = threading.Lock()


@contextmanager
def _decoder_notes(name: str, seen: list | None = None):
    """Capture what C decoders write to file descriptor 2 and re-issue it as warnings.

    libsndfile's MP3 decoder (mpg123) prints notes such as "Illegal Audio-MPEG-Header"
    straight to the process's stderr. While a libsndfile call runs, fd 2 points at a
    temporary file (one call at a time, under a lock); lines that look like decoder notes
    become one :class:`DecoderWarning`, anything else is written back to stderr.
    """
    with _FD2_LOCK:
        try:
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (some embedded interpreters): nothing to capture
            yield
            return
        tmp = tempfile.TemporaryFile()
        try:
            os.dup2(tmp.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
            tmp.seek(0)
            text = tmp.read().decode("utf-8", "replace")
        finally:
            os.close(saved)
            tmp.close()
    if not text:
        return
    notes, other = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        (notes if line.startswith(("Note:", "Warning:", "Error:", "[")) else other).append(line)
    if other:
        try:
            sys.stderr.write("\n".join(other) + "\n")
        except (AttributeError, OSError, ValueError):
            pass
    if notes:
        msg = "; ".join(n.split(":", 1)[-1].strip() if n.startswith(("Note:", "Warning:", "Error:"))
                        else n for n in notes[:6])
        more = f" (+{len(notes) - 6} more)" if len(notes) > 6 else ""
        warnings.warn(DecoderWarning(f"{name}: decoder: {msg}{more}"), stacklevel=3)
        if seen is not None:
            seen.append(msg)


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


# -- sources ------------------------------------------------------------------------------

def is_file_source(source) -> bool:
    """Whether ``source`` is decoded like a file (a path, bytes or a file-like object)."""
    return isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)) or (
        hasattr(source, "read") and not isinstance(source, np.ndarray))


def source_name(source) -> str:
    """The name results and errors give ``source``: its path, or what kind of object it is.

    Paths give themselves; open files their ``name``; otherwise ``"<bytes>"``,
    ``"<file>"``, ``"<array>"`` or ``"<stream>"``.
    """
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, np.ndarray):
        return "<array>"
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        return name if isinstance(name, str) and name else "<file>"
    return "<stream>"


def _check_rate(sr, name: str) -> int:
    """The sample rate of an array or block stream, checked."""
    if sr is None:
        raise TypeError(f"{name}: sr= (the sample rate of the samples, in Hz) is required "
                        "for an array or a block stream")
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: sr must be a number of samples per second, got {sr!r}")
    if not np.isfinite(sr) or sr <= 0 or float(sr) != int(sr):
        raise ValueError(f"{name}: sr must be a positive whole number of Hz, got {sr!r}")
    if int(sr) < MIN_SOURCE_SR:
        raise UnsupportedAudioError(name, f"sample rate {int(sr)} Hz is below {MIN_SOURCE_SR} Hz")
    return int(sr)


def _channels_first(x, name: str, *, what: str = "y", channels: int | None = None) -> np.ndarray:
    """``x`` as a ``(channels, n)`` floating array (a view where possible), or a clear error.

    Follows librosa: a 1-D array is mono, a 2-D array is ``(channels, n)``. A 2-D array
    whose first axis is longer than its second, or longer than :data:`MAX_CHANNELS`, is
    refused instead of guessed: it is most likely ``(n, channels)`` as soundfile returns.
    In a block stream, once the first block has fixed ``channels``, a later block with that
    many rows is accepted however short it is.
    """
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or not hasattr(x, "__len__"):
            raise TypeError(f"{name}: {what} must be a numpy array of samples, got {type(x).__name__}")
        x = np.asarray(x)
    if x.dtype.kind != "f":
        hint = (f"; scale integer PCM to [-1, 1] first, e.g. y.astype(np.float32) / "
                f"{2 ** (8 * x.itemsize - 1)}") if x.dtype.kind in "iu" else ""
        raise ValueError(f"{name}: {what} must hold floating-point samples (float32 or float64), "
                         f"got dtype {x.dtype}{hint}")
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{name}: {what} must be mono (n,) or multichannel (channels, n), "
                         f"got {x.ndim} dimensions {x.shape}")
    ch, n = x.shape
    if (ch > n and ch != channels) or ch > MAX_CHANNELS:
        raise ValueError(
            f"{name}: {what} has shape {x.shape}: scoresong follows librosa's (channels, n) "
            f"convention and will not guess which axis holds the channels; for soundfile's "
            f"(n, channels) arrays pass y.T")
    if ch == 0:
        return x.reshape(1, 0)
    return x


def _planar_mono(x: np.ndarray) -> np.ndarray:
    """Channel average of a ``(channels, n)`` block as float32, summed channel by channel
    (the same order for a decoded file, passed as the transposed view of libsndfile's
    ``(n, channels)`` block, and for an array, so both give the same mix). Summing rows
    costs a tenth of ``block.mean(axis=1)`` on the ``(n, channels)`` layout, which reduces
    along the short, contiguous channel axis; for stereo the result is bit-identical."""
    ch = x.shape[0]
    if ch == 1:
        return np.array(x[0], dtype=np.float32)  # a copy: never hand on the caller's buffer
    mono = np.asarray(x[0], dtype=np.float32) + np.asarray(x[1], dtype=np.float32)
    for c in range(2, ch):
        mono += np.asarray(x[c], dtype=np.float32)
    return mono / np.float32(ch)


def _planar_mid_side(x: np.ndarray) -> np.ndarray:
    """Mid and side of a stereo ``(2, n)`` block as a ``(2, n)`` float32 array: row 0 is
    ``(L + R) / 2`` (bit-identical to :func:`_planar_mono`), row 1 ``(L - R) / 2``. Any
    other channel count gives the mono mix ``(n,)``: only a stereo image has a centre
    that a side channel can be subtracted from."""
    if x.shape[0] != 2:
        return _planar_mono(x)
    left = np.asarray(x[0], dtype=np.float32)
    right = np.asarray(x[1], dtype=np.float32)
    out = np.empty((2, x.shape[1]), np.float32)
    np.add(left, right, out=out[0])
    np.subtract(left, right, out=out[1])
    out /= np.float32(2)
    return out


def _conform(blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """Keep a mid/side stream's shape fixed by its first block: a stream that started in
    stereo gets a silent side for a later mono block (a media file whose layout changes),
    one that started in mono keeps only the mid of a later stereo block."""
    rows = None
    for b in blocks:
        if rows is None:
            rows = b.ndim
        if b.ndim == rows:
            yield b
        elif rows == 2:
            yield np.stack([b, np.zeros_like(b)])
        else:
            yield np.ascontiguousarray(b[0])


# -- opening files, bytes and file-like objects -------------------------------------------

@dataclass
class _Opened:
    """An open decoder: libsndfile (``sf``) or FFmpeg (``av``)."""

    kind: str
    handle: object
    stream: object = None  # the PyAV audio stream

    def close(self):
        try:
            self.handle.close()
        except Exception:  # noqa: BLE001 - closing a broken decoder must not hide the real error
            pass


def _check_path(path) -> None:
    p = Path(path)
    if not p.exists():
        raise AudioFileNotFoundError(path, "no such file")
    if p.is_dir():
        raise UnreadableAudioError(path, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise UnreadableAudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise EmptyAudioError(path, "file is empty (0 bytes)")


def _rewind(obj, pos) -> bool:
    try:
        obj.seek(pos)
        return True
    except (AttributeError, OSError, ValueError):
        return False


def _open(source, name: str, *, stream: int | None = None) -> _Opened:
    """Open a path, bytes or a file-like object: libsndfile first, FFmpeg for the rest."""
    if stream is not None and (isinstance(stream, bool) or not isinstance(stream, (int, np.integer))
                               or stream < 0):
        raise ValueError(f"{name}: stream must be the index of an audio stream (0, 1, ...), got {stream!r}")
    if isinstance(source, (str, os.PathLike)):
        _check_path(source)
        target, pos = str(source), None
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise EmptyAudioError(name, "no data (0 bytes)")
            source = io.BytesIO(bytes(source))
        target = source
        try:
            pos = source.tell() if source.seekable() else None
        except (AttributeError, OSError, ValueError):
            pos = None
    sf_exc = None
    if pos is not None or isinstance(target, str):
        try:
            with _decoder_notes(name):
                f = sf.SoundFile(target)
        except (OSError, RuntimeError) as exc:  # sf.LibsndfileError is a RuntimeError
            sf_exc = exc
        else:
            if stream:
                f.close()
                raise NoAudioStreamError(name, f"has one audio stream; stream={stream} was asked for")
            return _Opened("sf", f)
        if not isinstance(target, str) and not _rewind(target, pos or 0):
            raise UnreadableAudioError(name, "cannot rewind the file object to try another decoder")
    # Not seekable (a pipe): libsndfile cannot read it, FFmpeg streams it.
    return _open_av(target, name, stream=stream, sf_exc=sf_exc)


def _av_error_types():
    import av

    return (av.error.FFmpegError, OSError, ValueError, EOFError)


def _open_av(target, name: str, *, stream: int | None, sf_exc) -> _Opened:
    import av  # a dependency; imported here so that start-up does not pay for FFmpeg

    suffix = Path(name).suffix.lower() if not name.startswith("<") else ""
    try:
        container = av.open(target, mode="r", metadata_errors="ignore")
    except _av_error_types() as exc:
        if sf_exc is not None and not _sf_unrecognised(sf_exc):
            raise CorruptAudioError(name, f"cannot decode header ({sf_exc})") from exc
        if suffix in _FFMPEG_EXTENSIONS:
            raise CorruptAudioError(name, f"cannot open the {suffix[1:]} container "
                                          f"({_av_reason(exc)})") from exc
        raise NotAudioError(name, "not a recognised audio format") from exc
    fmt = container.format.name or ""
    audio_streams = list(container.streams.audio)
    if any(d == fmt or d in fmt.split(",") for d in _NOT_AUDIO_DEMUXERS):
        container.close()
        raise NotAudioError(name, "not a recognised audio format")
    if not audio_streams:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        if any(v in fmt for v in _VIDEO_CONTAINERS) and kinds:
            what = suffix[1:] if suffix else fmt.split(",")[0]
            raise NoAudioStreamError(name, f"the {what} file has no audio stream "
                                           f"(only {', '.join(kinds)})")
        raise NotAudioError(name, "not a recognised audio format")
    idx = stream or 0
    if idx >= len(audio_streams):
        container.close()
        raise NoAudioStreamError(name, f"has {len(audio_streams)} audio stream(s); stream={idx} "
                                       f"was asked for (counting from 0)")
    st = audio_streams[idx]
    st.thread_type = "AUTO"
    _discard_other_streams(container, st)
    return _Opened("av", container, stream=st)


def _discard_other_streams(container, keep) -> bool:
    """Have the demuxer skip every stream but ``keep`` without reading its packets.

    A film's video is most of its bytes, and PyAV's ``demux(st)`` would otherwise read every
    packet and drop it after. ``Stream.discard`` came with a later PyAV than the oldest one
    supported (12 has no such attribute); there the video is read and dropped as before:
    slower and a little more memory on long films, the same samples.

    Returns
    -------
    bool
        Whether the other streams are discarded.
    """
    try:
        from av.stream import Discard
    except ImportError:
        return False
    for other in container.streams:
        if other.index != keep.index:
            other.discard = Discard.all
    return True


#: libsndfile's error code for data in no format it knows (SF_ERR_UNRECOGNISED_FORMAT).
_SF_ERR_UNRECOGNISED_FORMAT = 1


def _sf_unrecognised(exc) -> bool:
    """Whether libsndfile refused the data as no format it knows (by error code, not text)."""
    return getattr(exc, "code", None) == _SF_ERR_UNRECOGNISED_FORMAT


def _av_reason(exc) -> str:
    msg = str(getattr(exc, "strerror", None) or exc).split(": '")[0]
    if msg.startswith("Error number"):  # FFmpeg codes without a message of their own
        return f"undecodable data, FFmpeg error {getattr(exc, 'errno', '?')}"
    return msg


def _av_duration(op: _Opened) -> float:
    """Seconds the container declares for the audio stream (0 when it does not say)."""
    st = op.stream
    if st.duration and st.time_base:
        return float(st.duration * st.time_base)
    return op.handle.duration / 1e6 if op.handle.duration else 0.0


def _av_rate_channels(op: _Opened) -> tuple[int, int]:
    cc = op.stream.codec_context
    sr = int(cc.sample_rate or op.stream.rate or 0)
    layout = getattr(cc, "layout", None)
    ch = int(getattr(layout, "nb_channels", 0) or getattr(cc, "channels", 0) or 0)
    return sr, ch


def info(source) -> AudioInfo:
    """Read the header of a file (a path, bytes or a file-like object).

    Parameters
    ----------
    source : str, os.PathLike, bytes or file-like
        Audio or media file.

    Returns
    -------
    AudioInfo
        Sample rate, channels, frames, container format and subtype (the codec, for files
        read through FFmpeg; ``frames`` is then the container's declared duration times the
        rate).

    Raises
    ------
    AudioError
        Missing, unreadable, non-audio or corrupt file, or no audio stream.
    """
    name = source_name(source)
    op = _open(source, name)
    try:
        if op.kind == "sf":
            f = op.handle
            return AudioInfo(name, int(f.samplerate), int(f.channels), int(f.frames),
                             str(f.format), str(f.subtype))
        sr, ch = _av_rate_channels(op)
        st = op.stream
        dur = _av_duration(op)
        return AudioInfo(name, sr, ch, int(round(dur * sr)), op.handle.format.name.split(",")[0].upper(),
                         st.codec_context.name.upper())
    finally:
        op.close()


# -- native-rate mono blocks from each kind of source ---------------------------------------

def _wav_declared_frames(f: sf.SoundFile, source) -> int:
    """Frames a RIFF/WAVE header's ``data`` chunk declares (0 if unknown).

    libsndfile quietly shortens a WAV whose data stops early (an interrupted recording or
    copy) to what is there; the header still says how long it should be.
    """
    if str(f.format) != "WAV" or not isinstance(source, (str, os.PathLike)):
        return 0
    try:
        with open(source, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return 0
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return 0
    pos, block_align = 12, 0
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if cid == b"fmt " and pos + 22 <= len(head):
            block_align = int.from_bytes(head[pos + 20:pos + 22], "little")
        if cid == b"data":
            if block_align <= 0 or size in (0, 0xFFFFFFFF):
                return 0
            return size // block_align
        pos += 8 + size + (size & 1)
    return 0


def _sf_blocks(f: sf.SoundFile, name: str, *, start: int, remaining: int | None,
               frames_per_block: int, declared: int = 0, mix=_planar_mono) -> Iterator[np.ndarray]:
    src_sr = int(f.samplerate)
    if f.channels < 1:
        raise CorruptAudioError(name, "header reports no channels")
    if f.frames <= 0 and f.seekable():
        raise EmptyAudioError(name, "file holds no samples")
    if start:
        try:
            f.seek(min(start, max(f.frames - 1, 0)))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise CorruptAudioError(name, f"cannot seek to {start / src_sr:.1f} s ({exc})") from exc
    frames_per_block = max(4096, min(frames_per_block, _BLOCK_BYTES // (4 * f.channels)))
    # Only libsndfile's MP3 decoder talks on stderr; other formats skip the capture.
    is_mp3 = str(f.format) in ("MP3", "MPEG")
    seen: list = []
    reads_to_end = remaining is None
    n_read = 0
    while remaining is None or remaining > 0:
        want = frames_per_block if remaining is None else min(frames_per_block, remaining)
        try:
            with _decoder_notes(name, seen) if is_mp3 else nullcontext():
                block = f.read(want, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise CorruptAudioError(
                name, f"decoding failed after {n_read / src_sr:.1f} s ({exc})") from exc
        n = block.shape[0]
        if n:
            n_read += n
            if remaining is not None:
                remaining -= n
            yield mix(block.T)
        if n < want:
            break
    # Decoding that stops well short of the header's length is damage, not a short file
    # (an MP3's length is an estimate unless its decoder reported damage).
    declared = max(int(f.frames), declared) - start if f.seekable() else 0
    if (reads_to_end and declared > 0 and (not is_mp3 or seen)
            and n_read < 0.9 * declared - 0.5 * src_sr):
        why = f"; decoder: {seen[0]}" if seen else ""
        raise CorruptAudioError(name, f"decoding stopped at {n_read / src_sr:.1f} s of the "
                                      f"{declared / src_sr:.1f} s the header declares{why}")


def _layout_channels(layout) -> int:
    """Channels of a PyAV ``AudioLayout`` (``nb_channels`` since PyAV 13, ``channels`` in 12)."""
    return int(getattr(layout, "nb_channels", 0) or len(layout.channels))


def _frame_planar(frame) -> np.ndarray:
    """A decoded FFmpeg frame as ``(channels, n)`` samples (float or scaled integers)."""
    a = frame.to_ndarray()
    ch = _layout_channels(frame.layout)
    if not frame.format.is_planar and ch > 1:
        a = a.reshape(-1, ch).T
    kind = a.dtype.kind
    if kind == "f":
        return a
    if kind == "u":  # u8 / u8p: offset binary
        return (a.astype(np.float32) - 128.0) / 128.0
    return a.astype(np.float32) * np.float32(1.0 / 2 ** (8 * a.itemsize - 1))


def _av_blocks(op: _Opened, name: str, *, frames_per_block: int, mix=_planar_mono) -> Iterator[np.ndarray]:
    import av

    container, st = op.handle, op.stream
    src_sr, _ = _av_rate_channels(op)
    errors = _av_error_types()
    # Decoded frames (1024 samples for AAC) are gathered in FFmpeg's own FIFO and turned
    # into one array per block: converting each frame to numpy cost more than decoding it,
    # all of it holding the GIL that the feature thread needs.
    fifo, fifo_channels = av.AudioFifo(), None
    n_total = 0
    packets = container.demux(st)
    while True:
        try:
            packet = next(packets, None)
            frames = packet.decode() if packet is not None else []
        except errors as exc:
            raise CorruptAudioError(name, f"decoding failed after {n_total / src_sr:.1f} s "
                                          f"({_av_reason(exc)})") from exc
        if packet is None:
            break
        for frame in frames:
            if frame.sample_rate != src_sr:
                raise UnsupportedAudioError(name, f"the sample rate changes mid-stream "
                                                  f"({src_sr} -> {frame.sample_rate} Hz)")
            frame.pts = None  # the FIFO checks timestamps for gaps; the decoder's order is ours
            channels = _layout_channels(frame.layout)
            if channels != fifo_channels:  # the layout changed (2.0 <-> 5.1): a FIFO per layout
                if fifo.samples:
                    yield mix(_frame_planar(fifo.read()))
                fifo, fifo_channels = av.AudioFifo(), channels
            try:
                fifo.write(frame)
            except ValueError:  # the sample format changed
                yield mix(_frame_planar(fifo.read()))
                fifo = av.AudioFifo()
                fifo.write(frame)
            n_total += frame.samples
            if fifo.samples >= frames_per_block:
                # Mix once per block, not once per 1024-sample frame.
                yield mix(_frame_planar(fifo.read()))
    if fifo.samples:
        yield mix(_frame_planar(fifo.read()))
    if n_total == 0:
        raise EmptyAudioError(name, "the audio stream holds no samples")
    # A container with an index declares its length: a large shortfall is a truncated file
    # (FFmpeg stops quietly at the end of the data it has).
    fmt = container.format.name or ""
    declared = _av_duration(op)
    got = n_total / src_sr
    if declared and any(c in fmt for c in _INDEXED_CONTAINERS) and got < 0.9 * declared - 0.5:
        raise CorruptAudioError(name, f"truncated: {got:.1f} s of audio decoded, the container "
                                      f"declares {declared:.1f} s")


def _array_blocks(x: np.ndarray, *, frames_per_block: int, mix=_planar_mono) -> Iterator[np.ndarray]:
    n = x.shape[1]
    for i in range(0, n, frames_per_block):
        yield mix(x[:, i:i + frames_per_block])


def _iter_blocks(blocks: Iterable, name: str, *, mix=_planar_mono) -> Iterator[np.ndarray]:
    channels = None
    for k, b in enumerate(blocks):
        x = _channels_first(b, name, what=f"block {k}", channels=channels)
        if x.shape[1] == 0:
            continue
        if channels is None:
            channels = x.shape[0]
        elif x.shape[0] != channels:
            raise ValueError(f"{name}: block {k} has {x.shape[0]} channel(s), the first block had "
                             f"{channels}")
        yield mix(x)


def _trim(blocks: Iterator[np.ndarray], start: int, count: int | None) -> Iterator[np.ndarray]:
    """Drop the first ``start`` samples of a block stream and stop after ``count``
    (blocks are ``(n,)`` or, mid/side, ``(2, n)``: samples run along the last axis)."""
    for b in blocks:
        n = b.shape[-1]
        if start:
            if n <= start:
                start -= n
                continue
            b, start = b[..., start:], 0
            n = b.shape[-1]
        if count is not None:
            if n >= count:
                if count:
                    yield b[..., :count]
                return
            count -= n
        yield b


def stream(source, *, sr: int = ANALYSIS_SR, source_sr: float | None = None, offset: float = 0.0,
           duration: float | None = None, stream: int | None = None, block_duration: float = 60.0,
           quality: str = "MQ", mid_side: bool = False) -> Iterator[np.ndarray]:
    """Decode ``source`` block by block as mono float32 at ``sr``.

    Memory is bounded by ``block_duration`` (and by a byte budget for files with many
    channels), never by the source's length. Concatenating the blocks gives the same
    signal as :func:`load`.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray or iterator of np.ndarray
        See the module docstring. Arrays and blocks are ``(n,)`` or ``(channels, n)``
        floating-point samples.
    sr : int
        Output sample rate.
    source_sr : number, optional
        Sample rate of an array or block stream (required for those; must be ``None`` for
        files, whose rate is read from the file).
    offset, duration : float
        Start (s) and length (s) of the excerpt to read; ``None`` reads to the end.
    stream : int, optional
        Which audio stream of a media file to read, counting from 0 (default: the first).
    block_duration : float
        Approximate seconds of input per block.
    quality : {"QQ", "LQ", "MQ", "HQ", "VHQ"}
        soxr resampling quality. "MQ" keeps the pass band flat far beyond what the
        features use (they stop at 7.6 kHz) at a fraction of "HQ"'s cost.
    mid_side : bool
        For a two-channel source, yield ``(2, n)`` blocks: row 0 the mono mix (mid,
        ``(L + R) / 2``, the same samples as without this option), row 1 the side
        ``(L - R) / 2``, both resampled by one two-channel soxr stream. Sources with any
        other number of channels still yield ``(n,)`` mono blocks; the first block fixes
        the shape for the whole stream.

    Yields
    ------
    np.ndarray [shape=(n,) or (2, n), dtype=float32]
        Consecutive blocks of the mono (or mid/side), resampled signal.

    Raises
    ------
    AudioError
        The subclass says why: missing, not audio, corrupt, no audio stream, empty,
        non-finite, unsupported rate. Silence and minimum length are checked by callers
        (see :func:`load`) because they need the whole signal.
    ValueError, TypeError
        Arguments of the wrong kind: an array that is not ``(n,)`` or ``(channels, n)``,
        non-floating samples, a missing or non-positive ``source_sr``, a negative offset.

    Examples
    --------
    >>> total = sum(len(b) for b in stream("cue.ogg"))  # doctest: +SKIP
    >>> total = sum(len(b) for b in stream(y, source_sr=44100))  # doctest: +SKIP
    """
    name = source_name(source)
    if not np.isfinite(offset) or offset < 0:
        raise ValueError(f"{name}: offset must be a non-negative number of seconds, got {offset!r}")
    if duration is not None and (not np.isfinite(duration) or duration < 0):
        raise ValueError(f"{name}: duration must be None or a non-negative number of seconds, "
                         f"got {duration!r}")
    op = None
    if is_file_source(source):
        if source_sr is not None:
            raise ValueError(f"{name}: sr= is the rate of an array or block stream; a file's rate "
                             "is read from the file")
        op = _open(source, name, stream=stream)
        if op.kind == "sf":
            src_sr = int(op.handle.samplerate)
        else:
            src_sr = _av_rate_channels(op)[0]
        if src_sr < MIN_SOURCE_SR:
            op.close()
            raise UnsupportedAudioError(name, f"sample rate {src_sr} Hz is below {MIN_SOURCE_SR} Hz")
    else:
        if stream:
            raise ValueError(f"{name}: stream= chooses an audio stream of a media file")
        src_sr = _check_rate(source_sr, name)
    start = int(round(offset * src_sr))
    count = None if duration is None else int(round(duration * src_sr))
    frames_per_block = max(1024, int(block_duration * src_sr))
    mix = _planar_mid_side if mid_side else _planar_mono
    try:
        if op is not None and op.kind == "sf":
            native = _sf_blocks(op.handle, name, start=start, remaining=count,
                                frames_per_block=frames_per_block,
                                declared=_wav_declared_frames(op.handle, source), mix=mix)
            start = 0  # libsndfile seeks
        elif op is not None:
            native = _av_blocks(op, name, frames_per_block=frames_per_block, mix=mix)
        elif isinstance(source, np.ndarray) or isinstance(source, (list, tuple)):
            x = _channels_first(source, name)
            native = _array_blocks(x, frames_per_block=frames_per_block, mix=mix)
        else:
            if not hasattr(source, "__iter__"):
                raise TypeError(f"{name}: expected a path, bytes, a file-like object, a numpy "
                                f"array or an iterator of arrays, got {type(source).__name__}")
            native = _iter_blocks(source, name, mix=mix)
        if mid_side:
            native = _conform(native)
        yield from _resampled(_trim(native, start, count), name, src_sr, sr, quality=quality,
                              offset=offset)
    finally:
        if op is not None:
            op.close()


_stream = stream  # for callers whose ``stream=`` argument hides the function


#: Seconds per block on the analysis path, and blocks decoded ahead. The feature core
#: analyses 61.44 s chunks (plus 1 s of context); short blocks let it start on a chunk as
#: soon as its samples are decoded rather than when a long block that overruns it is, and
#: 8 blocks ahead (80 s, 5 MB at 16 kHz) keep the decoder a whole chunk ahead of it.
_ANALYSIS_BLOCK_S = 10.0
_ANALYSIS_DEPTH = 8


def analysis_blocks(source, *, source_sr: float | None = None, offset: float = 0.0,
                    duration: float | None = None, stream: int | None = None,
                    mid_side: bool = False) -> Iterator[np.ndarray]:
    """:func:`stream` at :data:`ANALYSIS_SR`, as the feature core consumes it: mono ``(n,)``
    blocks, or with ``mid_side`` mid/side ``(2, n)`` blocks for a stereo source (what the
    feature core asks for with ``view="centre"`` or an experiment switch,
    :func:`scoresong.features.reads_stereo`).

    A file (path, bytes, file object) is decoded one step ahead on another core
    (:func:`prefetch`); an array needs no decoding, and a caller's own block iterator stays
    in the caller's thread.
    """
    blocks = _stream(source, sr=ANALYSIS_SR, source_sr=source_sr, offset=offset,
                     duration=duration, stream=stream, block_duration=_ANALYSIS_BLOCK_S,
                     mid_side=mid_side)
    return prefetch(blocks, depth=_ANALYSIS_DEPTH) if is_file_source(source) else blocks


def _resampled(blocks: Iterator[np.ndarray], name: str, src_sr: int, sr: int, *, quality: str,
               offset: float) -> Iterator[np.ndarray]:
    """Check finiteness and resample a block stream with one soxr stream (mono ``(n,)``
    blocks, or mid/side ``(2, n)`` blocks through one two-channel stream)."""
    resampler = None
    rows = 0
    n_read = 0
    for b in blocks:
        if not np.isfinite(b).all():
            bad = int(np.argmin(np.isfinite(b).all(axis=0) if b.ndim == 2 else np.isfinite(b)))
            raise NonFiniteAudioError(
                name, f"non-finite samples (NaN or inf) near {offset + (n_read + bad) / src_sr:.1f} s")
        n_read += b.shape[-1]
        if src_sr == sr:
            out = np.ascontiguousarray(b, dtype=np.float32)
        else:
            if resampler is None:
                rows = b.shape[0] if b.ndim == 2 else 0
                resampler = soxr.ResampleStream(src_sr, sr, max(rows, 1), dtype="float32",
                                                quality=quality)
            out = _resample_chunk(resampler, b, rows, last=False)
        if out.shape[-1]:
            yield out
    if resampler is not None and n_read:
        empty = np.zeros((rows, 0) if rows else 0, np.float32)
        out = _resample_chunk(resampler, empty, rows, last=True)
        if out.shape[-1]:
            yield out
    if n_read == 0:
        raise EmptyAudioError(name, "no samples" if not offset
                              else f"no samples after offset {offset:.1f} s")


def _resample_chunk(resampler, b: np.ndarray, rows: int, *, last: bool) -> np.ndarray:
    """One soxr step on a mono ``(n,)`` or a ``(rows, n)`` block (soxr takes frames first)."""
    if not rows:
        return resampler.resample_chunk(np.ascontiguousarray(b, dtype=np.float32), last=last)
    out = resampler.resample_chunk(np.ascontiguousarray(b.T, dtype=np.float32), last=last)
    return np.ascontiguousarray(out.T)


def discover(paths: Iterable) -> list[str]:
    """Expand directories recursively into the audio and media files they hold (sorted).

    Files given directly are kept whatever their extension; in folders, files whose
    extension is in :data:`AUDIO_EXTENSIONS` are collected.
    """
    out = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(str(Path(root) / f) for f in sorted(files)
                           if Path(f).suffix.lower() in AUDIO_EXTENSIONS)
        else:
            out.append(str(p))
    return out


def prefetch(blocks: Iterator[np.ndarray], *, depth: int = 4) -> Iterator[np.ndarray]:
    """Run a block iterator (e.g. :func:`stream`) one step ahead in a background thread.

    Decoding (libsndfile) and resampling (soxr) release the GIL, so on a machine with a
    free core the next blocks are decoded while the caller analyses the current chunk. At
    most ``depth`` blocks wait in the queue (mono, at the analysis rate: 0.64 MB each for
    :func:`analysis_blocks`' 10 s blocks), so memory stays bounded. Errors raised by the
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


def load(source, *, sr: int = ANALYSIS_SR, source_sr: float | None = None, offset: float = 0.0,
         duration: float | None = None, stream: int | None = None,
         min_duration: float = MIN_DURATION, check_silence: bool = True,
         quality: str = "MQ") -> tuple[np.ndarray, int]:
    """Decode a whole source (or an excerpt) to mono float32 at ``sr``.

    Use :func:`stream` for long sources; this reads everything into memory.

    Parameters
    ----------
    source : path, bytes, file-like, np.ndarray or iterator of np.ndarray
        See :func:`stream`.
    sr : int
        Output sample rate.
    source_sr : number, optional
        Sample rate of an array or block stream.
    offset, duration : float
        Excerpt start and length in seconds.
    stream : int, optional
        Audio stream of a media file (default: the first).
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
    >>> y, sr = load(open("film.mkv", "rb"), stream=1)  # doctest: +SKIP
    """
    blocks = list(_stream(source, sr=sr, source_sr=source_sr, offset=offset,
                                duration=duration, stream=stream, quality=quality))
    y = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    check_signal(y, sr, path=source_name(source), min_duration=min_duration,
                 check_silence=check_silence)
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
        #: Whether the stream came as mid/side blocks (a stereo source read for its centre).
        self.mid_side = False

    def watch(self, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """Pass ``blocks`` through, measuring the mono mix (row 0 of a mid/side block)."""
        for b in blocks:
            if b.ndim == 2:
                self.mid_side = True
            mono = b[0] if b.ndim == 2 else b
            if mono.size:
                self.peak = max(self.peak, float(np.max(np.abs(mono))))
                self.n_samples += mono.size
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
