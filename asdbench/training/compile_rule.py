"""``compile=auto``: whether a model trains compiled, decided from its size before its first step.

The decision changes a run's numbers (compiled and eager kernels round differently: AUC 61.1 vs
64.6 % on one config, seed and data), so it must not depend on how busy the machine is. It once
did (the first epoch's wall time); now it is a function of what the comparability key holds: the
model's training work counted in floating-point operations (torch's ``FlopCounterMode`` on one
example: deterministic, no timing), the number of examples and epochs, the device type and the
thread count. A run of the same key on any machine load decides the same way.

The estimate converts that work into eager seconds at a nominal rate per device type, chosen from
the measurements in ``benchmarks/README.md`` (STgram-MFN eager: about 40 GFLOP/s on 2 CPU threads,
about 15 TFLOP/s on an H100 in bf16), and compiles when they reach :data:`MIN_EAGER_SECONDS`:
compiling STgram-MFN took about a minute on 2 CPU cores and then trained 2.2x faster, so 5 minutes
leaves a margin for systems that gain less; short runs, tests among them, stay eager.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from asdbench.build import AnomalyModel
from asdbench.data.examples import Examples

MIN_EAGER_SECONDS = 300.0
CPU_FLOPS_PER_THREAD = 20e9
CUDA_FLOPS = 15e12
BACKWARD_FACTOR = 3.0  # a training step's forward, backward and update, in forward passes


@dataclass(frozen=True)
class CompileChoice:
    compiled: bool
    eager_seconds: float  # the nominal eager training time the choice was made on (0 when not estimated)
    reason: str  # one line for the run's log


def nominal_rate(device: torch.device, threads: int) -> float:
    """Floating-point operations per second an eager training step is assumed to reach on ``device``."""
    return CUDA_FLOPS if device.type == "cuda" else CPU_FLOPS_PER_THREAD * threads


def forward_flops(model: AnomalyModel, data: Examples) -> int:
    """Floating-point operations of one forward pass over one training example, counted, not timed, on a copy in
    eval mode: a first forward may initialise a model from its input (Glow's actnorm does), and batch norm cannot
    use one example's statistics. The random state is left as it was."""
    counted = copy.deepcopy(model).eval()
    devices = [data.inputs.device] if data.inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad(), FlopCounterMode(display=False) as counter:
        counted(data.example(0), data.features_ready)  # not data.batch: that sizes the reused batch buffer
    return int(counter.get_total_flops())


def choose(setting: bool | str, model: AnomalyModel, data: Examples, epochs: int, device: torch.device,
           threads: int) -> CompileChoice:
    """Whether to compile: ``setting`` when it is true or false; for ``auto``, whether the nominal eager time of all
    ``epochs`` reaches :data:`MIN_EAGER_SECONDS`."""
    if setting != "auto":
        return CompileChoice(bool(setting), 0.0, f"compile={str(setting).lower()}")
    flops = forward_flops(model, data)
    seconds = BACKWARD_FACTOR * flops * len(data) * epochs / nominal_rate(device, threads)
    compiled = seconds >= MIN_EAGER_SECONDS
    return CompileChoice(compiled, seconds, (
        f"compile=auto: {flops / 1e6:,.1f} MFLOP per example x {len(data):,} examples x {epochs} epochs is about "
        f"{seconds / 60:,.1f} min of eager training on {device.type} with {threads} threads: "
        + ("compiled" if compiled else f"eager (compiled from {MIN_EAGER_SECONDS / 60:.0f} min)")))
