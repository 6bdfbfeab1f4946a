"""``dcase2023-ae``: the official DCASE 2023–2026 Task 2 autoencoder baseline (nttcslab/dcase2023_task2_baseline_ae,
v1 to v5, whose hyper-parameters and network are the same every year), in both its scoring modes: MSE
(``dcase2023-ae``) and Selective Mahalanobis (``dcase2023-ae-mahala``), one training recipe.

Facts and sources: ``../shared/reference/dcase2026-and-official-ae.md`` §2. The README lists what differs from the
official code.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from asdbench import hookimpl
from asdbench.api import SystemSpec
from asdbench_plugins.systems.dcase_ae import DCASE_BASELINE_LOGMEL

# librosa.feature.melspectrogram's conventions as the 2020 baseline (Slaney mel scale and area norm), but of librosa
# >= 0.10, as v4/v5 require: centred frames padded with zeros; then 10 * log10(max(mel, machine epsilon)), a clamp
# where the 2020 baseline added epsilon.
DCASE2023_LOGMEL = {
    **DCASE_BASELINE_LOGMEL,
    "frontend.amin": sys.float_info.epsilon,
    "frontend.offset": 0.0,
    "frontend.pad_mode": "constant",
}

DCASE2023_AE = SystemSpec(
    frontend="logmel-frames",
    backbone="dense-ae",
    loss="mse",
    scorer="recon-error",
    paper="Harada et al., DCASE 2023-2026 Task 2 baseline (github.com/nttcslab/dcase2023_task2_baseline_ae)",
    defaults={
        **DCASE2023_LOGMEL,
        "frontend.frames": 5,
        "backbone.init": "torch",  # PyTorch's default initialisation (the 2020 baseline: Keras's Glorot)
        # baseline.yaml: 100 epochs, batch 256 vectors, Adam lr 1e-3, seed 13711, one model per machine type
        "epochs": 100,
        "batch_size": 256,
        "lr": 1e-3,
        "seed": 13711,
        "model_per": "type",
        "train_unit": "frame",
        # train_test_split(test_size=0.1) of the vectors: never trained on; the threshold's gamma is fitted on the
        # scores of the training batches and then of these held-out batches
        "hold_out": "examples",
        "val_fraction": 0.1,
        "threshold.scores": "batches",
    },
)


# --score MAHALA: the same training; the residual rows of the 5 stacked frames, one covariance per domain.
DCASE2023_AE_MAHALA = replace(
    DCASE2023_AE,
    scorer="selective-mahalanobis",
    defaults={**DCASE2023_AE.defaults, "scorer.blocks": DCASE2023_AE.defaults["frontend.frames"]},
)


@hookimpl
def register_systems(register):
    register(
        "dcase2023-ae",
        DCASE2023_AE,
        "DCASE 2023-2026 T2 official baseline: dense autoencoder on 5 stacked log-mel frames (librosa conventions), "
        "score = mean squared reconstruction error (its MSE mode)",
    )
    register(
        "dcase2023-ae-mahala",
        DCASE2023_AE_MAHALA,
        "DCASE 2023-2026 T2 official baseline in its Selective Mahalanobis mode: the same autoencoder, score = the "
        "Mahalanobis norm of a clip's mean residual frame under the nearer domain's residual covariance",
    )
