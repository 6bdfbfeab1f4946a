"""The GPU path, on a GPU: ``pytest -m cuda`` (skipped where torch sees no CUDA device; the CPU suite stays the
default). Every system end to end on the card, the GPU's scores against the CPU's, no host sync inside an
epoch, and the compiled step against the eager one. Nothing here needs MLflow."""

from __future__ import annotations

import math

import pytest
import torch

from asdbench.config import resolve
from asdbench.data.examples import Examples
from asdbench.data.plan import make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.training import loop as train_module
from asdbench.training.runner import execute

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (pytest -m cuda on a GPU)")]

TINY = {"dataset.size": "tiny", "epochs": 1, "batch_size": 16}


def _run(system: str, **values):
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, system, set_values={**TINY, **values}))
    return cfg, execute(plugins, make_plan(plugins, cfg), Reporter())


@pytest.mark.parametrize("system", sorted(e.name for e in build_plugins().registry("system")))
def test_every_system_trains_and_scores_on_the_gpu(system):
    cfg, result = _run(system, device="cuda")
    assert cfg["device"] == f"cuda:{torch.cuda.current_device()}"
    assert cfg["precision"] == ("bf16" if torch.cuda.is_bf16_supported() else "fp32")
    assert len(result.scores) == 48 and all(math.isfinite(s) for _, s in result.scores)
    assert {(t.machine_type, i.machine_id) for t in result.report.types for i in t.ids} == {
        ("fan", "00"), ("fan", "02"), ("valve", "00"), ("valve", "02")}


@pytest.mark.parametrize("system", ["dcase-ae", "stgram-mfn-cee"])
def test_gpu_scores_follow_the_cpu_scores_in_fp32(system):
    # Same seed, same initial weights and batches; the GPU's kernels (TF32 convolutions among them) differ only in
    # rounding, so after one epoch every score agrees to about a percent.
    values = {"epochs": 1, "precision": "fp32"}
    cpu = [s for _, s in _run(system, device="cpu", **values)[1].scores]
    gpu = [s for _, s in _run(system, device="cuda", **values)[1].scores]
    assert gpu == pytest.approx(cpu, rel=2e-2, abs=1e-3)


def test_no_host_sync_inside_an_epoch(monkeypatch):
    """Batches and steps run with CUDA's sync debug mode set to error: a host sync (an .item(), a copy from
    pageable memory) raises. The data set is resident on the GPU."""
    where: list[str] = []

    def strict(fn):
        def wrapped(*args, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return fn(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return wrapped

    real_batch = Examples.batch

    def batch(self, idx, device):
        where.append(self.inputs.device.type)
        return real_batch(self, idx, device)

    monkeypatch.setattr(Examples, "batch", strict(batch))
    monkeypatch.setattr(train_module, "train_step", strict(train_module.train_step))
    cfg, result = _run("stgram-mfn-cee", device="cuda", epochs=2)
    assert where[0] == "cuda"  # the first batch, a training batch, comes from GPU memory
    assert all(math.isfinite(s) for _, s in result.scores)


def test_a_compiled_gpu_step_matches_the_eager_step():
    from asdbench.training.step import Objective, train_step
    from support import tiny_model as _tiny_model

    def steps(objective_of):
        model = _tiny_model().cuda()
        torch.manual_seed(1)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = (torch.randn(4, 4000) * 0.1).cuda(), torch.tensor([0, 1, 2, 0]).cuda()
        objective = objective_of(model)
        return [train_step(model, optimizer, x, y, False, None, objective=objective)[0].item() for _ in range(2)]

    eager = steps(lambda m: None)
    compiled = steps(lambda m: Objective(m, compile=True, warn=pytest.fail))
    assert compiled[0] == pytest.approx(eager[0], rel=1e-4)
    assert compiled[1] == pytest.approx(eager[1], rel=1e-2)
