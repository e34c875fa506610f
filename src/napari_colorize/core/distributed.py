"""Data-parallel training on several processes with ``torch.distributed`` (started by torchrun).

torchrun sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT``; without them (or with ``WORLD_SIZE=1``) everything here is a no-op, so a plain run
behaves exactly as before.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run.

    Attributes
    ----------
    rank, world_size, local_rank, local_world_size : int
        As set by torchrun; 0, 1, 0, 1 for a single process.
    device : str
        ``"cpu"`` (gloo) or ``"cuda:<local_rank>"`` (NCCL).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    device: str = "cpu"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and shows progress."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (no-op for one)."""
        if self.enabled:
            if self.device.startswith("cuda"):
                dist.barrier(device_ids=[self.local_rank])
            else:
                dist.barrier()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a tensor over all processes (a detached copy; itself for one process)."""
        if not self.enabled:
            return value
        t = value.detach().clone().to(self.device)
        dist.all_reduce(t)
        return (t / self.world_size).to(value.device)

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any, so that all stop at the same step."""
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def wrap(self, net: torch.nn.Module) -> torch.nn.Module:
        """``net`` in DistributedDataParallel (which also copies rank 0's weights to the others)."""
        if not self.enabled:
            return net
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.device.startswith("cuda") else None
        return DistributedDataParallel(net, device_ids=ids)

    def check_in_sync(self, net: torch.nn.Module) -> None:
        """Raise RuntimeError if the parameters differ between processes (a bug, never expected)."""
        if not self.enabled:
            return
        digests = [None] * self.world_size
        dist.all_gather_object(digests, param_digest(net))
        if len(set(digests)) != 1:
            raise RuntimeError(f"weights differ between processes: {digests}")


def param_digest(net: torch.nn.Module) -> str:
    """SHA-1 of a network's parameters, to compare them across processes.

    Buffers are left out: BatchNorm running statistics are rank 0's at every DDP forward but each
    process updates its own copy during that forward, and only rank 0's are ever saved.
    """
    h = hashlib.sha1()
    for k, v in sorted(net.named_parameters()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def init_from_env(device: str = "cpu", timeout_s: float = 3600) -> DistContext:
    """Join the process group torchrun described in the environment, if any.

    Parameters
    ----------
    device : {"cpu", "cuda"}
        ``"cuda"`` uses NCCL on GPU ``LOCAL_RANK``; ``"cpu"`` uses gloo.
    timeout_s : float
        How long a collective waits for a lagging process before failing (rank 0 may spend long
        minutes reading and caching the training images while the others wait).

    Returns
    -------
    DistContext
        A single-process context when ``WORLD_SIZE`` is unset or 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device, backend = f"cuda:{local_rank}", "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank, world, local_rank, local_world, device)


def shutdown(ctx: DistContext) -> None:
    """Leave the process group.

    No barrier here: after an error on one process the others may be stuck in a collective, and
    this one must exit so that torchrun stops them; call :meth:`DistContext.barrier` first on success.
    """
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
