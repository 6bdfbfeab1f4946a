"""What a model trains on and scores: clips read into tensors (:class:`Reader`, through the wave and feature
caches), the :class:`Examples` container that batches them, and the targets of clips to score.

Serving and training both build :class:`Examples`; nothing here knows how a model is trained.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from asdbench.api import Clip, Dataset, Frontend, WindowedFrontend
from asdbench.api.model import arranged_windows
from asdbench.config import RunConfig
from asdbench.data import feature_cache, wave_cache
from asdbench.data.fingerprint import code_fingerprint
from asdbench.data.groups import Group
from asdbench.data.machines import unwrap
from asdbench.errors import AsdbenchError
from asdbench.progress import Reporter

INT16_SCALE = 1.0 / 32768.0

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

@dataclass(frozen=True)
class Windowing:
    """How the examples of a :class:`~asdbench.api.WindowedFrontend` come from the stored base features: ``count``
    windows per clip, of ``size`` frames every ``step``, each arranged by the frontend."""

    size: int
    step: int
    count: int
    arrange: Callable[[torch.Tensor], torch.Tensor]

    @classmethod
    def of(cls, frontend: WindowedFrontend, frames: int) -> Windowing:
        size, step = frontend.window(frames)
        return cls(size, step, (frames - size) // step + 1, frontend.arrange)

    def rows(self, base: torch.Tensor) -> torch.Tensor:
        """``base`` (contiguous, time first) as a matrix with a row per time step holding the ``size`` frames from
        there on: the window at step ``t`` of clip ``c`` is row ``c * frames + t``, one block of memory (a view)."""
        block = base[0, 0].numel()
        return base.as_strided((base.shape[0] * base.shape[1] - self.size + 1, self.size * block), (block, 1),
                               base.storage_offset())

    def row_of(self, base: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The :meth:`rows` row of each framed example ``index`` (clip-major, as the frontend's windows)."""
        return index // self.count * base.shape[1] + index % self.count * self.step


@dataclass
class Examples:
    """Training or scoring inputs: stored waveforms (int16 or float32), or float features when the frontend has
    no weights. With ``windows``, ``inputs`` are a windowed frontend's base features and the examples are cut from
    them as batches are gathered: whole clips (``(clips, windows, ...)``, as the frontend's output), or with
    ``framed`` one window each (``train_unit=frame``)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    features_ready: bool
    windows: Windowing | None = None
    framed: bool = False  # one example per window (windows), per clip otherwise
    picked: torch.Tensor | None = None  # framed: the windows kept (a subset of them), in order; None: every window
    domains: torch.Tensor | None = None  # per clip: True for the target domain (what domain-aware scorers fit on)
    _rows: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        if self.picked is not None:
            return len(self.picked)
        return self.targets.shape[0] * (self.windows.count if self.framed else 1)

    def _real(self, idx: torch.Tensor) -> torch.Tensor:
        """Example numbers as the windows of every clip count them (a framed subset's, mapped through ``picked``)."""
        return idx if self.picked is None else self.picked.to(idx.device)[idx]

    def nbytes(self) -> int:
        return self.inputs.numel() * self.inputs.element_size()

    @property
    def example_shape(self) -> tuple[int, ...]:
        if self.windows is None:
            return tuple(self.inputs.shape[1:])
        return tuple(self.example(0).shape[1:])

    def subset(self, rows: list[int]) -> Examples:
        """The examples ``rows``, in that order (all of them without a copy); of framed windows, the windows picked
        (the base features are shared, not copied)."""
        if rows == list(range(len(self))):
            return self
        if self.framed:
            return replace(self, picked=self._real(torch.tensor(rows, dtype=torch.long)), _rows=None)
        idx = torch.tensor(rows, dtype=torch.long)
        return replace(self, inputs=self.inputs[idx], targets=self.targets[idx], _rows=None,
                       domains=None if self.domains is None else self.domains[idx])

    def joined(self, other: Examples) -> Examples:
        """These clips, then ``other``'s (the same kind of inputs: waves or features of one shape), as one set."""
        domains = None if self.domains is None or other.domains is None else torch.cat([self.domains, other.domains])
        return replace(self, inputs=torch.cat([self.inputs, other.inputs.to(self.inputs.dtype)]),
                       targets=torch.cat([self.targets, other.targets]), domains=domains, _rows=None)

    def example_domains(self) -> torch.Tensor:
        """Each example's domain (True: target), from its clip's; all source where the clips have none."""
        clips = self.targets.shape[0]
        domains = self.domains if self.domains is not None else torch.zeros(clips, dtype=torch.bool)
        if not self.framed:
            return domains
        return domains[self._real(torch.arange(len(self))) // self.windows.count]

    def with_targets(self, targets: torch.Tensor) -> Examples:
        return replace(self, targets=targets, _rows=None)

    def to(self, device: torch.device) -> Examples:
        return replace(self, inputs=self.inputs.to(device), targets=self.targets.to(device), _rows=None)

    def example(self, i: int) -> torch.Tensor:
        """Example ``i`` as float32, batch axis kept, where the inputs are (not the reused batch buffer)."""
        idx = torch.tensor([i], device=self.inputs.device)
        return as_float(self._cut(self._real(idx)) if self.windows is not None else self.inputs[idx])

    def all_inputs(self) -> torch.Tensor:
        """Every example at once (input statistics such as a per-band standardisation are fitted on them)."""
        if self.windows is None:
            return self.inputs
        return self._cut(self._real(torch.arange(len(self), device=self.inputs.device)))

    def _cut(self, idx: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """Examples ``idx`` of windowed inputs (``idx`` where the inputs are), gathered into ``out`` if given."""
        windows = self.windows
        if not self.framed:
            return arranged_windows(self.inputs[idx], windows.size, windows.step, windows.arrange)
        flat = torch.index_select(windows.rows(self.inputs), 0, windows.row_of(self.inputs, idx), out=out)
        return windows.arrange(flat.view(len(idx), windows.size, *self.inputs.shape[2:]))

    def _targets(self, idx: torch.Tensor) -> torch.Tensor:
        return self.targets[idx // self.windows.count if self.framed else idx]

    def _buffer(self, rows: int, shape: tuple[int, ...]) -> torch.Tensor:
        """A batch buffer reused from batch to batch: allocating a fresh batch each time cost page faults that took
        three times the copy itself (dcase-ae's frame batches)."""
        if self._rows is None or len(self._rows) < rows:
            self._rows = torch.empty((rows, *shape), dtype=self.inputs.dtype)
        return self._rows[:rows]

    def _gather(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` of the inputs, into the reused buffer."""
        return torch.index_select(self.inputs, 0, idx, out=self._buffer(len(idx), tuple(self.inputs.shape[1:])))

    def batch(self, idx: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples ``idx`` on ``device`` as float32; int16 waveforms are scaled here.
        On the CPU the returned inputs live in a reused buffer: valid until the next call."""
        if self.windows is not None:
            idx = self._real(idx.to(self.inputs.device))
            reuse = self.framed and device.type == "cpu" and self.inputs.device.type == "cpu"
            buffer = self._buffer(len(idx), (self.windows.size * self.inputs[0, 0].numel(),)) if reuse else None
            x, y = self._cut(idx, buffer), self._targets(idx)
            return as_float(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
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

def indices_on(device: torch.device, batches) -> list[torch.Tensor]:
    """The epoch's batches of indices on ``device``: on a GPU copied in one transfer, since copying each batch's
    indices from the host blocked the host until the GPU had caught up, once per step."""
    batches = list(batches)
    if device.type == "cpu" or not batches:
        return batches
    return list(torch.cat(batches).to(device).split([len(b) for b in batches]))


FEATURE_BATCH = 64


def microphones_of(dataset: Dataset) -> int:
    """The channels each of the data set's clips is read with (its optional ``microphones``; the layout data sets: 2
    with ``dataset.channel=both``, DCASE 2026's near and far microphones), 1 where it says nothing."""
    return int(getattr(unwrap(dataset), "microphones", 1))


def sample_loader(dataset: Dataset) -> Callable[[Clip, int], np.ndarray]:
    """``load(clip, num_samples)``: ``dataset.load``, asked to read only the first ``num_samples`` where it takes
    ``max_samples`` (an optional parameter of the Dataset contract: a long recording is then not decoded whole to keep
    its start). The signature is read once, not per clip."""
    if "max_samples" in inspect.signature(dataset.load).parameters:
        return lambda clip, num_samples: dataset.load(clip, max_samples=num_samples)
    return lambda clip, num_samples: dataset.load(clip)

class Lengths:
    """Shortest and longest decoded clip, and how many were padded or cut, for the run log."""

    def __init__(self, num_samples: int) -> None:
        self.num_samples = num_samples
        self.shortest, self.longest, self.padded, self.cut = None, 0, 0, 0

    def add(self, sizes: np.ndarray) -> None:
        if not len(sizes):
            return
        self.shortest = int(sizes.min()) if self.shortest is None else min(self.shortest, int(sizes.min()))
        self.longest = max(self.longest, int(sizes.max()))
        self.padded += int((sizes < self.num_samples).sum())
        self.cut += int((sizes > self.num_samples).sum())

class Reader:
    """Waveforms and features of clip lists, for one run: decoded into the wave cache, featurised into the
    feature cache (weightless frontends), with the lengths seen along the way."""

    def __init__(self, dataset: Dataset, source: str, num_samples: int, pad: str, dtype: np.dtype, device: torch.device,
                 reporter: Reporter, use_cache: bool) -> None:
        self.dataset, self.source, self.num_samples, self.pad, self.dtype = dataset, source, num_samples, pad, dtype
        self.device, self.reporter, self.use_cache = device, reporter, use_cache
        self.microphones = microphones_of(dataset)
        self.lengths = Lengths(num_samples)
        # The inputs of the last training clip list read: groups that share their training clips (``id-vs-others``:
        # every ID of a type) decode and featurise them once. One entry, so memory stays that of one group.
        self._last: tuple[tuple[Clip, ...], torch.Tensor, np.ndarray] | None = None

    def waves(self, clips: tuple[Clip, ...], label: str) -> tuple[torch.Tensor, np.ndarray]:
        """The clips as a matrix, each cut to its first ``num_samples`` samples or padded, and their lengths
        before that (at most ``num_samples + 1`` where the dataset reads only what is needed): int16 where that is
        exact (16-bit PCM, half the memory of float32), else float32."""
        d = self.dataset
        loader, num_samples = sample_loader(d), self.num_samples
        load, length_of = (lambda clip: loader(clip, num_samples)), self._length_of
        with self.reporter.task(f"Reading {label}", len(clips)) as step:
            if self.use_cache:
                waves, sizes = wave_cache.load_or_decode(self.source, d.sample_rate, self.num_samples, self.pad,
                                                         self.dtype, clips, load, step.advance, length_of, d.name,
                                                         self.microphones)
            else:
                waves = np.zeros(wave_cache.wave_shape(len(clips), self.microphones, self.num_samples), dtype=self.dtype)
                sizes = wave_cache.decode_into(waves, clips, load, self.pad, step.advance, length_of)
        return torch.from_numpy(waves[: len(clips)]), sizes

    def _length_of(self, clip: Clip, wave: np.ndarray) -> int:
        """A clip's length at the data set's rate: decoded, or (where only its start was read, and the data set reads
        headers) from its header, so the run's report of lengths and cut clips holds for long recordings too."""
        check = getattr(self.dataset, "check", None)
        if wave.shape[-1] <= self.num_samples or check is None:
            return wave.shape[-1]
        found = check(clip)
        return math.ceil(found.frames * self.dataset.sample_rate / found.sample_rate)

    def _cached_shape(self, frontend: Frontend) -> tuple[int, ...]:
        """The features of one clip as they are stored: a windowed frontend's base (its windows are cut later)."""
        if isinstance(frontend, WindowedFrontend):
            return frontend.base_shape(self.num_samples)
        return frontend.output_shape(self.num_samples)

    @torch.no_grad()
    def _features_into(self, out: np.ndarray, frontend: Frontend, waves: torch.Tensor, label: str) -> None:
        """``waves``' features as they are stored (:meth:`_cached_shape`) into ``out``, in batches."""
        compute = frontend.base if isinstance(frontend, WindowedFrontend) else frontend
        frontend.to(self.device).eval()
        with self.reporter.task(f"Features {label}", len(waves)) as step:
            for start in range(0, len(waves), FEATURE_BATCH):
                batch = waves[start : start + FEATURE_BATCH]
                out[start : start + len(batch)] = compute(as_float(batch.to(self.device))).cpu().numpy()
                step.advance(len(batch))

    def examples(self, frontend: Frontend, fingerprint: str, group: Group, clips: tuple[Clip, ...], label: str,
                 lengths: Lengths, reuse: bool = False, scoring: bool = False) -> Examples:
        """Waveforms of ``clips``, or their features when the frontend has no weights: computed once per run,
        and with the cache once across runs (see :mod:`asdbench.data.feature_cache`). ``reuse``: keep the inputs
        for the next call with the same clips. The clips' lengths go into ``lengths`` (the model's) and, when
        read afresh, into the run's. ``scoring``: targets are every class a clip may be of (test clips)."""
        targets = (target_matrix([group.alternatives(c) for c in clips]) if scoring else
                   torch.tensor([group.target(c) for c in clips], dtype=torch.long))
        domains = torch.tensor([c.domain == "target" for c in clips], dtype=torch.bool)
        if reuse and self._last is not None and self._last[0] == clips:
            lengths.add(self._last[2])
            return _examples_of(frontend, self._last[1], targets, domains)

        def features(out: np.ndarray) -> np.ndarray:
            waves, sizes = self.waves(clips, label)
            self._features_into(out, frontend, waves, label)
            return sizes

        shape = None if frontend.has_weights else (len(clips), *self._cached_shape(frontend))
        if frontend.has_weights:
            inputs, sizes = self.waves(clips, label)
        elif self.use_cache:
            wave_key = wave_cache.cache_key(self.source, self.dataset.sample_rate, self.num_samples, self.pad, self.dtype,
                                            clips)
            cached, sizes = feature_cache.load_or_compute(wave_key, fingerprint, shape, features, self.dataset.name)
            inputs = torch.from_numpy(cached)
        else:
            inputs = torch.from_numpy(np.empty(shape, dtype=np.float32))
            sizes = features(inputs.numpy())
        self.lengths.add(sizes)
        lengths.add(sizes)
        if reuse:
            self._last = (clips, inputs, sizes)
        return _examples_of(frontend, inputs, targets, domains)

    def examples_of_waves(self, frontend: Frontend, waves: torch.Tensor, targets: torch.Tensor, label: str,
                          domains: torch.Tensor | None = None) -> Examples:
        """Examples of waves made in the run (augmented clips): their features computed as the clips' are (never
        cached: they exist only in this run), or the waves themselves for a frontend with weights, in the dtype the
        clips' waves have (int16 rounded and clipped as the wave cache stores them)."""
        if frontend.has_weights:
            inputs = torch.from_numpy(wave_cache.as_stored(waves.numpy(), np.dtype(self.dtype)))
        else:
            inputs = torch.from_numpy(np.empty((len(waves), *self._cached_shape(frontend)), dtype=np.float32))
            self._features_into(inputs.numpy(), frontend, waves, label)
        return _examples_of(frontend, inputs, targets, domains)


def _examples_of(frontend: Frontend, inputs: torch.Tensor, targets: torch.Tensor,
                 domains: torch.Tensor | None) -> Examples:
    """Examples of ``frontend``'s stored inputs: waves for a frontend with weights, else its features (a windowed
    frontend's base, windows cut as batches are gathered)."""
    windows = Windowing.of(frontend, inputs.shape[1]) if isinstance(frontend, WindowedFrontend) else None
    return Examples(inputs, targets, features_ready=not frontend.has_weights, windows=windows, domains=domains)


def as_frames(data: Examples) -> Examples:
    """Each frame (or patch) of each clip becomes one training example (``train_unit=frame``), in clip order."""
    if data.windows is not None:
        return replace(data, framed=True, _rows=None)
    if not data.features_ready or data.inputs.dim() < 3:
        raise AsdbenchError("train_unit=frame needs a frontend without weights that returns (clips, frames, ...) features")
    frames = data.inputs.shape[1]
    return Examples(data.inputs.flatten(0, 1), data.targets.repeat_interleave(frames), True,
                    domains=None if data.domains is None else data.domains.repeat_interleave(frames))

def loader_fingerprint(dataset: Dataset, config: RunConfig) -> str:
    """What the dataset's ``load`` depends on: its plugin, resolved parameters and code (the wave cache key)."""
    return code_fingerprint(unwrap(dataset), config.component("dataset"), config.params("dataset"), dataset.sample_rate)
