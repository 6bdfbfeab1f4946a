"""The public contracts plugins implement. Small on purpose: see CONTRIBUTING.md."""

from asdbench.api.dataset import Clip, Dataset, Split
from asdbench.api.model import Backbone, Frontend, Loss, Mix, ModelOutput, Scorer
from asdbench.api.system import SystemSpec

__all__ = [
    "Backbone",
    "Clip",
    "Dataset",
    "Frontend",
    "Loss",
    "Mix",
    "ModelOutput",
    "Scorer",
    "Split",
    "SystemSpec",
]
