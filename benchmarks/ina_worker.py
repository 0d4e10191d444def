"""Run inaSpeechSegmenter on WAV files; used by ``bench_inaseg.py`` (do not import scoresong).

    INA_PYTHON benchmarks/ina_worker.py JOBS.json OUT.json

``JOBS.json`` is a list of 16 kHz mono WAV paths. inaSpeechSegmenter (0.6.8, the last
release whose package carries its CNN weights, so it runs offline) needs TensorFlow and
old NumPy, hence its own interpreter. Its own front end converts every input with the
``ffmpeg`` program first; our reels are already 16 kHz mono WAV, so its feature function
(``_wav2feats``) reads them directly and no ffmpeg program is needed. Writes, per file, the
segments ``[label, start, end]`` of the speech / music / noise engine (``vad_engine='smn'``,
no gender split) and the seconds it took (after one untimed warm-up call, as TensorFlow
builds its graph on the first).
"""

import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(jobs_path, out_path):
    # Its old code warns about NumPy idioms and divides by zero on digital silence (the
    # patches it normalises there are gated as no energy anyway): keep the log readable.
    warnings.simplefilter("ignore")
    import numpy

    numpy.int = int  # its MFCC code uses numpy.int (the builtin int), gone from NumPy 1.24
    from inaSpeechSegmenter import segmenter
    from inaSpeechSegmenter.features import _wav2feats

    # The constructor only checks that an ffmpeg program exists; segment_feats never calls it.
    seg = segmenter.Segmenter(vad_engine="smn", detect_gender=False, ffmpeg=sys.executable)
    paths = json.load(open(jobs_path))
    if paths:  # warm-up, untimed: TensorFlow builds its graph on the first call
        seg.segment_feats(*_wav2feats(paths[0]), 0)
    out = {}
    for path in paths:
        t0 = time.perf_counter()
        mspec, loge, difflen = _wav2feats(path)
        segs = seg.segment_feats(mspec, loge, difflen, 0)
        out[path] = {"segments": [[str(lab), float(a), float(b)] for lab, a, b in segs],
                     "seconds": time.perf_counter() - t0}
        print(f"ina: {os.path.basename(path)} {out[path]['seconds']:.1f} s", file=sys.stderr, flush=True)
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
