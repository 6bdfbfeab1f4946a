"""One run trained by several processes with torch DistributedDataParallel, as ``torchrun`` starts them.

``torchrun --nproc-per-node N -m asdbench run ...`` (or ``asdbench run --ddp N``) starts N copies of
the run; each reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from its environment. All of them
draw the same shuffled epoch (the run's seed), and each trains on its share of every global batch
(every N-th example from its rank on, as a ``DistributedSampler`` deals them), so ``batch_size``
stays the global batch; DDP averages the gradients. Rank 0 alone logs to MLflow, writes checkpoints
and scores. Batch-norm layers are synchronised across processes on GPUs (``SyncBatchNorm``, NCCL);
torch has no CPU synchronised batch norm, so on CPU (gloo) each process normalises its own share.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    return world_size() > 1


def is_main() -> bool:
    return rank() == 0


def init(device: torch.device) -> None:
    """Join the process group (NCCL on GPUs, gloo on CPU), once."""
    if active() and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def finish() -> None:
    """Leave the process group. A process that exits still in it can abort in gloo's threads as the interpreter
    tears down ("terminate called without an active exception", SIGABRT), which torchrun reports as the run failing;
    leaving is local, so a rank done with its share leaves while rank 0 still scores."""
    if dist.is_initialized():
        dist.destroy_process_group()


def shard(idx: torch.Tensor) -> torch.Tensor:
    """This process's share of a global batch."""
    return idx[rank():: world_size()] if active() else idx


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """The module to run forward passes through: DDP over ``model`` when distributed (its weights are rank 0's
    from here on), else the model itself."""
    if not active():
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def total(value: torch.Tensor) -> torch.Tensor:
    """The sum of ``value`` over every process (itself when not distributed)."""
    if active():
        dist.all_reduce(value)
    return value
