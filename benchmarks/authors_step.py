"""STgram-MFN's training step beside the authors' own, in one process: clips/s and ratios.

    git clone https://github.com/liuyoude/STgram-MFN /tmp/stgram && python benchmarks/authors_step.py --authors-code /tmp/stgram

The authors' network is imported unmodified from their ``model.py`` (``MelMobileFacenet``, paper-era code: plain
``nn.Conv2d`` layers, fp32, NCHW) and trained as their trainer does (cross-entropy head ``fc_out``, Adam); its
log-mel input is computed beforehand, as their data loader does, so their step is the network alone. Ours is
``stgram-mfn-cee`` (the same network and head; log-mel computed inside the step), as ``asdbench bench`` times it,
in four settings: ``plain`` (fp32, NCHW, eager), ``eager-fp32`` (what a CPU without native bf16 runs by default),
``eager`` (the default where bf16 is native) and ``compiled`` (what ``compile=auto`` picks for a long run).
The authors' step is timed first (after untimed warm-up steps) and last; the ratios use the mean of the two.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import click
import torch
import torchaudio

from asdbench.plugins import get_plugins
from asdbench.runtime import Runtime
from asdbench.scale.bench import SAMPLE_RATE, BenchSpec, _config, _rate, step_fixture

OURS = {
    "plain": {"precision": "fp32", "channels_last": False, "compile": False},
    "eager-fp32": {"precision": "fp32", "compile": False},
    "eager": {"compile": False},
    "compiled": {"compile": True},
}


def authors_step(code: Path, batch: int, seconds: float, device: torch.device):
    spec = importlib.util.spec_from_file_location("authors_model", code / "model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["authors_model"] = module
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    net = module.MelMobileFacenet(num_class=41).to(device).train()  # prints "1" (their init_weight)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    criterion = torch.nn.CrossEntropyLoss()
    n = int(round(seconds * SAMPLE_RATE))
    wave = torch.randn(batch, n, device=device) * 0.1
    mel = torchaudio.transforms.MelSpectrogram(SAMPLE_RATE, n_fft=1024, win_length=1024, hop_length=512,
                                               n_mels=128, power=2.0).to(device)
    x_mel = (20.0 / 2.0 * torch.log10(mel(wave) + 1e-8)).unsqueeze(1)  # their log-mel, (B, 1, 128, 313)
    x_wav, y = wave.unsqueeze(1), torch.arange(batch, device=device) % 41

    def step() -> None:
        optimizer.zero_grad()
        out, _ = net(x_wav, x_mel)
        criterion(out, y).backward()
        optimizer.step()

    return step


@click.command()
@click.option("--authors-code", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="A checkout of the authors' repository (its model.py).")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--seconds", default=10.0, show_default=True, help="Clip length (their network needs 10 s).")
@click.option("--steps", default=5, show_default=True)
@click.option("--min-seconds", default=10.0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), default=None)
def main(authors_code: Path, batch_size: int, seconds: float, steps: int, min_seconds: float, device: str,
         json_path: Path | None) -> None:
    spec = BenchSpec(seconds=seconds, batch_size=batch_size, steps=steps, min_seconds=min_seconds, warmup=2,
                     device=device)
    plugins = get_plugins()
    rows: dict[str, float] = {}
    dev = torch.device(device)
    step = authors_step(authors_code, batch_size, seconds, dev)
    # A fresh process runs its first seconds of steps up to 2x slower (allocator, oneDNN, thread pool): untimed steps
    # first, so that the first row timed is not penalised (without them it measured 4.1 against 5.7 clips/s at the end).
    _rate(dev, batch_size, step, spec)
    rows["authors (first)"] = _rate(dev, batch_size, step, spec)
    click.echo(f"authors (first): {rows['authors (first)']:.2f} clips/s")
    for name, overrides in OURS.items():
        config = _config(plugins, "stgram-mfn-cee", Path("unused"), spec, "eager", 1).replace(**overrides)
        fixture = step_fixture(plugins, config, spec, Runtime.of(config).device)
        rows[name] = _rate(dev, fixture.per_call, fixture.step, spec)
        click.echo(f"{name} ({config['precision']}): {rows[name]:.2f} clips/s")
    rows["authors (last)"] = _rate(dev, batch_size, authors_step(authors_code, batch_size, seconds, dev), spec)
    click.echo(f"authors (last): {rows['authors (last)']:.2f} clips/s")
    authors = (rows["authors (first)"] + rows["authors (last)"]) / 2
    click.echo("\n| step | clips/s | x authors | x plain |\n|---|---:|---:|---:|")
    for name, rate in rows.items():
        click.echo(f"| {name} | {rate:.2f} | {rate / authors:.2f} | {rate / rows['plain']:.2f} |")
    if json_path:
        json_path.write_text(json.dumps({"batch_size": batch_size, "seconds": seconds, "threads": torch.get_num_threads(),
                                         "torch": torch.__version__, "clips_per_s": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
