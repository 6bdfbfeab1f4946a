"""Logged runs to tables: ``asdbench compare`` (``compare``), its HTML page (``html``), bootstrap intervals and
paired tests (``uncertainty``), and the published numbers beside ours (``published``, with the papers' tables
as JSON in this folder).

May import: the base, :mod:`asdbench.data`, :mod:`asdbench.evaluation` and :mod:`asdbench.tracking`. Never
:mod:`asdbench.training`: a table is read from the store, not recomputed.

A new table format goes in ``compare.render``; a new published source is a JSON file here, named in
``published.SOURCES``.
"""
