"""Test-only plugins whose results are known before a run: a clip's score is its peak level.

The tree :func:`write_tree` generates (the official DCASE 2020 names) has normal clips with
peaks below 0.33 and anomalies with peaks above 0.38, so a run through the real runner,
loader and caches must give AUC exactly 1.0, and exactly 0.0 with the score negated. A
score attached to the wrong clip, a cache that serves another clip's samples or a group
that scores another ID's clips breaks that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, Frontend, Loss, ModelOutput, SystemSpec
from asdbench_plugins.datasets.dcase2020t2 import DCASE2020T2

SR = 16_000
SECONDS = 0.25
PACKAGE = "asdbench-known-answers"


def write_tree(root: Path, subtypes: dict[str, str] | None = None) -> Path:
    """``dev_data/<type>/{train,test}`` for fan and pump, IDs 00 and 02 (8 train, 4 normal + 4 anomalous test clips
    each), and ``eval_data/fan/train`` for ID 01 (additional training data with no test clips under the paper
    protocol). Every ID's first training clip is 0.2 s (padded to 0.25 s), its first normal test clip 0.3 s (cut).
    ``subtypes``: soundfile subtype per machine type (default PCM_16)."""
    rng = np.random.default_rng(0)

    def wav(path: Path, peak: float, seconds: float, subtype: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(round(seconds * SR))) / SR
        tone = np.sin(2 * np.pi * rng.uniform(200, 900) * t + rng.uniform(0, 6.28))
        wave = peak * tone / np.max(np.abs(tone)) * (1 - 0.01 * rng.random(t.shape))  # peak exact, no two clips alike
        sf.write(str(path), wave, SR, subtype=subtype)

    for subset, mtype, mid, n_train, tested in (
        ("dev_data", "fan", "00", 8, True), ("dev_data", "fan", "02", 8, True),
        ("dev_data", "pump", "00", 8, True), ("dev_data", "pump", "02", 8, True),
        ("eval_data", "fan", "01", 6, False),
    ):
        subtype = (subtypes or {}).get(mtype, "PCM_16")
        folder = root / subset / mtype
        for i in range(n_train):
            wav(folder / "train" / f"normal_id_{mid}_{i:08d}.wav", rng.uniform(0.1, 0.3), 0.2 if i == 0 else SECONDS, subtype)
        if tested:
            for i in range(4):
                wav(folder / "test" / f"normal_id_{mid}_{i:08d}.wav", rng.uniform(0.1, 0.3), 0.3 if i == 0 else SECONDS,
                    subtype)
                wav(folder / "test" / f"anomaly_id_{mid}_{i:08d}.wav", rng.uniform(0.4, 0.6), SECONDS, subtype)
    return root


class PeakLevel(Frontend):
    """``(B, L)`` waveforms to ``(B, 1)``: each clip's largest absolute sample. No weights: features are cached."""

    def __init__(self, sample_rate: int, num_samples: int) -> None:
        super().__init__()
        self.sample_rate = sample_rate

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return waves.abs().amax(dim=1, keepdim=True)


class Passthrough(Backbone):
    """The features as the embedding, and a 1-to-1 linear map of them as a reconstruction (so Adam has weights).
    ``collapsed`` > 0: the embedding is that many zeros for every clip instead, as a collapsed model's."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, collapsed: int = 0) -> None:
        super().__init__()
        self.linear = nn.Linear(input_shape[-1], input_shape[-1])
        self.collapsed = collapsed

    def forward(self, features: torch.Tensor) -> ModelOutput:
        embedding = features.new_zeros(features.shape[0], self.collapsed) if self.collapsed else features
        return ModelOutput(embedding=embedding, reconstruction=self.linear(features), target=features)


# Set by a test, not by the config (a resumed run must have the config of the run it resumes): the training batch,
# counted over the whole process, at which the loss raises, as a crash in the middle of training would.
CRASH_AT_BATCH = 0
_batches_seen = [0]


class ScriptedLoss(Loss):
    """Mean squared error of the reconstruction; with ``nan_at`` > 0 the ``nan_at``-th training batch's loss is NaN."""

    def __init__(self, num_classes: int, embedding_dim: int, nan_at: int = 0) -> None:
        super().__init__()
        self.nan_at, self.calls = nan_at, 0

    def forward(self, output: ModelOutput, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        _batches_seen[0] += 1
        if _batches_seen[0] == CRASH_AT_BATCH:
            raise RuntimeError("injected crash")
        loss = torch.mean((output.reconstruction - output.target) ** 2)
        return loss * float("nan") if self.calls == self.nan_at else loss


class PeakScore:
    """The embedding (the peak), or with ``source=reconstruction`` the linear map's output; ``negate`` flips the sign;
    clips of class ``nan_class`` (the index of their ID within the model) score NaN; ``fail``: raises, as a buggy
    third-party scorer would."""

    def __init__(self, negate: bool = False, source: str = "embedding", nan_class: int = -1, fail: bool = False) -> None:
        self.sign, self.source, self.nan_class, self.fail = (-1.0 if negate else 1.0), source, nan_class, fail

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        if self.fail:
            raise ZeroDivisionError("division by zero in a plugin")
        values = getattr(output, self.source)[:, 0] * self.sign
        return torch.where(target == self.nan_class, torch.full_like(values, float("nan")), values)


class ReversedDCASE2020T2(DCASE2020T2):
    """The real loader with every clip list in reverse order."""

    name = "dcase2020t2-reversed"

    def clips(self, split):
        return super().clips(split)[::-1]


class ScaledDCASE2020T2(DCASE2020T2):
    """The real loader, every waveform multiplied by ``gain``: a dataset parameter that changes what ``load`` returns."""

    name = "dcase2020t2-scaled"

    def __init__(self, root: str = "", gain: float = 1.0, **kwargs) -> None:
        super().__init__(root, **kwargs)
        self.gain = gain

    def load(self, clip):
        return super().load(clip) * np.float32(self.gain)


PEAK_LEVEL = SystemSpec(frontend="peak-level", backbone="passthrough", loss="scripted-mse", scorer="peak",
                        defaults={"dataset": "dcase2020t2", "epochs": 2, "batch_size": 8, "lr": 1e-2,
                                  "model_per": "type", "clip_seconds": SECONDS, "precision": "fp32"})


@hookimpl
def register_frontends(register):
    register("peak-level", PeakLevel)


@hookimpl
def register_backbones(register):
    register("passthrough", Passthrough)


@hookimpl
def register_losses(register):
    register("scripted-mse", ScriptedLoss)


@hookimpl
def register_scorers(register):
    register("peak", PeakScore)


@hookimpl
def register_datasets(register):
    register("dcase2020t2-reversed", ReversedDCASE2020T2)
    register("dcase2020t2-scaled", ScaledDCASE2020T2)


@hookimpl
def register_systems(register):
    register("peak-level", PEAK_LEVEL, "score = the clip's peak level (test-only; known answers)")
