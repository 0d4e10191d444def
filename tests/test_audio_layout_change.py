"""A channel layout that changes mid-stream (a broadcast's stereo programme before a 5.1
film) is decoded through: each part is down-mixed over its own channels, nothing is lost."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from scoresong import audio

av = pytest.importorskip("av")

SR = 48000


def _ac3(path, channels: np.ndarray, layout: str):
    """Raw AC-3 of ``channels`` (one row per channel, in the layout's order)."""
    with av.open(str(path), "w", format="ac3") as out:
        st = out.add_stream("ac3", rate=SR, layout=layout)
        st.bit_rate = 448000
        n = st.codec_context.frame_size or 1536
        for i in range(0, channels.shape[1] - n + 1, n):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(channels[:, i:i + n]), format="fltp",
                                            layout=layout)
            fr.sample_rate, fr.pts, fr.time_base = SR, i, Fraction(1, SR)
            for pkt in st.encode(fr):
                out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return path


def _tone(hz):
    t = np.arange(3 * SR) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_layout_change_mid_stream_is_decoded_whole(tmp_path):
    # Raw AC-3 is a plain sequence of frames, so two files joined are one stream whose
    # layout changes from stereo to 5.1 where the second begins. In the 5.1 part the
    # front pair carries 330 Hz and the other four channels 440 Hz: its mix holds both.
    first = _ac3(tmp_path / "a.ac3", np.stack([_tone(220)] * 2), "stereo")
    second = _ac3(tmp_path / "b.ac3", np.stack([_tone(330)] * 2 + [_tone(440)] * 4), "5.1")
    joined = tmp_path / "joined.ac3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    y = np.concatenate(list(audio.stream(joined, sr=SR, block_duration=1.0)))
    n1, n2 = audio.info(first).frames, audio.info(second).frames
    assert abs(y.size - (n1 + n2)) <= 2048

    def peaks(x):
        s = np.abs(np.fft.rfft(x))  # 1 s: bin k is k Hz
        return {hz: s[hz] / s.max() for hz in (220, 330, 440)}

    a, b = peaks(y[SR // 2:SR // 2 + SR]), peaks(y[-SR - SR // 2:-SR // 2])
    assert a[220] == 1 and a[330] < 0.05 and a[440] < 0.05
    # The LFE channel is low-passed (120 Hz) by the encoder: 440 Hz comes from the other three.
    assert b[220] < 0.05 and b[330] > 0.3 and b[440] > 0.3
