"""Where a checkpoint is: a folder, a run's output_dir (its best, else last, checkpoint) or a Hugging Face Hub
id; and pushing a folder's model files to the Hub."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from ..core.errors import CheckpointError, TextRNNError, one_line

CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE = "config.json", "model.safetensors", "tokenizer.json"
PathLike = Union[str, os.PathLike]


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
