"""Throughput of systems, end to end and against the model-only bound (``asdbench bench``).

For each system and variant it writes generated clips in the DCASE 2020 Task 2 layout
and runs the real runner on them (decoding, caches, features, training epochs with
checkpoints, scoring), timing each phase; then it times the same training step on tensors
already in memory, the *model-only bound*. End-to-end over bound is what the data path
costs. Variants: ``plain`` (fp32, NCHW, eager, no caches: the step as a plain PyTorch
script runs it), ``eager`` (the system's settings, not compiled: what a short run does),
``compiled`` (the system's settings compiled: what ``compile=auto`` chooses for a run whose
epochs would take 5 minutes or more, the paper protocol among them). Every figure is measured in this one process, so ratios between rows
compare like with like.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asdbench.audio import write_wav
from asdbench.build import build_model, count_parameters, instantiate
from asdbench.config import RunConfig, resolve
from asdbench.data.examples import FEATURE_BATCH
from asdbench.data.plan import make_plan
from asdbench.errors import AsdbenchError
from asdbench.plugins import Plugins
from asdbench.progress import Reporter
from asdbench.runtime import Runtime, channels_last_for, describe_device, prepare, resolve_runtime, seed_everything
from asdbench.scale.bench_spec import VARIANTS, BenchSpec
from asdbench.training.loop import settings_from
from asdbench.training.mixup import Mixer
from asdbench.training.runner import execute
from asdbench.training.step import Objective, make_optimizer, train_step

SAMPLE_RATE = 16000
MACHINE_IDS = ("00", "02", "04", "06")
def write_clips(root: Path, train: int, test: int, seconds: float, seed: int = 0) -> Path:
    """Noise-and-hum WAVs named as in DCASE 2020 Task 2 (``fan/train/normal_id_00_00000000.wav``), four
    machine IDs; test clips alternate normal and anomaly per ID. The content only has to decode."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE
    for split, count in (("train", train), ("test", test)):
        folder = root / "fan" / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            mid = MACHINE_IDS[i % len(MACHINE_IDS)]
            label = "anomaly" if split == "test" and (i // len(MACHINE_IDS)) % 2 else "normal"
            wave = 0.05 * rng.standard_normal(n) + 0.1 * np.sin(2 * np.pi * (100 + 10 * int(mid)) * t)
            write_wav(folder / f"{label}_id_{mid}_{i:08d}.wav", wave.astype(np.float32), SAMPLE_RATE)
    return root


class _Timings(Reporter):
    """A silent reporter that keeps how long each task of the runner took, and its messages."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float]] = []
        self.messages: list[str] = []

    @contextlib.contextmanager
    def task(self, description: str, total: int) -> Iterator:
        start = time.perf_counter()
        with super().task(description, total) as step:
            yield step
        self.spans.append((description, time.perf_counter() - start))

    def info(self, message: str) -> None:
        self.messages.append(message)

    def seconds(self, *prefixes: str) -> float:
        return sum(s for d, s in self.spans if d.startswith(prefixes))


@contextlib.contextmanager
def _cache_at(folder: Path) -> Iterator[None]:
    """Point asdbench's cache at ``folder``: the benchmark starts cold and leaves the user's cache alone."""
    old = os.environ.get("ASDBENCH_CACHE")
    os.environ["ASDBENCH_CACHE"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("ASDBENCH_CACHE", None)
        else:
            os.environ["ASDBENCH_CACHE"] = old


class PeakMemory:
    """Peak memory of one measurement: CUDA max allocated on a GPU, else the process's peak RSS,
    reset before each measurement where Linux allows it (``/proc/self/clear_refs``)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.kind = "cuda_max_allocated" if device.type == "cuda" else "process_peak_rss"

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")

    def mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run_for(device: torch.device, fn: Callable[[], object], calls: int, seconds: float, chunk: int) -> tuple[int, float]:
    """Call ``fn`` in chunks of ``chunk`` (one device sync per chunk) until at least ``calls`` calls and
    ``seconds`` have passed; returns the calls made and their seconds."""
    done, elapsed = 0, 0.0
    while done < calls or elapsed < seconds:
        _sync(device)
        start = time.perf_counter()
        for _ in range(chunk):
            fn()
        _sync(device)
        elapsed += time.perf_counter() - start
        done += chunk
    return done, elapsed


def _rate(device: torch.device, per_call: float, fn: Callable[[], object], spec: BenchSpec) -> float:
    """Units per second of ``fn`` (``per_call`` units a call), after a warm-up of ``spec.warmup`` calls and
    ``spec.min_seconds``, timed over at least ``spec.steps`` calls and ``spec.min_seconds``."""
    _run_for(device, fn, spec.warmup, spec.min_seconds, 1)
    calls, elapsed = _run_for(device, fn, spec.steps, spec.min_seconds, spec.steps)
    return calls * per_call / elapsed


def _config(plugins: Plugins, system: str, root: Path, spec: BenchSpec, variant: str, epochs: int) -> RunConfig:
    values: dict[str, Any] = {"dataset": "dcase2020t2", "dataset.root": str(root), "epochs": epochs,
                              "device": spec.device, "select": "last", "clip_seconds": spec.seconds}
    base = resolve_runtime(resolve(plugins, system, set_values={**values, **spec.overrides}))
    if spec.batch_size is not None:
        values["batch_size"] = spec.batch_size
    elif base["train_unit"] == "clip":
        values["batch_size"] = 128 if Runtime.of(base).device.type == "cuda" else 16
    return resolve_runtime(resolve(plugins, system, set_values={**values, **spec.overrides, **VARIANTS[variant]}))


def _end_to_end(plugins: Plugins, config: RunConfig, checkpoints: Path) -> tuple[_Timings, int, float, int, int]:
    """A real run. Returns its timings; the clip passes of the epochs after each model's first (which warms
    up and compiles), their seconds and number; and the training clips."""
    timings, ends = _Timings(), {}
    plan = make_plan(plugins, config)
    execute(plugins, plan, timings, lambda group, epoch, stats: ends.setdefault(group, []).append(time.perf_counter()),
            checkpoints)
    clips = {g.name: len(g.train) for g in plan.groups}
    dataset = plan.dataset
    passes = sum(clips[g] * (len(t) - 1) for g, t in ends.items())
    seconds = sum(t[-1] - t[0] for t in ends.values())
    return timings, passes, seconds, sum(len(t) - 1 for t in ends.values()), len(dataset.clips("train"))


@dataclass
class StepFixture:
    """A system's training step on tensors already on the device: what the model-only bound times, and what
    ``benchmarks/profile_step.py`` profiles."""

    step: Callable[[], None]
    per_call: float  # clips per call
    frontend: torch.nn.Module
    model: torch.nn.Module
    scorer: Any
    objective: Objective
    waves: torch.Tensor
    features: torch.Tensor
    ready: bool
    frames: bool


def step_fixture(plugins: Plugins, config: RunConfig, spec: BenchSpec, device: torch.device,
                 optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer] | None = None,
                 compile_mode: str | None = None) -> StepFixture:
    """The model, a batch and the step of ``config`` on ``device``; ``optimizer`` and ``compile_mode`` replace
    the run's Adam and ``torch.compile`` mode, for measuring alternatives."""
    seed_everything(0)
    num_samples = int(round(spec.seconds * SAMPLE_RATE))
    settings = settings_from(config)
    frontend = instantiate(plugins, config, "frontend", sample_rate=SAMPLE_RATE, num_samples=num_samples)
    frames = config["train_unit"] == "frame"
    batch = settings.batch_size
    probe = frontend.output_shape(num_samples)
    clips = max(math.ceil(batch / probe[0]) if frames else batch, FEATURE_BATCH)
    waves = (torch.randn(clips, num_samples) * 0.1).to(device)

    frontend.to(device).eval()
    with torch.no_grad():
        features = waves if frontend.has_weights else frontend(waves)
    per_clip = features.shape[1] if frames else 1
    examples = features.flatten(0, 1) if frames else features
    input_shape = tuple(examples.shape[1:]) if not frontend.has_weights else probe
    x = examples[:batch]
    y = torch.arange(len(x), device=device) % len(MACHINE_IDS)

    model, scorer = build_model(plugins, config, frontend, input_shape, len(MACHINE_IDS))
    prepare(model, device, settings.channels_last, compiled=settings.compile is True)
    amp = Runtime.of(config).amp
    opt = optimizer(model) if optimizer else make_optimizer(model, settings.lr, settings.weight_decay,
                                                            settings.optimizer)
    mixer = Mixer(settings.mixup, settings.mixup_alpha, settings.mixup_partner)
    mixer.start_epoch(torch.Generator().manual_seed(0))
    objective = Objective(model, settings.compile is True, mode=compile_mode)
    ready = not frontend.has_weights
    model.train()

    def step() -> None:
        train_step(model, opt, x, y, ready, amp, settings.grad_clip, objective, mix=mixer.draw(len(x), device))

    return StepFixture(step, len(x) / per_clip, frontend, model, scorer, objective, waves, features, ready, frames)


def _model_only(plugins: Plugins, config: RunConfig, spec: BenchSpec, device: torch.device) -> dict[str, Any]:
    """Frontend, training-step and inference throughput on tensors already on the device."""
    f = step_fixture(plugins, config, spec, device)
    train_rate = _rate(device, f.per_call, f.step, spec)

    f.model.eval()  # the frontend is timed after training steps: before any, a fresh process ran it 2x slower
    with torch.no_grad():
        head = f.waves[:FEATURE_BATCH]
        frontend_rate = _rate(device, len(head), lambda: f.frontend(head), spec)
    infer_x = f.features[:FEATURE_BATCH]
    infer_y = torch.arange(len(infer_x), device=device) % len(MACHINE_IDS)
    with torch.no_grad():  # float32, as runs score
        def infer() -> None:
            f.scorer.score(f.model(infer_x, f.ready, f.frames), infer_y, f.model.loss)

        infer_rate = _rate(device, len(infer_x), infer, spec)
    return {"frontend": frontend_rate, "train": train_rate, "infer": infer_rate, "n_params": count_parameters(f.model),
            "compiled": f.objective.compiled}


def measure(plugins: Plugins, system: str, variant: str, spec: BenchSpec, root: Path, workdir: Path) -> dict[str, Any]:
    """One row: end-to-end phases of a real run, and the model-only bound of its training step."""
    if spec.epochs is not None and spec.epochs < 2:
        raise AsdbenchError("bench needs at least 2 epochs: the first is warm-up and is not timed")
    config = _config(plugins, system, root, spec, variant, 1)
    device = Runtime.of(config).device
    memory = PeakMemory(device)
    memory.reset()
    bound = _model_only(plugins, config, spec, device)
    peak = memory.mb()
    epochs = spec.epochs or 1 + max(2, math.ceil(spec.e2e_seconds * bound["train"] / spec.clips))
    memory.reset()
    timings, passes, seconds, epochs_timed, train_clips = _end_to_end(plugins, config.replace(epochs=epochs),
                                                                       workdir / "checkpoints")
    e2e_rate = passes / seconds
    peak = max(peak, memory.mb())
    read_warm = None
    if config["cache"]:  # the same data again: what every later run of any system pays for reading
        warm = _end_to_end(plugins, config.replace(compile=False), workdir / "checkpoints")[0]
        read_warm = warm.seconds("Reading", "Features")
    compile_failed = any("torch.compile failed" in m for m in timings.messages)
    return {
        "system": system,
        "variant": variant,
        "device": describe_device(device),
        "precision": config["precision"],
        "memory_format": "channels_last" if channels_last_for(config["channels_last"], device, config["compile"] is True)
        else "nchw",
        "compiled": bool(config["compile"]) and bound["compiled"] and not compile_failed,
        "cache": bool(config["cache"]),
        "clip_seconds": spec.seconds,
        "batch_size": config["batch_size"],
        "train_unit": config["train_unit"],
        "train_clips": train_clips,
        "epochs_timed": epochs_timed,
        "n_params": bound["n_params"],
        "read_s": round(timings.seconds("Reading", "Features"), 3),
        "read_warm_s": None if read_warm is None else round(read_warm, 3),
        "frontend_clips_per_s": round(bound["frontend"], 2),
        "train_clips_per_s": round(e2e_rate, 2),
        "bound_train_clips_per_s": round(bound["train"], 2),
        "e2e_over_bound": round(e2e_rate / bound["train"], 3),
        "infer_clips_per_s": round(bound["infer"], 2),
        "peak_memory_mb": round(peak, 1),
        "peak_memory_kind": memory.kind,
        "paper_protocol_hours": round(spec.paper_clips * spec.paper_epochs / e2e_rate / 3600, 2),
    }


def run_bench(plugins: Plugins, systems: list[str], variants: list[str], spec: BenchSpec,
              on_row: Callable[[dict[str, Any]], None] = lambda row: None) -> list[dict[str, Any]]:
    """Every (system, variant) row; ``train_speedup_vs_plain`` where the plain variant was measured too."""
    if not systems or not variants:
        raise AsdbenchError("bench needs at least one system and one variant")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise AsdbenchError(f"unknown variant(s) {', '.join(unknown)}; choose from: {', '.join(VARIANTS)}")
    for system in systems:
        plugins.registry("system").get(system)  # an unknown name fails here, before any data is written
    variants = [v for v in VARIANTS if v in variants]  # plain first: the rows after it get their speedup
    rows = []
    with tempfile.TemporaryDirectory(prefix="asdbench-bench-") as tmp:
        work = Path(tmp)
        root = write_clips(work / "data", spec.clips, spec.test_clips, spec.seconds)
        with _cache_at(work / "cache"):
            # A fresh process runs its first seconds of steps up to 2x slower (allocator, oneDNN, thread pool):
            # one untimed pass of the first row's model-only timings, so that the first row is not penalised.
            first = _config(plugins, systems[0], root, spec, variants[0], 1)
            _model_only(plugins, first, spec, Runtime.of(first).device)
            for system in systems:
                plain = None
                for variant in variants:
                    row = measure(plugins, system, variant, spec, root, work)
                    if variant == "plain":
                        plain = row
                    if plain is not None:
                        row["train_speedup_vs_plain"] = round(row["train_clips_per_s"] / plain["train_clips_per_s"], 2)
                        row["bound_speedup_vs_plain"] = round(
                            row["bound_train_clips_per_s"] / plain["bound_train_clips_per_s"], 2)
                    rows.append(row)
                    on_row(row)
    return rows
