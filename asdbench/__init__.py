"""asdbench: a benchmark suite for unsupervised anomalous sound detection."""

from importlib import metadata

from asdbench.errors import AsdbenchError
from asdbench.hookspecs import hookimpl

try:
    __version__ = metadata.version("asdbench")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0+unknown"

__all__ = ["AsdbenchError", "__version__", "hookimpl"]
