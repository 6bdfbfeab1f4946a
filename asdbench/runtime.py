"""Device choice and seeding, recorded with every run."""

from __future__ import annotations

import random

import numpy as np
import torch

from asdbench.errors import AsdbenchError


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
        # An explicit index, so that tensors' devices compare equal to it.
        device = torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
    return device


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the CPU generator that orders training batches."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
