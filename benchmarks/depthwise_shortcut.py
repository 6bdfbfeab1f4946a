"""MobileFaceNet's CPU depthwise shortcut (strided depthwise convolutions computed unstrided, then subsampled), on and
off: the training-step time of the STgram-MFN backbone per precision and memory format, eager.

    python benchmarks/depthwise_shortcut.py --batch 32 --steps 5

The shortcut is the same function (tests/unit/training/test_fast_paths.py); whether it is faster depends on oneDNN's kernels
for the precision and layout, so it is kept only where this measures it faster (see ``DepthwiseConv2d``).
Both settings run in one process, alternating, so the machine's drift affects them alike.
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from asdbench_plugins.backbones import mobilefacenet as mfn


def step_seconds(shortcut: bool, precision: str, channels_last: bool, batch: int, steps: int) -> float:
    torch.manual_seed(0)
    net = mfn.MobileFaceNet((2, 128, 313), 41)
    for module in net.modules():
        if isinstance(module, mfn.DepthwiseConv2d):
            module.shortcut = shortcut
    head = nn.Linear(net.embedding_dim, 41)
    x, y = torch.randn(batch, 2, 128, 313), torch.randint(0, 41, (batch,))
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([*net.parameters(), *head.parameters()], 1e-4)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    times = []
    for i in range(steps + 2):  # two warm-up steps
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with amp:
            loss = F.cross_entropy(head(net(x).embedding).float(), y)
        loss.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} clips of 10 s "
          f"(2 x 128 x 313), median step of {args.steps}")
    print("| precision | memory | shortcut off (s) | shortcut on (s) | on / off |")
    print("|---|---|---:|---:|---:|")
    for precision in ("fp32", "bf16"):
        for channels_last in (False, True):
            off = on = 0.0
            for _ in range(2):  # alternate, twice
                off += step_seconds(False, precision, channels_last, args.batch, args.steps)
                on += step_seconds(True, precision, channels_last, args.batch, args.steps)
            print(f"| {precision} | {'channels_last' if channels_last else 'NCHW'} | {off / 2:.3f} | {on / 2:.3f} | "
                  f"{on / off:.2f} |")


if __name__ == "__main__":
    main()
