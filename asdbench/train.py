"""The one training loop every system shares, and batched scoring."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from asdbench import distributed
from asdbench.api import ModelOutput
from asdbench.build import AnomalyModel
from asdbench.checkpoint import Slot, restore_rng, rng_state
from asdbench.errors import AsdbenchError
from asdbench.mixup import Mixer
from asdbench.progress import Reporter
from asdbench.runtime import Runtime
from asdbench.step import Objective, make_optimizer, prepare, train_step

INT16_SCALE = 1.0 / 32768.0
OFFICIAL_COSINE_START = 20  # the STgram-MFN code steps its cosine schedule only after epoch 20
# compile=auto compiles a model whose remaining epochs would take at least this long eagerly, judged by its first
# epoch: compiling STgram-MFN took about a minute on 2 CPU cores and then trained 2.2x faster (benchmarks/README.md),
# so 5 minutes leaves a margin for systems that gain less; shorter runs, tests among them, stay eager.
AUTO_COMPILE_MIN_SECONDS = 300.0


def as_float(waves: torch.Tensor) -> torch.Tensor:
    """Stored waveforms as float32 in [-1, 1]: int16 ones scaled (a new tensor), float32 ones as they are."""
    return waves.float().mul_(INT16_SCALE) if waves.dtype == torch.int16 else waves.float()


def target_matrix(rows: list[list[int]]) -> torch.Tensor:
    """Targets of clips to score: one class each as a ``(N,)`` tensor; where a clip may be of several classes (the
    attribute classes of its section), ``(N, K)``, padded with -1."""
    width = max(map(len, rows), default=1)
    if width == 1:
        return torch.tensor([r[0] for r in rows], dtype=torch.long)
    return torch.tensor([r + [-1] * (width - len(r)) for r in rows], dtype=torch.long)


@dataclass
class Examples:
    """Training or scoring inputs: stored waveforms (int16 or float32), or float features when the frontend has
    no weights."""

    inputs: torch.Tensor
    targets: torch.Tensor
    features_ready: bool
    _rows: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return self.targets.shape[0]

    def nbytes(self) -> int:
        return self.inputs.numel() * self.inputs.element_size()

    def subset(self, rows: list[int]) -> Examples:
        """The examples ``rows``, in that order (all of them without a copy)."""
        if rows == list(range(len(self))):
            return self
        idx = torch.tensor(rows, dtype=torch.long)
        return Examples(self.inputs[idx], self.targets[idx], self.features_ready)

    def to(self, device: torch.device) -> Examples:
        return Examples(self.inputs.to(device), self.targets.to(device), self.features_ready)

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the inputs, into a buffer reused from batch to batch: allocating a fresh batch
        each time cost page faults that took three times the copy itself (dcase-ae's frame batches)."""
        if self._rows is None or len(self._rows) < len(idx):
            self._rows = torch.empty((len(idx), *self.inputs.shape[1:]), dtype=self.inputs.dtype)
        return torch.index_select(self.inputs, 0, idx, out=self._rows[: len(idx)])

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples ``idx`` on ``device`` as float32; int16 waveforms are scaled here.
        On the CPU the returned inputs live in a reused buffer: valid until the next call."""
        if self.inputs.device != device:
            idx = idx.to(self.inputs.device)
            x, y = self.inputs[idx], self.targets[idx]
            if device.type == "cuda" and x.device.type == "cpu":
                x, y = x.pin_memory(), y.pin_memory()
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        elif device.type == "cpu":
            x, y = self._gather(idx), self.targets[idx]
        else:
            idx = idx.to(device)
            x, y = self.inputs[idx], self.targets[idx]
        return as_float(x), y


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


def _on(device: torch.device, batches) -> list[torch.Tensor]:
    """The epoch's batches of indices on ``device``: on a GPU copied in one transfer, since copying each batch's
    indices from the host blocked the host until the GPU had caught up, once per step."""
    batches = list(batches)
    if device.type == "cpu" or not batches:
        return batches
    return list(torch.cat(batches).to(device).split([len(b) for b in batches]))


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


def _repays_compiling(eager_seconds: float, device: torch.device) -> bool:
    """Whether the epochs left, ``eager_seconds`` long eagerly, are worth compiling for; every process of a
    distributed run compiles if one of them would."""
    return bool(distributed.total(torch.tensor(float(eager_seconds >= AUTO_COMPILE_MIN_SECONDS), device=device)) > 0)


def hold_out(data: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Training and validation examples: of each class with two or more examples, ``fraction`` of them (at least
    one), drawn with ``seed``, held out (``select=val``)."""
    generator = torch.Generator().manual_seed(seed)
    held: list[int] = []
    for c in data.targets.unique():
        rows = (data.targets == c).nonzero().squeeze(1)
        if len(rows) >= 2:
            n = max(1, round(fraction * len(rows)))
            held += rows[torch.randperm(len(rows), generator=generator)[:n]].tolist()
    kept = sorted(set(range(len(data))) - set(held))
    return data.subset(kept), data.subset(sorted(held))


@torch.no_grad()
def validation_loss(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int) -> float:
    """The training loss on held-out examples, in eval mode and float32 (ArcFace: with its margin, no mixing)."""
    total, count = torch.zeros((), device=device), 0
    for output, y in _forward(model, data, device, batch_size, frame_axis=False):
        total += model.loss(output, y).float() * len(y)
        count += len(y)
    return (total / max(count, 1)).item()


def _scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, batches_per_epoch: int):
    if settings.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs, eta_min=settings.lr_min)
    if settings.scheduler == "cosine-official":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=batches_per_epoch)
    return None


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
    evaluate: Callable[[AnomalyModel], float] | None = None,
    on_checkpoint: Callable[[int], None] = lambda epoch: None,
) -> int:
    """Adam over frontend, backbone and loss weights, checkpointed. Returns the kept epoch.

    A checkpoint is written after the first epoch, then after any epoch ending at least
    ``checkpoint_every_s`` after the last one, and at the end (marked finished, with the kept
    weights): an interruption loses at most that much training, and short epochs do not spend
    their time writing files. ``on_checkpoint(epoch)`` precedes each write (what it records about the
    epochs so far is durable as soon as the checkpoint is). A ``checkpoint`` slot to
    resume from continues where it stopped, with every state restored (:mod:`asdbench.checkpoint`);
    a finished one returns at once with its weights and random states.

    ``select="val"`` does the same with ``evaluate`` returning minus the validation loss. With ``ema`` the moving
    average is what is evaluated, kept and returned in ``model``. ``select="oracle"`` calls
    ``evaluate(model)`` (a score on the test set, higher is better)
    every ``select_every`` epochs and restores the best weights at the end, as the
    STgram-MFN authors selected their checkpoint; the default keeps the last epoch. A NaN
    selection score is an error: it would compare below every later epoch and silently keep
    an early one.

    Losses are summed on the device and read once per epoch: no host sync per step. The first
    batch whose loss is not finite is noted on the device too, so a diverged epoch is reported
    with the batch where it began.
    """
    device, amp = runtime.device, runtime.amp
    prepare(model, device, settings.channels_last, compiled=settings.compile is True)
    data = place(data, device)
    optimizer = make_optimizer(model, settings.lr, settings.weight_decay, settings.optimizer)
    mixer = Mixer(settings.mixup, settings.mixup_alpha, settings.mixup_partner)
    ema = MovingAverage(model, settings.ema, settings.ema_live_decay) if settings.ema > 0 else None
    objective = Objective(model, settings.compile is True, lambda message: reporter.info(f"[yellow]{message}[/yellow]"),
                          distributed.wrap(model, device))
    auto = settings.compile == "auto"

    def start_compiling() -> None:  # compile=auto's switch: the compiled step and the memory format it runs best in
        objective.compile()
        prepare(model, device, settings.channels_last, compiled=True)
    scheduler = _scheduler(optimizer, settings, max(1, math.ceil(len(data) / settings.batch_size)))
    best: tuple[float, int, dict] | None = None
    resumed = checkpoint.load() if checkpoint is not None else None
    start = 1
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        restore_rng(resumed["rng"], generator)
        if resumed["finished"]:
            reporter.info(f"Model '{label}': trained to epoch {resumed['epoch']} before the interruption; "
                          f"kept epoch {resumed['kept']} from its checkpoint")
            return resumed["kept"]
        optimizer.load_state_dict(resumed["optimizer"])
        if ema is not None:
            ema.load_state_dict(resumed["ema"])
        if scheduler is not None:
            scheduler.load_state_dict(resumed["scheduler"])
        best = resumed["best"]
        start = resumed["epoch"] + 1
        if auto and resumed.get("compiled"):  # decided after the first epoch, before the interruption
            start_compiling()
        reporter.info(f"Model '{label}': resumed after epoch {resumed['epoch']} of {settings.epochs}")

    def save(epoch: int, finished: bool, kept: int = 0) -> None:
        on_checkpoint(epoch)
        checkpoint.save({"epoch": epoch, "finished": finished, "kept": kept, "model": model.state_dict(),
                         "optimizer": optimizer.state_dict(), "rng": rng_state(generator),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None,
                         "best": None if finished else best, "compiled": objective.compiled,
                         **({"ema": ema.state_dict()} if ema is not None else {})})

    saved = time.monotonic()
    with reporter.task(f"Training {label}", settings.epochs) as step:
        step.advance(start - 1)
        for epoch in range(start, settings.epochs + 1):
            began = time.perf_counter()
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            first_bad = torch.full((), -1, dtype=torch.long, device=device)
            seen, classifier = 0, False
            batches = _batches(len(data), settings.batch_size, generator)
            mixer.start_epoch(generator)
            for number, (batch, idx) in enumerate(zip(batches, _on(data.inputs.device, map(distributed.shard, batches))),
                                                  start=1):
                # idx: this process's share of the global batch, where the data are
                x, y = data.batch(idx, device)
                # DDP averages the processes' gradients; weighting each by its share makes that the global batch's
                # mean when shares differ in size (a last batch that does not divide evenly)
                loss, class_scores = train_step(model, optimizer, x, y, data.features_ready, amp, settings.grad_clip,
                                                objective, len(idx) * distributed.world_size() / len(batch),
                                                mixer.draw(len(idx), device))
                if ema is not None:
                    ema.update(model)
                first_bad.masked_fill_(~torch.isfinite(loss) & (first_bad < 0), number)
                loss_sum.add_(loss.float(), alpha=len(idx))
                seen += len(idx)
                if class_scores is not None:
                    classifier = True
                    correct += (class_scores.argmax(dim=1) == y).sum()
            loss_sum, correct, seen_all = distributed.total(
                torch.stack([loss_sum, correct.float(), torch.tensor(float(seen), device=device)]))  # one sync an epoch
            seen = int(seen_all)
            stats = {"loss": (loss_sum / max(seen, 1)).item(), "lr": optimizer.param_groups[0]["lr"]}  # this epoch's lr
            if scheduler is not None and (settings.scheduler != "cosine-official" or epoch > OFFICIAL_COSINE_START):
                scheduler.step()
            if classifier:
                stats["accuracy"] = (correct / max(seen, 1)).item()
            if settings.compile is not False:  # whether this epoch ran compiled
                stats["compiled"] = float(objective.compiled)
            eager_left = (time.perf_counter() - began) * (settings.epochs - epoch)
            if auto and epoch == 1 and _repays_compiling(eager_left, device):
                start_compiling()
                reporter.info(f"Model '{label}': the remaining {settings.epochs - 1} epochs are compiled (compile=auto: "
                              f"about {eager_left / 60:.0f} min eagerly)")
            if (bad := int(first_bad)) >= 0:
                raise AsdbenchError(f"training of {label} diverged: the loss is not finite at epoch {epoch}, batch {bad} "
                                    f"of {len(batches)}; try a lower lr or grad_clip")
            if settings.select != "last" and evaluate is not None and (epoch % settings.select_every == 0 or epoch == settings.epochs):
                evaluated = ema.averaged if ema is not None else model  # what the run keeps
                stats["select_score"] = evaluate(evaluated)
                if math.isnan(stats["select_score"]):
                    what = ("AUC + pAUC on the test set" if settings.select == "oracle" else
                            "minus the loss on the held-out training clips")
                    raise AsdbenchError(f"select={settings.select}: the selection score ({what}) of {label} is NaN "
                                        f"at epoch {epoch}; no checkpoint can be chosen (a test ID lacks normal or "
                                        "anomalous clips, or its scores or losses are not finite)")
                if best is None or stats["select_score"] > best[0]:
                    best = (stats["select_score"], epoch, {k: v.detach().clone() for k, v in evaluated.state_dict().items()})
            on_epoch(epoch, stats)
            if checkpoint is not None and epoch < settings.epochs and (
                    epoch == 1 or time.monotonic() - saved >= settings.checkpoint_every_s):
                save(epoch, finished=False)
                saved = time.monotonic()
            seconds = time.perf_counter() - began
            status = (f"loss {stats['loss']:.4g}" + (f" acc {stats['accuracy']:.3f}" if classifier else "")
                      + f" {seconds:.1f} s {seen / seconds:,.0f} examples/s")
            step.advance(status=status)
    kept = settings.epochs
    if best is not None:
        model.load_state_dict(best[2])
        kept = best[1]
    elif ema is not None:
        model.load_state_dict(ema.averaged.state_dict())
    if checkpoint is not None:
        save(settings.epochs, finished=True, kept=kept)
    return kept


def _forward(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int, frame_axis: bool,
             step=None) -> Iterator[tuple[ModelOutput, torch.Tensor]]:
    """Eval-mode forward passes over every example in order, batch by batch: each batch's output and targets."""
    model.to(device).eval()
    for idx in _on(data.inputs.device, torch.arange(len(data)).split(batch_size)):
        x, y = data.batch(idx, device)
        yield model(x, data.features_ready, frame_axis), y
        if step is not None:
            step.advance(len(idx))


def _embedding(output: ModelOutput, frame_axis: bool) -> torch.Tensor | None:
    """A batch's clip embeddings as ``(B, D)`` float32 (patches' averaged), or ``None``."""
    if output.embedding is None:
        return None
    emb = output.embedding.float()
    return (emb.mean(dim=1) if frame_axis else emb).flatten(1)


def score_targets(scorer, output: ModelOutput, targets: torch.Tensor, loss) -> torch.Tensor:
    """Scores of a batch; targets of shape ``(N, K)`` (:func:`target_matrix`) score each clip against each of its
    classes and keep the lowest: the class the clip most plausibly is."""
    if targets.dim() == 1:
        return scorer.score(output, targets, loss).float()
    each = [torch.where(targets[:, k] >= 0, scorer.score(output, targets[:, k].clamp(min=0), loss).float(), torch.inf)
            for k in range(targets.shape[1])]
    return torch.stack(each).amin(dim=0)


@torch.no_grad()
def embed(model: AnomalyModel, data: Examples, device: torch.device, batch_size: int,
          frame_axis: bool = False) -> torch.Tensor:
    """The clips' embeddings ``(N, D)``, in order, on the CPU: what a fitted scorer learns from."""
    out = [_embedding(output, frame_axis) for output, _ in _forward(model, data, device, batch_size, frame_axis)]
    if not out or any(e is None for e in out):
        raise AsdbenchError("this scorer fits on embeddings, but the backbone returns none")
    return torch.cat(out).cpu()


@torch.no_grad()
def score(
    model: AnomalyModel, scorer, data: Examples, device: torch.device, batch_size: int,
    frame_axis: bool = False, reporter: Reporter | None = None, label: str = "",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Anomaly scores of all clips, in order, computed in batches in eval mode (see ``AnomalyModel.forward``),
    and the clips' embeddings (averaged over frames) when the backbone has them. Targets of shape ``(N, K)`` score
    each clip against each of its classes (:func:`score_targets`).

    Always in float32, whatever the training precision: a score is what the benchmark reports, and
    bf16's 8-bit mantissa would tie and reorder close scores, so AUCs would move with the precision."""
    out, embeddings = [], []
    task = reporter.task(f"Scoring {label}", len(data)) if reporter else nullcontext(None)
    with task as step:
        for output, y in _forward(model, data, device, batch_size, frame_axis, step):
            out.append(score_targets(scorer, output, y, model.loss))
            if (emb := _embedding(output, frame_axis)) is not None:
                embeddings.append(emb)
    scores = torch.cat(out).cpu() if out else torch.zeros(0)
    return scores, (torch.cat(embeddings).cpu() if embeddings and len(embeddings) == len(out) else None)
