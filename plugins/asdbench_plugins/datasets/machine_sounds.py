"""Deterministic synthetic machine sounds: the embedded data set that needs no download.

Each machine type has its own sound model; each machine ID draws a fingerprint
(fundamental, harmonic profile, resonance, modulation) from a generator seeded by the
type and ID, so IDs really differ and a classifier over IDs has something to learn.
Every clip then varies run to run (speed, load, noise level, background), and
anomalies come in several kinds and severities, some mainly above 4 kHz where a
128-band mel spectrogram is coarse, some subtle enough to overlap normal variation.
Each clip is seeded by its own coordinates, so any subset is generated identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000
MACHINE_TYPES = ("fan", "pump", "slider", "valve")
TYPE_INDEX = {name: i for i, name in enumerate(MACHINE_TYPES)}

# Anomaly kinds per machine type; each is drawn with equal probability.
ANOMALY_KINDS: dict[str, tuple[str, ...]] = {
    "fan": ("hf_whine", "speed_shift", "imbalance", "rattle"),
    "pump": ("hf_friction", "speed_shift", "pulsation", "harmonic"),
    "slider": ("hf_friction", "timing", "rattle", "harmonic"),
    "valve": ("hf_whine", "timing", "resonance", "rattle"),
}


@dataclass(frozen=True)
class Fingerprint:
    """What makes one machine sound like itself."""

    f0: float
    harmonics: np.ndarray
    resonance: float
    bandwidth: float
    mod_rate: float
    mod_depth: float
    noise_level: float
    snr_db: float


def fingerprint(seed: int, machine_type: str, machine_id: int) -> Fingerprint:
    """A type template, varied per ID: machines of one type differ in detail, as real ones do.

    Neighbouring IDs run about 3.5 % apart in speed, with their own harmonic balance,
    resonance and rhythm; a speed or harmonic defect can make a machine sound like its
    neighbour, which is what ID-classification methods must notice.
    """
    tpl = np.random.default_rng([seed, 5, TYPE_INDEX[machine_type]])
    rng = np.random.default_rng([seed, 1, TYPE_INDEX[machine_type], machine_id])
    band = {"fan": (90.0, 420.0), "pump": (35.0, 140.0), "slider": (60.0, 200.0), "valve": (50.0, 150.0)}
    lo, hi = band[machine_type]
    n_harm = 24
    template = tpl.lognormal(0.0, 0.7, n_harm) / np.arange(1, n_harm + 1) ** tpl.uniform(0.6, 1.4)
    harmonics = template * rng.lognormal(0.0, 0.3, n_harm)
    return Fingerprint(
        f0=float(tpl.uniform(lo, hi) * (1.0 + 0.0175 * machine_id + rng.normal(0.0, 0.004))),
        harmonics=harmonics / np.linalg.norm(harmonics),
        resonance=float(tpl.uniform(600.0, 3500.0) * (1.0 + rng.normal(0.0, 0.08))),
        bandwidth=float(tpl.uniform(0.15, 0.5) * rng.uniform(0.85, 1.15)),
        mod_rate=float(tpl.uniform(0.5, 12.0) * (1.0 + rng.normal(0.0, 0.1))),
        mod_depth=float(tpl.uniform(0.05, 0.5) * rng.uniform(0.8, 1.2)),
        noise_level=float(tpl.uniform(0.1, 0.5)),
        snr_db=float(tpl.uniform(6.0, 20.0)),  # the plant's noise, not the machine's: no ID cue
    )


def _shaped_noise(rng: np.random.Generator, n: int, gain: np.ndarray | None = None, tilt: float = 0.0) -> np.ndarray:
    """White noise shaped in the frequency domain by ``gain`` and a 1/f^tilt slope, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    shape = 1.0 / np.maximum(freqs, 20.0) ** (tilt / 2.0)
    if gain is not None:
        shape = shape * gain
    out = np.fft.irfft(spec * shape, n)
    return out / (np.sqrt(np.mean(out**2)) + 1e-12)


def _band(n: int, center: float, rel_width: float) -> np.ndarray:
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
    return np.exp(-0.5 * (np.log(np.maximum(freqs, 1.0) / center) / rel_width) ** 2)


def _harmonic_tone(t: np.ndarray, f0: np.ndarray | float, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sum of harmonics of a (possibly time-varying) fundamental, below Nyquist."""
    phase = 2 * np.pi * np.cumsum(np.broadcast_to(f0, t.shape)) / SAMPLE_RATE
    f_max = float(np.max(f0))
    out = np.zeros_like(t)
    for k, w in enumerate(weights, start=1):
        if k * f_max >= SAMPLE_RATE / 2 - 200:
            break
        out += w * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    return out


def _impulses(rng: np.random.Generator, n: int, times: np.ndarray, freq: float, decay_s: float) -> np.ndarray:
    """Decaying resonant clicks at the given times (seconds)."""
    length = int(decay_s * 6 * SAMPLE_RATE)
    tt = np.arange(length) / SAMPLE_RATE
    click = np.sin(2 * np.pi * freq * tt) * np.exp(-tt / decay_s)
    out = np.zeros(n + length)
    for start in (times * SAMPLE_RATE).astype(int):
        if 0 <= start < n:
            out[start : start + length] += click * rng.uniform(0.7, 1.3)
    return out[:n]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def machine_clip(
    seed: int,
    machine_type: str,
    machine_id: int,
    clip_index: int,
    seconds: float,
    anomaly: bool,
    split_code: int,
) -> np.ndarray:
    """One clip, float32 in [-1, 1]. Deterministic in all its arguments."""
    defect_rng = np.random.default_rng([seed, 3, TYPE_INDEX[machine_type], machine_id, split_code, clip_index])
    kind = ANOMALY_KINDS[machine_type][defect_rng.integers(4)] if anomaly else ""
    severity = float(np.exp(defect_rng.uniform(np.log(0.15), np.log(1.0)))) if anomaly else 0.0
    return render(seed, machine_type, machine_id, clip_index, seconds, split_code * 2 + int(anomaly), kind, severity)


def render(
    seed: int,
    machine_type: str,
    machine_id: int,
    clip_index: int,
    seconds: float,
    stream: int,
    kind: str = "",
    severity: float = 0.0,
) -> np.ndarray:
    """A clip of one machine with the given defect (``kind``; empty = healthy) at ``severity`` in (0, 1].

    ``stream`` separates the random streams of train, test-normal and test-anomaly
    clips; the same arguments with another ``kind`` give the same run of the machine
    with another defect, which is how the tests check what each defect adds.
    """
    fp = fingerprint(seed, machine_type, machine_id)
    rng = np.random.default_rng([seed, 2, TYPE_INDEX[machine_type], machine_id, stream, clip_index])
    drng = np.random.default_rng([seed, 4, TYPE_INDEX[machine_type], machine_id, stream, clip_index])  # defect draws
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n) / SAMPLE_RATE

    # Run-to-run variation of a healthy machine.
    speed = fp.f0 * (1.0 + rng.normal(0.0, 0.006))
    weights = fp.harmonics * rng.lognormal(0.0, 0.12, fp.harmonics.shape)
    mod_rate = fp.mod_rate * (1.0 + rng.normal(0.0, 0.03))
    mod_depth = fp.mod_depth * rng.uniform(0.8, 1.2)
    resonance = fp.resonance * (1.0 + rng.normal(0.0, 0.02))
    period = 0.25 + (fp.mod_rate / 12.0) * 0.6  # stroke / switching period of sliders and valves
    jitter = 0.01

    if kind == "speed_shift":
        speed *= 1.0 + drng.choice([-1, 1]) * 0.06 * severity
    elif kind == "harmonic":
        k = drng.integers(1, 6)
        weights = weights.copy()
        weights[k] += 0.8 * severity * weights.max()
    elif kind == "pulsation":
        mod_depth = min(0.95, mod_depth + 0.5 * severity)
        mod_rate *= 1.0 + 0.3 * severity
    elif kind == "resonance":
        resonance *= 1.0 + drng.choice([-1, 1]) * 0.25 * severity
    elif kind == "timing":
        jitter = 0.01 + 0.12 * severity

    wobble = 1.0 + 0.002 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t)
    if kind == "imbalance":
        wobble = wobble + 0.02 * severity * np.sin(2 * np.pi * speed / 7.0 * t)
    tone = _harmonic_tone(t, speed * wobble, weights, rng)
    body_noise = _shaped_noise(rng, n, _band(n, resonance, fp.bandwidth))
    envelope = 1.0 + mod_depth * np.sin(2 * np.pi * mod_rate * t + rng.uniform(0, 2 * np.pi))

    if machine_type in ("fan", "pump"):
        signal = (tone + fp.noise_level * body_noise) * envelope
    else:
        # Sliders and valves: strokes / clicks at a machine-specific rhythm over a motor hum.
        starts = np.arange(rng.uniform(0, period), seconds, period)
        starts = starts + rng.normal(0.0, jitter * period, starts.shape)
        if machine_type == "slider":
            gate = np.zeros(n)
            for s in starts:
                gate += np.exp(-0.5 * ((t - s - 0.4 * period) / (0.12 * period)) ** 2)
            signal = 0.4 * tone + (0.3 + fp.noise_level) * body_noise * np.minimum(gate, 1.5) * 2.0
        else:
            clicks = _impulses(rng, n, starts, resonance, 0.004 + 0.004 * fp.bandwidth)
            clicks += 0.6 * _impulses(rng, n, starts + 0.35 * period, resonance * 1.3, 0.003)
            signal = 0.25 * tone + clicks / (_rms(clicks) + 1e-9)

    level = _rms(signal)
    if kind == "hf_whine":
        f = drng.uniform(4500.0, 7000.0)
        signal = signal + level * 0.3 * severity * np.sin(2 * np.pi * f * t * (1 + 0.002 * np.sin(2 * np.pi * 3 * t)))
    elif kind == "hf_friction":
        burst = _shaped_noise(drng, n, _band(n, drng.uniform(4500.0, 6500.0), 0.12))
        gate = (np.sin(2 * np.pi * drng.uniform(0.5, 3.0) * t) > 0.3).astype(float)
        signal = signal + level * 0.5 * severity * burst * gate
    elif kind == "rattle":
        times = np.sort(drng.uniform(0, seconds, int(drng.integers(3, 12))))
        signal = signal + level * 1.5 * severity * _impulses(drng, n, times, drng.uniform(2500.0, 6000.0), 0.002)

    # Background: pink noise plus a mains hum, at a per-clip signal-to-noise ratio.
    snr = fp.snr_db + rng.normal(0.0, 2.0)
    background = _shaped_noise(rng, n, tilt=1.0) + 0.3 * np.sin(2 * np.pi * 50.0 * t + rng.uniform(0, 6.3))
    mix = signal / _rms(signal) + background / _rms(background) * 10 ** (-snr / 20.0)
    gain = 0.3 * rng.uniform(0.7, 1.0) / (np.max(np.abs(mix)) + 1e-9)
    return (mix * gain).astype(np.float32)
