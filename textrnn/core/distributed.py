"""PyTorch's own distributed engine, as torchrun sets it up.

``torchrun --nproc_per_node=N -m textrnn train-classifier ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK and the rendezvous variables; :func:`init` then opens a process group with
``nccl`` on CUDA and ``gloo`` on CPU. Without torchrun everything here is a no-op for a
single process.
"""

from __future__ import annotations

import datetime
import gc
import hashlib
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass
class Dist:
    """This process's place in a torchrun group (rank 0 of 1 without one)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, which writes files and prints."""
        return self.rank == 0


def init(device: torch.device, timeout_s: float = 1800.0) -> Dist:
    """Join the torchrun process group if there is one (gloo on CPU, nccl on CUDA).

    ``timeout_s`` bounds how long a collective waits for a late rank: at least the time one
    node may spend preparing data while its peers wait (``data.prepare_timeout``).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        # Keys under a prefix per torchrun attempt: a group that torchrun restarts shares the agent's store
        # with the group that died, and gloo would otherwise read the dead ranks' addresses and time out.
        store, rank, size = next(dist.rendezvous("env://"))
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or "0"
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                store=dist.PrefixStore(f"textrnn/attempt{attempt}", store), rank=rank, world_size=size,
                                timeout=datetime.timedelta(seconds=max(timeout_s, 1800.0)))
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def close(info: Dist) -> None:
    """Leave the process group together.

    The barrier keeps a rank that finishes first from tearing down its gloo pairs while the
    others still write the checkpoint; callers drop their DDP wrapper (whose reducer holds the
    group and its last async work) before this, so nothing of the group is left for interpreter
    shutdown to destroy: gloo aborts the process ("terminate called without an active
    exception") when that happens.
    """
    if info.enabled and dist.is_initialized():
        dist.barrier()
        gc.collect()  # a module's reference cycles would keep the DDP reducer alive
        dist.destroy_process_group()


def all_sum(tensor: torch.Tensor, info: Dist) -> torch.Tensor:
    """Sum a tensor over ranks (in place); a no-op for one process."""
    if info.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(info: Dist) -> None:
    """Wait until every rank reaches this point (nothing to wait for in a single process)."""
    if info.enabled:
        dist.barrier()


def wrap(model: torch.nn.Module, info: Dist, device: torch.device) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when there are several processes, else itself."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def gather_stack(tensor: torch.Tensor, info: Dist, device: torch.device) -> torch.Tensor:
    """One tensor from every rank, stacked: (world, ...) on CPU (gloo gathers on CPU, nccl on CUDA)."""
    if not info.enabled:
        return tensor.cpu()[None]
    where = device if device.type == "cuda" else torch.device("cpu")
    parts = [torch.empty_like(tensor, device=where) for _ in range(info.world_size)]
    dist.all_gather(parts, tensor.to(where).contiguous())
    return torch.stack([p.cpu() for p in parts])


def gather_objects(obj: Any, info: Dist) -> list:
    """``obj`` from every rank, in rank order (a list of one for a single process)."""
    if not info.enabled:
        return [obj]
    gathered = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def parameter_checksums(model: torch.nn.Module, info: Dist) -> list[str]:
    """SHA-256 of this rank's parameters, gathered from every rank (DDP keeps them equal); every rank joins."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    gathered: list = [None] * info.world_size
    torch.distributed.all_gather_object(gathered, digest.hexdigest())
    return gathered
