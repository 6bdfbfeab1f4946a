"""``asdbench monitor`` on generated long recordings whose anomalies sit at known times: a model whose score is a
window's peak level finds them there and nowhere else, from a file, standard input, a folder that receives files and
a recording at another rate; windows score as ``score`` scores the same samples; the exit status says what was found."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

import known_answer_plugins as known
from asdbench import plugins as plugin_mod
from asdbench.audio import StreamResampler, resample
from asdbench.cli import cli
from asdbench.config import resolve
from asdbench.data.plan import make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_runtime
from asdbench.serving.bundle import manifest, write_bundle
from asdbench.serving.monitor import Events, Window, Windows
from asdbench.serving.sources import arriving_files
from asdbench.training.runner import execute
from support import tiny_data_root

RATE = known.SR
WINDOW = known.SECONDS  # the peak-level model's clip length: 0.25 s
BURSTS = [(7.0, 7.5), (19.2, 20.0)]  # seconds where the recording is anomalous (peak 0.6 against 0.2)


@pytest.fixture(scope="module")
def peak_bundle(tmp_path_factory):
    """A trained peak-level model as a bundle: a window's score is its largest absolute sample."""
    plugins = build_plugins(extra={"known": (known.PACKAGE, known)})
    tree = known.write_tree(tmp_path_factory.mktemp("known") / "data")
    plan = make_plan(plugins, resolve_runtime(resolve(plugins, "peak-level", set_values={"dataset.root": str(tree)})))
    result = execute(plugins, plan, Reporter())
    folder = tmp_path_factory.mktemp("bundle")
    write_bundle(folder, manifest(plan.config, plugins, result, RATE, result.num_samples), result.models)
    return folder, plugins


@pytest.fixture
def with_known_plugins(monkeypatch, peak_bundle):
    monkeypatch.setattr(plugin_mod, "_loaded", peak_bundle[1])
    return peak_bundle[0]


def long_recording(seconds: float, bursts=BURSTS, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.2 * np.sin(2 * np.pi * 440 * t)
    for start, end in bursts:
        inside = (t >= start) & (t < end)
        wave[inside] = 0.6 * np.sin(2 * np.pi * 1300 * t[inside])
    return wave.astype(np.float32)


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _check_events(events: list[dict], hop: float) -> None:
    """One event per burst, from the first window reaching into it to the last: each window stands for the hop around
    its centre, so an event begins within half a window and a hop before its burst and ends as far after it."""
    assert len(events) == len(BURSTS), events
    for event, (start, end) in zip(events, BURSTS):
        assert start - WINDOW / 2 - hop <= event["start"] <= start - WINDOW / 2 + hop, (event, start)
        assert end + WINDOW / 2 - hop <= event["end"] <= end + WINDOW / 2 + hop, (event, end)
        assert event["peak"] == pytest.approx(0.6, abs=1e-3) and start <= event["peak_time"] + WINDOW / 2
        assert event["threshold"] == 0.35


def test_a_long_recording_gives_events_at_the_anomalies_and_nowhere_else(tmp_path, with_known_plugins):
    path = tmp_path / "fan" / "line3_id_00.wav"
    path.parent.mkdir()
    sf.write(str(path), long_recording(30.0), RATE, subtype="PCM_16")
    plot = tmp_path / "timeline.png"
    result = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(path), "--hop", "0.05",
                                      "--threshold", "0.35", "--plot", str(plot)])
    assert result.exit_code == 1, result.output  # anomalies found
    records = _lines(result.output)
    windows = [r for r in records if r["type"] == "window"]
    assert len(windows) == int((30.0 - WINDOW) / 0.05 + 1e-9) + 1
    assert windows[1]["start"] == pytest.approx(0.05) and windows[1]["end"] == pytest.approx(0.3)
    # a window is anomalous exactly when it reaches into a burst
    for w in windows:
        touches = any(w["start"] < end and w["end"] > start for start, end in BURSTS)
        assert w["anomalous"] == touches, w
    _check_events([r for r in records if r["type"] == "event"], 0.05)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "2 events in 30.0 s of audio" in " ".join(result.output.split())
    # events only, and a min-duration that the second burst passes and the first does not
    only = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(path), "--hop", "0.05", "--threshold",
                                    "0.35", "--events-only", "--min-duration", "1.0"])
    (event,) = _lines(only.output)
    assert only.exit_code == 1 and event["type"] == "event" and event["start"] > 19.0
    # nothing above the threshold: exit 0; a missing source and a bad option value: exit 2
    quiet = tmp_path / "fan" / "quiet_id_00.wav"
    sf.write(str(quiet), long_recording(5.0, bursts=[]), RATE, subtype="PCM_16")
    calm = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(quiet), "--threshold", "0.35"])
    assert calm.exit_code == 0 and not [r for r in _lines(calm.output) if r["type"] == "event"]
    missing = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(tmp_path / "nope.wav")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.output and "Traceback" not in missing.output
    short = tmp_path / "fan" / "short_id_00.wav"
    sf.write(str(short), long_recording(0.1, bursts=[]), RATE, subtype="PCM_16")
    too_short = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(short)])
    assert too_short.exit_code == 2 and "shorter than the model's 0.25 s window" in too_short.output


def test_raw_pcm_on_standard_input_and_a_recording_at_another_rate_give_the_same_events(tmp_path, with_known_plugins):
    wave = long_recording(30.0)
    pcm = np.round(wave * 32767).astype("<i2").tobytes()
    result = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), "-", "--machine-type", "fan", "--machine-id",
                                      "00", "--hop", "0.05", "--threshold", "0.35", "--events-only"], input=pcm)
    assert result.exit_code == 1, result.output
    _check_events(_lines(result.output), 0.05)
    # two interleaved channels, the first the machine's: the model's channel rule reads the first
    stereo = np.stack([np.round(wave * 32767), np.zeros_like(wave)], axis=1).astype("<i2").tobytes()
    result = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), "-", "--machine-type", "fan", "--machine-id",
                                      "00", "--channels", "2", "--hop", "0.05", "--threshold", "0.35", "--events-only"],
                                input=stereo)
    _check_events(_lines(result.output), 0.05)
    # 44.1 kHz, resampled block by block as the file is read
    path = tmp_path / "fan" / "hifi_id_00.wav"
    path.parent.mkdir()
    sf.write(str(path), long_recording(30.0, rate=44100), 44100, subtype="FLOAT")
    result = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(path), "--hop", "0.05", "--threshold",
                                      "0.35", "--events-only"])
    _check_events(_lines(result.output), 0.05)
    several = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), "-", "--hop", "0.05"], input=pcm)
    assert several.exit_code == 2 and "pass --machine-id" in several.output


def test_a_watched_folder_scores_each_file_once_it_is_whole(tmp_path, with_known_plugins):
    folder = tmp_path / "incoming" / "fan"
    folder.mkdir(parents=True)
    sf.write(str(folder / "a_id_00.wav"), long_recording(10.0, bursts=[(4.0, 5.0)]), RATE, subtype="PCM_16")

    def deliver():  # a recorder that drops a second file while the monitor is watching
        time.sleep(0.6)
        partial = tmp_path / "b.partial"
        sf.write(str(partial), long_recording(10.0, bursts=[]), RATE, subtype="PCM_16", format="WAV")
        partial.rename(folder / "b_id_00.wav")

    thread = threading.Thread(target=deliver)
    thread.start()
    result = CliRunner().invoke(cli, ["monitor", str(with_known_plugins), str(tmp_path / "incoming"), "--threshold",
                                      "0.35", "--hop", "0.1", "--events-only", "--poll", "0.1", "--idle-timeout", "1.5"])
    thread.join()
    assert result.exit_code == 1, result.output
    (event,) = _lines(result.output)
    assert event["source"].endswith("a_id_00.wav") and 3.7 < event["start"] < 4.0 and 5.0 < event["end"] < 5.3
    assert "2 windows" not in result.output and "0 windows" not in result.output
    assert f"{2 * (int(9.75 / 0.1 + 1e-9) + 1)} windows, 1 events in 20.0 s of audio" in " ".join(result.output.split())


def test_window_scores_equal_the_scores_of_the_same_samples_as_clips(tmp_path, dcase_ae_run):
    """A real model (the DCASE autoencoder): three test clips end to end, windows of the clip length with no overlap,
    score exactly as `score` scores the three clips."""
    run_id, tracking_uri = dcase_ae_run
    clips = sorted((tiny_data_root() / "fan" / "test").glob("*_id_00_*.wav"))[:3]
    waves = [sf.read(str(c), dtype="int16")[0] for c in clips]
    assert len({len(w) for w in waves}) == 1
    path = tmp_path / "fan" / "three_id_00.wav"
    path.parent.mkdir()
    sf.write(str(path), np.concatenate(waves), RATE, subtype="PCM_16")
    result = CliRunner().invoke(cli, ["monitor", run_id, str(path), "--hop", "0", "--tracking-uri", tracking_uri])
    assert result.exit_code in (0, 1), result.output
    windows = [r for r in _lines(result.output) if r["type"] == "window"]
    scored = CliRunner().invoke(cli, ["score", run_id, *map(str, clips), "-o", str(tmp_path / "s.json"),
                                      "--tracking-uri", tracking_uri])
    assert scored.exit_code == 0
    expected = [r["score"] for r in json.loads((tmp_path / "s.json").read_text())]
    assert [w["score"] for w in windows] == pytest.approx(expected, rel=1e-6)


def test_windows_events_and_the_stream_resampler_by_hand():
    cutter = Windows(length=4, hop=2)
    got = cutter.push(np.arange(5.0)) + cutter.push(np.arange(5.0, 9.0))
    assert [(start, list(w)) for start, w in got] == [(0, [0, 1, 2, 3]), (2, [2, 3, 4, 5]), (4, [4, 5, 6, 7])]
    events = Events("x", hop=1.0, min_duration=2.0)
    scores = [0, 5, 5, 0, 5, 5, 5, 0]  # windows of 2 s every 1 s, threshold 1
    found = [e for i, s in enumerate(scores) if (e := events.update(Window("x", i, i + 2, s, 1.0)))]
    assert [(e.start, e.end, e.windows) for e in found] == [(1.5, 3.5, 2), (4.5, 7.5, 3)]
    short = Events("x", hop=1.0, min_duration=2.5)
    assert [e for i, s in enumerate(scores) if (e := short.update(Window("x", i, i + 2, s, 1.0)))][0].windows == 3
    rng = np.random.default_rng(0)
    signal = rng.uniform(-1, 1, 44100 * 3).astype(np.float32)
    resampler = StreamResampler(44100, 16000)
    pieces, at = [], 0
    for size in rng.integers(1, 20000, 100):
        pieces.append(resampler.push(signal[at: at + size]))
        at += size
        if at >= len(signal):
            break
    pieces += [resampler.push(signal[at:]), resampler.flush()]
    streamed, whole = np.concatenate(pieces), resample(signal, 44100, 16000)
    assert streamed.shape == whole.shape == (48000,)
    np.testing.assert_allclose(streamed, whole, atol=2e-5)


def test_arriving_files_waits_for_a_file_to_stop_growing(tmp_path):
    growing = tmp_path / "a.wav"
    growing.write_bytes(b"x")
    sizes = iter([2, 3])

    def sleep(_):  # between polls the recorder appends twice, then stops
        size = next(sizes, None)
        if size is not None:
            growing.write_bytes(b"x" * size)

    assert list(arriving_files(tmp_path, 0.0, 1e-9, sleep)) == [growing]
    assert growing.stat().st_size == 3


def test_frame_scores_show_where_a_windows_score_comes_from(tmp_path, dcase_ae_run):
    """The DCASE autoencoder scores a clip as the mean squared error over its frames: each window's frame scores
    average to its score, and a burst lifts the frames it falls in. Clip-scoring systems refuse in one line."""
    run_id, tracking_uri = dcase_ae_run
    clips = sorted((tiny_data_root() / "fan" / "test").glob("normal_id_00_*.wav"))[:2]
    wave = np.concatenate([sf.read(str(c), dtype="float32")[0] for c in clips])
    wave[24000:26000] += np.float32(0.8) * np.sin(np.arange(2000, dtype=np.float32) * 0.9)  # 1.5-1.625 s
    path = tmp_path / "fan" / "burst_id_00.wav"
    path.parent.mkdir()
    sf.write(str(path), wave, RATE, subtype="FLOAT")
    plot = tmp_path / "frames.png"
    result = CliRunner().invoke(cli, ["monitor", run_id, str(path), "--hop", "0.5", "--frames", "--plot", str(plot),
                                      "--tracking-uri", tracking_uri])
    assert result.exit_code in (0, 1), result.output
    windows = [r for r in _lines(result.output) if r["type"] == "window"]
    assert len(windows) == 3 and all(len(w["frames"]) > 5 for w in windows)
    for w in windows:
        assert np.mean(w["frames"]) == pytest.approx(w["score"], rel=1e-4)
    last = windows[2]  # 1.0-2.0 s: the frames whose score the burst moves most lie around 1.5 s
    times = last["start"] + (np.arange(len(last["frames"])) + 0.5) / len(last["frames"])
    frames = np.array(last["frames"])
    assert 1.4 < times[int(np.argmax(np.abs(frames - np.median(frames))))] < 1.75
    assert plot.read_bytes()[:4] == b"\x89PNG"
    clip_based = CliRunner().invoke(cli, ["monitor", run_id, str(path), "--frames", "--set", "x"])
    assert clip_based.exit_code == 2  # an unknown option is a usage error: 2, as click exits
