"""``asdbench monitor``: a trained model watching a long recording, a folder of arriving files, raw PCM on
standard input or a sound card; JSON lines on stdout, exit codes a scheduler reads."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from asdbench.cli.model_cmd import MODEL_HELP, _load, model_options, threshold_options
from asdbench.cli.output import err_console
from asdbench.errors import AsdbenchError

EXIT_NOTHING, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
# Windows scored at once: STgram-MFN's 10 s windows every second ran at 33x real time in batches of 8 on 2 cores,
# 18x in the 64 of `score` (activations of large batches leave the CPU's caches; benchmarks/monitor.py)
MONITOR_BATCH = 8


class MonitorError(click.ClickException):
    """An error of ``monitor``: exit status 2, so that 1 keeps meaning "anomalies found"."""

    exit_code = EXIT_ERROR


def _emit(record: dict) -> None:
    click.echo(json.dumps(record, allow_nan=False))
    sys.stdout.flush()  # a pipe reader sees each line as it is decided


@click.command("monitor", epilog="SOURCE: a WAV file, a folder (watched for new WAV files), - (raw PCM on standard "
               "input: --rate, --channels, --format) or mic[:DEVICE] (a sound card; needs sounddevice). "
               "Exit status: 0 no event, 1 events found, 2 an error. " + MODEL_HELP)
@click.argument("model")
@click.argument("source")
@click.option("--hop", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Seconds between window starts (0: windows end to end). Windows are the model's clip length.")
@click.option("--min-duration", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds an event must last (scores above the threshold throughout) to be reported.")
@click.option("--events-only", is_flag=True, help="Write only events to stdout, not every window's score.")
@click.option("--frames", is_flag=True, help="Also score each window's frames (frame-based systems: dcase-ae, idnn, "
              "dcase2023-ae): in the window lines and as a lane of the plot, where a score comes from.")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Draw score over time, the threshold and the events to this PNG (a file or standard input).")
@click.option("--machine-type", default=None, help="Machine type of the source (default: from its folders, or the "
              "model's only type).")
@click.option("--machine-id", default=None, help="Machine ID of the source (default: from the file name, or the "
              "type's only ID).")
@click.option("--rate", type=click.IntRange(min=1), default=None,
              help="Standard input: its sample rate (default: the model's).")
@click.option("--channels", type=click.IntRange(min=1), default=1, show_default=True,
              help="Standard input and sound card: channels, interleaved.")
@click.option("--format", "sample_format", type=click.Choice(["s16le", "s32le", "f32le"]), default="s16le",
              show_default=True, help="Standard input: sample format.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Folder: seconds between looks for new files (a file is taken once its size stops changing).")
@click.option("--idle-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Folder: stop after this many seconds without a new file (0: watch until Ctrl-C).")
@threshold_options
@model_options(batch_size=MONITOR_BATCH)
def monitor_command(model: str, source: str, hop: float, min_duration: float, events_only: bool, frames: bool,
                    plot: Path | None,
                    machine_type: str | None, machine_id: str | None, rate: int | None, channels: int,
                    sample_format: str, poll: float, idle_timeout: float, threshold: float | None,
                    fpr: float | None, batch_size: int, device: str, tracking_uri: str | None) -> None:
    """Watch SOURCE with a trained MODEL: sliding windows, a score per window, events where the score stays above
    the threshold; JSON lines on stdout."""
    try:
        found = _monitor(model, source, hop, min_duration, events_only, frames, plot, machine_type, machine_id, rate,
                         channels, sample_format, poll, idle_timeout, threshold, fpr, batch_size, device, tracking_uri)
    except AsdbenchError as exc:
        raise MonitorError(str(exc)) from None
    sys.exit(EXIT_FOUND if found else EXIT_NOTHING)


def _monitor(model: str, source: str, hop: float, min_duration: float, events_only: bool, frames: bool,
             plot: Path | None,
             machine_type: str | None, machine_id: str | None, rate: int | None, channels: int, sample_format: str,
             poll: float, idle_timeout: float, threshold: float | None, fpr: float | None, batch_size: int,
             device: str, tracking_uri: str | None) -> int:
    """The number of events found."""
    from asdbench.serving.calibration import Override
    from asdbench.serving.monitor import Monitor, Progress, Window, draw
    from asdbench.serving.sources import MICROPHONE, arriving_files, microphone_blocks, pcm_blocks, wav_blocks

    override = Override(threshold, fpr)
    path = Path(source).expanduser()
    is_mic = not path.exists() and (source == MICROPHONE or source.startswith(f"{MICROPHONE}:"))
    if source != "-" and not is_mic and not path.exists():
        raise AsdbenchError(f"{source}: no such file or folder (SOURCE is a WAV file, a folder, - or mic[:DEVICE])")
    if plot is not None and (path.is_dir() or is_mic):
        raise AsdbenchError("--plot draws one recording: give a WAV file or - as SOURCE")
    trained = _load(model, device, tracking_uri)
    trained.override_thresholds(override)
    progress = Progress()
    timeline: list[Window] = []
    spans: list[tuple[float, float]] = []
    found = 0

    def on_window(window: Window) -> None:
        if plot is not None:
            timeline.append(window)
        if not events_only:
            _emit(window.record())

    def watch(name: str, machine: tuple[str, str], blocks) -> Monitor:
        nonlocal found
        monitor = Monitor(trained, machine, hop, min_duration, batch_size, progress, frames)
        for event in monitor.watch(name, blocks, on_window):
            found += 1
            spans.append((event.start, event.end))
            _emit(event.record())
            err_console.print(f"[red]Anomaly[/red] in {name} from {event.start:.2f} s to {event.end:.2f} s (peak "
                              f"{event.peak:.4g} at {event.peak_time:.2f} s, threshold {event.threshold:.4g})",
                              highlight=False)
        return monitor

    started = time.perf_counter()
    if path.is_dir():
        for file in arriving_files(path, poll, idle_timeout):
            machine = trained.machine_of(file, machine_type, machine_id)
            if watch(str(file), machine, wav_blocks(file, trained.sample_rate, trained.channel)).interrupted:
                break
    else:
        machine = trained.machine_of(Path("standard-input" if source == "-" or is_mic else source), machine_type,
                                     machine_id)
        if source == "-":
            blocks = pcm_blocks(sys.stdin.buffer, rate or trained.sample_rate, channels, sample_format,
                                trained.sample_rate, trained.channel)
        elif is_mic:
            blocks = microphone_blocks(source, trained.sample_rate, channels, trained.channel)
        else:
            blocks = wav_blocks(path, trained.sample_rate, trained.channel)
        monitor = watch("standard input" if source == "-" else source, machine, blocks)
        if plot is not None and timeline:
            draw(timeline, spans, monitor.threshold, plot, f"{trained.system}: {source}")
            err_console.print(f"Wrote {plot}", highlight=False)
    err_console.print(
        f"{progress.windows} windows, {found} events in {progress.audio_seconds:.1f} s of audio; scored at "
        f"{progress.real_time_factor:.1f}x real time ({time.perf_counter() - started:.1f} s in all; {trained.system}, "
        f"{trained.device}; {override.describe()})", highlight=False)
    return found

