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

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core import faults
from ..core.config import FORMAT_VERSION, RNNConfig
from ..core.errors import CheckpointError, ConfigError, TextRNNError, one_line
from ..core.runtime import default_file_mode, fsync_dir
from ..data.tokenization import TextTokenizer
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

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
PathLike = Union[str, os.PathLike]
SET_ASIDE = ".old-"  # the old folder of a re-save, until the new one is in: .NAME.old-XXXXXXXX


def fsync_tree(directory: Path) -> None:
    """Give every file in ``directory`` the umask's mode (safetensors writes 0600), fsync it, and the folder."""
    mode = default_file_mode()
    for path in directory.iterdir():
        if path.is_file():
            os.chmod(path, mode)
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(directory)


TMP_MARK = ".tmp-"  # .NAME.tmp-PID-RANDOM: a folder being written by process PID


def sweep_unfinished(folder: PathLike) -> list[Path]:
    """Remove the half-written ``.NAME.tmp-PID-*`` folders in ``folder`` whose writer is gone (a kill during a
    save leaves a whole checkpoint's worth there). A live writer's, this machine's, is kept."""
    removed = []
    for path in Path(folder).glob(f".*{TMP_MARK}*"):
        pid = path.name.rsplit(TMP_MARK, 1)[1].split("-")[0]
        if path.is_dir() and not (pid.isdigit() and process_alive(int(pid))):  # older names carry no pid
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_dir(target: PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp_dir)``, fsync, then rename tmp_dir to ``target`` (replacing it).

    A failure (disk full included) removes the temporary folder and leaves ``target``
    as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        write(tmp)
        faults.save_point()
        fsync_tree(tmp)
        if target.exists():  # a re-save: the old folder steps aside until the new one is in
            old = target.parent / f".{target.name}{SET_ASIDE}{uuid.uuid4().hex[:8]}"
            os.rename(target, old)
            try:
                faults.resave_point()
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)  # the previous folder goes back: nothing is lost
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        full = isinstance(exc, Exception) and disk_full(exc, target.parent)  # measured before the space is freed
        shutil.rmtree(tmp, ignore_errors=True)
        if full:
            raise TextRNNError(
                f"disk full while saving {target}; free space and resume (the previous checkpoint is intact)"
            ) from None
        raise
    return target


def disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether a failed write failed for want of space. The writers do not all say so: safetensors raises
    its own error and torch.save a RuntimeError ("unexpected pos") for ENOSPC, so after any failure the
    free space left is what decides (less than 1 MiB, with the partial folder still there)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def restore_set_aside(folder: Path) -> list[Path]:
    """Put back what a re-save killed between its two renames left aside (``.NAME.old-*`` with no ``NAME``).

    Where ``NAME`` made it in, the set-aside copy is stale and is removed. Returns the folders put back.
    """
    restored = []
    for old in sorted(folder.glob(f".*{SET_ASIDE}*")):
        target = folder / old.name[1:].rsplit(SET_ASIDE, 1)[0]
        if old.is_dir() and not target.exists():
            try:
                os.rename(old, target)
                restored.append(target)
            except FileNotFoundError:  # another rank of the same run put it back first
                continue
        elif old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return restored


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented, sorted JSON."""
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def resolve_checkpoint(path: PathLike) -> Path:
    """A checkpoint folder, or a run's output_dir (meaning its best, else last, checkpoint)."""
    path = Path(path)
    if (path / CONFIG_FILE).exists():  # whatever it is: read_config says if it is no regular file
        return path
    for name in ("best", "last"):
        if (path / name / CONFIG_FILE).exists():
            return path / name
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}; pass a checkpoint folder or a run's output_dir")
    raise CheckpointError(
        f"{path} is not a textrnn checkpoint (no {CONFIG_FILE}, best/ or last/ inside); pass a checkpoint folder"
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


def _download(repo_id: str, revision: Optional[str] = None) -> Path:
    """Fetch a checkpoint folder from the Hugging Face Hub (config, weights and tokenizer only), at ``revision``
    (a branch, tag or commit; None: the default branch)."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, revision=revision,
                                      allow_patterns=[CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]))
    except Exception as exc:  # network errors, missing repos: all mean "could not fetch"
        at = f" at revision {revision!r}" if revision else ""
        raise CheckpointError(
            f"no folder {repo_id} here, and the Hub repository {repo_id}{at} could not be fetched "
            f"({one_line(exc)}); check the path (a run's output_dir or a checkpoint folder) or the Hub id"
        ) from None


def locate(path: PathLike, revision: Optional[str] = None) -> Path:
    """Local folder for a checkpoint path, run folder or Hub id ('owner/name', at ``revision`` if given).

    A name of the form ``a/b`` that is no local folder is taken for a Hub id; ``revision`` applies only there.
    """
    text = str(path)
    if not os.path.exists(text) and text.count("/") == 1 and not text.startswith((".", "/")):
        return _download(text, revision)
    if revision is not None:
        raise CheckpointError(f"revision={revision!r} applies to a Hub id, but {text} is a local path; drop it")
    return resolve_checkpoint(path)


def save_weights(model: Any, path: Path) -> None:
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


def check_weights(model: Any) -> None:
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
    def build(cls, config: RNNConfig, tokenizer: Optional[TextTokenizer] = None) -> Any:
        """The model ``config`` describes (a subclass may return a related class)."""
        return cls(config, tokenizer)  # type: ignore[call-arg]  # the models take (config, tokenizer)

    def save_pretrained(self, directory: PathLike, extra: Optional[Callable[[Path], None]] = None,
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

    def push_to_hub(self, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
        """Save to a temporary folder and upload it to the Hub (see :func:`textrnn.models.pretrained.push_folder`)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return push_folder(self.save_pretrained(Path(tmp) / "checkpoint"), repo_id, private, token)

    @classmethod
    def from_pretrained(cls, path: PathLike, map_location: Union[str, torch.device] = "cpu",
                        revision: Optional[str] = None) -> Any:
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
        try:
            load_weights(model, regular_file(folder / WEIGHTS_FILE), map_location, version)
        except (SafetensorError, OSError, RuntimeError, ValueError) as exc:
            raise unreadable(folder / WEIGHTS_FILE, exc) from None
        model.to(map_location)
        return model.eval()


PUSHED_FILES = [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE, "README.md"]


def push_folder(folder: PathLike, repo_id: str, private: bool = False, token: Optional[str] = None) -> str:
    """Upload a checkpoint folder's model files (not the trainer's resume state) to the Hub repo ``repo_id``.

    Any failure to reach the Hub is one line naming the endpoint and what to check.
    """
    from huggingface_hub import HfApi, constants

    folder = resolve_checkpoint(folder)
    missing = [name for name in PUSHED_FILES[:3] if not (folder / name).is_file()]
    if missing:
        raise TextRNNError(
            f"{folder} is not a checkpoint folder (no {', '.join(missing)}); pass one written by textrnn"
        )
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise TextRNNError(f"--repo-id must look like OWNER/NAME, got {repo_id!r}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, allow_patterns=PUSHED_FILES,
                          commit_message="Upload textrnn checkpoint")
    except Exception as exc:  # huggingface_hub raises network, HTTP and offline errors of many types
        raise TextRNNError(
            f"could not push to the Hugging Face Hub at {constants.ENDPOINT} ({one_line(exc)}); "
            "check the network, HF_ENDPOINT and your login (hf auth login)"
        ) from None
    return repo_id
