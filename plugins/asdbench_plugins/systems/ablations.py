"""The input-feature ablations of Liu et al. 2022 (Table 4): MobileFaceNet on one feature, cross-entropy.

The paper trains them with cross-entropy "for a fair comparison" and otherwise as
STgram-MFN; they share its backbone and scorer plugins and differ only in the frontend.
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec
from asdbench_plugins.systems.stgram_mfn import PAPER_TRAINING, STGRAM_MFN


def _ablation(frontend: str) -> SystemSpec:
    return SystemSpec(frontend=frontend, backbone="mobilefacenet", loss="cross-entropy", scorer="neg-log-prob",
                      paper=STGRAM_MFN.paper, defaults=dict(PAPER_TRAINING))


@hookimpl
def register_systems(register):
    register("logmel-mfn", _ablation("logmel"), "MobileFaceNet on the log-mel spectrogram alone, cross-entropy (Liu et al. 2022, Table 4)")
    register("tgram-mfn", _ablation("tgram"), "MobileFaceNet on the TgramNet feature alone, cross-entropy (Liu et al. 2022, Table 4)")
    register("spec-mfn", _ablation("logspec"),
             "MobileFaceNet on the linear-frequency log spectrogram (513 bins), cross-entropy (Liu et al. 2022, Table 4)")
