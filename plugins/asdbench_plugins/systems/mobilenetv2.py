"""``mobilenetv2``: self-supervised machine-ID classification (Giri et al., DCASE 2020 workshop), a row of Liu et al. 2022.

Giri et al.'s code is not public; the settings that could not be read (``baselines.md``
marks them uncertain) follow the closest public code, Hitachi's DCASE 2021 MobileNetV2
baseline (inspired by Giri et al.): log-mel as the DCASE baseline computes it (128 bands,
librosa-style Slaney mel), patches of 64 frames every 8 frames, MobileNetV2 with width
0.5, one classifier per machine type over all its IDs (development and additional
training sets, as STgram-MFN does), cross-entropy, batch 32 patches, 20 epochs. The
learning rate is 1e-4, not that baseline's 1e-5: its 10 s clips give ~30 patches each,
our shorter synthetic clips far fewer (``--set lr=1e-5``). Score: the mean over a clip's
patches of −log p(own ID) (that baseline uses log((1 − p)/p), which ranks a single patch
the same way).
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec
from asdbench_plugins.systems.dcase_ae import DCASE_BASELINE_LOGMEL

MOBILENETV2 = SystemSpec(
    frontend="logmel-patches",
    backbone="mobilenetv2",
    loss="cross-entropy",
    scorer="neg-log-prob",
    paper="Giri et al., Self-supervised classification for detecting anomalous sounds, DCASE 2020 workshop",
    defaults={
        **DCASE_BASELINE_LOGMEL,
        "frontend.patch_frames": 64,
        "frontend.patch_hop": 8,
        "backbone.width_mult": 0.5,
        "epochs": 20,
        "batch_size": 32,
        "lr": 1e-4,
        "model_per": "type",
        "train_unit": "frame",
    },
)


@hookimpl
def register_systems(register):
    register("mobilenetv2", MOBILENETV2,
             "MobileNetV2 classifying machine IDs per type on log-mel patches; score = mean −log p(own ID) (after Giri et al. 2020)")
