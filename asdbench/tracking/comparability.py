"""Which runs may be pooled into one row of a table: the comparability key.

Two runs belong to one "mean ± std over seeds" row only if they computed the same thing on
the same data. The key is the resolved config (device, precision and CPU threads as the run
resolved them) without the keys that cannot change a result, plus a fingerprint of the data the
run actually read. Every setting that changes numerics stays in: ``compile`` and
``channels_last`` (other kernels round differently: compiled and eager runs of one config gave
AUC 61.1 and 64.6 %; ``compile=auto`` is a function of the rest of the key,
:mod:`asdbench.training.compile_rule`), ``threads`` (fp32 sums in another order: 57.6 vs 60.4 %)
and the device type. Left out, and why:

- ``seed``: what a row varies on purpose;
- ``cache``: cached and freshly decoded inputs are identical (tested);
- ``checkpoint_every_s``: how often training state is saved, not what it is;
- ``threshold.*``: the decision threshold of a bundle, not a score or a metric;
- ``device``'s index (``cuda:0`` vs ``cuda:1``); its type stays in the key;
- ``dataset.root``, ``dataset.eval_labels``: paths; what they point to is in the data
  fingerprint (the clips, their labels and sizes), so a moved copy of a data set still matches.
"""

from __future__ import annotations

import json

from asdbench.config import RunConfig

EXECUTION_KEYS = frozenset({"seed", "cache", "checkpoint_every_s", "dataset.root",
                            "dataset.eval_labels", "threshold.rule", "threshold.q"})
DATA_KEY = "data"  # the data fingerprint's entry in the key
TAG = "asdbench.comparability"  # the MLflow tag holding the key, as JSON



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
