"""The serving commands of ``textrnn``: serve (its limits as flags), push, export and fetch-web."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

SERVE_LIMITS = {  # option: (type, help); defaults are textrnn.serving.server.Limits'
    "max_body_bytes": (int, "the largest request body"),
    "max_texts": (int, "texts per /predict request"),
    "max_new_tokens": (int, "the most tokens one /generate call may ask for"),
    "max_prompt_tokens": (int, "the longest /generate prompt, in tokens"),
    "max_beam_tokens": (int, "num_beams x max_new_tokens of one /generate call"),
    "max_queue": (int, "requests waiting for the model, each of /predict and /generate (429 past it)"),
    "batch_window_ms": (float, "how long a lone /predict waits for company"),
    "header_timeout_s": (float, "seconds a request's headers may take to arrive; a slower client is disconnected"),
    "body_timeout_s": (float, "seconds a request's body may take to arrive (408 past it)"),
}


def serve_limits(p: argparse.ArgumentParser) -> None:
    """``serve``'s flags: each server limit (defaults: :class:`textrnn.serving.server.Limits`), the key, hosts."""
    from dataclasses import fields

    from ..serving.server import Limits

    defaults = {f.name: f.default for f in fields(Limits)}
    for name, (kind, text) in SERVE_LIMITS.items():
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=defaults[name],
                       help=f"{text} (default {defaults[name]})")
    p.add_argument("--api-key", default=os.environ.get("TEXTRNN_API_KEY"),
                   help="require Authorization: Bearer KEY on every route but /health and / (default: "
                        "$TEXTRNN_API_KEY); use it whenever --host is not 127.0.0.1")
    p.add_argument("--allowed-hosts", nargs="*", help="Host header names to answer (default: this machine's names "
                   "on 127.0.0.1, any name on another --host)")
    p.add_argument("--limit-concurrency", type=int, default=256, help="open connections before uvicorn answers 503")


def cmd_serve(args: argparse.Namespace) -> int:
    """``serve``: the HTTP server and its page."""
    from ..serving.server import serve

    limits = {name: getattr(args, name) for name in SERVE_LIMITS}
    if args.allowed_hosts:
        limits["allowed_hosts"] = args.allowed_hosts
    serve(args.checkpoint, args.host, args.port, args.device, limit_concurrency=args.limit_concurrency,
          api_key=args.api_key, **limits)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    """``push``: upload a checkpoint folder to the Hugging Face Hub."""
    from ..models.hub import push_folder

    print(json.dumps({"pushed": push_folder(args.checkpoint, args.repo_id, args.private)}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``export``: write an ONNX graph checked against torch (int8: with its agreement), or a static site."""
    from ..serving.export import export_onnx
    from ..serving.quantize import read_agreement

    quantize = None if args.quantize == "none" else args.quantize
    report: dict[str, Any]
    if args.format == "web":
        from ..serving.web import export_web, site_weight

        site = export_web(args.checkpoint, args.output, quantize, args.web_runtime)
        graph, report = site / "model.onnx", {"output": str(site), "format": "web", "bytes": site_weight(site)}
    else:
        graph = export_onnx(args.checkpoint, args.output, quantize=quantize)
        report = {"output": str(graph), "format": args.format, "bytes": graph.stat().st_size}
    print(json.dumps(report | {"int8_agreement": read_agreement(graph)} if quantize else report))
    return 0


def cmd_fetch_web(args: argparse.Namespace) -> int:
    """``fetch-web``: the JavaScript a web export copies in, from the npm registry, checked by sha512."""
    from ..serving.web_runtime import PACKAGES, expected_files, fetch_runtime, runtime_dir

    fetched = args.force or not all(path.is_file() for path in expected_files(args.dir).values())
    if fetched:
        fetch_runtime(args.dir)
    print(json.dumps({"web_runtime": str(runtime_dir(args.dir)), "fetched": fetched,
                      "packages": {p.name: p.version for p in PACKAGES}}))
    return 0
