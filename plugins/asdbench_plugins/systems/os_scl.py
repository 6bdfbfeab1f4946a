"""``os-scl``: TFgram-MFN with ArcFace, a supervised contrastive loss and an EMA teacher (Huang et al., ICASSP 2025,
arXiv 2509.13853).

From the authors' code (huangswt/OS-SCL@9aca394; ../shared/reference/methods-beyond.md, section 2): TFgram (log-mel,
Tgram and TFgram, 3 x 128 x 313) into MobileFaceNet with Noisy-ArcMix's bottlenecks and the feature-perturbation
head, whose L2-normalised output is the embedding; ArcFace m = 0.4, s = 30 with the margin on the own class of
mixed examples, plus SupCon (T = 0.02, base 0.07) on the mixed embeddings labelled with the own class; mixup as
Noisy-ArcMix (one Beta(0.5, 0.5) weight per batch, shuffled partner); AdamW (lr 1e-4, weight decay 0.01), cosine to
1e-5 over 300 epochs, batch 64, fp32 (the authors use no autocast); an EMA of the whole model (decay 0.9999,
parameters and batch-norm statistics; the live weights further multiplied by 1 - 2e-6 after each step, as their
WeightEMA does) is what is validated, kept and scored: the checkpoint of lowest ArcFace loss on 5 % held-out
training clips (select=val); score = -log softmax of the clip's own ID with the margin. Their module builds an
unused CNN14 tail (79.8 M parameters) and an unused fc_out; neither is built: 1,372,246 parameters (1,377,535 with
fc_out).

Their AUC and pAUC are pooled per machine type (see ``asdbench compare --table pooled --reference newer``).
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec
from asdbench_plugins.systems.noisy_arcmix import NOISY_ARCMIX

OS_SCL = SystemSpec(
    frontend="tfgram",
    backbone="mobilefacenet",
    loss="arcface-supcon",
    scorer="neg-log-prob",
    paper="Huang et al., Noise-supervised contrastive learning and feature-perturbed anomalous sound detection "
          "(OS-SCL), ICASSP 2025",
    # Noisy-ArcMix's training recipe (optimiser, schedule, mixup, selection, network), then what OS-SCL changes
    defaults={**NOISY_ARCMIX.defaults, "precision": "fp32", "ema": 0.9999, "ema.live_decay": 2e-6,
              "backbone.projection": "fp", "loss.margin": 0.4},
)


@hookimpl
def register_systems(register):
    register("os-scl", OS_SCL, "TFgram-MFN, ArcFace + supervised contrastive loss, EMA teacher (Huang et al. 2025)")
