"""The MLflow pyfunc of an asdbench model, defined from code (MLflow's "models from code").

MLflow copies this file into every run's ``model/`` and runs it when the model is loaded, so
``mlflow.pyfunc.load_model("runs:/ID/model")`` (or ``models:/NAME/VERSION`` once registered) needs no
pickled object: the bundle in the model's artifacts is read by :func:`asdbench.load_model`. ``predict``
takes WAV paths (a list, or a DataFrame whose first string column holds them) and returns one row per
file: file, machine type and ID (from DCASE-style paths), score, threshold and decision (1: anomalous).
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class AsdbenchModel(PythonModel):
    def load_context(self, context) -> None:
        from asdbench.serving.model import load_model

        self.model = load_model(context.artifacts["bundle"])

    def predict(self, context, model_input: list[str], params=None) -> pd.DataFrame:
        rows = self.model.score(model_input)
        return pd.DataFrame({
            "file": [str(r.path) for r in rows],
            "machine_type": [r.machine_type for r in rows],
            "machine_id": [r.machine_id for r in rows],
            "score": [r.score for r in rows],
            "threshold": [r.threshold for r in rows],
            "decision": [int(r.anomalous) for r in rows],
        })


mlflow.models.set_model(AsdbenchModel())
