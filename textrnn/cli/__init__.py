"""``textrnn``: train-classifier, train-generator, distill, lr-find, prepare, cache, generate, predict, evaluate,
export, push, serve, fetch-web; every user error ends as one line on stderr and exit status 2
(:mod:`textrnn.core.errors`). The serving and export commands are :mod:`textrnn.cli.serving`."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import typing
from pathlib import Path
from typing import NoReturn, Optional, Sequence

from ..core.errors import TextRNNError
from ..serving.quantize import QUANTIZE_CHOICES
from .serving import cmd_export, cmd_fetch_web, cmd_push, cmd_serve, serve_limits

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse's own errors: one line, exit 2
        raise TextRNNError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The ``textrnn`` argument parser, one subcommand per job."""
    parser = _Parser(prog="textrnn", description="RNN text classifiers and generators on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from ..training.registry import TASKS

    for task, entry in TASKS.items():
        p = sub.add_parser(entry.command, help=f"train {entry.description} from a YAML config")
        p.add_argument("--config", help="YAML config (configs/*.yaml)")
        p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.lr=0.001")
        p.add_argument("--resume", help="run folder or checkpoint to resume from")
        p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
        p.set_defaults(handler=cmd_train, task=task, teacher=None)
    p = sub.add_parser("distill", help="train a classifier on a teacher's outputs (a transformers model or a file)")
    p.add_argument("--teacher", required=True, help="transformers folder or Hub id, or a .jsonl/.parquet of outputs")
    p.add_argument("--config", help="a classifier's YAML config (configs/sst2_distill.yaml)")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. distill.augment=10")
    p.add_argument("--resume", help="run folder or checkpoint to resume from")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
    p.set_defaults(handler=cmd_train, task="classification")
    p = sub.add_parser("lr-find", help="sweep the learning rate up over a few hundred updates; plot and suggest one")
    p.add_argument("--config", required=True, help="YAML config (configs/*.yaml), as you would train it")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. model.hidden_size=512")
    p.add_argument("--steps", type=int, default=200, help="updates at most (the sweep stops once the loss diverges)")
    p.add_argument("--start-lr", type=float, default=1e-7)
    p.add_argument("--end-lr", type=float, default=10.0)
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
    p.set_defaults(handler=cmd_lr_find)
    p = sub.add_parser("tune", help="hyperparameter search on Optuna: each trial a run folder (the tune extra)")
    p.add_argument("--config", required=True, help="YAML config; its search space is NAME.tune.yaml beside it")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.max_steps=2000")
    p.add_argument("--trials", type=int, default=20, help="finished trials to reach (a rerun continues the study)")
    p.add_argument("--space", help="the search space YAML (default: NAME.tune.yaml beside --config)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
    p.set_defaults(handler=cmd_tune)
    p = sub.add_parser("prepare", help="tokenize and encode a config's data once, in the cache training reads")
    p.add_argument("--config", required=True, help="YAML config (configs/*.yaml), as you would train it")
    p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. data.dataset=corpus.txt")
    p.set_defaults(handler=cmd_prepare)
    p = sub.add_parser("cache", help="list the prepared-data cache, or prune it to a size or age")
    p.add_argument("action", choices=["list", "prune"])
    p.add_argument("--cache-dir", help="default: $TEXTRNN_CACHE, else $HF_HOME/textrnn, else ~/.cache/textrnn")
    p.add_argument("--max-gb", type=float, help="prune: remove the least recently used until at most this size")
    p.add_argument("--unused-days", type=float, help="prune: remove what no run used for this many days")
    p.set_defaults(handler=cmd_cache)
    p = sub.add_parser("generate", help="sample text from a language-model checkpoint")
    _checkpoint_args(p)
    p.add_argument("--prompt", default="")
    _generation_flags(p)
    p.set_defaults(handler=cmd_generate)
    p = sub.add_parser("predict", help="label texts with a classifier checkpoint (one JSON line each)")
    _checkpoint_args(p)
    p.add_argument("texts", nargs="*")
    p.add_argument("--input", help="csv, tsv, parquet or jsonl (their text column), or one text per line (streamed)")
    p.add_argument("--text-column", action="append", help="the input's text column (repeat for several fields, "
                   "joined as in training); default: the model's text fields, else text")
    p.add_argument("--encoding", default="utf-8", help="the --input file's text encoding, e.g. latin-1")
    p.add_argument("--output", help="write here instead of stdout (.csv: csv, else jsonl)")
    p.add_argument("--format", choices=["jsonl", "csv"], help="default: from --output's extension, else jsonl")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, help="keep the first N tokens of each text")
    p.add_argument("--top-k", type=int, help="keep the K most likely labels' probabilities, most likely first")
    p.add_argument("--explain", action="store_true", help="add each text's token attributions (integrated gradients; "
                   "about 2 x 64 forward and backward passes a text)")
    p.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    p.set_defaults(handler=cmd_predict)
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a dataset split (last line: JSON)")
    _checkpoint_args(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--config-name", help="the Hub dataset's configuration (default: the training run's, same dataset)")
    p.add_argument("--split", default="validation")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--batch-size", type=int, help="default: the training run's data.eval_batch_size")
    p.set_defaults(handler=cmd_evaluate)
    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked against onnxruntime), or as a web page")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or a run's output_dir (its best checkpoint)")
    p.add_argument("--format", choices=["onnx", "web"], default="onnx", help="web: a folder any static server can host")
    p.add_argument("--output", required=True, help="the .onnx file to write, or the site folder for --format web")
    p.add_argument("--quantize", choices=["none", *QUANTIZE_CHOICES], default="none",
                   help="int8: onnxruntime's dynamic quantization, LSTMs included; int8-fp32-rnn: all but the "
                        "recurrent cells (docs/deployment.md measures both); prints the agreement with fp32")
    p.add_argument("--web-runtime", help="where `textrnn fetch-web` put onnxruntime-web (default: textrnn's cache)")
    p.set_defaults(handler=cmd_export)
    p = sub.add_parser("fetch-web", help="download the pinned onnxruntime-web and tokenizers.js for --format web")
    p.add_argument("--dir", help="where to put them (default: $TEXTRNN_WEB_RUNTIME, else web/ in textrnn's cache)")
    p.add_argument("--force", action="store_true", help="download again even when the files are there")
    p.set_defaults(handler=cmd_fetch_web)
    p = sub.add_parser("push", help="upload a checkpoint folder (weights, config, tokenizer, model card) to the Hub")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or a run's output_dir (its best checkpoint)")
    p.add_argument("--repo-id", required=True, help="OWNER/NAME on the Hugging Face Hub")
    p.add_argument("--private", action="store_true")
    p.set_defaults(handler=cmd_push)
    p = sub.add_parser("serve", help="serve a checkpoint over HTTP, with a web page (needs textrnn[serve])")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or a run's output_dir (its best checkpoint)")
    p.add_argument("--host", default="127.0.0.1", help="127.0.0.1 (this machine only) unless you mean otherwise")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--device", default="auto")
    serve_limits(p)
    p.set_defaults(handler=cmd_serve)
    return parser


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or a run's output_dir (its best checkpoint)")
    p.add_argument("--device", default="auto")


# ---------------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    """``train-classifier`` / ``train-generator``: train from a config (or resume a run); prints the result as JSON."""
    from ..core.config_files import load_config
    from ..training.api import train
    from ..training.run_folder import resume_config

    if args.resume and not args.config:
        config = resume_config(args.resume, args.overrides)
    else:
        if not args.config:
            raise TextRNNError("give --config configs/NAME.yaml (or --resume RUN_DIR to continue a run)")
        config = load_config(args.config, args.overrides, task=args.task)
    if args.teacher is not None:
        from ..training.distillation import distill

        result = distill(args.teacher, config, resume=args.resume, device=args.device)
    else:
        result = train(config, resume=args.resume, device=args.device)
    if result.interrupted:
        from ..training.registry import get_task

        again = f"distill --teacher {args.teacher}" if args.teacher is not None else get_task(config.task).command
        print(f"interrupted at step {result.step}; saved {result.output_dir / 'last'}; resume with: "
              f"textrnn {again} --resume {result.output_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.best_checkpoint is not None:  # the best checkpoint's figures, the last one's beside them
        print(json.dumps({"output_dir": str(result.output_dir), "stop_reason": result.stop_reason,
                          "steps": result.step, "planned_steps": result.planned_steps,
                          "best_step": result.best_step, **_summary(result.metrics),
                          "last": _summary(result.last_metrics)}))
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    """``lr-find``: the range test; prints the suggestion and the plot's path as JSON."""
    from ..core.config_files import load_config
    from ..training.api import lr_find

    found = lr_find(load_config(args.config, args.overrides), device=args.device, start_lr=args.start_lr,
                    end_lr=args.end_lr, steps=args.steps)
    print(json.dumps({"suggested_lr": found.suggested_lr, "plot": str(found.plot), "updates": len(found.lrs)}))
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    """``tune``: run or continue a study; prints the best trial as JSON."""
    from ..core.config_files import load_config
    from ..training.api import tune

    space = args.space or str(Path(args.config).with_suffix(".tune.yaml"))
    found = tune(load_config(args.config, args.overrides), space, args.trials, device=args.device)
    print(json.dumps({"best_params": found.best_params, "best_value": found.best_value, "best_run": str(found.best_run),
                      "best_config": str(found.best_config), "plot": str(found.plot), "trials": found.trials}))
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    """``prepare``: build the prepared-data cache of a config; prints one JSON line per stage (where, what)."""
    from ..core.config_files import load_config
    from ..training.api import prepare

    for prepared in prepare(load_config(args.config, args.overrides)):
        meta = prepared.meta
        print(json.dumps({"folder": str(prepared.folder), "kind": meta["kind"], "rows": meta.get("rows"),
                          "tokens": meta["tokens"], "vocab_size": meta["vocab_size"],
                          "bytes": sum(meta["files"].values()), "minutes": round(meta["seconds"] / 60, 2)}))
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """``cache list|prune``: one JSON line per folder (listed, or removed), then the total."""
    from ..data.cache import cache_entries, cache_root, prune_cache

    root = cache_root(args.cache_dir)
    if args.action == "prune":
        limit = None if args.max_gb is None else int(args.max_gb * 2**30)
        rows = [{**row, "removed": True} for row in prune_cache(root, limit, args.unused_days)]
    else:
        rows = cache_entries(root)
    for row in rows:
        print(json.dumps(row))
    print(json.dumps({"cache": str(root), "folders": len(cache_entries(root)),
                      "bytes": sum(row["bytes"] for row in cache_entries(root))}))
    return 0


def _summary(metrics: dict) -> dict:
    """Metrics for the one-line report: the per-label tables and confusion matrix stay in metrics.jsonl."""
    return {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "per_label", "thresholds")}


def _load(args, kind: Optional[str]):
    from ..core.runtime import select_device
    from ..models.registry import load_model
    from ..training.registry import get_task

    model = load_model(args.checkpoint, map_location=select_device(args.device))
    if kind is not None and model.task != kind:
        raise TextRNNError(
            f"{args.checkpoint} holds a {model.task} model; this command needs {get_task(kind).description}"
        )
    return model


def _generation_flags(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`GenerationConfig` setting, with its default and help (``stop`` repeats)."""
    from ..models.generation_config import GenerationConfig, setting_type

    for f in dataclasses.fields(GenerationConfig):
        flag, kind = "--" + f.name.replace("_", "-"), setting_type(f.name)
        if typing.get_origin(kind) is tuple:
            p.add_argument(flag, action="append", default=[], help=f"{f.metadata['help']} (repeatable)")
        else:
            p.add_argument(flag, type=kind, default=f.default, help=f"{f.metadata['help']} (default: {f.default})")


def cmd_generate(args: argparse.Namespace) -> int:
    """``generate``: stream a sample to stdout, or print several."""
    from ..models.generation_config import GenerationConfig, field_names

    config = GenerationConfig().replace(**{name: getattr(args, name) for name in field_names()}).validate()
    model = _load(args, "language_model")
    if config.num_samples == 1:
        pieces = model.stream_text(args.prompt, generation_config=config)  # a bad prompt fails here, before output
        _write(args.prompt)
        for piece in pieces:
            _write(piece)
        sys.stdout.write("\n")
        return 0
    for i, text in enumerate(model.generate_text(args.prompt, generation_config=config)):
        print(f"=== sample {i + 1} ===\n{args.prompt}{text}")
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: label texts or a file, one JSON line (or csv row) each, in input order."""
    from ..models.prediction import (
        PredictionWriter,
        count_rows,
        output_format,
        output_stream,
        predict_stream,
        progress,
        read_texts,
    )

    if not args.texts and not args.input:
        raise TextRNNError("give texts to label, or --input FILE")
    fmt = output_format(args.output, args.format)
    if args.explain and fmt == "csv":
        raise TextRNNError("--explain writes jsonl (a list of attributions per text); drop --format csv or .csv")
    model = _load(args, "classification")
    fields, separator = args.text_column or model.config.text_fields or ["text"], model.config.field_separator
    texts = itertools.chain(args.texts, read_texts(args.input, fields, separator, args.encoding) if args.input else [])
    rows = count_rows(args.input) if args.input else 0
    total = None if rows is None else len(args.texts) + rows
    with output_stream(args.output) as handle, progress(total, bool(args.input) and not args.quiet) as bar:
        writer = PredictionWriter(handle, fmt, model.label_names)
        for i, result in enumerate(predict_stream(model, texts, args.batch_size, args.max_length,
                                                  top_k=args.top_k, explain=args.explain)):
            if result.get("truncated_to_tokens"):
                bar.write(f"note: text {i} was cut to its first {result['truncated_to_tokens']} tokens",
                          file=sys.stderr)
            writer.write(i, result)
            bar.update()
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``evaluate``: metrics of a checkpoint on a dataset split, as one JSON line."""
    from ..training.evaluation import evaluate_checkpoint

    model = _load(args, None)
    metrics = evaluate_checkpoint(model, args.checkpoint, args.dataset, args.split, args.text_column, args.label_column,
                                  args.batch_size, args.config_name)
    print(json.dumps(metrics))
    return 0


def parse_args(argv: list) -> argparse.Namespace:
    """Parse a command line; key=value overrides may come before or after the flags."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if not argv or argv[0] not in sub.choices:
        return parser.parse_args(argv)  # usage error or --help
    args = sub.choices[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


# ---------------------------------------------------------------------------- main
def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command line; returns the exit status (2 for a one-line error, 130 when interrupted)."""
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
        return args.handler(args)
    except TextRNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0


def run(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point."""
    import torch

    # A launched process owns torch's global generator: seed it from the OS, so that sampling without --seed differs
    # from one launch to the next whatever torch's own start-up seed is. Training seeds itself (train.seed);
    # main() in a caller's process and the library never re-seed it.
    torch.seed()
    sys.exit(main(argv))
