"""``adacos`` and ``subcluster-adacos``: Wilkinghoff's sub-cluster AdaCos system for DCASE 2020 (IJCNN 2021).

From the author's code (wilkinghoff/sub-cluster-AdaCos@260d509; ../shared/reference/methods-beyond.md, section 3.2):
log-mel as his librosa call (symmetric Hann window, 1024-point FFT, hop 512, 128 Slaney bands, power to dB with a
1e-10 floor), each band standardised with the training frames' statistics, his residual CNN (``wilkinghoff-cnn``)
to a 128-d embedding, the (sub-cluster) AdaCos loss on mixed examples (a uniform weight per example, the batch
reversed as partners, always on), Adam 1e-3, batch 64, 4 x 100 = 400 epochs, the last kept; back-end a Gaussian
mixture per machine ID with K full-covariance components started at that ID's K centres, score = -max component
log-density. ``adacos``: K = 1; ``subcluster-adacos``: K = 16 (his paper sweeps 1 to 64; 16 is ASDKit's default).

Where this differs: his Keras L2 penalty of 1e-5 on kernels is weight decay 2e-5 on every weight here (the same
gradient on kernels); his balanced class weights are not applied (the classes of DCASE 2020 are near balance);
clips are cut to their first 10 s (he kept the last 313 frames of the 11 s ToyCar clips); ToyConveyor gets the
same back-end as the other types (his code's special case for it was fixed after the paper, and which the paper
used is not known).
"""

from __future__ import annotations

from asdbench import hookimpl
from asdbench.api import SystemSpec

PAPER = ("Wilkinghoff, Sub-cluster AdaCos: learning representations for anomalous sound detection, IJCNN 2021")
TRAINING = {"epochs": 400, "batch_size": 64, "lr": 1e-3, "optimizer": "adam", "weight_decay": 2e-5,
            "mixup": "sample", "mixup.alpha": 1.0, "mixup.partner": "reverse", "select": "last", "model_per": "all",
            "frontend.n_fft": 1024, "frontend.hop_length": 512, "frontend.n_mels": 128, "frontend.mel_scale": "slaney",
            "frontend.norm": "slaney", "frontend.periodic_window": False, "scorer.reg_covar": 1e-3}


def _system(loss: str, subclusters: int, extra: dict) -> SystemSpec:
    return SystemSpec(frontend="logmel", backbone="wilkinghoff-cnn", loss=loss, scorer="gmm", paper=PAPER,
                      defaults={**TRAINING, "scorer.n_components": subclusters, **extra})


@hookimpl
def register_systems(register):
    register("adacos", _system("adacos", 1, {}), "Wilkinghoff's CNN with AdaCos and a GMM back-end")
    register("subcluster-adacos", _system("subcluster-adacos", 16, {"loss.subclusters": 16}),
             "Wilkinghoff's CNN with sub-cluster AdaCos (16 centres per ID) and a 16-component GMM back-end (2021)")
