"""``mobilefacenet``: MobileFaceNet (Chen et al., CCBR 2018) as the STgram-MFN paper-era code builds it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from asdbench import hookimpl
from asdbench.api import Backbone, ModelOutput

# (expansion t, channels c, repeats n, stride s) of the STgram-MFN code at commit 7b5411c.
PAPER_BOTTLENECKS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class DepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution that, in a compiled CPU step, runs a strided kernel as the unstrided one subsampled.

    The two are the same function (output ``i`` of a stride-``s`` convolution is output
    ``s*i`` of the stride-1 one), but oneDNN's backward pass of strided depthwise
    convolutions is slow on CPU: for STgram-MFN's three stride-2 layers it took 90 ms of a
    470 ms compiled bf16 training step (batch 16, 10 s clips); computed unstrided and
    subsampled, the step ran 10 % faster. In eager steps the shortcut is slower
    (``benchmarks/depthwise_shortcut.py``, batch 32: fp32 +17 % NCHW and +24 % channels-last,
    bf16 channels-last +5 %; only bf16 NCHW gained, 5 %, within noise), so it is taken only under
    ``torch.compile``. Parameters and state dict are those of ``nn.Conv2d``.
    """

    shortcut: bool | None = None  # None: where measured faster (above); True / False force it (benchmarks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use = self.shortcut if self.shortcut is not None else (
            x.device.type == "cpu" and torch.compiler.is_compiling())
        if not use or self.stride == (1, 1):
            return super().forward(x)
        out = F.conv2d(x, self.weight, self.bias, 1, self.padding, self.dilation, self.groups)
        return out[..., :: self.stride[0], :: self.stride[1]]


class ConvBlock(nn.Sequential):
    """Conv (no bias) + BatchNorm (+ PReLU unless linear); depthwise when ``dw``."""

    def __init__(self, inp: int, oup: int, kernel, stride: int, padding, dw: bool = False, linear: bool = False) -> None:
        conv = DepthwiseConv2d if dw else nn.Conv2d
        layers: list[nn.Module] = [
            conv(inp, oup, kernel, stride, padding, groups=inp if dw else 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        if not linear:
            layers.append(nn.PReLU(oup))
        super().__init__(*layers)


class Bottleneck(nn.Module):
    """Inverted residual: 1x1 expand, 3x3 depthwise (stride), 1x1 linear projection; residual when shapes allow."""

    def __init__(self, inp: int, oup: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = inp * expansion
        self.connect = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            ConvBlock(inp, hidden, 1, 1, 0),
            ConvBlock(hidden, hidden, 3, stride, 1, dw=True),
            ConvBlock(hidden, oup, 1, 1, 0, linear=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.connect else self.conv(x)


class MobileFaceNet(Backbone):
    """MobileFaceNet over a C x M x N feature image to a 128-d embedding (bottlenecks of the STgram-MFN paper).

    The global depthwise (GDC) kernel is the size of the last feature map, derived from
    ``input_shape``: (8, 20) for 128 x 313 (10 s clips), as in the authors' code.
    He-normal conv weights, as their code initialises them.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, embedding_dim: int = 128,
                 bottlenecks: list | tuple = PAPER_BOTTLENECKS, projection: str = "") -> None:
        super().__init__()
        channels = input_shape[0]
        self.conv1 = ConvBlock(channels, 64, 3, 2, 1)
        self.dw_conv1 = ConvBlock(64, 64, 3, 1, 1, dw=True)
        blocks, inplanes = [], 64
        for t, c, n, s in bottlenecks:
            for i in range(n):
                blocks.append(Bottleneck(inplanes, c, s if i == 0 else 1, t))
                inplanes = c
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = ConvBlock(inplanes, 512, 1, 1, 0)
        with torch.no_grad():
            grid = self._trunk(torch.zeros(1, *input_shape)).shape[2:]
        self.gdc_kernel = tuple(grid)
        self.linear7 = ConvBlock(512, 512, self.gdc_kernel, 1, 0, dw=True, linear=True)
        self.linear1 = ConvBlock(512, embedding_dim, 1, 1, 0, linear=True)
        self.embedding_dim = embedding_dim
        if projection not in ("", "fp"):
            raise ValueError(f"projection must be '' or 'fp', not {projection!r}")
        # OS-SCL's feature-perturbation head ("basic"): its L2-normalised output is the embedding
        self.projection = nn.Sequential(
            nn.Linear(embedding_dim, embedding_dim // 2), nn.ReLU(), nn.BatchNorm1d(embedding_dim // 2),
            nn.Linear(embedding_dim // 2, embedding_dim), nn.ReLU(), nn.BatchNorm1d(embedding_dim)) if projection else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.blocks(self.dw_conv1(self.conv1(x))))

    def forward(self, features: torch.Tensor) -> ModelOutput:
        x = self.linear1(self.linear7(self._trunk(features))).flatten(1)
        if self.projection is not None:
            x = torch.nn.functional.normalize(self.projection(x), dim=1)
        return ModelOutput(embedding=x)


@hookimpl
def register_backbones(register):
    register("mobilefacenet", MobileFaceNet)
