"""``glow-aff``: flow-based self-supervised density estimation, after Dohi et al., ICASSP 2021.

One Glow flow (affine coupling) per machine ID, trained on its type's clips: the ID's
own clips as target data, the other IDs of the type as outliers; score = mean negative
log-likelihood of the clip's vectors. The paper's loss form, flow size and training
settings could not be read (``baselines.md``), so these are our choices, each one
``--set`` away: the bounded hinge loss of ``flow-outlier`` (margin 1 nat/dim, weight 1);
inputs of 5 stacked 128-band log-mel frames as the DCASE baseline computes them (640
dimensions); 4 flow steps with 256-unit coupling networks; 20 epochs, batch 512
vectors, Adam 5e-4 with the gradient norm clipped to 1 (without clipping one of twelve
flows of the synthetic ``small`` set diverged). Its numbers are therefore "Glow_Aff-like", not a reproduction.
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec
from asdbench_plugins.systems.dcase_ae import DCASE_BASELINE_LOGMEL

GLOW_AFF = SystemSpec(
    frontend="logmel-frames",
    backbone="glow",
    loss="flow-outlier",
    scorer="nll",
    paper="Dohi et al., Flow-based self-supervised density estimation for anomalous sound detection, ICASSP 2021",
    defaults={
        **DCASE_BASELINE_LOGMEL,
        "frontend.frames": 5,
        "epochs": 20,
        "batch_size": 512,
        "lr": 5e-4,
        "grad_clip": 1.0,
        "model_per": "id-vs-others",
        "train_unit": "frame",
    },
)


@hookimpl
def register_systems(register):
    register("glow-aff", GLOW_AFF,
             "Glow flow per machine ID, its type's other IDs as bounded outliers; score = NLL (after Dohi et al. 2021; loss form our choice)")
