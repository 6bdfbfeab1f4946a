"""``noisy-arcmix``: TASTgram-MFN trained with the Noisy-ArcMix loss (Choi et al., ICASSP 2024, arXiv 2310.06364).

From the authors' code (soonhyeon/Noisy-ArcMix@674c759; ../shared/reference/methods-beyond.md, section 1): TASTgram
(3 x 128 x 313) into MobileFaceNet with the "DCASE 2022" bottlenecks [2,128,2,2], [4,128,2,2], [4,128,2,2];
ArcFace m = 0.7, s = 30; mixup with one Beta(0.5, 0.5) weight per batch and a shuffled partner, both the waveform
and the log-mel mixed; AdamW (lr 1e-4, weight decay 0.01), cosine annealing to 1e-5 over 300 epochs, batch 64;
the checkpoint of lowest ArcFace loss on 5 % of the training clips held out (select=val); score = -log softmax of
the clip's own ID with the margin, as STgram-MFN. The authors trained under autocast without a gradient scaler;
here bf16 autocast where it is native (no scaler needed), fp32 elsewhere. Their unused ``fc_out`` layer is not
built (1,156,566 parameters; 1,161,855 with it).

Their AUC and pAUC are pooled per machine type; `asdbench compare --table pooled --reference newer` sets their
published numbers beside this system's ``auc_pooled`` and ``pauc_pooled``.
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec

DCASE2022_BOTTLENECKS = [[2, 128, 2, 2], [4, 128, 2, 2], [4, 128, 2, 2]]

NOISY_ARCMIX = SystemSpec(
    frontend="tastgram",
    backbone="mobilefacenet",
    loss="noisy-arcmix",
    scorer="neg-log-prob",
    paper="Choi et al., Noisy-ArcMix: additive noisy angular margin loss combined with mixup for anomalous sound "
          "detection, ICASSP 2024",
    defaults={"epochs": 300, "batch_size": 64, "lr": 1e-4, "optimizer": "adamw", "weight_decay": 0.01,
              "scheduler": "cosine", "lr_min": 1e-5, "mixup": "batch", "mixup.alpha": 0.5, "mixup.partner": "shuffle",
              "select": "val", "select_every": 1, "val_fraction": 0.05, "model_per": "all",
              "backbone.bottlenecks": DCASE2022_BOTTLENECKS, "loss.margin": 0.7, "loss.scale": 30.0},
)


@hookimpl
def register_systems(register):
    register("noisy-arcmix", NOISY_ARCMIX, "TASTgram-MFN with the Noisy-ArcMix loss and mixup (Choi et al. 2024)")
