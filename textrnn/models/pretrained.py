"""Self-contained checkpoint folders, written atomically and loaded without unpickling.

A checkpoint is a folder::

    config.json         architecture, task, label names, tokenizer kind, format version
    model.safetensors   the weights (tied weights stored once)
    tokenizer.json      a standard Hugging Face tokenizer file

Training checkpoints add the run's resume state, ``trainer_state.json`` and
``trainer_state.pt`` (see :mod:`textrnn.training.run_folder`); inference ignores them. Folders of
earlier formats are upgraded as they load (see :mod:`textrnn.models.migrations`).

Writes go to a temporary folder beside the target, every file is fsynced, and only then is
the folder renamed into place, so a crash leaves either the old checkpoint or the new one,
never half of one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Self, Union, cast

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.config import FORMAT_VERSION, RNNConfig
from ..core.durable import atomic_write_dir, write_json
from ..core.errors import CheckpointError, ConfigError, TextRNNError, one_line
from ..data.tokenization import TextTokenizer
from .contract import Buildable, ModelParts, Saved
from .hub import CONFIG_FILE, TOKENIZER_FILE, WEIGHTS_FILE, PathLike, locate, push_folder
from .migrations import migrate_config, migrate_weight_name
from .vetting import (
    CONFIG_LIMIT,
    TOKENIZER_LIMIT,
    check_file_shapes,
    first_mismatch,
    regular_file,
    shapes,
    unreadable,
    vet_tokenizer,
)


def read_config(folder: Path) -> RNNConfig:
    """config.json of a checkpoint folder, upgraded to the current format."""
    return read_config_and_format(folder)[0]


def read_config_and_format(folder: Path) -> tuple[RNNConfig, int]:
    """config.json upgraded to the current format, and the format it was written in (which names its weights)."""
    try:
        data = json.loads(regular_file(folder / CONFIG_FILE, CONFIG_LIMIT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is corrupt ({one_line(exc)}); re-save the checkpoint") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{folder / CONFIG_FILE} is not a textrnn config; re-save the checkpoint")
    version = data.get("format_version")
    if version is None or "task" not in data:
        kind = f" (a {data['model_type']} model's config)" if isinstance(data.get("model_type"), str) else ""
        raise CheckpointError(f"{folder} is not a textrnn checkpoint: its {CONFIG_FILE} has no format_version or "
                              f"task{kind}; pass a folder written by textrnn's save_pretrained or training")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{folder} was written by a newer textrnn (format {version}, this one reads up to "
                              f"{FORMAT_VERSION}); upgrade textrnn")
    try:
        return RNNConfig.from_dict(migrate_config(data)).validate(), version
    except TextRNNError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE}: {exc}") from None


def save_weights(model: ModelParts, path: Path) -> None:
    """Every parameter once, as its own contiguous CPU tensor, in safetensors.

    On CUDA PyTorch packs all RNN weights into one flat buffer and each parameter is a view
    of it, and a tied output layer shares the embedding; safetensors refuses shared storage.
    So tied names are left out (``model.tied_weights`` says which) and the rest are copied.
    """
    tied = getattr(model, "tied_weights", {})
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items() if k not in tied}
    save_file(state, str(path), metadata={"format": "pt"})


def load_weights(model: torch.nn.Module, path: Path, map_location: Union[str, torch.device],
                 version: int = FORMAT_VERSION) -> None:
    """Load ``save_weights`` output of format ``version`` into ``model`` (strict: every name and shape must match;
    ``from_pretrained`` has compared the shapes with the config before, see
    :func:`~textrnn.models.vetting.check_file_shapes`)."""
    saved = load_file(str(path), device=str(torch.device(map_location)))
    state = {migrate_weight_name(name, version): tensor for name, tensor in saved.items()}
    for name, source in getattr(model, "tied_weights", {}).items():
        state[name] = state[source]
    model.load_state_dict(state, strict=True)


def check_weights(model: Buildable) -> None:
    """A one-line error when a weight's shape is not the one the model's config builds (a layer was swapped)."""
    with torch.device("meta"):
        reference = type(model).build(model.config, None)
    expected, state = shapes(reference.state_dict()), shapes(model.state_dict())
    wrong = first_mismatch(expected, state)
    if wrong:
        name, found, built = wrong
        hint = ("change the labels with model.replace_head(label_names)" if name.endswith(("head.weight", "head.bias"))
                else "build a new model from a changed config instead of replacing a layer")
        raise ConfigError(f"{name} has shape {found} but the model's config builds {built}; {hint}")
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ConfigError(f"the model has no {missing[0]}, which its config builds; build a new model from the config")


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for the textrnn models."""

    task: str
    config: RNNConfig
    tokenizer: Optional[TextTokenizer]

    @classmethod
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> Self:
        """The model ``config`` describes (a subclass may return a related class)."""
        return cls(config, tokenizer)  # type: ignore[call-arg]  # the models take (config, tokenizer)

    def save_pretrained(self: Saved, directory: PathLike, extra: Optional[Callable[[Path], None]] = None,
                        card: Optional[dict] = None) -> Path:
        """Write config.json, model.safetensors, tokenizer.json and the model card (README.md) atomically.

        ``extra(tmp_dir)`` may add files (the trainer adds its resume state); ``card`` may hold
        the ``metrics`` and ``experiment`` config the card reports (see :mod:`textrnn.models.card`).
        """
        from .card import CARD_FILE, model_card

        tokenizer = self.tokenizer
        if tokenizer is None:
            raise TextRNNError("save_pretrained needs model.tokenizer, so the folder is self-contained")
        check_weights(self)

        def write(tmp: Path) -> None:
            write_json(tmp / CONFIG_FILE, self.config.to_dict())
            save_weights(self, tmp / WEIGHTS_FILE)
            tokenizer.save(tmp / TOKENIZER_FILE)
            (tmp / CARD_FILE).write_text(model_card(self, **(card or {})), encoding="utf-8")
            if extra is not None:
                extra(tmp)

        return atomic_write_dir(directory, write)

    def push_to_hub(self: Saved, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
        """Save to a temporary folder and upload it to the Hub (see :func:`textrnn.models.hub.push_folder`)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return push_folder(PretrainedMixin.save_pretrained(self, Path(tmp) / "checkpoint"), repo_id, private, token)

    @classmethod
    def from_pretrained(cls, path: PathLike, map_location: Union[str, torch.device] = "cpu",
                        revision: Optional[str] = None) -> Self:
        """Load a checkpoint folder (or a run folder's best checkpoint, or a Hub id at ``revision``) on any device.

        ``cls.build(config, tokenizer)`` makes the model, so a classifier folder that holds an
        ensemble loads as one.
        """
        folder = locate(path, revision)
        config, version = read_config_and_format(folder)
        if config.task != cls.task:
            raise CheckpointError(
                f"{folder} holds a {config.task} model, not a {cls.task} model; "
                "load it with textrnn.load_model, which picks the class"
            )
        if not (folder / TOKENIZER_FILE).exists():
            raise CheckpointError(
                f"{folder} has no {TOKENIZER_FILE}; copy the tokenizer the model was trained with into it"
            )
        try:
            tokenizer = TextTokenizer.from_file(vet_tokenizer(regular_file(folder / TOKENIZER_FILE, TOKENIZER_LIMIT)))
        except TextRNNError as exc:
            raise CheckpointError(str(exc)) from None
        if tokenizer.vocab_size != config.vocab_size:
            raise CheckpointError(
                f"{folder}: tokenizer has {tokenizer.vocab_size} tokens but the model's embedding has "
                f"{config.vocab_size}; use the tokenizer.json saved with this model"
            )
        check_file_shapes(cls, config, folder / WEIGHTS_FILE, version)  # before any memory is allocated for weights
        try:
            model = cls.build(config, tokenizer)
        except ConfigError as exc:
            raise CheckpointError(f"{folder / CONFIG_FILE}: {exc}") from None
        module = cast(torch.nn.Module, model)  # the mixin's classes are modules
        try:
            load_weights(module, regular_file(folder / WEIGHTS_FILE), map_location, version)
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise unreadable(folder / WEIGHTS_FILE, exc) from None
        module.to(map_location).eval()
        return model
