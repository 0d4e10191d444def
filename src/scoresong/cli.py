"""Command line: argument parsing only; the work is done by the public API.

    scoresong predict FILE_OR_DIR... [--output results.csv|.jsonl] [--resume] [--jobs N]
                      [--backend dask --scheduler ADDR] [--threshold P] [--explain]
                      [--classes score,song]
    scoresong train CORPUS -o MODEL [--groups COLUMN] [--label NAME=score|song|no_music]...
                    [--jobs N] [--cache DIR] [--no-eval]
    scoresong evaluate MODEL CORPUS [-o REPORT_STEM] [--groups COLUMN] [--label NAME=LABEL]...
                       [--threshold P] [--jobs N] [--cache DIR]
    scoresong explain FILE... [--top N] [--format text|json] [--stream N] [--classes score,song]
    scoresong timeline FILE [--format csv|json|cues|audacity|jams] [--plot out.png] [--output PATH]
                       [--stream N] [--classes score,song]

With a three-class model (the shipped one) a file is labelled score, song or no_music (no music
audible: dialogue alone, effects, ambience); --classes score,song asks for the two music
labels only, as before.
    scoresong features FILE [--stream N]

FILE may be any audio or media file (WAV, FLAC, OGG, MP3, AAC/M4A, MP4/MOV/MKV/WebM, AC-3...);
``-`` reads it from standard input. --stream N picks a media file's N-th audio stream.

Exit status: 0 when every file was classified, 1 when any failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import json
import sys
from pathlib import Path

from . import __version__


def _source(arg: str):
    """A file argument: a path, or ``-`` for standard input (a pipe is decoded by FFmpeg)."""
    return sys.stdin.buffer if arg == "-" else arg


def _cmd_predict(a) -> int:
    from .batch import run_batch
    from .audio import discover

    if "-" in a.files:
        # Standard input: one stream, read here (it cannot be split among workers or resumed).
        if a.files != ["-"] or a.resume:
            print("error: '-' (standard input) must be the only file, without --resume", file=sys.stderr)
            return 1
        paths, a.jobs, a.backend, a.scheduler = [_source("-")], 1, None, None
    else:
        paths = discover(a.files)
    if not paths:
        print("no audio files found", file=sys.stderr)
        return 1
    fmt = {"json": "jsonl"}.get(a.format, a.format)
    client = None
    backend = a.backend
    if a.scheduler:
        from distributed import Client

        client = Client(a.scheduler)
        backend = "dask"

    def report(f):
        print(f"error: {f.path}: {f.error}: {f.reason}", file=sys.stderr)

    try:
        s = run_batch(paths, a.output, fmt=fmt, resume=a.resume, model=a.model, n_jobs=a.jobs,
                      backend=backend, threshold=a.threshold, explain=a.explain,
                      progress=a.progress, on_error=report, stream=a.stream, classes=a.classes,
                      view=a.view)
    finally:
        if client is not None:
            client.close()
    if a.output or s.skipped or s.failed or s.interrupted:
        print(f"{s.classified} classified, {len(s.failed)} failed, {s.skipped} already in "
              f"{a.output or 'the output'}, {s.total - s.skipped - s.done} not done "
              f"({s.seconds:.1f} s){'; interrupted' if s.interrupted else ''}", file=sys.stderr)
    if s.interrupted:
        return 130
    return 1 if s.failed else 0


# --- argument types: bad values are usage errors (exit status 2), caught before any work --

def _label_pair(text: str) -> tuple[str, str]:
    name, sep, label = text.partition("=")
    if not sep or not name or label.lower() not in ("score", "song", "no_music"):
        raise argparse.ArgumentTypeError(f"takes NAME=score, NAME=song or NAME=no_music, got {text!r}")
    return name, label


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        p = float("nan")
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return p


def _classes(text: str) -> tuple[str, ...]:
    c = tuple(x.strip().lower() for x in text.split(","))
    if sorted(c) not in (["score", "song"], ["no_music", "score", "song"]):
        raise argparse.ArgumentTypeError(f"must be score,song or no_music,score,song, got {text!r}")
    return c


def _stream_index(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be the index of an audio stream (0, 1, ...), got {text!r}")
    return int(text)


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n == 0:
        raise argparse.ArgumentTypeError(f"must be a number of processes (1, 2, ...; -1: all cores), got {text!r}")
    return n


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return int(text)


def _usage_problem(a) -> str | None:
    """What argparse cannot see: options that need each other."""
    if a.command == "predict":
        if a.resume and not a.output:
            return "--resume needs --output (the file to resume)"
        if a.backend == "dask" and not a.scheduler:
            return "--backend dask needs --scheduler ADDRESS (a running Dask scheduler)"
    return None


def _labels(pairs) -> dict:
    return dict(pairs or [])


def _cmd_train(a) -> int:
    from .training import train

    model, report = train(a.corpus, out=a.output, groups=a.groups, label_map=_labels(a.label),
                          n_jobs=a.jobs, cache_dir=a.cache, evaluate=not a.no_eval,
                          candidates=("hgb", "logreg") if a.estimator == "auto" else (a.estimator,),
                          model_version=a.model_version, log=lambda m: print(m, file=sys.stderr))
    cv = report.get("cv")
    f = report["features"]
    print(f"features: {f['extracted']} extracted, {f['cached']} from the cache, {f['failed']} failed")
    if cv:
        print(f"grouped CV: accuracy {cv['accuracy']:.3f}, balanced accuracy "
              f"{cv['balanced_accuracy']:.3f}, F1 {cv['f1_song']:.3f}, ROC-AUC {cv['roc_auc']:.3f}")
    c3 = report.get("cv3")
    if c3:
        print(f"three classes: accuracy {c3['accuracy']:.3f}; recall " +
              ", ".join(f"{k} {v:.3f}" for k, v in c3["recall"].items()) +
              f"; music or not accuracy {c3['presence']['accuracy']:.3f}")
    js = Path(a.output).with_suffix(".json")
    print(f"model written to {js}; report: {js.with_name(js.stem + '.report.md')}")
    return 0


def _cmd_evaluate(a) -> int:
    from .training import evaluate

    stem = Path(a.output) if a.output else Path(a.model).with_name(Path(a.model).stem + ".evaluation")
    rep = evaluate(a.model, a.corpus, groups=a.groups, label_map=_labels(a.label), n_jobs=a.jobs,
                   cache_dir=a.cache, threshold=a.threshold, out=stem, view=a.view)
    res = rep.get("cv")
    if res:
        ba = res["balanced_accuracy"]
        print(f"score or song: {res['n']} items ({len(rep['failed'])} failed): accuracy {res['accuracy']:.3f}, "
              f"balanced accuracy {'–' if ba is None else f'{ba:.3f}'}, F1 {res['f1_song']:.3f}")
    c3 = rep.get("cv3")
    if c3:
        pr = c3["presence"]
        print(f"three classes: {c3['n']} items: accuracy {c3['accuracy']:.3f}; recall " +
              ", ".join(f"{k} {v:.3f}" for k, v in c3["recall"].items()) +
              f"; music or not accuracy {pr['accuracy']:.3f}")
    print(f"report: {stem.with_name(stem.name + '.md')}")
    return 0


def _cmd_explain(a) -> int:
    from .explanation import explain

    for path in a.files:
        e = explain(_source(path), stream=a.stream, model=a.model, top=a.top, classes=a.classes,
                    view=a.view)
        print(json.dumps(e.to_dict()) if a.format == "json" else str(e))
    return 0


def _cmd_timeline(a) -> int:
    from .segmentation import require_jams, timeline

    if a.format == "jams":
        try:
            require_jams()  # before the analysis, not after it
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    tl = timeline(_source(a.file), stream=a.stream, model=a.model, window=a.window, switch=a.switch,
                  song_break=a.song_break, min_silence=a.min_silence, classes=a.classes, align=a.align,
                  refine=a.refine)
    text = {"csv": tl.to_csv, "json": tl.to_json, "cues": tl.cues_csv, "audacity": tl.to_audacity,
            "jams": lambda: tl.to_jams().dumps(indent=1) + "\n"}[a.format]()
    if a.output:
        Path(a.output).write_text(text)
    else:
        sys.stdout.write(text)
    if a.plot:
        tl.plot(a.plot)
        print(f"plot written to {a.plot}", file=sys.stderr)
    return 0


def _cmd_features(a) -> int:
    from .features import extract_features

    f = extract_features(_source(a.file), stream=a.stream, view=a.view)
    print(json.dumps({"path": a.file, "duration": f.duration, "features": f.as_dict()}, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scoresong", description="Tell score cues from songs.")
    ap.add_argument("--version", action="version", version=f"scoresong {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="classify files (directories are searched recursively)")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=["table", "csv", "jsonl", "json"],
                   help="default: table on the terminal; with --output, from its suffix "
                        "(.jsonl/.json: JSON Lines, else CSV)")
    p.add_argument("--output", "-o", help="stream results to this file as they complete")
    p.add_argument("--resume", action="store_true", help="skip files already in --output, append the rest")
    p.add_argument("--jobs", "-j", type=_jobs, default=1, help="parallel processes (-1: all cores)")
    p.add_argument("--backend", choices=["loky", "threading", "dask"],
                   help="joblib backend (dask: needs --scheduler or a running client)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (implies --backend dask)")
    p.add_argument("--threshold", type=_probability,
                   help="P(song | music) from which music is a song (default: the model's)")
    p.add_argument("--explain", action="store_true", help="also say which features pushed each decision")
    p.add_argument("--classes", type=_classes, help="score,song: the two music labels only "
                                                     "(default: every label of the model)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on standard error (default: on a terminal)")
    p.add_argument("--model", help="model .json (default: the shipped model)")
    _view_option(p)
    p.add_argument("--stream", type=_stream_index, metavar="N",
                    help="audio stream of a media file to analyse, counting from 0 (default: the first)")
    p.set_defaults(func=_cmd_predict)
    t = sub.add_parser("train", help="train and evaluate a model on a labelled corpus")
    t.add_argument("corpus", help="CSV manifest (path,label[,group][,weight]...) or folder of label folders")
    t.add_argument("--output", "-o", required=True, help="model path (writes .json, .skops, .npz, .report.*)")
    t.add_argument("--groups", help="manifest column that groups items for cross-validation "
                                    "(default: 'group'; folders: 'folder', 'parent' or 'file')")
    t.add_argument("--label", action="append", type=_label_pair, metavar="NAME=score|song|no_music",
                   help="fold an extra label into score, song or no_music (repeatable)")
    t.add_argument("--jobs", "-j", type=_jobs, default=1)
    t.add_argument("--cache", help="feature cache directory (keyed by file content)")
    t.add_argument("--estimator", choices=["auto", "hgb", "logreg"], default="auto",
                   help="base classifier (auto: chosen on inner grouped folds)")
    t.add_argument("--no-eval", action="store_true", help="skip the nested cross-validation")
    t.add_argument("--model-version", help="version string stored in the model (default: today)")
    t.set_defaults(func=_cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a model on a labelled corpus")
    e.add_argument("model")
    e.add_argument("corpus")
    e.add_argument("--output", "-o", help="report path stem")
    e.add_argument("--groups")
    e.add_argument("--label", action="append", type=_label_pair, metavar="NAME=score|song|no_music")
    e.add_argument("--threshold", type=_probability)
    e.add_argument("--jobs", "-j", type=_jobs, default=1)
    e.add_argument("--cache")
    _view_option(e)
    e.set_defaults(func=_cmd_evaluate)
    x = sub.add_parser("explain", help="which features pushed the decision on each file")
    x.add_argument("files", nargs="+", help="audio or media files; - reads standard input")
    x.add_argument("--top", type=_positive_int, default=8)
    x.add_argument("--format", choices=["text", "json"], default="text")
    x.add_argument("--model")
    x.add_argument("--classes", type=_classes, help="score,song: explain the music decision only")
    _view_option(x)
    x.add_argument("--stream", type=_stream_index, metavar="N",
                    help="audio stream of a media file to analyse, counting from 0 (default: the first)")
    x.set_defaults(func=_cmd_explain)
    tl = sub.add_parser("timeline", help="where the score, the songs and the silences are in a long file")
    tl.add_argument("file", help="audio or media file; - reads standard input")
    tl.add_argument("--stream", type=_stream_index, metavar="N",
                    help="audio stream of a media file to analyse, counting from 0 (default: the first)")
    tl.add_argument("--format", choices=["csv", "json", "cues", "audacity", "jams"], default="csv",
                    help="segments as CSV or JSON, a cue list (seq, start, duration, usage BI/BV), an "
                         "Audacity label track, or JAMS (needs scoresong[jams])")
    tl.add_argument("--output", "-o", help="write here instead of standard output")
    tl.add_argument("--plot", help="also draw P(song) over time with the segments shaded (PNG)")
    tl.add_argument("--window", type=float, default=15.36, help="seconds behind each decision")
    tl.add_argument("--switch", type=float, default=0.1, help="prior of a label change per 5.12 s")
    tl.add_argument("--song-break", type=float, default=0.2,
                    help="share of windows inside a song with no vocal (intros, breaks); 0: off")
    tl.add_argument("--min-silence", type=float, default=1.0, help="shortest gap labelled silence (s)")
    tl.add_argument("--align", choices=["centred", "homogeneous"], default="centred",
                    help="window of each decision: centred on it, or the one that holds it and agrees "
                         "most (better change times, fewer frames right; see models/timeline_window.ab.md)")
    tl.add_argument("--refine", choices=["sides", "none"], default="sides",
                    help="sides (default): move each change by up to one 5.12 s segment to where the "
                         "windows beside it agree; none: as the HMM places it (models/timeline_window.ab.md)")
    tl.add_argument("--model")
    tl.add_argument("--classes", type=_classes, help="score,song: no no_music segments (as a "
                                                      "two-class model)")
    tl.set_defaults(func=_cmd_timeline)
    f = sub.add_parser("features", help="print a file's named features as JSON")
    f.add_argument("file", help="audio or media file; - reads standard input")
    f.add_argument("--stream", type=_stream_index, metavar="N",
                    help="audio stream of a media file to analyse, counting from 0 (default: the first)")
    _view_option(f)
    f.set_defaults(func=_cmd_features)
    return ap


def _view_option(p) -> None:
    p.add_argument("--view", choices=["mix", "centre"], default="mix",
                   help="what the model hears of a stereo file: the mono mix (default) or the centre "
                        "of the image, where records put the lead vocal (finds more songs in dense "
                        "mixes, calls more stereo score song; see the model card)")


def _input_errors() -> tuple[type[Exception], ...]:
    """The errors that mean bad input (a file, a model, a corpus, a setting): said in one
    line with exit status 1. Anything else, a ValueError from a bug included, is not
    caught: its traceback is what a bug report needs. (Imported only when an error is
    raised: training pulls in scikit-learn, which a cold start should not pay for.)"""
    from .audio import AudioError
    from .batch import BatchSettingsError
    from .inference import InferenceFormError
    from .model import ModelError
    from .segmentation import TimelineSettingError
    from .dataset import CorpusError

    return (AudioError, ModelError, InferenceFormError, CorpusError, TimelineSettingError,
            BatchSettingsError, FileNotFoundError)


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    problem = _usage_problem(a)
    if problem:
        ap.error(problem)  # exit status 2
    # At exit, skip the interpreter's last garbage collections of everything imported
    # (0.1-0.2 s of a 1 s cold start on 2 cores); every file is closed explicitly.
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
    try:
        return a.func(a)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `scoresong predict DIR | head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _input_errors() as exc:  # evaluated only when something else is raised
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
