"""Arrays to trained models: ``execute`` trains a plan's models and scores them (``runner``), the one training
loop (``loop``), one optimisation step (``step``), whether a model trains compiled (``compile_rule``), checkpoints to resume from (``checkpoint``), batch mixing
(``mixup``), and the run inside an MLflow run that logs it all (``tracked_run``).

May import: every layer below it (base, data, evaluation, serving, report, tracking). Nothing below imports it.

A new training technique is usually a config key read in ``loop`` or ``step``; a new way to run many runs
belongs in :mod:`asdbench.scale`.
"""
