"""The public contracts plugins implement. Small on purpose: see CONTRIBUTING.md.

The names load on first use (PEP 562), so that ``SystemSpec`` or ``Clip`` can be read without importing torch,
which the model contracts need: commands that only describe plugins stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asdbench.api.augmentation import Augmentation, FeatureAugmentation, MixAugmentation, WaveAugmentation
    from asdbench.api.dataset import Clip, Dataset, Split
    from asdbench.api.model import Backbone, Frontend, Loss, Mix, ModelOutput, Scorer, WindowedFrontend
    from asdbench.api.system import SystemSpec

_MODULES = {
    "Augmentation": "augmentation", "FeatureAugmentation": "augmentation", "MixAugmentation": "augmentation",
    "WaveAugmentation": "augmentation",
    "Clip": "dataset", "Dataset": "dataset", "Split": "dataset",
    "Backbone": "model", "Frontend": "model", "Loss": "model", "Mix": "model", "ModelOutput": "model", "Scorer": "model",
    "WindowedFrontend": "model", "SystemSpec": "system",
}

__all__ = ["Augmentation", "Backbone", "Clip", "Dataset", "FeatureAugmentation", "Frontend", "Loss", "Mix",
           "MixAugmentation", "ModelOutput", "Scorer", "Split", "SystemSpec", "WaveAugmentation", "WindowedFrontend"]


def __getattr__(name: str) -> Any:
    if name not in _MODULES:
        raise AttributeError(f"module 'asdbench.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"asdbench.api.{_MODULES[name]}"), name)


def __dir__() -> list[str]:
    return __all__
