"""Built-in systems."""
