"""The ``textrnn`` command: train-classifier, train-generator, generate, predict, evaluate.

Every user error ends as one line on stderr and exit status 2 (see :mod:`textrnn.errors`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from .errors import DataError, TextRNNError

EXIT_USAGE, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2
        raise TextRNNError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="textrnn", description="RNN text classifiers and generators on PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from .registry import TASKS

    for task, entry in TASKS.items():
        p = sub.add_parser(entry.command, help=f"train {entry.description} from a YAML config")
        p.add_argument("--config", help="YAML config (configs/*.yaml)")
        p.add_argument("overrides", nargs="*", help="dotted key=value overrides, e.g. train.lr=0.001")
        p.add_argument("--resume", help="run folder or checkpoint to resume from")
        p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: train.device)")
        p.set_defaults(handler=cmd_train, task=task)
    p = sub.add_parser("generate", help="sample text from a language-model checkpoint")
    _checkpoint_args(p)
    p.add_argument("--prompt", default="")
    p.add_argument("--max-new-tokens", type=int, default=500)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--seed", type=int)
    p.set_defaults(handler=cmd_generate)
    p = sub.add_parser("predict", help="label texts with a classifier checkpoint (one JSON line each)")
    _checkpoint_args(p)
    p.add_argument("texts", nargs="*")
    p.add_argument("--input", help="file with one text per line, or jsonl with a 'text' field")
    p.add_argument("--max-length", type=int, help="keep the first N tokens of each text")
    p.set_defaults(handler=cmd_predict)
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on a dataset split (last line: JSON)")
    _checkpoint_args(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--split", default="validation")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--batch-size", type=int, help="default: the training run's data.eval_batch_size")
    p.set_defaults(handler=cmd_evaluate)
    return parser


def _checkpoint_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint folder, or a run's output_dir (its best checkpoint)")
    p.add_argument("--device", default="auto")


# ---------------------------------------------------------------------------- commands
def cmd_train(args) -> int:
    from .config import load_config
    from .trainer import resume_config, train

    if args.resume and not args.config:
        config = resume_config(args.resume, args.overrides)
    else:
        if not args.config:
            raise TextRNNError("give --config configs/NAME.yaml (or --resume RUN_DIR to continue a run)")
        config = load_config(args.config, args.overrides, task=args.task)
    result = train(config, resume=args.resume, device=args.device)
    if result.interrupted:
        from .registry import get_task

        print(f"interrupted at step {result.step}; saved {result.output_dir / 'last'}; resume with: "
              f"textrnn {get_task(config.task).command} --resume {result.output_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.best_checkpoint is not None:  # the best checkpoint's figures, the last one's beside them
        print(json.dumps({"output_dir": str(result.output_dir), "stop_reason": result.stop_reason,
                          "best_step": result.best_step, **_summary(result.metrics), "last": _summary(result.last_metrics)}))
    return 0


def _summary(metrics: dict) -> dict:
    """Metrics for the one-line report: the per-label tables and confusion matrix stay in metrics.jsonl."""
    return {k: v for k, v in metrics.items() if k not in ("confusion_matrix", "per_label", "thresholds")}


def _load(args, kind: Optional[str]):
    from .registry import get_task, load_model
    from .runtime import select_device

    model = load_model(args.checkpoint, map_location=select_device(args.device))
    if kind is not None and model.task != kind:
        raise TextRNNError(f"{args.checkpoint} holds a {model.task} model; this command needs {get_task(kind).description}")
    return model


def cmd_generate(args) -> int:
    model = _load(args, "language_model")
    options = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   num_samples=args.num_samples, seed=args.seed)
    if args.num_samples == 1:  # settings are checked before the first token: the prompt goes out with it
        pieces = iter([args.prompt])
        model.generate_text(args.prompt, args.max_new_tokens, on_token=lambda piece: _write(next(pieces, "") + piece[0]),
                            **options)
        sys.stdout.write("\n")
        return 0
    for i, text in enumerate(model.generate_text(args.prompt, args.max_new_tokens, **options)):
        print(f"=== sample {i + 1} ===\n{args.prompt}{text}")
    return 0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def cmd_predict(args) -> int:
    if not args.texts and not args.input:
        raise TextRNNError("give texts to label, or --input FILE")
    model = _load(args, "classification")
    fields, separator = model.config.text_fields or ["text"], model.config.field_separator
    texts = list(args.texts) + (read_texts(args.input, fields, separator) if args.input else [])
    for i, result in enumerate(model.predict(texts, max_length=args.max_length)):
        if result.get("truncated_to_tokens"):
            print(f"note: text {i} was cut to its first {result['truncated_to_tokens']} tokens", file=sys.stderr)
        print(json.dumps({"index": i, **result}))
    return 0


def read_texts(path: str, fields: Sequence[str] = ("text",), separator: str = " | ") -> list[str]:
    """One text per line, or jsonl with a ``text`` field (or the model's text fields, joined). UTF-8 (a BOM is dropped)."""
    if not os.path.isfile(path):
        raise DataError(f"input file not found: {path}")
    raw = Path(path).read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 (bad byte at offset {exc.start}); convert it, e.g. iconv -t UTF-8") from None
    lines = content.splitlines()
    if not any(line.strip() for line in lines):
        raise DataError(f"{path} is empty; give one text per line")
    if not lines[0].lstrip().startswith("{"):
        return lines
    return [_json_text(line, number, path, list(fields), separator) for number, line in enumerate(lines, 1) if line.strip()]


def _json_text(line: str, number: int, path: str, fields: list, separator: str) -> str:
    """A jsonl row's text: the model's text fields joined, or a ready-made ``text``."""
    try:
        row = json.loads(line)
        if isinstance(row, dict) and all(name in row for name in fields):
            return separator.join("" if row[name] is None else str(row[name]) for name in fields)
        return str(row["text"])
    except (ValueError, KeyError, TypeError):
        wanted = " and ".join(f"'{name}'" for name in dict.fromkeys([*fields, "text"]))
        raise DataError(f"{path} line {number} is not a JSON object with a {wanted} field") from None


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate_checkpoint

    model = _load(args, None)
    metrics = evaluate_checkpoint(model, args.checkpoint, args.dataset, args.split, args.text_column,
                                  args.label_column, args.batch_size)
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
    sys.exit(main(argv))
