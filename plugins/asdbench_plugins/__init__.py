"""asdbench's built-in plugins. Each module registers through the ``asdbench`` entry-point group."""
