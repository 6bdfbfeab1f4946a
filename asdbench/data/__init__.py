"""Files to arrays: what a run reads, and the plan of what it will do with it.

Here: WAV decoding into caches (``wave_cache``, ``feature_cache``, ``array_cache``), the machines a config
selects (``machines``), how clips group into models and what a machine ID is under each evaluation rule
(``groups``), the data fingerprint (``fingerprint``), the data set a folder holds (``recognise``), the
:class:`~asdbench.data.plan.Plan` made once per run (``plan``), and the tensors a model trains on and scores
(``examples``).

May import: the base (``asdbench.*`` modules at the top, ``asdbench.api``) and this package. Nothing here
knows about models being trained, scored or logged.

A new thing goes here when it turns files into arrays or decides which clips a run uses; a new data set
format is a dataset *plugin* (``plugins/asdbench_plugins/datasets/``), not a module here.
"""
