"""Turn a resolved config into components: the one place factories are called."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from asdbench.api import Backbone, Frontend, Loss, Mix, ModelOutput, Scorer, WindowedFrontend
from asdbench.config import RunConfig
from asdbench.errors import AsdbenchError, described, reason
from asdbench.plugins import Plugins


def instantiate(plugins: Plugins, config: RunConfig, kind: str, **context: Any) -> Any:
    """Call the configured factory of ``kind`` with the runner's context (what of it the factory names: an
    augmentation that needs no data set takes no ``dataset``) and the config's params."""
    entry = plugins.registry(kind).get(config.component(kind))
    params = {k: v for k, v in config.params(kind).items() if v is not None}
    try:
        return entry.factory(**_accepted(entry.factory, context), **params)
    except AsdbenchError:
        raise
    except Exception as exc:  # a plugin's own bug or bad argument: name the plugin and its package, not a traceback
        raise AsdbenchError(f"cannot build {kind} '{entry.name}' (package {entry.package}): "
                            f"{described(exc, limit=300)}") from None


class PerMicrophone(Frontend):
    """A frontend on clips of several microphones ``(B, mics, samples)``: each microphone's features as the frontend
    makes them, ``(ch, ...)`` per clip, stacked along that channel axis into ``(mics * ch, ...)``, microphone after
    microphone (STgram of DCASE 2026's near and far microphones: near log-mel, near Tgram, far log-mel, far Tgram),
    so any backbone that reads its input channels from ``input_shape`` takes them."""

    def __init__(self, inner: Frontend, mics: int) -> None:
        super().__init__()
        self.inner, self.mics, self.sample_rate = inner, mics, inner.sample_rate

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        clips = wave.shape[0]
        out = self.inner(wave.reshape(clips * self.mics, wave.shape[-1]))
        return out.reshape(clips, self.mics * out.shape[1], *out.shape[2:])

    def output_shape(self, num_samples: int) -> tuple[int, ...]:
        channels, *rest = self.inner.output_shape(num_samples)
        return (self.mics * channels, *rest)


def build_frontend(plugins: Plugins, config: RunConfig, sample_rate: int, num_samples: int,
                   mics: int = 1) -> Frontend:
    """The configured frontend, for clips of ``mics`` microphones: itself where it reads that many (its optional
    ``microphones``, 1 without), else :class:`PerMicrophone` over it. A frontend whose features have no channel axis
    to stack on (frames of stacked vectors, spectra) takes one microphone."""
    frontend = instantiate(plugins, config, "frontend", sample_rate=sample_rate, num_samples=num_samples)
    takes = getattr(frontend, "microphones", 1)  # a frontend that reads several microphones itself says how many
    if takes == mics:
        return frontend
    if takes != 1:
        raise AsdbenchError(f"frontend '{config.component('frontend')}' reads {takes} microphones at once; the data "
                            f"set's clips are read with {mics} (DCASE 2026: dataset.channel=both)")
    shape = frontend.output_shape(num_samples)
    if isinstance(frontend, WindowedFrontend) or len(shape) < 3:
        raise AsdbenchError(f"dataset.channel=both stacks each microphone's features as channels; frontend "
                            f"'{config.component('frontend')}' gives features of shape {shape} per clip, without a "
                            "channel axis: use a frontend of (channels, frequency, time) features (logmel, stgram, "
                            "tgram...), or one microphone (dataset.channel=first)")
    return PerMicrophone(frontend, mics)


def _accepted(factory: Any, context: dict[str, Any]) -> dict[str, Any]:
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # no signature to read: everything, as before
        return context
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return context
    names = {p.name for p in parameters}
    return {k: v for k, v in context.items() if k in names}


class AnomalyModel(nn.Module):
    """Frontend, backbone and loss as one module, so one optimiser and one state dict hold them all."""

    def __init__(self, frontend: Frontend, backbone: Backbone, loss: Loss) -> None:
        super().__init__()
        self.frontend = frontend
        self.backbone = backbone
        self.loss = loss

    def forward(self, inputs: torch.Tensor, features_ready: bool, frame_axis: bool = False,
                mix: Mix | None = None, augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> ModelOutput:
        """``frame_axis``: inputs are ``(clips, frames, *example)``; the backbone sees each frame (or
        patch) as an example and the outputs come back as ``(clips, frames, ...)`` for the scorer. ``mix``: a
        training batch's mixup, applied by the frontend (``forward_mixed``) or to its features. ``augment``: a
        training batch's feature augmentation (:mod:`asdbench.api.augmentation`), after any mixing."""
        if mix is not None and mix.exchange is None and not features_ready and hasattr(self.frontend, "forward_mixed"):
            features = self.frontend.forward_mixed(inputs, mix)
        else:
            features = inputs if features_ready else self.frontend(inputs)
            if mix is not None:
                features = mix.apply(features)
        if augment is not None:
            features = augment(features)
        if not frame_axis:
            return self.backbone(features)
        clips, frames = features.shape[:2]
        output = self.backbone(features.flatten(0, 1))
        for name, value in vars(output).items():
            if value is not None:
                setattr(output, name, value.reshape(clips, frames, *value.shape[1:]))
        return output


def build_model(
    plugins: Plugins, config: RunConfig, frontend: Frontend, input_shape: tuple[int, ...], num_classes: int
) -> tuple[AnomalyModel, Scorer]:
    named = config.values.get("augmentation", "none")  # bundles made before augmentations name none
    augmentation = plugins.registry("augmentation").get(named).factory
    num_classes *= getattr(augmentation, "class_factor", 1)  # FeatEx: its exchanged examples are classes of their own
    backbone = instantiate(plugins, config, "backbone", input_shape=input_shape, num_classes=num_classes)
    _check_fits(backbone, input_shape, config)
    loss = instantiate(plugins, config, "loss", num_classes=num_classes, embedding_dim=backbone.embedding_dim)
    mixup = config.values.get("mixup", "none")
    mixing = f"mixup={mixup}" if mixup != "none" else (
        f"augmentation={named}" if getattr(augmentation, "stage", None) == "mix" else "")
    if mixing and type(loss).mixed is Loss.mixed:
        raise AsdbenchError(f"loss '{config.component('loss')}' cannot train with {mixing}: it defines no mixed() "
                            "loss (see CONTRIBUTING.md)")
    scorer = instantiate(plugins, config, "scorer")
    if not callable(getattr(scorer, "score", None)):
        raise AsdbenchError(f"scorer '{config.component('scorer')}' has no score() method")
    return AnomalyModel(frontend, backbone, loss), scorer


def _check_fits(backbone: Backbone, input_shape: tuple[int, ...], config: RunConfig) -> None:
    """One zero example through a copy of the backbone (a copy: some initialise on their first batch, as Glow's
    ActNorm), so that features it cannot take (a frontend swapped with --set) are one line before training, not a
    traceback from its first batch."""
    try:
        with torch.random.fork_rng(), torch.no_grad():
            copy.deepcopy(backbone).eval()(torch.zeros(1, *input_shape))
    except Exception as exc:  # noqa: BLE001 - torch raises many types for shapes that do not fit
        raise AsdbenchError(f"backbone '{config.component('backbone')}' cannot take the features of frontend "
                            f"'{config.component('frontend')}' (one example: {tuple(input_shape)}): {reason(exc)}") from None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
