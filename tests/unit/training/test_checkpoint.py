"""Checkpoints on a full disk, files that are not checkpoints, and a resume whose checkpoints are gone: one line
each, nothing half-written left, never torch's advice to load arbitrary pickles."""

from __future__ import annotations

import pickle

import pytest
import torch

from asdbench.errors import AsdbenchError
from asdbench.training import checkpoint
from asdbench.training.checkpoint import Identity, Slot

IDENTITY = Identity({"epochs": 3}, "abc", "data")


def test_a_full_disk_while_torch_writes_is_one_line_and_leaves_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "fan.pt"
    checkpoint.save(path, {"epoch": 1}, IDENTITY)

    def full_disk(obj, fh):  # what torch's zip writer raises when the disk fills mid-file
        fh.write(b"PK\x03\x04" + b"\0" * 1000)
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(checkpoint.torch, "save", full_disk)
    with pytest.raises(AsdbenchError) as caught:
        checkpoint.save(path, {"epoch": 2}, IDENTITY)
    assert str(caught.value).startswith(f"cannot write checkpoint {path}: ") and "\n" not in str(caught.value)
    assert "file write failed" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fan.pt"]  # no .partial left
    monkeypatch.undo()
    assert checkpoint.read(path)["epoch"] == 1


def test_a_file_with_pickled_objects_is_refused_without_advice_to_unpickle_it(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "asdbench-checkpoint", "hook": pickle.Pickler}, path)  # an object beyond tensors
    with pytest.raises(AsdbenchError) as caught:
        checkpoint.read(path)
    assert str(caught.value) == (f"{path} is not an asdbench checkpoint (it holds pickled objects beyond tensors and "
                                 "plain values, which are not loaded)")
    assert "weights_only" not in str(caught.value)


def test_a_resume_whose_checkpoint_is_gone_says_it_starts_over(tmp_path):
    import known_answer_plugins as known
    from asdbench.build import build_model
    from asdbench.config import resolve
    from asdbench.data.examples import Examples
    from asdbench.plugins import build_plugins
    from asdbench.progress import Reporter
    from asdbench.runtime import Runtime, resolve_runtime
    from asdbench.training.loop import settings_from, train

    class Noting(Reporter):
        def __init__(self) -> None:
            self.notes: list[str] = []

        def info(self, message: str) -> None:
            self.notes.append(message)

    plugins = build_plugins(extra={"known": (known.PACKAGE, known)})
    cfg = resolve_runtime(resolve(plugins, "peak-level", set_values={"epochs": 2}))
    model, _ = build_model(plugins, cfg, known.PeakLevel(16000, 100), (1,), 1)
    data = Examples(torch.linspace(0.1, 0.9, 16).unsqueeze(1), torch.zeros(16, dtype=torch.long), features_ready=True)
    reporter = Noting()
    kept = train(model, data, settings_from(cfg), Runtime.of(cfg), torch.Generator().manual_seed(0), reporter, "fan",
                 lambda epoch, stats: None, Slot(tmp_path / "gone" / "fan.pt", IDENTITY, resume=True))
    assert kept == 2 and any("Model 'fan': no checkpoint to resume from" in n and "trains from the start" in n
                             for n in reporter.notes)
