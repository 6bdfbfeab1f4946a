"""Which runs may be pooled into one row of a table: the comparability key.

Two runs belong to one "mean ± std over seeds" row only if they computed the same thing on
the same data. The key is the resolved config (device and precision as the run resolved
them) without the keys that cannot change a result, plus a fingerprint of the data the run
actually read. Left out, and why:

- ``seed``: what a row varies on purpose;
- ``cache``: cached and freshly decoded inputs are identical (tested);
- ``compile``, ``channels_last``: the same function computed by other kernels;
- ``checkpoint_every_s``: how often training state is saved, not what it is;
- ``threshold.*``: the decision threshold of a bundle, not a score or a metric;
- ``device``'s index (``cuda:0`` vs ``cuda:1``); its type stays in the key;
- ``dataset.root``, ``dataset.eval_labels``: paths; what they point to is in the data
  fingerprint (the clips, their labels and sizes), so a moved copy of a data set still matches.
"""

from __future__ import annotations

import hashlib
import json
import os

from asdbench.api import Clip
from asdbench.config import RunConfig

EXECUTION_KEYS = frozenset({"seed", "cache", "compile", "channels_last", "checkpoint_every_s", "dataset.root",
                            "dataset.eval_labels", "threshold.rule", "threshold.q"})
DATA_KEY = "data"  # the data fingerprint's entry in the key
TAG = "asdbench.comparability"  # the MLflow tag holding the key, as JSON


def data_fingerprint(dataset_name: str, train: list[Clip], test: list[Clip]) -> str:
    """A hash of the dataset's name and every clip a run uses (split, path under the data set's folder, type, ID,
    label, file size): the same files in another folder match; another protocol, subset or size does not."""
    clips = [*train, *test]
    base = os.path.commonpath([str(c.path.parent) for c in clips]) if clips else ""
    h = hashlib.sha256(dataset_name.encode())
    for c in sorted(clips, key=lambda c: (c.split, str(c.path))):
        size = c.path.stat().st_size if c.path.exists() else -1
        h.update(f"{c.split}\0{os.path.relpath(c.path, base)}\0{c.machine_type}\0{c.machine_id}\0{c.label}\0{size}\n".encode())
    return h.hexdigest()[:16]


def comparability_key(config: RunConfig, data: str) -> dict[str, str]:
    """The key of a run whose config is resolved for its machine; values as JSON text, so they compare exactly."""
    key = {k: json.dumps(v) for k, v in config.values.items() if k not in EXECUTION_KEYS and k != "device"}
    key["device"] = json.dumps(config["device"].split(":")[0])
    key[DATA_KEY] = json.dumps(data)
    return dict(sorted(key.items()))


def describe_difference(key: str, value: str | None) -> str:
    """``epochs=3``, ``precision=bf16``, ``data=3f2a9c1`` (a fingerprint, shortened): how a row label shows a key."""
    if value is None:
        return f"{key}=?"
    text = json.loads(value)
    if key == DATA_KEY:
        text = str(text)[:7]
    return f"{key}={text}"
