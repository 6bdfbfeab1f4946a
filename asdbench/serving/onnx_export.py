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
import re
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


class _Quiet:
    """torch prints the traced graph and its steps, and warns at length: kept out of the terminal."""

    def __enter__(self) -> None:
        self._log = logging.getLogger("torch")
        self._level, self._log.level = self._log.level, logging.ERROR
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        self._stack.enter_context(torch.no_grad())
        output = io.StringIO()
        self._stack.enter_context(contextlib.redirect_stdout(output))
        self._stack.enter_context(contextlib.redirect_stderr(output))

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._log.setLevel(self._level)


def _to_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], names: list[str], path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    with _Quiet():
        torch.onnx.export(module, example, str(path), input_names=names, output_names=["score"],
                          dynamic_shapes=tuple({0: batch} for _ in example), opset_version=OPSET, dynamo=True,
                          verbose=False, external_data=False)


def _reason(exc: BaseException) -> str:
    """The first line of what torch found, or for an operation ONNX has no translation of, that operation."""
    cause = exc.__cause__ or exc  # torch.onnx wraps what torch.export found
    text = str(cause).strip()
    operation = re.search(r"target=torch\.ops\.([\w.]+)", text)
    if operation:
        return f"torch.onnx has no translation of {operation.group(1)}"
    return f"{type(cause).__name__}: {text.splitlines()[0][:200]}"


def _part_that_fails(module: WaveToScore, example: torch.Tensor, exc: BaseException, folder: Path) -> list[str]:
    """Which of frontend, backbone (with its loss head) and scorer stops the export. The frontend is exported on
    its own; past it, the deepest frame of the error that runs a method of a part's object names the part."""
    probe = folder / ".frontend-probe.onnx"
    try:
        _to_onnx(_Frontend(module.network.frontend), (example,), ["waveform"], probe)
    except Exception:  # noqa: BLE001 - the frontend alone fails: it is the part
        return ["frontend"]
    finally:
        probe.unlink(missing_ok=True)
    owner = {id(m): kind for kind, part in (("backbone", module.network.backbone), ("backbone", module.network.loss))
             for m in part.modules()}
    owner[id(module.scorer)] = "scorer"
    found = None
    while exc is not None:
        tb = exc.__traceback__
        while tb is not None:
            found = owner.get(id(tb.tb_frame.f_locals.get("self")), found)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    return [found] if found else ["backbone", "scorer"]


class _Frontend(nn.Module):
    def __init__(self, frontend: nn.Module) -> None:
        super().__init__()
        self.frontend = frontend

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.frontend(waveform)


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
        path = folder / f"{slug}.onnx"
        try:
            _to_onnx(module, example, ["waveform", "class_index"], path)
        except Exception as exc:  # noqa: BLE001 - torch.export and the ONNX translation raise many types
            path.unlink(missing_ok=True)
            parts = _part_that_fails(module, example[0], exc, folder)
            named = " or ".join(f"{kind} '{trained.config.component(kind)}'" for kind in parts)
            raise AsdbenchError(f"{trained.system} cannot be exported to ONNX: its {named} does not trace "
                                f"({_reason(exc)})") from None
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
