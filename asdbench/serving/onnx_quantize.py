"""INT8 post-training quantisation of an exported model (:mod:`asdbench.serving.onnx_export`) with ONNX Runtime's
static quantiser: the backbone's convolutions and matrix products get INT8 weights (per output channel) and INT8
activations, whose ranges are calibrated on normal recordings of the machines the model decides for (QDQ format,
which every ONNX runtime reads). The frontend (STFT, filter banks, Tgram) and the scorer stay float: they are cheap,
and the score's scale is what the thresholds were fitted on. The thresholds are kept as they are; ``calibrate`` a
bundle instead where the quantised scores drift.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from asdbench.errors import AsdbenchError
from asdbench.serving.decision import DEFAULT_BATCH
from asdbench.serving.onnx_model import OnnxModel

QUANTISED = ("Conv", "MatMul", "Gemm")
BACKBONE_SCOPE = "network.backbone"  # the module path torch.onnx records of each node (pkg.torch.onnx.name_scopes)


def _backbone_nodes(graph_path: Path) -> list[str]:
    import onnx

    nodes = []
    for node in onnx.load(str(graph_path), load_external_data=False).graph.node:
        scopes = {p.key: p.value for p in node.metadata_props}.get("pkg.torch.onnx.name_scopes", "")
        if node.op_type in QUANTISED and f"'{BACKBONE_SCOPE}" in scopes:
            nodes.append(node.name)
    return nodes


class _Calibration:
    """ONNX Runtime's CalibrationDataReader: the model's inputs, a batch at a time, from the recordings."""

    def __init__(self, batches: Iterator[dict[str, np.ndarray]]) -> None:
        self._batches = batches

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def _batches(model: OnnxModel, paths: Sequence[Path]) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(paths), DEFAULT_BATCH):
        chunk = paths[start: start + DEFAULT_BATCH]
        machines = [model.machine_of(p) for p in chunk]
        yield model.inputs([model.read(p, m) for p, m in zip(chunk, machines)], machines)


def check_calibration(model, paths: Sequence[Path], source: Path) -> list[tuple[str, str]]:
    """The machine of each recording (named as for scoring), for a model (a bundle's or an export's) that must find
    a recording of each of its machines: an error before anything is exported or quantised otherwise."""
    machines = [model.machine_of(p) for p in paths]
    missing = sorted(model.name(m) for m in set(model.machines) - set(machines))
    if missing:
        raise AsdbenchError(f"{source} holds no recording of {', '.join(missing)}: INT8 calibration needs normal "
                            "recordings of every machine the model decides for")
    return machines


def quantize_int8(folder: Path, paths: Sequence[Path], source: Path) -> dict:
    """Each graph of the exported ``folder`` replaced by its INT8 version, calibrated on ``paths`` (normal WAVs from
    ``source``, each of a machine the model decides for); the manifest records the calibration."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = OnnxModel(folder)
    by_model: dict[str, list[Path]] = {}
    for path, machine in zip(paths, check_calibration(model, paths, source)):
        by_model.setdefault(model.owner(machine), []).append(path)
    manifest = model.manifest
    for slug, entry in manifest["models"].items():
        graph = folder / entry["graph"]
        nodes = _backbone_nodes(graph)
        if not nodes:
            raise AsdbenchError(f"{manifest['system']}: the backbone of model '{slug}' has no convolution or matrix "
                                "product to quantise")
        quantised = graph.with_name(f".{graph.name}.int8")
        logging.disable(logging.WARNING)  # the quantiser advises shape pre-processing, which the STFT's graph fails
        try:
            quantize_static(str(graph), str(quantised), _Calibration(_batches(model, by_model[slug])),
                            quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=nodes,
                            op_types_to_quantize=list(QUANTISED), calibrate_method=CalibrationMethod.MinMax)
        except Exception as exc:  # noqa: BLE001 - the quantiser raises many types
            quantised.unlink(missing_ok=True)
            raise AsdbenchError(f"INT8 quantisation of {manifest['system']} model '{slug}' failed "
                                f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:200]})") from None
        finally:
            logging.disable(logging.NOTSET)
        quantised.replace(graph)
        entry["int8"] = {"nodes": len(nodes), "calibration_files": len(by_model[slug])}
    manifest["quantization"] = {"format": "int8-qdq", "calibration": str(source), "method": "minmax",
                                "scope": BACKBONE_SCOPE}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
