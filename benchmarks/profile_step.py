"""Where a system's training step spends its time, per setting: wall time per step, GPU kernel time per step
(torch.profiler), their ratio, and the top operators by kernel time.

    python benchmarks/profile_step.py --system stgram-mfn --device cuda --json profile.json
    python benchmarks/profile_step.py --system stgram-mfn --device cpu --batch-size 16 --settings eager,compiled

Each setting is the system's training step (``asdbench.scale.bench.step_fixture``: the step the runner takes, on a
batch already on the device) with one thing changed: memory format, precision, compilation, torch.compile's
CUDA-graph mode, or a fused Adam. All settings run in this one process, one after another, so their ratios
compare like with like. GPU kernel time far below the wall time means the host (Python, kernel launches,
syncs) is the bottleneck; close to it, the kernels are.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from asdbench.plugins import get_plugins
from asdbench.runtime import Runtime
from asdbench.scale.bench import VARIANTS, BenchSpec, _config, _sync, step_fixture

FUSED_ADAM = "fused-adam"
SETTINGS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    # name: (config overrides, extras)
    "eager": ({"compile": False}, ()),
    "eager-nchw": ({"compile": False, "channels_last": False}, ()),
    "eager-channels-last": ({"compile": False, "channels_last": True}, ()),
    "eager-fp32": ({"compile": False, "precision": "fp32"}, ()),
    "eager-fused-adam": ({"compile": False}, (FUSED_ADAM,)),
    "compiled": ({"compile": True}, ()),
    "compiled-nchw": ({"compile": True, "channels_last": False}, ()),
    "compiled-channels-last": ({"compile": True, "channels_last": True}, ()),
    "compiled-fused-adam": ({"compile": True}, (FUSED_ADAM,)),
    "compiled-cudagraphs": ({"compile": True}, (FUSED_ADAM, "reduce-overhead")),
    "plain": (VARIANTS["plain"], ()),
}


def _device_time_us(event) -> float:
    return getattr(event, "self_device_time_total", None) or getattr(event, "self_cuda_time_total", 0.0)


def measure(system: str, setting: str, spec: BenchSpec, steps: int, top: int) -> dict[str, Any]:
    overrides, extras = SETTINGS[setting]
    plugins = get_plugins()
    config = _config(plugins, system, Path("unused"), replace(spec, overrides={**spec.overrides, **overrides}),
                     "eager", 1)
    config = config.replace(**{k: v for k, v in overrides.items() if k in ("compile", "channels_last", "precision",
                                                                           "cache")})
    device = Runtime.of(config).device
    fused = (lambda m: torch.optim.Adam(m.parameters(), lr=config["lr"], weight_decay=config["weight_decay"],
                                        fused=True)) if FUSED_ADAM in extras else None
    mode = "reduce-overhead" if "reduce-overhead" in extras else None
    started = time.perf_counter()
    fixture = step_fixture(plugins, config, spec, device, optimizer=fused, compile_mode=mode)
    for _ in range(3):  # warm-up, compilation included
        fixture.step()
    _sync(device)
    warmup_s = time.perf_counter() - started
    start = time.perf_counter()
    for _ in range(steps):
        fixture.step()
    _sync(device)
    wall = (time.perf_counter() - start) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            fixture.step()
        _sync(device)
    events = prof.key_averages()
    if device.type == "cuda":
        # Each kernel's time appears twice: as the kernel's own event and as the self time of the operator that
        # launched it. The total counts kernels; the ranking names operators.
        kernel_us = sum(_device_time_us(e) for e in events if e.device_type == DeviceType.CUDA)
        ranked = sorted((e for e in events if e.device_type != DeviceType.CUDA), key=_device_time_us, reverse=True)[:top]
        top_ops = [{"op": e.key, "ms_per_step": round(_device_time_us(e) / 1000 / steps, 3),
                    "share": round(_device_time_us(e) / kernel_us, 3) if kernel_us else 0.0} for e in ranked]
    else:
        kernel_us = 0.0
        total = sum(e.self_cpu_time_total for e in events)
        ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        top_ops = [{"op": e.key, "ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 3),
                    "share": round(e.self_cpu_time_total / total, 3) if total else 0.0} for e in ranked]
    return {
        "system": system, "setting": setting, "device": str(device),
        "precision": config["precision"], "channels_last": config["channels_last"],
        "compiled": fixture.objective.compiled, "fused_adam": FUSED_ADAM in extras, "compile_mode": mode,
        "batch_size": config["batch_size"], "clip_seconds": spec.seconds,
        "warmup_s": round(warmup_s, 1), "wall_ms_per_step": round(wall * 1000, 2),
        "clips_per_s": round(fixture.per_call / wall, 1),
        "gpu_kernel_ms_per_step": round(kernel_us / 1000 / steps, 2) if kernel_us else None,
        "gpu_busy": round(kernel_us / 1000 / steps / (wall * 1000), 3) if kernel_us else None,
        "top_ops": top_ops,
    }


@click.command()
@click.option("--system", default="stgram-mfn", show_default=True)
@click.option("--settings", "names", default="eager,eager-nchw,compiled,compiled-nchw,compiled-fused-adam,compiled-cudagraphs",
              show_default=True, help=f"Comma-separated, from: {', '.join(SETTINGS)}.")
@click.option("--device", default="auto", show_default=True)
@click.option("--seconds", default=10.0, show_default=True, help="Clip length.")
@click.option("--batch-size", type=int, default=None, help="Default: 128 clips on GPU, 16 on CPU (as asdbench bench).")
@click.option("--steps", default=10, show_default=True, help="Timed steps, then as many profiled.")
@click.option("--top", default=8, show_default=True, help="Operators listed per setting.")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None)
def main(system: str, names: str, device: str, seconds: float, batch_size: int | None, steps: int, top: int,
         json_path: Path | None) -> None:
    spec = BenchSpec(seconds=seconds, batch_size=batch_size, device=device)
    rows = []
    for name in [n.strip() for n in names.split(",") if n.strip()]:
        if name not in SETTINGS:
            raise click.UsageError(f"unknown setting {name}; choose from: {', '.join(SETTINGS)}")
        row = measure(system, name, spec, steps, top)
        rows.append(row)
        busy = "-" if row["gpu_busy"] is None else f"{row['gpu_kernel_ms_per_step']} ms kernels ({row['gpu_busy']:.0%} busy)"
        click.echo(f"{system} {name}: {row['wall_ms_per_step']} ms/step, {row['clips_per_s']} clips/s, {busy}, "
                   f"warm-up {row['warmup_s']} s")
        for op in row["top_ops"]:
            click.echo(f"    {op['share']:6.1%}  {op['ms_per_step']:8.3f} ms  {op['op'][:90]}")
        if json_path:  # after each setting: a run cut short keeps what it measured
            json_path.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
