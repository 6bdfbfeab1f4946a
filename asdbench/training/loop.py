"""The one training loop every system shares: epochs, checkpoints, checkpoint selection, the moving average."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from asdbench import distributed
from asdbench.api import FeatureAugmentation, MixAugmentation
from asdbench.build import AnomalyModel
from asdbench.data.examples import Examples, indices_on
from asdbench.errors import AsdbenchError
from asdbench.progress import Reporter
from asdbench.runtime import Runtime, prepare
from asdbench.training import compile_rule
from asdbench.training.checkpoint import Slot, restore_rng, rng_state
from asdbench.training.mixup import Mixer
from asdbench.training.step import Objective, make_optimizer, train_step

OFFICIAL_COSINE_START = 20  # the STgram-MFN code steps its cosine schedule only after epoch 20



@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str
    lr_min: float
    mixup: str
    mixup_alpha: float
    mixup_partner: str
    ema: float
    ema_live_decay: float
    grad_clip: float
    channels_last: bool
    scheduler: str
    select: str
    select_every: int
    val_fraction: float
    compile: bool | str  # True, False or "auto"
    checkpoint_every_s: float


def settings_from(config) -> TrainSettings:
    keys = ("epochs", "batch_size", "lr", "weight_decay", "optimizer", "lr_min", "mixup", "mixup.alpha",
            "mixup.partner", "ema", "ema.live_decay", "grad_clip", "channels_last", "scheduler", "select", "select_every", "val_fraction",
            "compile", "checkpoint_every_s")
    return TrainSettings(*(config[k] for k in keys))


def place(data: Examples, device: torch.device, fraction: float = 0.5) -> Examples:
    """Keep the whole set on the GPU when it takes under ``fraction`` of free memory: no copies per batch."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if data.nbytes() < fraction * free:
            return data.to(device)
    return data


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """A shuffled epoch (the same in every process of a distributed run); a last batch too small to give each
    process two examples is dropped (batch norm cannot train on one)."""
    batches = list(torch.randperm(n, generator=generator).split(batch_size))
    if len(batches) > 1 and len(batches[-1]) < 2 * distributed.world_size():
        batches.pop()
    return batches



class MovingAverage:
    """An exponential moving average of a model's parameters and floating buffers (torch's ``AveragedModel``),
    started equal to the model as OS-SCL's WeightEMA; ``live_decay`` also shrinks the live model's weights and
    statistics after each update, as that code does."""

    def __init__(self, model: AnomalyModel, decay: float, live_decay: float = 0.0) -> None:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        self.live_decay = live_decay
        self._average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        self._average.update_parameters(model)  # the first update copies: the average starts as the model

    @property
    def averaged(self) -> AnomalyModel:
        return self._average.module

    @torch.no_grad()
    def update(self, model: AnomalyModel) -> None:
        self._average.update_parameters(model)
        if self.live_decay:
            for value in model.state_dict().values():
                if value.is_floating_point():
                    value.mul_(1.0 - self.live_decay)

    def state_dict(self) -> dict:
        return self._average.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self._average.load_state_dict(state)


def held_out_examples(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The examples kept for training and those held out: ``ceil(fraction * count)`` of all ``count``, drawn with
    ``seed`` regardless of class (as scikit-learn's ``train_test_split(test_size=fraction)`` splits the official
    DCASE 2023-2026 baseline's vectors)."""
    held = torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:math.ceil(fraction * count)]
    chosen = set(held.tolist())
    return [i for i in range(count) if i not in chosen], sorted(chosen)


def held_out_rows(targets: torch.Tensor, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """The rows kept for training and those held out: of each class with two or more examples, ``fraction`` of them
    (at least one), drawn with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    held: list[int] = []
    for c in targets.unique():
        rows = (targets == c).nonzero().squeeze(1)
        if len(rows) >= 2:
            n = max(1, round(fraction * len(rows)))
            held += rows[torch.randperm(len(rows), generator=generator)[:n]].tolist()
    return sorted(set(range(len(targets))) - set(held)), sorted(held)



def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, batches_per_epoch: int):
    if settings.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs, eta_min=settings.lr_min)
    if settings.scheduler == "cosine-official":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=batches_per_epoch)
    return None


@dataclass
class _Epoch:
    """What one epoch measured, read from the device once at its end."""

    stats: dict[str, float]
    seen: int
    batches: int
    first_bad: int  # the first batch whose loss was not finite, or -1
    classifier: bool
    began: float


class _Training:
    """One model's training: the optimiser, schedule, mixing, moving average and compiled step, with the state a
    checkpoint saves and restores."""

    def __init__(self, model: AnomalyModel, data: Examples, settings: TrainSettings, runtime: Runtime,
                 generator: torch.Generator, reporter: Reporter, label: str,
                 augmentation: FeatureAugmentation | MixAugmentation | None = None, classes: int = 0) -> None:
        self.model, self.settings, self.runtime, self.generator = model, settings, runtime, generator
        self.augmentation, self.classes = augmentation, classes
        self.reporter, self.label = reporter, label
        device = runtime.device
        self.data = place(data, device)
        model.to(device)
        choice = compile_rule.choose(settings.compile, model, self.data, settings.epochs, device, runtime.threads)
        if settings.compile == "auto":
            reporter.info(f"Model '{label}': {choice.reason}")
        prepare(model, device, settings.channels_last, compiled=choice.compiled)
        self.optimizer = make_optimizer(model, settings.lr, settings.weight_decay, settings.optimizer)
        self.mixer = Mixer(settings.mixup, settings.mixup_alpha, settings.mixup_partner)
        self.ema = MovingAverage(model, settings.ema, settings.ema_live_decay) if settings.ema > 0 else None
        self.objective = Objective(model, choice.compiled,
                                   lambda message: reporter.info(f"[yellow]{message}[/yellow]"),
                                   distributed.wrap(model, device))
        self.scheduler = _scheduler(self.optimizer, settings, max(1, math.ceil(len(self.data) / settings.batch_size)))
        self.best: tuple[float, int, dict] | None = None

    @property
    def kept_model(self) -> AnomalyModel:
        """What the run keeps, and so what a selection score is computed on: the moving average, when there is one."""
        return self.ema.averaged if self.ema is not None else self.model

    def state(self, epoch: int, finished: bool, kept: int = 0) -> dict:
        return {"epoch": epoch, "finished": finished, "kept": kept, "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "rng": rng_state(self.generator),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "best": None if finished else self.best,
                **({"ema": self.ema.state_dict()} if self.ema is not None else {})}

    def restore(self, resumed: dict) -> None:
        """Continue an unfinished checkpoint: every state as it was after its epoch."""
        self.optimizer.load_state_dict(resumed["optimizer"])
        if self.ema is not None:
            self.ema.load_state_dict(resumed["ema"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(resumed["scheduler"])
        self.best = resumed["best"]

    def _augmentation_generator(self) -> torch.Generator | None:
        """This epoch's generator of the augmentation's draws, seeded from the model's stream (only where there is an
        augmentation: a run without one draws what it always drew), so a resumed run draws the same."""
        if self.augmentation is None:
            return None
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.generator)))

    def run_epoch(self) -> _Epoch:
        """One pass over the data in a fresh shuffled order. Losses are summed on the device and read once: no host
        sync per step; the first batch whose loss is not finite is noted on the device too."""
        began = time.perf_counter()
        model, data, settings, device = self.model, self.data, self.settings, self.runtime.device
        model.train()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        first_bad = torch.full((), -1, dtype=torch.long, device=device)
        seen, classifier = 0, False
        batches = _batches(len(data), settings.batch_size, self.generator)
        self.mixer.start_epoch(self.generator)
        drawn = self._augmentation_generator()
        stage = getattr(self.augmentation, "stage", None)
        augment = partial(self.augmentation, generator=drawn) if stage == "features" else None
        for number, (batch, idx) in enumerate(zip(batches, indices_on(data.inputs.device, map(distributed.shard, batches))),
                                              start=1):
            # idx: this process's share of the global batch, where the data are
            x, y = data.batch(idx, device)
            # DDP averages the processes' gradients; weighting each by its share makes that the global batch's
            # mean when shares differ in size (a last batch that does not divide evenly)
            mix = self.augmentation.draw(y, self.classes, drawn) if stage == "mix" else self.mixer.draw(len(idx), device)
            loss, class_scores = train_step(model, self.optimizer, x, y, data.features_ready, self.runtime.amp,
                                            settings.grad_clip, self.objective,
                                            len(idx) * distributed.world_size() / len(batch), mix, augment)
            if self.ema is not None:
                self.ema.update(model)
            first_bad.masked_fill_(~torch.isfinite(loss) & (first_bad < 0), number)
            loss_sum.add_(loss.float(), alpha=len(idx))
            seen += len(idx)
            if class_scores is not None:
                classifier = True
                correct += (class_scores.argmax(dim=1) == y).sum()
        loss_sum, correct, seen_all = distributed.total(
            torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=device)]))  # one sync an epoch
        seen = int(seen_all)
        stats = {"loss": (loss_sum / max(seen, 1)).item(), "lr": self.optimizer.param_groups[0]["lr"]}  # this epoch's lr
        if classifier:
            stats["accuracy"] = (correct / max(seen, 1)).item()
        return _Epoch(stats, seen, len(batches), int(first_bad), classifier, began)

    def end_epoch(self, epoch: int, done: _Epoch) -> None:
        """The schedule's step and the divergence check."""
        settings = self.settings
        if self.scheduler is not None and (settings.scheduler != "cosine-official" or epoch > OFFICIAL_COSINE_START):
            self.scheduler.step()
        if settings.compile is not False:  # whether this epoch ran compiled (a failed compilation falls back)
            done.stats["compiled"] = float(self.objective.compiled)
        if done.first_bad >= 0:
            raise AsdbenchError(f"training of {self.label} diverged: the loss is not finite at epoch {epoch}, batch "
                                f"{done.first_bad} of {done.batches}; try a lower lr or grad_clip")

    def select(self, epoch: int, stats: dict[str, float], select_score: Callable[[AnomalyModel], float]) -> None:
        """Score the kept model for checkpoint selection; remember its weights when they are the best so far."""
        settings = self.settings
        stats["select_score"] = select_score(self.kept_model)
        if math.isnan(stats["select_score"]):
            what = ("AUC + pAUC on the test set" if settings.select == "oracle" else
                    "minus the loss on the held-out training clips")
            raise AsdbenchError(f"select={settings.select}: the selection score ({what}) of {self.label} is NaN "
                                f"at epoch {epoch}; no checkpoint can be chosen (a test ID lacks normal or "
                                "anomalous clips, or its scores or losses are not finite)")
        if self.best is None or stats["select_score"] > self.best[0]:
            self.best = (stats["select_score"], epoch,
                         {k: v.detach().clone() for k, v in self.kept_model.state_dict().items()})

    def keep(self) -> int:
        """Load the weights the run keeps into the model: the best selected, else the moving average, else the
        last; their epoch."""
        if self.best is not None:
            self.model.load_state_dict(self.best[2])
            return self.best[1]
        if self.ema is not None:
            self.model.load_state_dict(self.ema.averaged.state_dict())
        return self.settings.epochs


def train(
    model: AnomalyModel,
    data: Examples,
    settings: TrainSettings,
    runtime: Runtime,
    generator: torch.Generator,
    reporter: Reporter,
    label: str,
    on_epoch: Callable[[int, dict[str, float]], None],
    checkpoint: Slot | None,
    select_score: Callable[[AnomalyModel], float] | None = None,
    on_checkpoint: Callable[[int], None] = lambda epoch: None,
    augmentation: FeatureAugmentation | MixAugmentation | None = None,
    classes: int = 0,
) -> int:
    """Adam over frontend, backbone and loss weights, checkpointed. Returns the kept epoch.

    A checkpoint is written after the first epoch, then after any epoch ending at least
    ``checkpoint_every_s`` after the last one, and at the end (marked finished, with the kept
    weights): an interruption loses at most that much training, and short epochs do not spend
    their time writing files. ``on_checkpoint(epoch)`` precedes each write (what it records about the
    epochs so far is durable as soon as the checkpoint is). A ``checkpoint`` slot to
    resume from continues where it stopped, with every state restored (:mod:`asdbench.training.checkpoint`);
    a finished one returns at once with its weights and random states.

    ``select="val"`` does the same with ``select_score`` returning minus the validation loss. With ``ema`` the
    moving average is what is scored, kept and returned in ``model``. ``select="oracle"`` calls
    ``select_score(model)`` (a score on the test set, higher is better)
    every ``select_every`` epochs and restores the best weights at the end, as the
    STgram-MFN authors selected their checkpoint; the default keeps the last epoch. A NaN
    selection score is an error: it would compare below every later epoch and silently keep
    an early one. A diverged epoch is reported with the batch where it began.
    """
    training = _Training(model, data, settings, runtime, generator, reporter, label, augmentation, classes)
    resumed = checkpoint.load() if checkpoint is not None else None
    if checkpoint is not None and checkpoint.resume and resumed is None:
        reporter.info(f"[yellow]Model '{label}': no checkpoint to resume from ({checkpoint.path}); it trains from the "
                      "start[/yellow]")
    start = 1
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        restore_rng(resumed["rng"], generator)
        if resumed["finished"]:
            reporter.info(f"Model '{label}': trained to epoch {resumed['epoch']} before the interruption; "
                          f"kept epoch {resumed['kept']} from its checkpoint")
            return resumed["kept"]
        training.restore(resumed)
        start = resumed["epoch"] + 1
        reporter.info(f"Model '{label}': resumed after epoch {resumed['epoch']} of {settings.epochs}")

    def save(epoch: int, finished: bool, kept: int = 0) -> None:
        on_checkpoint(epoch)
        checkpoint.save(training.state(epoch, finished, kept))

    saved = time.monotonic()
    with reporter.task(f"Training {label}", settings.epochs) as step:
        step.advance(start - 1)
        for epoch in range(start, settings.epochs + 1):
            done = training.run_epoch()
            training.end_epoch(epoch, done)
            if settings.select != "last" and select_score is not None and (
                    epoch % settings.select_every == 0 or epoch == settings.epochs):
                training.select(epoch, done.stats, select_score)
            on_epoch(epoch, done.stats)
            if checkpoint is not None and epoch < settings.epochs and (
                    epoch == 1 or time.monotonic() - saved >= settings.checkpoint_every_s):
                save(epoch, finished=False)
                saved = time.monotonic()
            seconds = time.perf_counter() - done.began
            step.advance(status=f"loss {done.stats['loss']:.4g}"
                         + (f" acc {done.stats['accuracy']:.3f}" if done.classifier else "")
                         + f" {seconds:.1f} s {done.seen / seconds:,.0f} examples/s")
    kept = training.keep()
    if checkpoint is not None:
        save(settings.epochs, finished=True, kept=kept)
    return kept
