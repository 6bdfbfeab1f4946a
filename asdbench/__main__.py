"""``python -m asdbench`` is the ``asdbench`` command."""

from asdbench.cli import main

main()
