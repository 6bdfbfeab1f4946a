"""Which data set plugin reads a folder: ``asdbench run SYSTEM --root DIR`` without ``--dataset``.

A dataset factory may offer ``recognises(root) -> bool`` (the DCASE 2020–2025 ones do, from their file names,
folders, machine types and sections); the one plugin that recognises the folder is used, and where several or
none do, the error names what to pass.
"""

from __future__ import annotations

from pathlib import Path

from asdbench.errors import AsdbenchError
from asdbench.plugins import Plugins


def dataset_for(plugins: Plugins, root: Path) -> str:
    if not root.expanduser().is_dir():
        raise AsdbenchError(f"--root {root}: no such folder")
    entries = [e for e in plugins.registry("dataset") if callable(getattr(e.factory, "recognises", None))]
    fits = [e.name for e in entries if e.factory.recognises(root)]
    if len(fits) == 1:
        return fits[0]
    if fits:
        what, names = f"{root} fits the layouts of {', '.join(fits)}", fits
    else:
        what = (f"{root} holds no layout a data set plugin recognises (those that can tell: "
                f"{', '.join(e.name for e in entries)})")
        names = [e.name for e in plugins.registry("dataset")]
    choice = f"--dataset {' or --dataset '.join(names)}" if len(names) <= 3 else f"--dataset NAME, one of {', '.join(names)}"
    raise AsdbenchError(f"{what}; pass {choice}")
