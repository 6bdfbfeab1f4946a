"""One optimisation step, and the switches that make it fast: precision and compilation (the memory format is
:func:`asdbench.runtime.prepare`'s).

The runner's training loop and ``asdbench bench`` both call :func:`train_step`, so the
benchmark times exactly the step a run takes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from contextlib import nullcontext

import torch

from asdbench.api import Mix
from asdbench.build import AnomalyModel
from asdbench.errors import described

Augment = Callable[[torch.Tensor], torch.Tensor]  # a training batch's feature augmentation, its draws bound


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()



class Objective:
    """Forward pass, loss and backward pass of one batch, optionally under ``torch.compile``.

    Compilation happens on the first batch (and again for a new batch shape, e.g. the last
    batch of an epoch). Where it fails (no C++ compiler, an operator the compiler cannot
    handle) ``warn`` gets one line saying so and training goes on eagerly from that batch:
    a slower run is better than a lost one. A failure of the eager pass is the real error
    and is raised.
    """

    def __init__(self, model: AnomalyModel, compile: bool = False, warn: Callable[[str], None] = lambda _: None,
                 module: torch.nn.Module | None = None, mode: str | None = None) -> None:
        self.model = model
        self.mode = mode  # torch.compile's mode (None: its default)
        self.module = module or model  # what forward passes run through: the model, or DDP over it
        self.warn = warn
        self._compiled = None
        if compile:
            self.compile()

    def compile(self) -> None:
        """Compile from the next batch on."""
        if self._compiled is None:
            # The STFT of log-mel frontends stays an eager kernel inside the compiled graph; inductor warns of it.
            warnings.filterwarnings("ignore", message="Torchinductor does not support code generation for complex")
            # Static shapes: the short last batch of an epoch gets a graph of its own, and the full batches
            # keep their specialised one (a dynamic-shape graph ran dcase-ae's full batches 15 % slower).
            self._compiled = torch.compile(self._forward, dynamic=False, mode=self.mode)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def _forward(self, x: torch.Tensor, y: torch.Tensor, features_ready: bool, mix: Mix | None = None,
                 augment: Augment | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        output = self.module(x, features_ready, mix=mix, augment=augment)
        loss = self.model.loss(output, y) if mix is None else self.model.loss.mixed(output, mix.first(y), mix).mean()
        return loss, self.model.loss.class_scores(output)

    def _run(self, forward, x, y, features_ready, amp, scale, mix, augment) -> tuple[torch.Tensor, torch.Tensor | None]:
        with autocast(x.device, amp):
            loss, class_scores = forward(x, y, features_ready, mix, augment)
        (loss * scale if scale != 1.0 else loss).backward()
        return loss.detach(), None if class_scores is None else class_scores.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, features_ready: bool, amp: torch.dtype | None,
                 scale: float = 1.0, mix: Mix | None = None, augment: Augment | None = None):
        """``scale`` multiplies the loss before the backward pass (a process's weight in a distributed batch)."""
        if self._compiled is not None:
            try:
                return self._run(self._compiled, x, y, features_ready, amp, scale, mix, augment)
            except Exception as exc:  # the compiler raises many types; the eager pass below tells real errors apart
                self._compiled = None
                self.model.zero_grad(set_to_none=True)
                self.warn(f"torch.compile failed ({described(exc)}); training goes on without it")
        return self._run(self._forward, x, y, features_ready, amp, scale, mix, augment)


def train_step(
    model: AnomalyModel, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
    features_ready: bool, amp: torch.dtype | None, grad_clip: float = 0.0, objective: Objective | None = None,
    scale: float = 1.0, mix: Mix | None = None, augment: Augment | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward, backward and optimiser step; returns the loss and the class scores (no host sync)."""
    optimizer.zero_grad(set_to_none=True)
    loss, class_scores = (objective or Objective(model))(x, y, features_ready, amp, scale, mix, augment)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss, class_scores


OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def make_optimizer(model: AnomalyModel, lr: float, weight_decay: float, name: str = "adam") -> torch.optim.Optimizer:
    """Adam (weight decay added to the gradient, as the STgram-MFN code) or AdamW (decoupled, as Noisy-ArcMix and
    OS-SCL)."""
    return OPTIMIZERS[name](model.parameters(), lr=lr, weight_decay=weight_decay)
