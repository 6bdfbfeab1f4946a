"""The comparability key: what may be pooled into one row. Settings that change numerics split rows."""

from __future__ import annotations

import json

import pytest
import torch

from asdbench.config import resolve
from asdbench.plugins import build_plugins
from asdbench.runtime import resolve_runtime
from asdbench.tracking.comparability import comparability_key


def _key(**values) -> dict[str, str]:
    plugins = build_plugins()
    return comparability_key(resolve_runtime(resolve(plugins, "dcase-ae", set_values={"device": "cpu", **values})),
                             "fingerprint")


def test_compiled_eager_thread_counts_and_memory_formats_are_never_pooled():
    """Compiled and eager runs of one config gave AUC 61.1 and 64.6 %, 1 and 2 threads 57.6 and 60.4 %: a row
    that pooled them would average two different computations."""
    base = _key(threads=2)
    assert base["threads"] == "2" and base["compile"] == '"auto"' and base["channels_last"] == '"auto"'
    for values in ({"threads": 1}, {"compile": True}, {"compile": False}, {"channels_last": False}):
        other = _key(**{"threads": 2, **values})
        assert [k for k in base if base[k] != other[k]] == list(values)
    # what cannot change a number stays out: the seed, the cache, how often checkpoints are written
    assert _key(threads=2, seed=5, cache=False, checkpoint_every_s=0.0) == base


def test_threads_auto_is_recorded_as_the_count_this_process_computes_with(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    config = resolve_runtime(resolve(build_plugins(), "dcase-ae", set_values={}))
    assert config["threads"] == 3 and json.loads(_key()["threads"]) == 3
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(Exception, match="threads="):
            resolve(build_plugins(), "dcase-ae", set_values={"threads": bad})
