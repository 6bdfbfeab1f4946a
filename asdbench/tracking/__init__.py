"""The MLflow store: one :class:`~asdbench.tracking.store.Store` object owns the client, the queries for
asdbench runs (the role filter, the experiment listing) and the runs it opens (``store``); which runs may be
pooled into one row (``comparability``).

May import: the base only, so every layer that logs or reads runs can use it. A new query for asdbench runs
becomes a ``Store`` method, not a search written in its caller.
"""
