"""``pyod``: PyOD's outlier detectors (Zhao et al., JMLR 2019) as embedding back-ends, one detector per class fitted
on its L2-normalised training embeddings. PyOD saves detectors with pickle, which asdbench bundles never hold: a
bundle keeps the embeddings (as every embedding back-end) and the detector is fitted again on load, seeded."""

from __future__ import annotations

import importlib

import numpy as np
import torch

from asdbench import hookimpl
from asdbench.api import Loss
from asdbench.errors import AsdbenchError
from asdbench_plugins.scorers.embedding import EmbeddingScorer

# name -> (module, class, whether it takes random_state)
DETECTORS = {
    "lof": ("pyod.models.lof", "LOF", False),
    "knn": ("pyod.models.knn", "KNN", False),
    "ecod": ("pyod.models.ecod", "ECOD", False),
    "copod": ("pyod.models.copod", "COPOD", False),
    "iforest": ("pyod.models.iforest", "IForest", True),
    "ocsvm": ("pyod.models.ocsvm", "OCSVM", False),
    "lunar": ("pyod.models.lunar", "LUNAR", True),  # a graph neural network over each clip's 5 nearest neighbours
}
# Detectors whose decision_function ranks new data among the training data and the other new data of the same call:
# each clip is scored alone, so that its score never depends on the batch it came in.
TRANSDUCTIVE = frozenset({"ecod", "copod"})


class PyODScorer(EmbeddingScorer):
    """``detector`` (lof, knn, ecod, copod, iforest, ocsvm, lunar) with PyOD's defaults (``n_neighbors`` for lof and
    knn, at most the class's clips minus one); the score is its ``decision_function``, higher = more anomalous.
    Seeded (random_state 0, and torch's generator for LUNAR's training), so a bundle's refit gives the run's scores.
    Needs the ``outliers`` extra (``pip install 'asdbench[outliers]'``)."""

    def __init__(self, detector: str = "lof", n_neighbors: int = 20) -> None:
        super().__init__()
        if detector not in DETECTORS:
            raise ValueError(f"detector={detector!r} is not one of: {', '.join(DETECTORS)}")
        self.detector, self.n_neighbors = detector, n_neighbors

    def _make(self, count: int):
        module, name, seeded = DETECTORS[self.detector]
        try:
            cls = getattr(importlib.import_module(module), name)
        except ImportError:
            raise AsdbenchError("the pyod scorer needs PyOD: pip install 'asdbench[outliers]'") from None
        options = {"random_state": 0} if seeded else {}
        if self.detector in ("lof", "knn"):
            options["n_neighbors"] = max(1, min(self.n_neighbors, count - 1))
        return cls(**options)

    def _fit_class(self, e: torch.Tensor, label: int, loss: Loss | None):
        if len(e) < 2:
            raise AsdbenchError(f"pyod detector {self.detector} needs two or more training clips of class {label}")
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return self._make(len(e)).fit(e.numpy())

    def _score_class(self, e: torch.Tensor, detector) -> torch.Tensor:
        x = e.numpy()
        scores = ([detector.decision_function(row[None])[0] for row in x] if self.detector in TRANSDUCTIVE
                  else detector.decision_function(x))
        return torch.from_numpy(np.asarray(scores, dtype=np.float64))


@hookimpl
def register_scorers(register):
    register("pyod", PyODScorer, "a PyOD outlier detector per class on the embeddings (lof, knn, ecod, copod, "
             "iforest, ocsvm, lunar)")
