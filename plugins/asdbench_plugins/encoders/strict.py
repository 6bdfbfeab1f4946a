"""Strict loading of published weights: every key of the file used, every weight of the network given, shapes
equal; what does not fit is named in one line (BEATs' checkpoints, transformers' folders)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from asdbench.errors import AsdbenchError


def key_problems(missing: Iterable, unexpected: Iterable, wrong: Iterable) -> str:
    """'' where every key fits, else e.g. ``missing 1 (a); unexpected 2 (b, c)``: at most four names of each."""
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        names = sorted(map(str, keys))
        if names:
            problems.append(f"{label} {len(names)} ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})")
    return "; ".join(problems)


def load_strictly(module: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """``weights`` into ``module`` when they fit it exactly (see :func:`key_problems`), else one line."""
    expected = module.state_dict()
    wrong = [k for k in set(expected) & set(weights) if tuple(expected[k].shape) != tuple(weights[k].shape)]
    problems = key_problems(set(expected) - set(weights), set(weights) - set(expected), wrong)
    if problems:
        raise AsdbenchError(f"{source} does not fit the network its own cfg describes: {problems}")
    module.load_state_dict(weights)
