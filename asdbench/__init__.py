"""asdbench: a benchmark suite for unsupervised anomalous sound detection."""

from importlib import metadata

from asdbench.errors import AsdbenchError
from asdbench.hookspecs import hookimpl

try:
    __version__ = metadata.version("asdbench")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = ["AsdbenchError", "__version__", "hookimpl", "load_model"]


def __getattr__(name: str):
    """``asdbench.load_model`` without importing torch and MLflow for every ``import asdbench``."""
    if name == "load_model":
        from asdbench.serving.model import load_model

        return load_model
    raise AttributeError(f"module 'asdbench' has no attribute {name!r}")
