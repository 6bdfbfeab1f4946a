"""The MLflow pyfunc of an asdbench model, defined from code (MLflow's "models from code").

MLflow copies this file into every run's ``model/`` and runs it when the model is loaded, so
``mlflow.pyfunc.load_model("runs:/ID/model")`` (or ``models:/NAME/VERSION`` once registered) needs no
pickled object: the bundle in the model's artifacts is read by :func:`asdbench.load_model`. ``predict``
takes recordings (:mod:`asdbench.serving.inputs`: WAV bytes, float arrays with a sample rate, or WAV paths) and
returns one row per recording: file, machine type and ID, score, threshold and decision (1: anomalous). So
``mlflow models serve -m runs:/ID/model`` scores recordings posted over HTTP; a request it cannot read is a 400
whose message is one line naming the row.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel


class BadInput(MlflowException):
    """A request the model cannot read: HTTP 400 with the one line that says why. MLflow's scoring server prefixes
    the message of an error raised in ``predict`` with the whole request (megabytes of base64 audio); this message
    keeps its one line."""

    def __init__(self, line: str) -> None:
        self._line = line
        super().__init__(line, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._line

    @message.setter
    def message(self, value: str) -> None:
        pass


class AsdbenchModel(PythonModel):
    def load_context(self, context) -> None:
        from asdbench.serving.model import load_model

        self.model = load_model(context.artifacts["bundle"])

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        from asdbench.errors import AsdbenchError
        from asdbench.serving.inputs import decisions

        try:
            return decisions(self.model, model_input)
        except AsdbenchError as exc:
            raise BadInput(str(exc)) from None


mlflow.models.set_model(AsdbenchModel())
