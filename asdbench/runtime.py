"""Device, precision, memory format and seeding: resolved once at the start of a run, recorded with it.

``device=auto`` and ``precision=auto`` depend on the machine. :func:`resolve_runtime`
turns them into the concrete values (``cuda:0``, ``bf16``) once, before anything is
logged, so the config MLflow records, the tags, the comparability key and the training
loop all see the same values; :class:`Runtime` reads them back without deciding again.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

import numpy as np
import torch

from asdbench.build import AnomalyModel
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError

# Resolved precision names and the autocast dtype of each (None: no autocast, float32).
AMP_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


def pick_device(name: str) -> torch.device:
    """``auto``: CUDA when present, else CPU. An unavailable device is an error, not a silent fallback."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AsdbenchError(f"device '{name}' is not a valid torch device (auto, cpu, cuda, cuda:N)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise AsdbenchError(f"device '{name}' was asked for, but torch sees no CUDA device here")
        # An explicit index, so that tensors' devices compare equal to it; each process of a distributed run its own.
        from asdbench import distributed

        index = device.index if device.index is not None else (
            distributed.local_rank() if distributed.active() else torch.cuda.current_device())
        device = torch.device("cuda", index)
    return device


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 in hardware: CUDA cards that support it, CPUs with
    AVX512-BF16 or AMX. Elsewhere bf16 is emulated and float32 is the faster choice."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: ``bf16`` where the device has native bf16 (:func:`native_bf16`), else ``fp32``."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def resolve_threads(threads: int | str) -> int:
    """``auto``: the CPU threads torch computes with in this process now (its default: the physical cores, or
    ``OMP_NUM_THREADS``; a Ray task's CPUs). The count is part of a run's config because it changes fp32 sums:
    a 1-thread and a 2-thread run of one config, seed and data gave AUC 57.6 and 60.4 %."""
    return torch.get_num_threads() if threads == "auto" else int(threads)


def resolve_runtime(config: RunConfig) -> RunConfig:
    """The config with ``device``, ``precision`` and ``threads`` as this machine resolves them; a no-op on a
    resolved config. (``compile=auto`` is decided per model from its size, :mod:`asdbench.training.compile_rule`;
    ``channels_last=auto`` follows from the device type and that, :func:`channels_last_for`.)"""
    device = pick_device(config["device"])
    return config.replace(device=str(device), precision=resolve_precision(config["precision"], device),
                          threads=resolve_threads(config["threads"]))


@dataclass(frozen=True)
class Runtime:
    """The resolved device, training autocast dtype and CPU thread count of a run, read from its resolved config."""

    device: torch.device
    amp: torch.dtype | None
    threads: int

    @classmethod
    def of(cls, config: RunConfig) -> Runtime:
        if config["device"] == "auto" or config["precision"] not in AMP_DTYPES or config["threads"] == "auto":
            raise AsdbenchError("the run's config is not resolved for this machine (device, precision or threads "
                                "'auto'): pass it through asdbench.runtime.resolve_runtime first")
        return cls(torch.device(config["device"]), AMP_DTYPES[config["precision"]], int(config["threads"]))

    def apply(self) -> None:
        """Compute with the run's thread count: what its config records is what it computed with (a resumed run
        continues with its first part's count, whatever this machine's default)."""
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def model_seed(seed: int, model: str) -> int:
    """The seed of one model's random stream, from the run's ``seed`` and the model's name: each model of a run
    trains the same whatever else the run holds (a ``--types fan`` run gives fan the numbers of the full run),
    where one stream for the whole run made a model's numbers depend on the models trained before it."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{model}".encode()).digest()[:8], "little") >> 1


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the CPU generator that orders training batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# channels_last=auto, per device type and whether the step is compiled, as measured on STgram-MFN's training step
# (benchmarks/README.md): NHWC trained 1.15-1.5x faster eagerly on the CPU and 2.0x on an H200; compiled on the
# H200, NCHW ran 1.3x faster than NHWC.
CHANNELS_LAST: dict[tuple[str, bool], bool] = {("cpu", False): True, ("cpu", True): True,
                                               ("cuda", False): True, ("cuda", True): False}

def channels_last_for(setting: bool | str, device: torch.device, compiled: bool) -> bool:
    """The memory format ``channels_last`` = true, false or auto (:data:`CHANNELS_LAST`) means here."""
    return setting if isinstance(setting, bool) else CHANNELS_LAST.get((device.type, compiled), False)

def prepare(model: AnomalyModel, device: torch.device, channels_last: bool | str, compiled: bool = False) -> AnomalyModel:
    """On the device, the backbone's 4-D weights in the memory format ``channels_last`` asks for (NHWC makes
    convolutions run channels-last). Called again when a run starts compiling, it converts them in place: the
    parameters stay the optimizer's. Linear-only backbones are unaffected."""
    model.to(device)
    nhwc = channels_last_for(channels_last, device, compiled)
    model.backbone.to(memory_format=torch.channels_last if nhwc else torch.contiguous_format)
    return model
