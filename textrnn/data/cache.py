"""The prepared-data cache: tokenizers and encoded data, built once per node and shared by runs and ranks.

::

    CACHE/                        data.cache_dir, else $TEXTRNN_CACHE, else $HF_HOME/textrnn, else ~/.cache/textrnn
      lm-3f2a9c.../               one folder per key: sha256 of everything the result depends on
        meta.json                 written last: what the folder holds, and each file's size
        tokenizer.json  train.bin  validation.bin
      lm-3f2a9c....lock           flock'ed by the one process that builds; the others wait on it
      lm-3f2a9c....partial-PID/   a build in progress; renamed to the key when complete

A folder is built in a ``.partial`` folder and renamed into place, so a reader sees a whole
cache or none. A build killed half way leaves only its ``.partial`` folder, which the next
builder (holding the lock, so the writer is surely gone) removes. A folder whose files do not
have the sizes ``meta.json`` recorded is torn, and is rebuilt.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Optional

from ..core.durable import durable_replace
from ..core.errors import DataError

LOG = logging.getLogger(__name__)

CACHE_ENV = "TEXTRNN_CACHE"
META = "meta.json"
SCRATCH = "work"  # a build's own scratch folder (Arrow conversions, built-in corpora): removed before the rename
CACHE_FORMAT = 1  # bump when what a cache folder holds changes: old folders are then simply not found


def cache_root(setting: Optional[str] = None) -> Path:
    """Where prepared data lives: ``setting`` (``data.cache_dir``), ``$TEXTRNN_CACHE``, ``$HF_HOME/textrnn``,
    else ``~/.cache/textrnn``."""
    if setting:
        return Path(os.path.expanduser(setting))
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "textrnn"
    return Path.home() / ".cache" / "textrnn"


def cache_key(prefix: str, parts: dict) -> str:
    """``prefix-<sha256>``, over the canonical JSON of ``parts`` and the cache format."""
    text = json.dumps({"format": CACHE_FORMAT, **parts}, sort_keys=True, default=str)
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:32]}"


# ---------------------------------------------------------------------------- what the data is
FULL_HASH_BYTES = 2 << 30  # files up to 2 GiB are known by all their bytes (sha256 reads about 1 GB/s)


def file_identity(path: Path) -> dict:
    """A local file by its size and the sha256 of its bytes; past ``FULL_HASH_BYTES``, by name, size,
    modification time and a hash of its first and last MB.

    Content, not the clock, is what prepared data depends on: a folder copied afresh (a new machine, a
    re-download) keeps its cache and its labelled transfer sets. Hashing all of a multi-GB file on every
    run would cost what the cache saves, so the largest files fall back to their times and sampled ends.
    """
    stat = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if stat.st_size <= FULL_HASH_BYTES:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
            return {"size": stat.st_size, "sha256": digest.hexdigest()}
        digest.update(handle.read(1 << 20))
        handle.seek(max(stat.st_size - (1 << 20), 1 << 20))
        digest.update(handle.read())
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sample_sha256": digest.hexdigest()}


def local_identity(dataset: str) -> Optional[Any]:
    """The identity of a local file or folder (every file in it), or None if ``dataset`` is not local."""
    path = Path(os.path.expanduser(dataset))
    if path.is_file():
        return file_identity(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        return [{"name": str(p.relative_to(path)), **file_identity(p)} for p in files]  # a split is its name
    return None


def dataset_identity(raw: Any) -> dict:
    """A loaded ``DatasetDict`` by its splits' fingerprints (what ``datasets`` caches by)."""
    return {name: split._fingerprint for name, split in raw.items()}


# ---------------------------------------------------------------------------- the cache
class PreparedCache:
    """Folders of prepared data under ``root``, each built once under a lock and then only read."""

    def __init__(self, root: Path, timeout: float = 7200.0) -> None:
        self.root, self.timeout = Path(root), timeout

    def find(self, key: str) -> Optional[tuple[Path, dict]]:
        """The complete folder of ``key`` and its meta, or None (missing or torn)."""
        folder = self.root / key
        meta = read_meta(folder)
        if meta is None:
            return None
        with contextlib.suppress(OSError):  # the folder's time: when it was last used, for `textrnn cache prune`
            os.utime(folder)
        return folder, meta

    def get(self, key: str, build: Callable[[Path], dict]) -> tuple[Path, dict, bool]:
        """(folder, meta, built): the folder of ``key``, built with ``build(tmp_folder) -> meta`` if needed;
        what ``build`` puts under ``tmp_folder / SCRATCH`` is removed, the rest is the folder.

        Only one process builds a key at a time (an flock per key, held while building); the
        others wait for it, up to ``timeout`` seconds, then read what it built.
        """
        found = self.find(key)
        if found is not None:
            return (*found, False)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.sweep()
            with KeyLock(self.root / f"{key}.lock", self.timeout):
                found = self.find(key)  # built by another process while this one waited
                if found is not None:
                    return (*found, False)
                return (*self._build(key, build), True)
        except OSError as exc:  # a full disk, a read-only or foreign folder: one line, the partial folder gone
            raise DataError(unwritable(self.root, exc)) from None

    def sweep(self) -> list[Path]:
        """Remove the ``.partial`` folders of builds that no process holds the lock of any more (builds killed
        half way, of keys never asked for again); a build under way keeps its lock, and its folder."""
        import fcntl

        removed = []
        for partial in self.root.glob("*.partial-*"):
            with open(self.root / f"{partial.name.split('.partial-')[0]}.lock", "a+") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # being built now
                shutil.rmtree(partial, ignore_errors=True)
                removed.append(partial)
        return removed

    def _build(self, key: str, build: Callable[[Path], dict]) -> tuple[Path, dict]:
        for stale in self.root.glob(f"{key}.partial-*"):  # a killed build's leftovers: the lock says it is gone
            shutil.rmtree(stale, ignore_errors=True)
        final = self.root / key
        if final.exists():
            LOG.info(f"note: prepared data in {final} is incomplete (a file is missing or cut short); rebuilding it")
            shutil.rmtree(final)
        tmp = self.root / f"{key}.partial-{os.getpid()}"
        tmp.mkdir()
        try:
            meta = build(tmp)
            shutil.rmtree(tmp / SCRATCH, ignore_errors=True)
            meta["files"] = {str(p.relative_to(tmp)): p.stat().st_size for p in sorted(tmp.rglob("*")) if p.is_file()}
            write_json(tmp / META, meta)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final, meta


def unwritable(root: Path, exc: OSError) -> str:
    """The one-line error for a cache folder that cannot take the prepared data."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"the disk of the prepared-data cache {root} is full ({exc.strerror}); free space there, or set "
                "data.cache_dir (or $TEXTRNN_CACHE) to a folder on a bigger disk")
    return (f"cannot write the prepared-data cache {root} ({exc.strerror or exc}); set data.cache_dir (or "
            "$TEXTRNN_CACHE) to a folder you can write")


def read_meta(folder: Path) -> Optional[dict]:
    """A cache folder's meta if every file it lists is there at its recorded size, else None."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        files = meta["files"]
        if all((folder / name).stat().st_size == size for name, size in files.items()):
            return meta
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def write_json(path: Path, data: dict) -> None:
    """``data`` as JSON at ``path``, written beside it and renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    durable_replace(tmp, path)


class KeyLock:
    """An exclusive ``flock`` on a file, waited for up to ``timeout`` seconds.

    The kernel drops the lock when its holder dies, so a killed builder never leaves a stale lock.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self.path, self.timeout = path, timeout
        self.handle: Any = None

    def __enter__(self) -> "KeyLock":
        import fcntl

        self.handle = open(self.path, "a+")
        start, told = time.monotonic(), False
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            waited = time.monotonic() - start
            if waited > self.timeout:
                self.handle.close()
                raise DataError(f"waited {waited:.0f} s for another process preparing the same data (lock "
                                f"{self.path}); raise data.prepare_timeout, or check that process is still running")
            if not told:
                LOG.info(f"note: another process is preparing this data; waiting for it (lock {self.path})")
                told = True
            time.sleep(0.2)

    def __exit__(self, *exc: Any) -> None:
        import fcntl

        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()


# ---------------------------------------------------------------------------- seeing and bounding it
def cache_entries(root: Path) -> list[dict]:
    """Every folder of the cache: key, kind, bytes, whether complete, and when last used (seconds since the epoch)."""
    rows = []
    for folder in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        if not folder.is_dir() or ".partial-" in folder.name:
            continue
        meta = read_meta(folder)
        rows.append({"key": folder.name, "kind": (meta or {}).get("kind"), "complete": meta is not None,
                     "bytes": sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
                     "last_used": round(folder.stat().st_mtime)})
    return rows


def prune_cache(root: Path, max_bytes: Optional[int] = None, unused_days: Optional[float] = None) -> list[dict]:
    """Remove killed builds' leftovers, incomplete folders, folders unused for ``unused_days``, then the least
    recently used until the cache holds at most ``max_bytes``; returns the entries removed. A folder being built
    holds its lock and is never touched (a run reading one keeps its open files: Linux frees them after)."""
    if Path(root).is_dir():
        PreparedCache(root).sweep()
    entries = sorted(cache_entries(root), key=lambda row: row["last_used"])
    total, now, removed = sum(row["bytes"] for row in entries), time.time(), []
    for row in entries:
        stale = unused_days is not None and now - row["last_used"] > unused_days * 86400
        if not row["complete"] or stale or (max_bytes is not None and total > max_bytes):
            shutil.rmtree(Path(root) / row["key"], ignore_errors=True)
            total -= row["bytes"]
            removed.append(row)
    return removed
