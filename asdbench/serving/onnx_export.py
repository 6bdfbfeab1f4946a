"""A trained model as ONNX graphs from the waveform to the anomaly score, to score where neither Python's torch nor
asdbench's plugins are installed (an edge box, a C++ or Java service through ONNX Runtime).

Each model of the bundle becomes one graph: inputs ``waveform`` (``(batch, samples)`` float32 at the model's rate,
the model's clip length) and ``class_index`` (``(batch,)`` int64: the class of the machine each clip is of, listed per
machine in the manifest), output ``score`` (``(batch,)`` float32), the frontend (STFT, log-mel, Tgram), the backbone
and the scorer traced together by ``torch.export`` (``torch.onnx.export(dynamo=True)``), a fitted scorer's state
as constants. The manifest beside the graphs keeps what scoring needs besides: sample rate, clip lengths, channel
rule and padding, machines and their thresholds (``manifest.json``, format ``asdbench-onnx``).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asdbench.errors import AsdbenchError

FORMAT = "asdbench-onnx"
FORMAT_VERSION = 1
OPSET = 18


class WaveToScore(nn.Module):
    """The scoring path of :meth:`asdbench.serving.model.TrainedModel.score_items` for one model, as one module."""

    def __init__(self, network: nn.Module, scorer: Any, framed: bool) -> None:
        super().__init__()
        self.network, self.scorer, self.framed = network, scorer, framed

    def forward(self, waveform: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
        features = self.network.frontend(waveform)
        output = self.network(features, True, self.framed)
        return self.scorer.score(output, class_index, self.network.loss).float()


def export_onnx(trained, folder: Path) -> dict[str, Any]:
    """``folder/<model>.onnx`` per model and ``folder/manifest.json``; an error naming the system, the model and
    the part that cannot be exported."""
    if trained.microphones != 1:
        raise AsdbenchError(f"{trained.system} reads two microphones (dataset.channel=both): ONNX export takes one "
                            "signal per clip")
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for slug, model in trained._models.items():
        classes = {}
        for machine in trained.machines:
            if trained._owner[machine] != slug:
                continue
            matching = [i for i, c in enumerate(model.classes) if c[:2] == machine]
            if len(matching) != 1:
                raise AsdbenchError(f"{trained.system}: model '{slug}' scores {trained.name(machine)} against "
                                    f"{len(matching)} classes (dataset.classes=attribute); ONNX export takes one class "
                                    "per machine")
            classes[trained.name(machine)] = matching[0]
        module = WaveToScore(model.network, model.scorer, trained.framed).eval()
        example = (torch.zeros(2, model.num_samples), torch.zeros(2, dtype=torch.long))
        batch = torch.export.Dim("batch", min=1)
        path = folder / f"{slug}.onnx"
        exporter_output = io.StringIO()  # torch prints the traced graph and its steps: kept out of the terminal
        torch_log = logging.getLogger("torch")
        level, torch_log.level = torch_log.level, logging.ERROR
        try:
            with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(exporter_output), \
                    contextlib.redirect_stderr(exporter_output):
                warnings.simplefilter("ignore")
                torch.onnx.export(module, example, str(path), input_names=["waveform", "class_index"],
                                  output_names=["score"], dynamic_shapes=({0: batch}, {0: batch}), opset_version=OPSET,
                                  dynamo=True, verbose=False, external_data=False)
        except Exception as exc:  # noqa: BLE001 - torch.export and the ONNX translation raise many types
            path.unlink(missing_ok=True)
            part = " and ".join(f"{kind} '{trained.config.component(kind)}'" for kind in ("frontend", "backbone", "scorer"))
            cause = exc.__cause__ or exc  # torch.onnx wraps what torch.export found
            raise AsdbenchError(f"{trained.system} cannot be exported to ONNX: its {part} do not trace "
                                f"({type(cause).__name__}: {str(cause).strip().splitlines()[0][:200]})") from None
        finally:
            torch_log.setLevel(level)
        models[slug] = {"graph": path.name, "num_samples": model.num_samples, "classes": classes}
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "system": trained.system,
        "run_id": trained.manifest.get("run_id", ""), "sample_rate": trained.sample_rate, "channel": trained.channel,
        "pad": trained.config["pad"], "unit": trained.unit, "opset": OPSET, "models": models,
        "thresholds": {trained.name(m): {"value": trained.thresholds[m], "train_scores": trained.normal_scores[m]}
                       for m in trained.machines},
        "packages": {"torch": torch.__version__},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
