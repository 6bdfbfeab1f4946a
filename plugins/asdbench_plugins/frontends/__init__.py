"""Built-in frontends."""
