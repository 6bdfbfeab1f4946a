"""``selective-mahalanobis``: the Selective Mahalanobis score of the official DCASE 2023-2026 Task 2 baseline
(nttcslab/dcase2023_task2_baseline_ae, ``--score MAHALA``; ../shared/reference/dcase2026-and-official-ae.md §2.6-2.7).

An autoencoder's residuals are cut into rows of one frame each (a 640-d vector of 5 stacked 128-mel frames: 5
rows); one covariance of those rows per domain is fitted after training, and a clip's score is the Mahalanobis
norm of its *mean* residual row under the nearer domain's covariance. Where the baseline writes its own loops, this
is a scorer that fits on the model's outputs (CONTRIBUTING.md, "Scorers that fit"), so any autoencoder can use it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from asdbench import hookimpl
from asdbench.api import Loss, ModelOutput
from asdbench.errors import AsdbenchError


def _rows(output: ModelOutput, blocks: int) -> torch.Tensor:
    """The residuals (reconstruction minus input) of a batch as ``(B, rows, D / blocks)``: every vector of an
    example (a ``(B, D)`` batch of vectors, or ``(B, V, D)`` clips of V vectors) cut into ``blocks`` rows."""
    if output.reconstruction is None or output.target is None:
        raise AsdbenchError("the selective-mahalanobis scorer needs a backbone that returns a reconstruction")
    delta = (output.reconstruction - output.target).double()
    if delta.shape[-1] % blocks:
        raise AsdbenchError(f"selective-mahalanobis: a residual of {delta.shape[-1]} values cannot be cut into "
                            f"blocks={blocks} rows")
    return delta.reshape(delta.shape[0], -1, delta.shape[-1] // blocks)


class SelectiveMahalanobis:
    """``blocks``: the rows each reconstructed vector is cut into (the frames the frontend stacks: 5 for the
    baseline, whose covariances are then 128 x 128 over mel bins)."""

    def __init__(self, blocks: int = 1) -> None:
        if blocks < 1:
            raise ValueError(f"blocks={blocks} must be 1 or more")
        self.blocks = blocks
        self.precisions: torch.Tensor | None = None  # (2, d, d): source, target

    def fit_outputs(self, batches: Iterable[tuple[ModelOutput, torch.Tensor, torch.Tensor]],
                    loss: Loss) -> dict[str, torch.Tensor]:
        """The baseline's estimator, kept as it is: within each batch a domain's rows are centred on their batch
        mean and their outer products summed; the sum is divided by the domain's number of *vectors* minus one (not
        rows); fewer than two target vectors give the target domain the source covariance. Sums in float64 (the baseline's float32 adds
        a rounding per batch); plain inverses, no shrinkage."""
        sums: list[torch.Tensor | None] = [None, None]
        counts = [0, 0]
        for output, _, domain in batches:
            rows = _rows(output, self.blocks)
            for d, chosen in enumerate((~domain, domain)):
                if not chosen.any():
                    continue
                picked = rows[chosen].reshape(-1, rows.shape[-1])
                centred = picked - picked.mean(dim=0)
                product = centred.T @ centred
                sums[d] = product if sums[d] is None else sums[d] + product
                counts[d] += int(chosen.sum())
        if counts[0] < 2:
            raise AsdbenchError("selective-mahalanobis needs two or more source-domain training vectors to fit a "
                                "covariance")
        source = sums[0] / (counts[0] - 1)
        target = sums[1] / (counts[1] - 1) if counts[1] >= 2 else source
        state = {"covariances": torch.stack([source, target])}
        self.load_fit(state)
        return state

    def load_fit(self, state: dict[str, torch.Tensor]) -> None:
        covariances = state["covariances"].double()
        try:
            self.precisions = torch.linalg.inv(covariances)
        except RuntimeError:  # torch.linalg raises on an exactly singular matrix
            raise AsdbenchError("selective-mahalanobis: a domain's residual covariance is singular (a constant "
                                "residual, or fewer training vectors than mel bins); the model cannot be scored "
                                "this way") from None

    def score(self, output: ModelOutput, target: torch.Tensor, loss: Loss) -> torch.Tensor:
        """min over the two domains of m^T P m, m the mean residual row of the clip: the baseline's mean over the
        (rows x rows) matrix of r_i^T P r_j, which is the same number."""
        if self.precisions is None:
            raise AsdbenchError("the selective-mahalanobis scorer was not fitted: it needs the training residuals")
        mean = _rows(output, self.blocks).mean(dim=1)
        precisions = self.precisions.to(mean.device)
        per_domain = torch.einsum("bi,kij,bj->bk", mean, precisions, mean)
        return per_domain.amin(dim=1).float()


@hookimpl
def register_scorers(register):
    register("selective-mahalanobis", SelectiveMahalanobis, "the DCASE 2023-2026 baseline's MAHALA score: the "
             "Mahalanobis norm of a clip's mean residual frame under the nearer domain's residual covariance")
