"""Systems on pretrained audio encoders, the family that leads DCASE Task 2 since 2023: every one needs
``--set frontend.checkpoint=PATH`` (the file or folder its authors publish; nothing is downloaded).

- ``beats-knn``: GenRep (Saengthong & Shinozaki, arXiv 2409.05035; their GenRepASD code): a frozen BEATs, nothing
  trained; the output of its 4th layer, each of the 8 frequency patches averaged over time (their
  ``--temporal_pooling``, 6144 values), kNN with a source and a target memory per section, MemMixup of every source
  clip into each target clip (``n_mix_support`` 990 = all source clips of a DCASE 2023 section, alpha 0.9),
  per-domain standardisation. Their best run used ``BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt`` (whose best
  single layer in their script is 4; 5 for the other checkpoints).
- ``beats-lora``: BEATs tuned with LoRA adapters (in the family of arXiv 2409.07016) under sub-cluster AdaCos on the
  data set's classes (section x attribute where the data set has them), attentive-statistics pooling of the last
  layer's frames to a 256-d embedding, the same domain-aware kNN back-end. The adapter rank, targets, epochs and
  learning rate are asdbench's choices, not read from that paper.
- ``ast-knn``: a frozen Audio Spectrogram Transformer (Gong et al., Interspeech 2021; transformers' AST, as GenRep's
  script also runs) with GenRep's back-end on the mean of its last layer's patches.
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec

GENREP_BACKEND = {"scorer.k": 1, "scorer.mix_support": 990, "scorer.alpha": 0.9, "scorer.metric": "euclidean",
                  "scorer.normalise": True}
FROZEN = {"epochs": 0, "frontend.tune": "none", "backbone.pooling": "none", "model_per": "type"}

BEATS_KNN = SystemSpec(
    frontend="beats", backbone="encoder-head", loss="none", scorer="knn-domains",
    paper="Saengthong & Shinozaki, Deep generic representations for domain-generalized ASD (GenRep), arXiv 2409.05035",
    defaults={**FROZEN, **GENREP_BACKEND, "frontend.layer": 4, "frontend.pooling": "time"},
)

BEATS_LORA = SystemSpec(
    frontend="beats", backbone="encoder-head", loss="subcluster-adacos", scorer="knn-domains",
    paper="BEATs fine-tuned with LoRA for ASD (arXiv 2409.07016); asdbench's recipe, see the system's module",
    defaults={"frontend.tune": "lora", "frontend.lora_rank": 8, "frontend.lora_alpha": 16.0,
              "frontend.lora_targets": "q_proj,v_proj", "frontend.pooling": "frames",
              "backbone.pooling": "attention-stats", "backbone.projection": 256, "loss.subclusters": 16,
              "epochs": 10, "batch_size": 32, "lr": 1e-4, "optimizer": "adamw", "model_per": "all",
              **GENREP_BACKEND},
)

AST_KNN = SystemSpec(
    frontend="hf-encoder", backbone="encoder-head", loss="none", scorer="knn-domains",
    paper="Gong et al., AST: Audio Spectrogram Transformer (Interspeech 2021), with GenRep's back-end",
    defaults={**FROZEN, **GENREP_BACKEND, "frontend.layer": -1, "frontend.pooling": "mean"},
)


@hookimpl
def register_systems(register):
    register("beats-knn", BEATS_KNN, "frozen BEATs (4th layer, per-band time means) + kNN over source and target "
             "memories with MemMixup, nothing trained (GenRep)")
    register("beats-lora", BEATS_LORA, "BEATs with LoRA adapters trained by sub-cluster AdaCos, attentive "
             "statistics pooling, domain-aware kNN")
    register("ast-knn", AST_KNN, "frozen Audio Spectrogram Transformer (transformers) + GenRep's kNN back-end")
