"""Checkpoints a run can be resumed from, bit for bit.

A checkpoint holds everything the rest of training depends on: the weights, Adam's
state, the learning-rate schedule, every random state (torch's, CUDA's, NumPy's,
Python's and the generator that orders batches), the epoch and the oracle selection's
best so far. It also records what it belongs to (the resolved config, its hash, the
asdbench version and the data fingerprint), so a resume with anything different is
refused with the differences named. A model's last checkpoint is marked ``finished``
and holds its kept weights: a resumed run does not train that model again.

Files are written atomically and read with ``torch.load(weights_only=True)``: tensors
and plain containers only, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import asdbench
from asdbench.errors import AsdbenchError, reason
from asdbench.interrupts import uninterrupted

FORMAT = "asdbench-checkpoint"
VERSION = 1


@dataclass(frozen=True)
class Identity:
    """What a checkpoint must match to be resumed: the run's resolved config, the code and the data."""

    config: dict[str, Any]
    config_hash: str
    data: str
    version: str = asdbench.__version__

    def as_dict(self) -> dict[str, Any]:
        return {"config": self.config, "config_hash": self.config_hash, "data": self.data, "version": self.version}

    def differences(self, saved: dict[str, Any]) -> list[str]:
        """What differs between a checkpoint's identity and this one, one phrase each."""
        out = []
        if saved.get("version") != self.version:
            out.append(f"asdbench version {saved.get('version')} (checkpoint) vs {self.version} (now)")
        if saved.get("data") != self.data:
            out.append(f"the data (fingerprint {saved.get('data')} vs {self.data}: other clips, labels or file contents)")
        old = saved.get("config", {})
        for key in sorted(set(old) | set(self.config)):
            if old.get(key, "<absent>") != self.config.get(key, "<absent>"):
                out.append(f"{key} = {old.get(key, '<absent>')!r} (checkpoint) vs {self.config.get(key, '<absent>')!r} (now)")
        return out


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state training reads, as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "python": random.getstate(),
        "batch_order": generator.get_state(),
    }


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, values, gauss_next = state["python"]
    random.setstate((version, tuple(values), gauss_next))
    generator.set_state(state["batch_order"])


def save(path: Path, payload: dict[str, Any], identity: Identity) -> None:
    """Write to a temporary name, flush to disk, then rename: a crash or a full disk never leaves a torn
    checkpoint in place of a good one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        with uninterrupted(), open(tmp, "wb") as fh:  # Ctrl-C or SIGTERM waits for the file to be whole
            torch.save({"format": FORMAT, "format_version": VERSION, "identity": identity.as_dict(), **payload}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:  # torch's zip writer reports a full disk as a RuntimeError
        tmp.unlink(missing_ok=True)
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else reason(exc)
        raise AsdbenchError(f"cannot write checkpoint {path}: {why}") from None


def read(path: Path) -> dict[str, Any]:
    """A checkpoint file's contents; a one-line error for anything that is not an asdbench checkpoint."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AsdbenchError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a file it cannot read
        # torch's weights-only refusal goes on to advise weights_only=False: never, for a file from elsewhere
        why = ("it holds pickled objects beyond tensors and plain values, which are not loaded"
               if type(exc).__name__ == "UnpicklingError" else reason(exc))
        raise AsdbenchError(f"{path} is not an asdbench checkpoint ({why})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AsdbenchError(f"{path} is not an asdbench checkpoint (no '{FORMAT}' marker)")
    if data.get("format_version") != VERSION:
        raise AsdbenchError(f"{path} is an asdbench checkpoint of format {data.get('format_version')}; this asdbench "
                            f"reads format {VERSION}")
    return data


def load(path: Path, identity: Identity) -> dict[str, Any]:
    """The checkpoint at ``path``, refused with the differences named if it belongs to another config or data."""
    data = read(path)
    differences = identity.differences(data.get("identity", {}))
    if differences:
        raise AsdbenchError(f"cannot resume from {path}: it was written for another run setting: " + "; ".join(differences))
    return data


@dataclass(frozen=True)
class Slot:
    """The checkpoint file of one model of a run (see :func:`asdbench.training.loop.train`); ``resume``: read it first."""

    path: Path
    identity: Identity
    resume: bool = False

    def save(self, payload: dict[str, Any]) -> None:
        save(self.path, payload, self.identity)

    def load(self) -> dict[str, Any] | None:
        return load(self.path, self.identity) if self.resume and self.path.exists() else None
