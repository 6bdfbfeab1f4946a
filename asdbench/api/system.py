"""A system is data: which plugin fills each slot, and the defaults that make the recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SystemSpec:
    """A named recipe, e.g. ``dcase-ae`` or ``stgram-mfn``.

    ``defaults`` uses the same keys as ``--set``: core keys (``epochs``, ``lr``...)
    and component parameters as ``<kind>.<param>`` (``frontend.n_mels``). Anything
    here can be overridden from a TOML file or the command line.
    """

    frontend: str
    backbone: str
    loss: str
    scorer: str
    defaults: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
