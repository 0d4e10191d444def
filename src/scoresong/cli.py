"""Command line: argument parsing only; the work is done by the public API.

    scoresong predict FILE_OR_DIR... [--format table|csv|json] [--jobs N] [--output PATH]
    scoresong train CORPUS -o MODEL [--jobs N] [--cache DIR] [--no-eval]
    scoresong evaluate MODEL CORPUS [-o REPORT_STEM] [--jobs N] [--cache DIR]
    scoresong features FILE

Exit status: 0 when every file was classified, 1 when any failed, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from . import __version__


def _cmd_predict(a) -> int:
    from .predict import Prediction, discover, predict_many

    paths = discover(a.files)
    if not paths:
        print("no audio files found", file=sys.stderr)
        return 1
    out = open(a.output, "w", newline="") if a.output else sys.stdout
    n_bad = 0
    fields = ["path", "label", "probability", "duration", "model_version", "error"]
    writer = None
    if a.format == "csv":
        writer = csv.DictWriter(out, fieldnames=fields)
        writer.writeheader()
    elif a.format == "table":
        print(f"{'label':6} {'P(song)':>7} {'seconds':>8}  path", file=out)
    try:
        for r in predict_many(paths, n_jobs=a.jobs, model=a.model):
            d = r.to_dict()
            if not isinstance(r, Prediction):
                n_bad += 1
                print(f"error: {r.path}: {r.error}: {r.reason}", file=sys.stderr)
                d = {"path": r.path, "error": f"{r.error}: {r.reason}"}
            if a.format == "csv":
                writer.writerow({k: d.get(k, "") for k in fields})
            elif a.format == "json":
                print(json.dumps(d), file=out)
            elif isinstance(r, Prediction):
                print(f"{r.label:6} {r.probability:7.3f} {r.duration:8.1f}  {r.path}", file=out)
            else:
                print(f"{'ERROR':6} {'':7} {'':8}  {r.path}", file=out)
            out.flush()
    finally:
        if a.output:
            out.close()
    if n_bad:
        print(f"{n_bad} of {len(paths)} file(s) could not be classified", file=sys.stderr)
    return 1 if n_bad else 0


def _cmd_train(a) -> int:
    from .training import train

    model, report = train(a.corpus, out=a.output, n_jobs=a.jobs, cache_dir=a.cache,
                          evaluate=not a.no_eval, log=lambda m: print(m, file=sys.stderr))
    cv = report.get("cv")
    if cv:
        print(f"grouped CV: accuracy {cv['accuracy']:.3f}, balanced accuracy "
              f"{cv['balanced_accuracy']:.3f}, F1 {cv['f1_song']:.3f}, ROC-AUC {cv['roc_auc']:.3f}")
    print(f"model written to {Path(a.output).with_suffix('.json')}")
    return 0


def _cmd_evaluate(a) -> int:
    from .training import evaluate

    stem = Path(a.output) if a.output else Path(a.model).with_name(Path(a.model).stem + ".evaluation")
    res = evaluate(a.model, a.corpus, n_jobs=a.jobs, cache_dir=a.cache, out=stem)["cv"]
    print(f"accuracy {res['accuracy']:.3f}, balanced accuracy {res['balanced_accuracy']}, "
          f"F1 {res['f1_song']:.3f}; report: {stem.with_name(stem.name + '.md')}")
    return 0


def _cmd_features(a) -> int:
    from .features import extract_features

    f = extract_features(a.file)
    print(json.dumps({"path": a.file, "duration": f.duration, "features": f.as_dict()}, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="scoresong", description="Tell score cues from songs.")
    ap.add_argument("--version", action="version", version=f"scoresong {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("predict", help="classify files (directories are searched recursively)")
    p.add_argument("files", nargs="+")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes (-1: all cores)")
    p.add_argument("--output", "-o", help="write results here instead of standard output")
    p.add_argument("--model", help="model .json (default: the shipped model)")
    p.set_defaults(func=_cmd_predict)
    t = sub.add_parser("train", help="train and evaluate a model on a labelled corpus")
    t.add_argument("corpus", help="CSV manifest (path,label[,group]...) or folder of label folders")
    t.add_argument("--output", "-o", required=True, help="model path (writes .json, .skops, .report.md)")
    t.add_argument("--jobs", type=int, default=1)
    t.add_argument("--cache", help="feature cache directory")
    t.add_argument("--no-eval", action="store_true", help="skip the nested cross-validation")
    t.set_defaults(func=_cmd_train)
    e = sub.add_parser("evaluate", help="evaluate a model on a labelled corpus")
    e.add_argument("model")
    e.add_argument("corpus")
    e.add_argument("--output", "-o", help="report path stem")
    e.add_argument("--jobs", type=int, default=1)
    e.add_argument("--cache")
    e.set_defaults(func=_cmd_evaluate)
    f = sub.add_parser("features", help="print a file's named features as JSON")
    f.add_argument("file")
    f.set_defaults(func=_cmd_features)
    return ap


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    from .audio import AudioError
    from .model import ModelError

    try:
        return a.func(a)
    except (AudioError, ModelError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
