"""``idnn``: interpolation DNN (Suefusa et al., ICASSP 2020), as a row of Liu et al. 2022, Table 2.

Five consecutive 128-band log-mel frames, the centre one removed and predicted from the
other four; MSE; score = mean interpolation error over the clip's frames. Choices where
the IDNN paper's settings could not be read (``baselines.md`` marks them uncertain):
128 mel bands and the STgram-MFN code's log-mel (as the AE-ASD reimplementation by the
STgram-MFN authors, whose numbers match the paper's IDNN row); the AE-ASD layer sizes;
one model per machine type (AE-ASD; the IDNN paper trained per machine); and the DCASE
2020 baseline's training budget (100 epochs, batch 512 frames, Adam 1e-3) so that it is
comparable with ``dcase-ae`` (AE-ASD: 300 epochs of 128 clips, ``--set epochs=300``).
AE-ASD kept the checkpoint with the best test AUC; here the last epoch (``--set
select=oracle`` for theirs).
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec

IDNN = SystemSpec(
    frontend="logmel-frames",
    backbone="idnn",
    loss="mse",
    scorer="recon-error",
    paper="Suefusa et al., Anomalous sound detection based on interpolation deep neural network, ICASSP 2020",
    defaults={"frontend.frames": 5, "epochs": 100, "batch_size": 512, "lr": 1e-3, "model_per": "type", "train_unit": "frame"},
)


@hookimpl
def register_systems(register):
    register("idnn", IDNN, "Interpolation DNN: predicts the centre of 5 log-mel frames from the other 4; score = interpolation error (Suefusa et al. 2020)")
