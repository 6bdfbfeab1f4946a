"""BEATs (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023, arXiv 2212.09058): the
audio encoder of the ``BEATs_iter3`` / ``BEATs_iter3_plus`` checkpoints that microsoft/unilm publishes, written for
asdbench from the paper and the facts of the reference code, so that those files load key for key.

A checkpoint is a ``torch.save``'d dict ``{"cfg": {...}, "model": state_dict}``; the architecture is read from its
``cfg``. The network: a 128-band Kaldi fbank of the waveform scaled to 16-bit range, standardised with the
pre-training statistics; 16 x 16 patches (time-major tokens, 8 frequency patches per time step) embedded by a
convolution, layer-normalised and projected to the encoder's width; a convolutional position embedding (weight
normalised, 128 taps in 16 groups); post-norm Transformer layers with DeepNorm residual scaling and a gated relative
position bias (bucketed distances, one table shared by all layers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from torch import nn

from asdbench.errors import AsdbenchError

SAMPLE_RATE = 16000
FBANK_MEAN, FBANK_STD = 15.41663, 6.55582  # the pre-training statistics of the fbank (reference code's defaults)
FBANK_BANDS = 128


@dataclass(frozen=True)
class BeatsConfig:
    """The fields of a checkpoint's ``cfg`` that shape the network (the reference code's names and defaults)."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False
    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527

    @classmethod
    def of(cls, cfg: dict[str, Any]) -> BeatsConfig:
        """The known fields of ``cfg`` (others, such as training settings, do not shape the network)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in known})


# The iter3 / iter3+ architecture (the paper's 90M-parameter model): what the published checkpoints' cfg holds.
ITER3 = {"input_patch_size": 16, "embed_dim": 512, "conv_bias": False, "encoder_layers": 12,
         "encoder_embed_dim": 768, "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12,
         "activation_fn": "gelu", "layer_norm_first": False, "deep_norm": True, "conv_pos": 128,
         "conv_pos_groups": 16, "relative_position_embedding": True, "num_buckets": 320, "max_distance": 800,
         "gru_rel_pos": True, "finetuned_model": False}

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu, "gelu_accurate": lambda x: F.gelu(x, approximate="tanh"),
               "tanh": torch.tanh, "linear": lambda x: x}


def scale_gradient(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """``x`` unchanged forward; its gradient times ``ratio`` backward (layer-wise gradient decay)."""
    return x if ratio == 1.0 else x.detach() + (x - x.detach()) * ratio


class PositionConv(nn.Module):
    """Grouped convolution over time with a weight-normalised kernel (``weight_g`` per tap, ``weight_v``), trimmed
    to the input's length, then GELU: the relative position signal added to the patch embeddings."""

    def __init__(self, width: int, taps: int, groups: int) -> None:
        super().__init__()
        self.taps, self.groups = taps, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, taps))
        self.weight_v = nn.Parameter(torch.randn(width, width // groups, taps) * math.sqrt(4 / (taps * width)))
        self.bias = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        out = F.conv1d(x, weight, self.bias, padding=self.taps // 2, groups=self.groups)
        return F.gelu(out[..., : x.shape[-1]])  # an even kernel gives one step more than the input: dropped


def relative_buckets(length: int, num_buckets: int, max_distance: int) -> torch.Tensor:
    """``(length, length)`` bucket of each key's offset from each query: half the buckets per direction, exact below
    a quarter of them, logarithmic up to ``max_distance``."""
    positions = torch.arange(length)
    offset = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = offset.abs()
    far = exact + (torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    return (offset > 0).long() * half + torch.where(distance < exact, distance, far.clamp(max=half - 1))


class SelfAttention(nn.Module):
    def __init__(self, cfg: BeatsConfig, relative_bias: nn.Embedding | None) -> None:
        super().__init__()
        width, self.heads = cfg.encoder_embed_dim, cfg.encoder_attention_heads
        self.k_proj, self.v_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.q_proj, self.out_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.dropout = cfg.attention_dropout
        if relative_bias is not None:
            self.relative_attention_bias = relative_bias  # one table, registered in every layer as the checkpoint is
        self.gated = cfg.gru_rel_pos
        if self.gated:
            self.grep_linear = nn.Linear(width // self.heads, 8)
            self.grep_a = nn.Parameter(torch.ones(1, self.heads, 1, 1))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, -1).transpose(1, 2)  # (B, H, N, d)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        if bias is not None and self.gated:  # each query scales the position bias by a gate read from itself
            gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(batch, self.heads, length, 2, 4).sum(-1)).chunk(2, -1)
            bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, width))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BeatsConfig, relative_bias: nn.Embedding | None) -> None:
        super().__init__()
        if cfg.activation_fn not in ACTIVATIONS:
            raise AsdbenchError(f"BEATs checkpoint: activation_fn={cfg.activation_fn!r} is not supported "
                                f"(one of: {', '.join(ACTIVATIONS)})")
        width = cfg.encoder_embed_dim
        self.self_attn = SelfAttention(cfg, relative_bias)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, cfg.encoder_ffn_embed_dim), nn.Linear(cfg.encoder_ffn_embed_dim, width)
        self.final_layer_norm = nn.LayerNorm(width)
        self.activation = ACTIVATIONS[cfg.activation_fn]
        self.pre_norm = cfg.layer_norm_first
        self.residual_scale = math.pow(2 * cfg.encoder_layers, 1 / 4) if cfg.deep_norm else 1.0
        self.dropout, self.activation_dropout = nn.Dropout(cfg.dropout), nn.Dropout(cfg.activation_dropout)

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(self.activation(self.fc1(x)))))

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.dropout(self.self_attn(self.self_attn_layer_norm(x), bias))
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x * self.residual_scale + self.dropout(self.self_attn(x, bias)))
        return self.final_layer_norm(x * self.residual_scale + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.pos_conv = nn.Sequential(PositionConv(cfg.encoder_embed_dim, cfg.conv_pos, cfg.conv_pos_groups))
        relative = (nn.Embedding(cfg.num_buckets, cfg.encoder_attention_heads)
                    if cfg.relative_position_embedding else None)
        self.layers = nn.ModuleList(EncoderLayer(cfg, relative) for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(cfg.encoder_embed_dim)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, layers: int) -> torch.Tensor:
        """The output of the first ``layers`` layers (0: their input) for tokens ``x`` ``(B, N, C)``."""
        cfg = self.cfg
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not cfg.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        bias = None
        if cfg.relative_position_embedding:
            buckets = relative_buckets(x.shape[1], cfg.num_buckets, cfg.max_distance).to(x.device)
            bias = self.layers[0].self_attn.relative_attention_bias(buckets).permute(2, 0, 1)  # (H, N, N)
        for layer in list(self.layers)[:layers]:
            x = scale_gradient(x, cfg.layer_wise_gradient_decay_ratio)
            if self.training and cfg.encoder_layerdrop > 0 and torch.rand(()) < cfg.encoder_layerdrop:
                continue
            x = layer(x, bias)
        if cfg.layer_norm_first and layers == cfg.encoder_layers:
            x = self.layer_norm(x)
        return x


class Beats(nn.Module):
    """Waveforms ``(B, samples)`` at 16 kHz to the tokens of a chosen layer ``(B, time patches x 8, width)``."""

    def __init__(self, cfg: BeatsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        patch = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=patch, stride=patch, bias=cfg.conv_bias)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        self.post_extract_proj = (nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
                                  if cfg.embed_dim != cfg.encoder_embed_dim else None)
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = TransformerEncoder(cfg)
        if cfg.finetuned_model:  # the AudioSet classifier of a fine-tuned checkpoint: loaded, never used here
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)

    @property
    def frequency_patches(self) -> int:
        return FBANK_BANDS // self.cfg.input_patch_size

    @staticmethod
    def fbank(wave: torch.Tensor) -> torch.Tensor:
        """``(B, samples)`` -> ``(B, frames, 128)``: 25 ms / 10 ms Kaldi fbank of the 16-bit-scaled waveform,
        standardised as in pre-training (mean 15.41663, twice the std 6.55582)."""
        banks = [kaldi.fbank(clip.unsqueeze(0) * 2**15, num_mel_bins=FBANK_BANDS, sample_frequency=SAMPLE_RATE,
                             frame_length=25, frame_shift=10) for clip in wave.float()]
        return (torch.stack(banks) - FBANK_MEAN) / (2 * FBANK_STD)

    def forward(self, wave: torch.Tensor, layers: int | None = None) -> torch.Tensor:
        patches = self.patch_embedding(self.fbank(wave).unsqueeze(1).to(self.patch_embedding.weight.dtype))
        tokens = self.layer_norm(patches.flatten(2).transpose(1, 2))  # time-major: time patch t, band patch f
        if self.post_extract_proj is not None:
            tokens = self.post_extract_proj(tokens)
        depth = self.cfg.encoder_layers if layers is None else layers
        return self.encoder(self.dropout_input(tokens), depth)


def read_checkpoint(path: Path) -> tuple[BeatsConfig, dict[str, torch.Tensor]]:
    """The ``cfg`` and ``model`` of a BEATs checkpoint file, read without unpickling code (``weights_only``)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AsdbenchError(f"BEATs checkpoint {path} does not exist") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a file that is not a checkpoint
        raise AsdbenchError(f"{path} is not a readable BEATs checkpoint: {str(exc).strip().splitlines()[0][:200]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cfg"), dict) or not isinstance(data.get("model"), dict):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AsdbenchError(f"{path} is not a BEATs checkpoint: expected a dict with 'cfg' and 'model' (as "
                            f"microsoft/unilm publishes BEATs_iter3), found {found}")
    return BeatsConfig.of(data["cfg"]), data["model"]
