"""Durable files and folders: a write either lands whole or leaves the old one, even across a crash.

A file is written beside its target, fsynced and renamed over it (:func:`durable_replace`); a folder (a
checkpoint) is written as ``.NAME.tmp-PID-RANDOM``, fsynced file by file and renamed into place
(:func:`atomic_write_dir`), the old folder stepping aside as ``.NAME.old-RANDOM`` until the new one is in.
What a kill leaves half done is cleared by :func:`sweep_unfinished` and :func:`restore_set_aside`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Union

from . import faults
from .errors import TextRNNError

PathLike = Union[str, os.PathLike]


def default_file_mode() -> int:
    """The mode a new file gets under this process's umask (0o644 under the usual 022).

    Read from /proc where Linux shows it, so the process-wide umask is never changed, even for a moment.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            mask = next(int(line.split()[1], 8) for line in handle if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0)
        os.umask(mask)
    return 0o666 & ~mask


def fsync_dir(directory: str | os.PathLike) -> None:
    """fsync a folder, so a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_replace(tmp: str | os.PathLike, target: str | os.PathLike) -> None:
    """Give ``tmp`` the umask's mode (temporary-file writers make it 0600), fsync it, rename it to ``target`` and
    fsync the folder: after a crash, ``target`` is the whole new file or the whole old one."""
    os.chmod(tmp, default_file_mode())
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    fsync_dir(os.path.dirname(os.path.abspath(target)))


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
