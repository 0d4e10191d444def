"""Write test signals into the containers users have (AAC/M4A, MP4, MKV, WebM, MOV, AC-3...).

PyAV (FFmpeg inside its wheels) encodes them, so the suite needs no system ffmpeg and no
downloaded media: every file is made from a generated signal in a few hundred ms.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

#: name -> (file extension, container format, audio codec, codec sample format,
#: channel layout, sample rate, video codec or None)
CONTAINERS = {
    "m4a-aac": ("m4a", "ipod", "aac", "fltp", "stereo", 44100, None),
    "mp4-h264-aac": ("mp4", "mp4", "aac", "fltp", "stereo", 48000, "libx264"),
    "mkv-opus": ("mkv", "matroska", "libopus", "flt", "stereo", 48000, None),
    "webm-vp9-opus": ("webm", "webm", "libopus", "flt", "stereo", 48000, "libvpx-vp9"),
    "mov-alac": ("mov", "mov", "alac", "s16p", "stereo", 44100, None),
    "ac3-5.1": ("ac3", "ac3", "ac3", "fltp", "5.1", 48000, None),
    "eac3-5.1": ("eac3", "eac3", "eac3", "fltp", "5.1", 48000, None),
    "wma": ("wma", "asf", "wmav2", "fltp", "stereo", 44100, None),
    "avi-mp3": ("avi", "avi", "libmp3lame", "fltp", "stereo", 44100, "mpeg4"),
}


def _layout_channels(layout: str) -> int:
    return {"mono": 1, "stereo": 2, "5.1": 6}[layout]


def _add_video(out, codec: str):
    """A 64x48, 10 frames/s video stream on the open container ``out``."""
    vs = out.add_stream(codec, rate=10)
    vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
    return vs


def _mux_grey_video(out, vs, seconds: float, level: int) -> None:
    """Encode ``seconds`` of a flat grey picture (``level`` 0-255) into ``vs`` and flush it."""
    import av

    img = np.full((48, 64, 3), level, np.uint8)
    for k in range(int(10 * seconds)):
        vf = av.VideoFrame.from_ndarray(img, format="rgb24")
        vf.pts = k
        for pkt in vs.encode(vf):
            out.mux(pkt)
    for pkt in vs.encode(None):
        out.mux(pkt)


def write_container(path, y: np.ndarray, sr: int, kind: str, *, video_seconds: float | None = None
                    ) -> Path:
    """Encode mono ``y`` (at ``sr``, resampled by the caller) into ``kind`` of :data:`CONTAINERS`.

    Every channel carries ``y`` (so the down-mix equals ``y``). With a video codec, a small
    grey video of the same length (or ``video_seconds``) is muxed beside the audio.
    """
    import av

    ext, fmt, codec, sample_fmt, layout, rate, vcodec = CONTAINERS[kind]
    assert sr == rate, f"{kind} wants audio at {rate} Hz"
    path = Path(path)
    ch = _layout_channels(layout)
    with av.open(str(path), "w", format=fmt) as out:
        vs = _add_video(out, vcodec) if vcodec else None
        st = out.add_stream(codec, rate=rate, layout=layout)
        st.format = sample_fmt
        if codec == "wmav2":
            st.bit_rate = 128000  # the WMA encoder will not open without one
        if codec in ("ac3", "eac3"):
            # 448 kb/s, a DVD's 5.1 rate; PyAV < 14.2 otherwise asks for 128 kb/s, which
            # smears six channels enough to move the song excerpt's P(song) by 0.43.
            st.bit_rate = 448000
        frame_size = st.codec_context.frame_size or 1024
        x = np.asarray(y, np.float32)
        planar = sample_fmt.endswith("p")
        pts = 0
        for i in range(0, x.size, frame_size):
            blk = x[i:i + frame_size]
            if blk.size < frame_size and st.codec_context.frame_size:
                blk = np.pad(blk, (0, frame_size - blk.size))
            if sample_fmt.startswith("s16"):
                data = np.clip(blk * 32767, -32768, 32767).astype(np.int16)
            else:
                data = blk
            arr = np.tile(data[None, :], (ch, 1)) if planar else np.repeat(data, ch)[None, :]
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=sample_fmt, layout=layout)
            fr.sample_rate = rate
            fr.pts = pts
            fr.time_base = Fraction(1, rate)
            pts += blk.size
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
        if vs is not None:
            _mux_grey_video(out, vs, video_seconds if video_seconds is not None else x.size / rate, 128)
    return path


def write_video_only(path, seconds: float = 3.0) -> Path:
    """An MP4 with a video stream and no audio stream."""
    import av

    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        _mux_grey_video(out, _add_video(out, "libx264"), seconds, 90)
    return path
