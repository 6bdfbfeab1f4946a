"""A trained model watching a machine: sliding windows over a long recording or a live stream, a score per window,
and events where the score stays above the threshold.

A model scores clips of the length it was trained on; a recording of an hour, or a stream that never ends, is cut
into windows of that length every ``hop`` seconds, scored in batches by the function ``score`` uses
(:meth:`asdbench.serving.model.TrainedModel.score_items`: a window scores exactly as the same samples cut into a
clip). A window stands for the stretch of ``hop`` seconds around its centre; consecutive windows above the threshold
make one event, reported once the score falls back (or the stream ends) if it lasted at least ``min_duration``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asdbench.errors import AsdbenchError


@dataclass(frozen=True)
class Window:
    """One scored window: seconds from the start of its source."""

    source: str
    start: float
    end: float
    score: float
    threshold: float
    frames: tuple[float, ...] = ()  # with frame scores asked for: each frame's score, in time order

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    @property
    def anomalous(self) -> bool:
        return self.score > self.threshold

    def record(self) -> dict[str, Any]:
        record = {"type": "window", **asdict(self), "anomalous": self.anomalous}
        if not self.frames:
            del record["frames"]
        return record

    def frame_times(self) -> np.ndarray:
        """The centre of each frame's share of the window (frame ``j`` of ``F`` stands for its ``j``-th ``F``-th)."""
        return self.start + (np.arange(len(self.frames)) + 0.5) * (self.end - self.start) / len(self.frames)


@dataclass(frozen=True)
class Event:
    """A stretch whose windows all scored above the threshold: from half a hop before the first window's centre to
    half a hop after the last one's, with the highest score and where it was."""

    source: str
    start: float
    end: float
    peak: float
    peak_time: float
    threshold: float
    windows: int

    @property
    def duration(self) -> float:
        return self.end - self.start

    def record(self) -> dict[str, Any]:
        return {"type": "event", **asdict(self), "duration": self.duration}


class Events:
    """Turns a source's windows, in order, into events."""

    def __init__(self, source: str, hop: float, min_duration: float) -> None:
        self.source, self.hop, self.min_duration = source, hop, min_duration
        self._run: list[Window] = []

    def update(self, window: Window) -> Event | None:
        if window.anomalous:
            self._run.append(window)
            return None
        return self.close()

    def close(self) -> Event | None:
        run, self._run = self._run, []
        if not run:
            return None
        peak = max(run, key=lambda w: w.score)
        event = Event(self.source, max(0.0, run[0].centre - self.hop / 2), run[-1].centre + self.hop / 2, peak.score,
                      peak.centre, peak.threshold, len(run))
        return event if event.duration >= self.min_duration - 1e-9 else None


class Windows:
    """Cuts a signal that arrives in blocks (time on the last axis) into windows of ``length`` samples every ``hop``
    samples, keeping only what the next window needs."""

    def __init__(self, length: int, hop: int) -> None:
        if hop <= 0:
            raise AsdbenchError("--hop must be longer than one sample")
        self.length, self.hop = length, hop
        self._buffer: np.ndarray | None = None
        self._buffer_start = 0  # the sample index of the buffer's first sample
        self._next = 0  # where the next window starts
        self.samples = 0  # how many samples have arrived

    def push(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The windows (start sample, samples) complete once ``block`` is added."""
        self.samples += block.shape[-1]
        self._buffer = block if self._buffer is None else np.concatenate([self._buffer, block], axis=-1)
        found = []
        while self._next + self.length <= self._buffer_start + self._buffer.shape[-1]:
            offset = self._next - self._buffer_start
            found.append((self._next, self._buffer[..., offset: offset + self.length]))
            self._next += self.hop
        drop = min(self._next - self._buffer_start, self._buffer.shape[-1])
        self._buffer, self._buffer_start = self._buffer[..., drop:], self._buffer_start + drop
        return found


@dataclass
class Progress:
    """What a monitor has done so far: audio seconds heard, compute seconds spent on them, windows, events."""

    audio_seconds: float = 0.0
    compute_seconds: float = 0.0
    windows: int = 0
    events: int = 0

    @property
    def real_time_factor(self) -> float:
        """Seconds of audio scored per second of computing: 20 means a core pair keeps up with 20 such streams."""
        return self.audio_seconds / self.compute_seconds if self.compute_seconds else float("inf")


class Monitor:
    """One machine watched by one model: blocks in, windows and events out.

    ``model`` is a :class:`asdbench.serving.model.TrainedModel`; ``machine`` the (type, ID) its decisions are for.
    """

    def __init__(self, model, machine: tuple[str, str], hop_seconds: float, min_duration: float,
                 batch_size: int, progress: Progress, frames: bool = False) -> None:
        self.model, self.machine, self.batch_size, self.progress = model, machine, batch_size, progress
        self.frames = frames  # also score each window's frames (frame-based models): where a window's score comes from
        if frames and not model.framed:
            model.frame_scores([], [], lambda i, n: None)  # the one-line refusal, before anything is read
        self.rate = model.sample_rate
        self.length = model.clip_samples(machine)
        self.hop_seconds = hop_seconds if hop_seconds > 0 else self.length / self.rate
        self.min_duration = min_duration
        self.threshold = model.thresholds[machine]
        self.interrupted = False

    def watch(self, source: str, blocks: Iterable[np.ndarray],
              on_window: Callable[[Window], None] = lambda w: None) -> Iterator[Event]:
        """The events of one source (a file, a stream), found as its blocks arrive (signal at the model's rate, read
        by the model's channel rule); every scored window is passed to ``on_window``."""
        windows = Windows(self.length, max(1, round(self.hop_seconds * self.rate)))
        events = Events(source, windows.hop / self.rate, self.min_duration)
        blocks = iter(blocks)
        while True:
            try:
                block = next(blocks, None)
            except KeyboardInterrupt:  # Ctrl-C ends a live stream: what was heard is still reported
                self.interrupted = True
                block = None
            if block is None:
                break
            cut = windows.push(block)
            self.progress.audio_seconds += block.shape[-1] / self.rate
            if not cut:
                continue
            for window in self._scored(source, cut):
                on_window(window)
                event = events.update(window)
                if event is not None:
                    self.progress.events += 1
                    yield event
        if windows.samples < self.length and not self.interrupted:
            raise AsdbenchError(f"{source}: {windows.samples / self.rate:.2f} s of audio, shorter than the model's "
                                f"{self.length / self.rate:g} s window: nothing could be scored")
        event = events.close()
        if event is not None:
            self.progress.events += 1
            yield event

    def _scored(self, source: str, cut: list[tuple[int, np.ndarray]]) -> list[Window]:
        started = time.perf_counter()
        scores = self.model.score_items(list(range(len(cut))), [self.machine] * len(cut),
                                        lambda i, n: cut[i][1], self.batch_size)
        self.progress.compute_seconds += time.perf_counter() - started
        self.progress.windows += len(cut)
        if not np.isfinite(scores).all():
            raise AsdbenchError(f"{source}: the model's score of a window is not finite, so no decision can be made")
        frames = self.model.frame_scores(list(range(len(cut))), [self.machine] * len(cut), lambda i, n: cut[i][1],
                                         self.batch_size) if self.frames else [()] * len(cut)
        return [Window(source, start / self.rate, (start + self.length) / self.rate, float(value), self.threshold,
                       tuple(float(f) for f in each)) for (start, _), value, each in zip(cut, scores, frames)]


def draw(windows: list[Window], spans: list[tuple[float, float]], threshold: float, path: Path, title: str) -> Path:
    """Score over time (each window at its centre), the threshold, the events shaded and, where the windows carry
    frame scores, every frame's score at its time (overlapping windows give several per time)."""
    from asdbench.evaluation.figures import timeline_figure

    lane = None
    if windows[0].frames:
        lane = (np.concatenate([w.frame_times() for w in windows]), np.concatenate([w.frames for w in windows]))
    return timeline_figure(np.array([w.centre for w in windows]), np.array([w.score for w in windows]), threshold,
                           spans, path, title, lane)


def timeline_of(model, path: Path, windows_per_clip: int = 10) -> tuple[list[Window], list[Event], float]:
    """A recording watched as ``monitor`` watches it, windows every tenth of the model's clip length (with frame
    scores for frame-based models): its windows, events and threshold, for a figure of where its score comes from."""
    from asdbench.serving.sources import wav_blocks

    machine = model.machine_of(path)
    hop = model.clip_samples(machine) / model.sample_rate / windows_per_clip
    monitor = Monitor(model, machine, hop, 0.0, 8, Progress(), frames=model.framed)
    seen: list[Window] = []
    events = list(monitor.watch(str(path), wav_blocks(path, model.sample_rate, model.channel), seen.append))
    return seen, events, monitor.threshold
