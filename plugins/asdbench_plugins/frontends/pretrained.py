"""What every pretrained-encoder frontend shares (``beats``, ``hf-encoder``): weights from a local file, frozen or
tuned, pooled into what the backbone takes, and kept out of the run's own state.

- ``tune``: ``none`` freezes the encoder (in eval mode, no dropout): the frontend has no weights to train, so the
  runner computes its embeddings once and caches them like features, keyed by the weights' content; ``lora`` trains
  low-rank adapters (peft's LoRA: ``lora_rank``, ``lora_alpha``, ``lora_dropout``, ``lora_targets``, the names of
  the linear layers adapted) over the frozen encoder; ``full`` trains every weight.
- ``pooling``: ``mean`` gives one vector per clip ``(width,)``; ``time`` the mean over time of each frequency patch,
  concatenated ``(bands x width,)`` (GenRep's "temporal pooling" of BEATs; one band for a speech model); ``frames``
  one vector per time step ``(frames, width)``, for a backbone that pools itself (``encoder-head``).
- ``layer``: the output of that many encoder layers (``-1``: all of them, ``0``: the embeddings entering the first).
- The encoder's frozen weights are not part of the frontend's state (checkpoints, bundles): they are rebuilt from
  the checkpoint file, whose SHA-256 the state holds (``checkpoint_sha256``) and loading checks. A bundle of a
  LoRA-tuned model stores the adapters alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import torch
import torchaudio
from torch import nn

from asdbench.api import Frontend
from asdbench.errors import AsdbenchError

TUNES = ("none", "lora", "full")
POOLINGS = ("mean", "time", "frames")
DIGEST = "checkpoint_sha256"


def checkpoint_path(checkpoint: str, frontend: str, what: str) -> Path:
    """The checkpoint a frontend was given, which must exist: no weights are downloaded at run time."""
    if not checkpoint:
        raise AsdbenchError(f"frontend '{frontend}' needs checkpoint=PATH ({what}); asdbench downloads no weights: "
                            f"--set frontend.checkpoint=PATH")
    path = Path(checkpoint).expanduser()
    if not path.exists():
        raise AsdbenchError(f"frontend '{frontend}': checkpoint {path} does not exist ({what})")
    return path.resolve()


def chosen_depth(frontend: str, layer: int, depth: int) -> int:
    """How many of an encoder's ``depth`` layers ``layer`` asks for (-1: all), or one line where it has fewer."""
    if not -1 <= layer <= depth:
        raise AsdbenchError(f"frontend '{frontend}': layer={layer} is outside -1..{depth} (its encoder has {depth} "
                            "layers)")
    return depth if layer == -1 else layer


def files_sha256(paths: Iterable[Path]) -> bytes:
    """One digest of the files' names and contents, in name order."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    return digest.digest()


class PretrainedEncoder(Frontend):
    """A pretrained ``encoder`` as a frontend; a subclass gives :meth:`tokens` (the chosen layer's outputs) and
    :meth:`grid` (the tokens on their time x frequency grid)."""

    def __init__(self, name: str, sample_rate: int, encoder_rate: int, encoder: nn.Module, digest: bytes,
                 tune: str, pooling: str, lora_rank: int, lora_alpha: float, lora_dropout: float,
                 lora_targets: str) -> None:
        super().__init__()
        for key, value, allowed in (("tune", tune, TUNES), ("pooling", pooling, POOLINGS)):
            if value not in allowed:
                raise AsdbenchError(f"frontend '{name}': {key}={value!r} is not one of: {', '.join(allowed)}")
        self.name, self.sample_rate, self.encoder_rate, self.tune, self.pooling = (
            name, sample_rate, encoder_rate, tune, pooling)
        self.encoder = encoder
        self.register_buffer(DIGEST, torch.tensor(list(digest), dtype=torch.uint8))
        for parameter in encoder.parameters():
            parameter.requires_grad_(tune == "full")
        if tune == "lora":
            self._add_adapters(lora_rank, lora_alpha, lora_dropout, lora_targets)
        self.train(self.training)  # a frozen encoder starts, and stays, in inference mode
        self.register_state_dict_post_hook(_without_frozen_weights)
        self.register_load_state_dict_pre_hook(_frozen_weights_and_same_checkpoint)

    def _add_adapters(self, rank: int, alpha: float, dropout: float, targets: str) -> None:
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError:
            raise AsdbenchError(f"frontend '{self.name}' with tune=lora needs peft: pip install 'asdbench[encoders]'") from None
        names = [t.strip() for t in targets.split(",") if t.strip()]
        if rank < 1 or not names:
            raise AsdbenchError(f"frontend '{self.name}': tune=lora needs lora_rank >= 1 and lora_targets (the "
                                f"names of linear layers to adapt), got lora_rank={rank}, lora_targets={targets!r}")
        try:
            inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=names),
                                    self.encoder)
        except ValueError as exc:  # peft: no module of that name
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in self.encoder.named_modules() if isinstance(m, nn.Linear)})
            raise AsdbenchError(f"frontend '{self.name}': lora_targets={targets!r} names no layer of the encoder "
                                f"({str(exc).splitlines()[0][:120]}); its linear layers: {', '.join(linear)}") from None
        for name, parameter in self.encoder.named_parameters():
            parameter.requires_grad_("lora_" in name)

    def frozen_names(self) -> list[str]:
        """The encoder's state keys (relative to this frontend) that training does not change."""
        return [f"encoder.{name}" for name, p in self.encoder.named_parameters(remove_duplicate=False)
                if not p.requires_grad]

    def train(self, mode: bool = True) -> PretrainedEncoder:
        super().train(mode)
        if self.tune == "none":  # a frozen encoder is always in inference mode: its dropout would change embeddings
            self.encoder.eval()
        return self

    def tokens(self, wave: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``(B, samples)`` at ``encoder_rate`` -> ``(B, tokens, width)`` of the chosen layer."""
        raise NotImplementedError

    def grid(self, tokens: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        """``(B, tokens, width)`` -> ``(B, frames, bands, width)``: the patch tokens by time and frequency."""
        raise NotImplementedError

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.sample_rate != self.encoder_rate:
            wave = torchaudio.functional.resample(wave, self.sample_rate, self.encoder_rate)
        grid = self.grid(self.tokens(wave))
        if self.pooling == "mean":
            return grid.mean((1, 2))
        return grid.mean(1).flatten(1) if self.pooling == "time" else grid.mean(2)


def _without_frozen_weights(module: PretrainedEncoder, state: dict, prefix: str, local_metadata) -> None:
    for name in module.frozen_names():
        state.pop(prefix + name, None)


def _frozen_weights_and_same_checkpoint(module: PretrainedEncoder, state: dict, prefix: str, local_metadata,
                                        strict, missing_keys, unexpected_keys, error_msgs) -> None:
    """A state without the frozen weights loads them from the encoder as it is (built from its checkpoint), once
    the state is known to come from that checkpoint."""
    saved = state.get(prefix + DIGEST)
    own = getattr(module, DIGEST)
    if saved is not None and not torch.equal(saved.cpu(), own.cpu()):
        raise AsdbenchError(f"frontend '{module.name}': these weights were trained on a checkpoint with SHA-256 "
                            f"{bytes(saved.tolist()).hex()[:16]}..., but the checkpoint configured now has "
                            f"{bytes(own.tolist()).hex()[:16]}...: give the one the model was trained on")
    encoder_state = module.encoder.state_dict(keep_vars=True)
    for name in module.frozen_names():
        state.setdefault(prefix + name, encoder_state[name.removeprefix("encoder.")].detach())
