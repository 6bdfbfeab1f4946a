"""The plugin contract: one ``register_<kind>(register)`` hook per plugin kind.

A plugin module implements any of these with ``@asdbench.hookimpl`` and calls
``register(name, factory, description=None)`` once per thing it provides. The host
passes the callback (as llm and datasette do) so it can record which package
registered each name and refuse duplicates with a message naming both packages.
See CONTRIBUTING.md for the factory signature each kind must follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    import click

hookspec = pluggy.HookspecMarker("asdbench")
hookimpl = pluggy.HookimplMarker("asdbench")


class Register(Protocol):
    def __call__(self, name: str, factory: object, description: str | None = None) -> None: ...


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories: ``factory(**params) -> asdbench.api.Dataset``."""


@hookspec
def register_frontends(register: Register) -> None:
    """Register frontend factories: ``factory(sample_rate, num_samples, **params) -> asdbench.api.Frontend``."""


@hookspec
def register_backbones(register: Register) -> None:
    """Register backbone factories: ``factory(input_shape, num_classes, **params) -> asdbench.api.Backbone``."""


@hookspec
def register_losses(register: Register) -> None:
    """Register loss factories: ``factory(num_classes, embedding_dim, **params) -> asdbench.api.Loss``."""


@hookspec
def register_scorers(register: Register) -> None:
    """Register scorer factories: ``factory(**params) -> asdbench.api.Scorer``."""


@hookspec
def register_augmentations(register: Register) -> None:
    """Register training-data augmentations: ``factory(dataset, **params) -> asdbench.api.Augmentation`` (or
    ``None``: no augmentation)."""


@hookspec
def register_systems(register: Register) -> None:
    """Register systems: ``register(name, asdbench.api.SystemSpec(...))``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``asdbench`` command line."""
