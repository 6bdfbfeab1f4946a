"""``dcase-ae``: the official DCASE 2020 Task 2 autoencoder baseline."""

from __future__ import annotations

import sys

from asdbench import hookimpl
from asdbench.api import SystemSpec

# The DCASE 2020 baseline's log-mel (librosa): Slaney mel scale and filter norm, 20/power * log10(mel + eps).
DCASE_BASELINE_LOGMEL = {
    "frontend.mel_scale": "slaney",
    "frontend.norm": "slaney",
    "frontend.amin": 0.0,
    "frontend.offset": sys.float_info.epsilon,
}

DCASE_AE = SystemSpec(
    frontend="logmel-frames",
    backbone="dense-ae",
    loss="mse",
    scorer="recon-error",
    paper="Koizumi et al., DCASE 2020 Task 2 baseline (github.com/y-kawagu/dcase2020_task2_baseline)",
    defaults={
        **DCASE_BASELINE_LOGMEL,
        "frontend.frames": 5,
        # baseline.yaml: 100 epochs, batch 512 vectors, Adam lr 1e-3, one model per machine type.
        "epochs": 100,
        "batch_size": 512,
        "lr": 1e-3,
        "model_per": "type",
        "train_unit": "frame",
    },
)


@hookimpl
def register_systems(register):
    register(
        "dcase-ae",
        DCASE_AE,
        "DCASE 2020 T2 baseline: dense autoencoder on 5 stacked log-mel frames, score = reconstruction error",
    )
