"""A model to numbers: scores of examples (``scoring``), scorers fitted on training embeddings (``fitted``),
decision thresholds (``thresholds``), the official metrics (``metrics``), a run's report from its scored clips
and several runs' mean and spread (``summary``), and the files and figures of a set of scored clips
(``results``, ``artifacts``, ``figures``).

May import: the base and :mod:`asdbench.data`. Never training, serving, tracking or reporting: a trained
run and a served model score and measure through these same functions, so they give the same numbers.

A new metric goes in ``metrics`` (tested against hand-computed values and scikit-learn); a new result file
in ``results`` and ``artifacts``.
"""
