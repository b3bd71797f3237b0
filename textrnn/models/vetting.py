"""What a checkpoint folder from anywhere must pass before anything is built from it: regular files of bounded
size, and a ``config.json`` whose declared sizes agree with the weights file's header.

A folder is untrusted input (downloaded, shared, crafted). Its ``config.json`` decides how much memory and
time a load costs, so the sizes it declares are compared with what ``model.safetensors`` holds, from the
file's header alone, before a model (even on the meta device) is built: ``ensemble_size: 400`` beside one
member's weights, or ``num_layers: 20000``, is a one-line error within milliseconds. Then every name and
shape that the config builds is compared with the file's, both ways.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import SafetensorError, safe_open

from ..core.config import TOKENIZER_KINDS, WORD_SPLITS, RNNConfig
from ..core.errors import CheckpointError, one_line
from .migrations import migrate_weight_name

CONFIG_LIMIT = 1 << 20  # config.json: a megabyte is a thousand times a real one
TOKENIZER_LIMIT = 1 << 30  # tokenizer.json: a 1M-word vocabulary is about 50 MB
STATE_LIMIT = 64 << 20  # trainer_state.json: progress, the experiment config, metrics


def regular_file(path: Path, limit: Optional[int] = None) -> Path:
    """``path`` when it is a regular file (after links) of at most ``limit`` bytes, else a one-line error: a FIFO
    would block a read forever, and a link to /dev/zero never end one."""
    try:
        info = path.stat()
    except OSError as exc:
        raise CheckpointError(f"{path} cannot be read ({one_line(exc)}); use another checkpoint") from None
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} is not a regular file (a FIFO, device or folder); use another checkpoint")
    if limit is not None and info.st_size > limit:
        raise CheckpointError(f"{path} is {info.st_size:,} bytes, over the {limit:,} a textrnn checkpoint's file "
                              "can need; use another checkpoint")
    return path


FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # what a weight may be stored as


def header_shapes(weights: Path, version: int) -> dict[str, tuple]:
    """Name -> shape of every tensor in a safetensors file, read from its header (no tensor data is read);
    a tensor that is not floating point is a one-line error."""
    try:
        with safe_open(str(regular_file(weights)), framework="pt") as handle:
            slices = {name: handle.get_slice(name) for name in handle.keys()}
            odd = next((name for name, piece in slices.items() if piece.get_dtype() not in FLOAT_DTYPES), None)
            if odd is not None:
                raise CheckpointError(f"{weights}: {odd} is stored as {slices[odd].get_dtype()}, not floating "
                                      "point; use another checkpoint")
            return {migrate_weight_name(name, version): tuple(piece.get_shape()) for name, piece in slices.items()}
    except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
        raise unreadable(weights, exc) from None


def vet_tokenizer(path: Path) -> Path:
    """``path`` when every regular expression in the tokenizer.json is one textrnn writes. A pattern is code that
    runs on every request: a backtracking one stalls a server for seconds a character, and past the regex
    engine's retry limit tokenizers panics. textrnn's tokenizers use one fixed pattern (a character tokenizer's
    split), so anything else in a checkpoint folder did not come from textrnn."""
    found: set[str] = set()
    try:
        stack: list = [json.loads(path.read_text(encoding="utf-8"))]
    except ValueError:
        return path  # not JSON: TextTokenizer.from_file says so in one line
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("Regex"), str):
                found.add(node["Regex"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    odd = sorted(found - written_patterns())
    if odd:
        raise CheckpointError(f"{path} holds the regular expression {odd[0][:60]!r}, which textrnn never writes "
                              "(a hostile pattern can stall a server); use a tokenizer textrnn trained")
    return path


def written_patterns() -> set[str]:
    """The regular expressions of every tokenizer textrnn builds (each kind, case and word split)."""
    from ..data.tokenization import new_tokenizer

    found = set()
    for kind in TOKENIZER_KINDS:
        for lowercase in (False, True):
            for split in WORD_SPLITS:
                text = new_tokenizer(kind, lowercase, split).to_str()
                found.update(re.findall(r'"Regex":\s*("(?:[^"\\]|\\.)*")', text))
    return {json.loads(pattern) for pattern in found}


def declared_sizes(config: RNNConfig, found: dict[str, tuple], weights: Path) -> None:
    """The sizes ``config.json`` declares (ensemble members, layers, state and embedding widths) against the
    file's header, before anything of the config's size is built."""
    members = {match.group(1) for match in (re.match(r"members\.(\d+)\.", name) for name in found) if match} or {"0"}
    layers = {int(m.group(1)) for m in (re.search(r"\.weight_hh_l(\d+)(_reverse)?$", n) for n in found) if m}
    widths = {shape[1] for name, shape in found.items() if re.search(r"\.weight_hh_l\d+(_reverse)?$", name)}
    embedding = {shape[1] for name, shape in found.items() if name.endswith("embedding.weight")}
    checks = (("ensemble members", config.ensemble_size, len(members)),
              ("layers", config.num_layers, len(layers) or config.num_layers),
              ("a hidden_size of", config.hidden_size, widths.pop() if len(widths) == 1 else config.hidden_size),
              ("an embedding_dim of", config.embedding_dim, embedding.pop() if len(embedding) == 1
               else config.embedding_dim))
    for what, declared, held in checks:
        if declared != held:
            raise CheckpointError(f"{weights.parent / 'config.json'} declares {what} {declared}; {weights.name} holds "
                                  f"{held}: the "
                                  f"folder's files do not belong together (use another checkpoint, or re-save it)")


def shapes(state: dict) -> dict[str, tuple]:
    """Name -> shape of a state dict's tensors."""
    return {name: tuple(tensor.shape) for name, tensor in state.items()}


def first_mismatch(expected: dict[str, tuple], found: dict[str, tuple]) -> Optional[tuple[str, tuple, tuple]]:
    """The first name whose shape in ``found`` differs from ``expected``'s: (name, found, expected), or None."""
    for name, reference in expected.items():  # in the model's order: a layer's weight before its bias
        if name in found and found[name] != reference:
            return name, found[name], reference
    return None


def unreadable(path: Path, exc: BaseException) -> CheckpointError:
    """The one-line error for a weights file that cannot be read."""
    return CheckpointError(f"{path} is missing, corrupt or truncated ({one_line(exc)}); use another checkpoint")


def check_file_shapes(cls: Any, config: RNNConfig, weights: Path, version: int) -> None:
    """The weights file against what ``config`` builds: declared sizes from the header first, then (on the meta
    device: nothing is allocated) every name and shape both ways, so a folder whose files disagree is a one-line
    error before a model of its size is built."""
    found = header_shapes(weights, version)
    declared_sizes(config, found, weights)
    with torch.device("meta"):
        expected = shapes(cls.build(config, None).state_dict())
    wrong = first_mismatch(expected, found)
    if wrong:
        name, in_file, built = wrong
        raise CheckpointError(f"{weights.parent}: {name} is {in_file} in {weights.name} but {built} by "
                              "config.json; the folder's files do not belong together (re-save the model)")
    extra = sorted(set(found) - set(expected))  # (tied weights are saved once: found has fewer, never more)
    if extra:
        raise CheckpointError(f"{weights} holds {extra[0]}, which config.json does not build ({len(extra)} such "
                              "tensors); the folder's files do not belong together (use another checkpoint)")
