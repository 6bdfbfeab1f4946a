"""``none``: no augmentation, every system's default."""

from __future__ import annotations

from asdbench import hookimpl


def no_augmentation() -> None:
    """No augmentation: the training clips as they are."""
    return None


@hookimpl
def register_augmentations(register):
    register("none", no_augmentation)
