"""Where a monitor's audio comes from: a long WAV file, a folder that keeps receiving files, raw PCM on standard
input, or a sound card. Each gives blocks of the signal at the model's sample rate, read by the model's channel
rule, as :func:`asdbench.audio.read_wav` reads a clip (another rate is resampled as the stream goes,
:class:`asdbench.audio.StreamResampler`)."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf

from asdbench.audio import StreamResampler, channel_signal, wav_format
from asdbench.errors import AsdbenchError, reason

PCM_FORMATS = {"s16le": ("<i2", 32768.0), "s32le": ("<i4", 2147483648.0), "f32le": ("<f4", 1.0)}
MICROPHONE = "mic"  # SOURCE 'mic' or 'mic:DEVICE': a sound card, through sounddevice


def _converted(blocks: Iterator[np.ndarray], rate: int, target: int, channel: str, where: str) -> Iterator[np.ndarray]:
    """``(frames, channels)`` blocks at ``rate`` as the model's signal: its channel rule, its rate."""
    resampler = StreamResampler(rate, target)
    for block in blocks:
        out = resampler.push(np.ascontiguousarray(channel_signal(block, channel, where), dtype=np.float32))
        if out.shape[-1]:
            yield out
    rest = resampler.flush()
    if rest.shape[-1]:
        yield rest.astype(np.float32)


def wav_blocks(path: Path, rate: int, channel: str, block_seconds: float = 30.0) -> Iterator[np.ndarray]:
    """A WAV file of any length, a block at a time: memory holds a block, not the recording."""
    header = wav_format(path, scan=False)
    frames = max(1, round(block_seconds * header.sample_rate))

    def read() -> Iterator[np.ndarray]:
        try:
            yield from sf.blocks(str(path), blocksize=frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
            raise AsdbenchError(f"cannot read WAV {path}: {reason(exc, last=True)}") from None

    return _converted(read(), header.sample_rate, rate, channel, str(path))


def pcm_blocks(stream: BinaryIO, source_rate: int, channels: int, sample_format: str, rate: int, channel: str,
               block_seconds: float = 0.25) -> Iterator[np.ndarray]:
    """Raw interleaved PCM (``arecord -t raw``, ``ffmpeg -f s16le -``) as it arrives, until the stream ends."""
    if sample_format not in PCM_FORMATS:
        raise AsdbenchError(f"--format {sample_format}: one of {', '.join(PCM_FORMATS)}")
    dtype, scale = PCM_FORMATS[sample_format]
    frame = np.dtype(dtype).itemsize * channels
    wanted = max(1, round(block_seconds * source_rate)) * frame

    def read() -> Iterator[np.ndarray]:
        left = b""
        while True:
            data = stream.read1(wanted) if hasattr(stream, "read1") else stream.read(wanted)
            if not data:
                break
            data = left + data
            whole = len(data) // frame * frame
            left = data[whole:]
            if whole:
                yield (np.frombuffer(data[:whole], dtype=dtype).astype(np.float32) / scale).reshape(-1, channels)

    return _converted(read(), source_rate, rate, channel, "standard input")


def microphone_blocks(spec: str, rate: int, channels: int, channel: str,
                      block_seconds: float = 0.25) -> Iterator[np.ndarray]:
    """A sound card's input (``mic`` for the default device, ``mic:NAME`` or ``mic:INDEX`` for another), recorded at
    the model's rate, until interrupted. Needs the ``sounddevice`` package (and PortAudio)."""
    try:
        import sounddevice
    except (ImportError, OSError) as exc:
        raise AsdbenchError(f"{spec}: reading a sound card needs the sounddevice package and PortAudio "
                            f"(pip install sounddevice): {reason(exc)}") from None
    device: str | int | None = spec.partition(":")[2] or None
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    arrived: queue.Queue[np.ndarray] = queue.Queue()

    def read() -> Iterator[np.ndarray]:
        try:
            with sounddevice.InputStream(samplerate=rate, channels=channels, dtype="float32", device=device,
                                         blocksize=max(1, round(block_seconds * rate)),
                                         callback=lambda data, frames, when, status: arrived.put(data.copy())):
                while True:
                    yield arrived.get()
        except sounddevice.PortAudioError as exc:
            raise AsdbenchError(f"{spec}: the sound card cannot be read ({reason(exc)})") from None

    return _converted(read(), rate, rate, channel, spec)


def arriving_files(folder: Path, poll_seconds: float, idle_seconds: float,
                   sleep: Callable[[float], None] = time.sleep) -> Iterator[Path]:
    """The WAV files of ``folder`` (and below), sorted, then each file that arrives, once it is whole: its size has
    not changed over one poll. Ends after ``idle_seconds`` without a new file (0: never; Ctrl-C stops it)."""
    done: set[Path] = set()
    sizes: dict[Path, int] = {}
    quiet_since = time.monotonic()
    while True:
        found = False
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav" and not p.name.startswith(".")):
            if path in done:
                continue
            try:
                size = path.stat().st_size
            except OSError:  # renamed or removed between the listing and now
                continue
            if sizes.get(path) == size:
                done.add(path)
                found = True
                yield path
            else:
                sizes[path] = size
        if found or any(p not in done for p in sizes):
            quiet_since = time.monotonic()
        elif idle_seconds and time.monotonic() - quiet_since >= idle_seconds:
            return
        sleep(poll_seconds)
