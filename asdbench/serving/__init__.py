"""A trained model outside training: the bundle format (``bundle``), the model loaded from it that scores new
recordings (``model``: ``asdbench.load_model``), the MLflow pyfunc (``mlflow_model``), per-file decisions
(``decision``) and ``asdbench eval`` (``tracked_eval``).

May import: the base, :mod:`asdbench.data`, :mod:`asdbench.evaluation` and :mod:`asdbench.tracking`. Never
:mod:`asdbench.training` (a test enforces it): scoring a recording must not load the training loop, and a
training run may import this package to write its bundle.

A new way to deploy or load a trained model goes here.
"""
