"""Features of frontends without weights to train, cached on disk across runs (float32, memory-mapped).

Such a frontend maps a clip to the same features in every run, so they are computed once. The key
joins the wave cache's key (data set, files, clip length) with what the features depend on: the
frontend's registered name and resolved parameters, the source of the modules that define it and its
sub-networks, the torch and torchaudio versions (their STFT and filterbanks), and the content of any
frozen weights (a pretrained encoder's: the embeddings of one checkpoint are computed once, whatever
back-end reads them). Change any of them and a new entry is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from asdbench.api import Frontend
from asdbench.cache import cache_dir
from asdbench.data.array_cache import load_or_fill, write_about
from asdbench.data.fingerprint import code_fingerprint
from asdbench.data.wave_cache import LENGTHS
from asdbench.environment import require

torchaudio = require("torchaudio")

FORMAT_VERSION = 2  # 2: a windowed frontend's entry holds its base features (asdbench.api.WindowedFrontend)


def frontend_fingerprint(frontend: Frontend, name: str, params: dict[str, Any]) -> str:
    """The features' key (see the module's docstring); a frontend without sub-networks of its own code or frozen
    weights keeps the key it had before either was part of it."""
    networks = sorted({code_fingerprint(m, "", {}) for m in frontend.modules()
                       if type(m) is not type(frontend) and not type(m).__module__.startswith("torch")})
    frozen = frozen_weights_digest(frontend)
    extra = [networks, frozen] if networks or frozen else []
    return code_fingerprint(frontend, name, params, FORMAT_VERSION, torch.__version__, torchaudio.__version__, *extra)


def frozen_weights_digest(module: torch.nn.Module) -> str:
    """A hash of the names, types, shapes and bytes of the module's parameters that do not train ('' if none)."""
    frozen = [(n, p) for n, p in module.named_parameters() if not p.requires_grad]
    if not frozen:
        return ""
    digest = hashlib.sha256()
    for name, parameter in frozen:
        data = parameter.detach().cpu().contiguous()
        digest.update(f"{name}\0{data.dtype}\0{tuple(data.shape)}\0".encode())
        digest.update(data.view(torch.uint8).numpy().data if data.numel() else b"")
    return digest.hexdigest()[:24]


def load_or_compute(wave_key: str, fingerprint: str, shape: tuple[int, ...],
                    compute: Callable[[np.ndarray], np.ndarray], dataset: str = "unknown") -> tuple[np.ndarray, np.ndarray]:
    """``(features, lengths)``: features ``shape`` (clips first) of the clips behind ``wave_key`` and the
    clips' lengths before cutting. When missing, ``compute(out)`` fills ``out`` and returns the lengths; the entry
    is labelled with the ``dataset``'s name."""
    folder = cache_dir() / "features" / hashlib.sha256(f"{wave_key}\0{fingerprint}".encode()).hexdigest()[:24]

    def fill(out: np.ndarray, entry) -> None:
        np.save(entry / LENGTHS, compute(out))
        write_about(entry, dataset)

    features = load_or_fill(folder, np.dtype(np.float32), shape, fill)
    return features, np.load(folder / LENGTHS)
