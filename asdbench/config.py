"""Resolved run configuration: core defaults < system recipe < TOML file < ``--set``.

Keys are flat strings. Core keys (``epochs``, ``lr``...) apply to every system;
``<kind>.<param>`` keys set a component's constructor argument, and the valid ones
are read from the component factory's signature, so a plugin's options are
settable without registering them anywhere. An unknown key is an error listing the
valid ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asdbench.errors import AsdbenchError
from asdbench.registry import Entry, Registries, factory_params, normalize

COMPONENT_KINDS = ("dataset", "frontend", "backbone", "loss", "scorer", "augmentation")

CORE_DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 64,
    "lr": 1e-3,
    "weight_decay": 0.0,
    "optimizer": "adam",
    "lr_min": 0.0,
    "mixup": "none",
    "mixup.alpha": 0.5,
    "mixup.partner": "shuffle",
    "ema": 0.0,
    "ema.live_decay": 0.0,
    "grad_clip": 0.0,
    "seed": 0,
    "types": [],
    "ids": [],
    "device": "auto",
    "scheduler": "none",
    "model_per": "all",
    "train_unit": "clip",
    "clip_seconds": 0.0,
    "pad": "repeat",
    "skip_bad_files": False,
    "cache": True,
    "channels_last": "auto",
    "precision": "auto",
    "compile": "auto",
    "threads": "auto",
    "select": "last",
    "select_every": 2,
    "val_fraction": 0.05,
    "hold_out": "none",
    "checkpoint_every_s": 30.0,
    "threshold.rule": "gamma",
    "threshold.q": 0.9,
    "threshold.scores": "clips",
}

# Switches that take true, false or auto (decided for the machine, or while training: see CORE_HELP).
AUTO_SWITCHES = frozenset({"compile", "channels_last"})

CHOICES: dict[str, tuple[str, ...]] = {
    "scheduler": ("none", "cosine", "cosine-official"),
    "precision": ("auto", "fp32", "bf16"),
    "select": ("last", "oracle", "val"),
    "optimizer": ("adam", "adamw"),
    "mixup": ("none", "batch", "sample"),
    "mixup.partner": ("shuffle", "reverse"),
    "model_per": ("all", "type", "id", "id-vs-others"),
    "train_unit": ("clip", "frame"),
    "pad": ("repeat", "zeros"),
    "threshold.rule": ("gamma", "quantile", "mad"),
    "threshold.scores": ("clips", "batches"),
    "hold_out": ("none", "clips", "examples"),
}

# The values each numeric key may take, as (lowest, highest, whether each bound is allowed): a run is refused
# before anything starts rather than trained on a NaN learning rate. None: no bound on that side.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "epochs": (0, None, True, True),  # 0 only for a model with nothing to train (asdbench.data.plan)
    "batch_size": (1, 2**20, True, True),
    "lr": (0, None, False, True),
    "weight_decay": (0, None, True, True),
    "lr_min": (0, None, True, True),
    "mixup.alpha": (0, None, False, True),
    "ema": (0, 1, True, False),
    "ema.live_decay": (0, 1, True, False),
    "grad_clip": (0, None, True, True),
    "clip_seconds": (0, 3600, True, True),
    "select_every": (1, None, True, True),
    "val_fraction": (0, 1, False, False),
    "checkpoint_every_s": (0, None, True, True),
    "threshold.q": (0, 1, False, False),
    "threads": (1, 4096, True, True),
}


def _check_range(key: str, value: Any) -> None:
    if key not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, low_ok, high_ok = RANGES[key]
    inside = math.isfinite(value) and (low is None or value > low or (low_ok and value == low)) and (
        high is None or value < high or (high_ok and value == high))
    if not inside:
        lower = "" if low is None else f"{low} {'<=' if low_ok else '<'} "
        upper = "" if high is None else f" {'<=' if high_ok else '<'} {high:,}"
        raise AsdbenchError(f"{key}={value!r} is out of range: {lower}{key}{upper}")


CORE_HELP = {
    "epochs": "training epochs",
    "batch_size": "training batch size (clips, or frames when train_unit=frame)",
    "lr": "Adam learning rate",
    "weight_decay": "weight decay (Adam: added to the gradient; AdamW: decoupled)",
    "optimizer": "adam or adamw",
    "lr_min": "with scheduler=cosine, the learning rate it anneals to (eta_min)",
    "mixup": "mix training examples: none; batch (one weight per batch from Beta(alpha, alpha), as Noisy-ArcMix and "
    "OS-SCL); sample (one per example; alpha=1 draws it uniformly, as sub-cluster AdaCos). The loss must define mixed()",
    "mixup.alpha": "the Beta(alpha, alpha) distribution of the mixup weight",
    "ema": "keep an exponential moving average of the model (parameters and batch-norm statistics) with this decay, "
    "updated after every step; it is what select validates and what the run keeps and scores (0 = off; OS-SCL: 0.9999)",
    "ema.live_decay": "with ema, multiply the live model's weights and statistics by 1 - this after each step, as "
    "OS-SCL's WeightEMA does (2e-6)",
    "mixup.partner": "each example's mixup partner: shuffle (a random permutation of the batch) or reverse (the batch "
    "reversed)",
    "grad_clip": "clip the gradient norm to this value before each step; 0 = no clipping",
    "seed": "seeds every random draw of the run: weight initialisation (every component's), batch order, "
    "augmentation; each model draws from a stream of its own, made from this seed and its name, so it trains the same "
    "in a run of fewer or more models (--types); the synthetic data set has its own seed (dataset.seed), so --seeds "
    "varies training, not the data",
    "types": "only these machine types (a list, or fan,pump; --types); empty: every type of the data set",
    "ids": "only these machine IDs, from DCASE 2021 on sections (00 or id_00 or section_00; --ids); empty: every one",
    "device": "auto (CUDA when present, else CPU), cpu, cuda, cuda:N",
    "scheduler": "none; cosine (annealed to 0 over the epochs); cosine-official (the STgram-MFN code: "
    "T_max = batches per epoch, stepped once per epoch after epoch 20)",
    "precision": "auto (bf16 autocast where the device computes bf16 natively: CUDA cards that support it, CPUs with "
    "AVX512-BF16 or AMX; else fp32), fp32, bf16",
    "compile": "train through torch.compile (compiles on the first batches, then faster steps); falls back to eager "
    "with a message where compilation fails. auto: a model compiles when its training would take 5 minutes or more "
    "eagerly, estimated from its size (operations per example x examples x epochs, at a nominal rate for the device "
    "type and threads), never from the clock: the same config decides the same way on any machine load",
    "threads": "CPU threads torch computes with; auto: this process's default (the physical cores, or "
    "OMP_NUM_THREADS), recorded as the number. Part of the comparability key: the count changes fp32 sums",
    "select": "last (keep the last epoch); val (the lowest loss on val_fraction of the training clips, held out of "
    "training, stratified by class: the Noisy-ArcMix and OS-SCL rule, legitimate for every system); oracle (best "
    "AUC+pAUC on the test set: the STgram-MFN authors' protocol, optimistic)",
    "select_every": "with select=oracle or val, evaluate every N epochs (and after the last)",
    "val_fraction": "the fraction held out of training (hold_out; select=val holds out clips): of each class's training "
    "clips (at least one clip of every class with two or more), or of all training examples",
    "hold_out": "what val_fraction holds out of training: none (nothing, unless select=val: clips), clips (stratified by "
    "class), examples (frames with train_unit=frame, drawn over all of them: the DCASE 2023-2026 baseline's 10 % of "
    "vectors). Held-out examples select the checkpoint with select=val and join the thresholds' scores with "
    "threshold.scores=batches",
    "threshold.rule": "decision threshold per machine ID from its training (normal) scores: gamma (the q quantile "
    "of a fitted gamma distribution, as the DCASE 2021-2024 baselines), quantile (empirical), mad (median + z_q x "
    "1.4826 MAD); written into the model bundle",
    "threshold.q": "the quantile of the threshold rule (0.9: about one normal clip in ten flagged)",
    "threshold.scores": "what the threshold rule is fitted on: clips (the training clips' scores) or batches (each "
    "batch of batch_size training frames scored as one clip, then each held-out batch: the DCASE 2023-2026 "
    "baseline's, with train_unit=frame; every machine ID a model decides for gets its threshold)",
    "checkpoint_every_s": "checkpoint a model after its first epoch, then at most this often (seconds; 0 = every epoch), "
    "and at its end; an interrupted run resumes from its last checkpoint (asdbench run --resume RUN_ID)",
    "model_per": "one model for all machines (all), per machine type, per machine ID, or per ID trained on its "
    "type's clips with the other IDs as outliers, class 0 = the ID (id-vs-others)",
    "train_unit": "train on whole clips, or on each feature frame as an example (weightless frontends)",
    "clip_seconds": "cut or pad clips to this length; 0 = each model's machine types' own clip length where the data "
    "set tells it (DCASE 2021-2026, read from the files; the longest where a model's types differ), else the data "
    "set's (DCASE 2020: 10 s, as STgram-MFN's authors cut ToyCar's 11 s clips)",
    "pad": "how a clip shorter than clip_seconds is filled: repeat (loop the clip) or zeros (digital silence, which "
    "a log-mel turns into -100 dB frames)",
    "channels_last": "keep the backbone's conv weights channels-last (NHWC); auto: where measured faster (see "
    "asdbench.runtime.CHANNELS_LAST)",
    "skip_bad_files": "leave out files that cannot be read (corrupt, truncated, empty, not WAV) instead of stopping "
    "before training; they are counted (param data.bad_files) and listed in the artifact bad_files.csv",
    "cache": "decode each WAV once into the on-disk cache (memory-mapped; int16 where exact, else float32); false "
    "decodes every run",
}


def parse_value(raw: str) -> Any:
    """Read a ``--set`` value as TOML (``3``, ``1e-3``, ``true``, ``"x"``); bare words stay strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def comma_list(text: str) -> list[str]:
    """``"fan, pump,"`` -> ``["fan", "pump"]``: how a list is written on the command line (``--set types=fan,pump``,
    ``--seeds 0,1``)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_assignments(items: tuple[str, ...] | list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise AsdbenchError(f"--set expects KEY=VALUE, got '{item}'")
        out[key.strip()] = parse_value(raw.strip())
    return out


def flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables as dotted keys: ``[frontend] n_mels = 64`` is ``frontend.n_mels``."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def load_toml(path: Path) -> dict[str, Any]:
    return flatten(load_toml_table(path))


def load_toml_table(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise AsdbenchError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise AsdbenchError(f"config file {path} is not valid TOML: {exc}") from None


def entry_params(entry: Entry) -> dict[str, Any]:
    """A registered component's parameters: read from the catalog when it came from there, else from its factory;
    tuples as lists either way, as TOML and JSON (the logged config) give them back."""
    params = entry.params if entry.params is not None else factory_params(entry.factory)
    return {name: _as_lists(value) for name, value in params.items()}


def _as_lists(value: Any) -> Any:
    return [_as_lists(v) for v in value] if isinstance(value, (list, tuple)) else value


def _coerce(key: str, value: Any, default: Any) -> Any:
    coerced = _coerce_type(key, value, default)
    _check_range(key, coerced)
    return coerced


def _coerce_type(key: str, value: Any, default: Any) -> Any:
    if key in AUTO_SWITCHES:
        if isinstance(value, bool) or value == "auto":
            return value
        raise AsdbenchError(f"{key}={value!r} is not one of: true, false, auto")
    if key == "threads":
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise AsdbenchError(f"threads={value!r} is not auto or a whole number of CPU threads")
    if key in CHOICES and value not in CHOICES[key]:
        raise AsdbenchError(f"{key}={value!r} is not one of: {', '.join(CHOICES[key])}")
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(default, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(value)
    elif isinstance(default, (list, tuple)) and isinstance(value, str):  # --set types=fan,pump
        return comma_list(value)
    elif isinstance(default, str):
        return str(value)
    elif isinstance(value, type(default)):
        return value
    raise AsdbenchError(f"{key}={value!r} has the wrong type: expected {type(default).__name__}")


@dataclass(frozen=True)
class RunConfig:
    """The fully resolved configuration of one run: what gets logged and hashed."""

    system: str
    values: dict[str, Any]
    overridden: tuple[str, ...]

    def component(self, kind: str) -> str:
        return self.values[kind]

    def params(self, kind: str) -> dict[str, Any]:
        prefix = f"{kind}."
        return {k[len(prefix):]: v for k, v in self.values.items() if k.startswith(prefix)}

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def replace(self, **values: Any) -> RunConfig:
        """The same config with some core values changed (``seed`` for each run of ``--seeds``)."""
        return RunConfig(self.system, {**self.values, **values}, self.overridden)

    @property
    def hash(self) -> str:
        blob = json.dumps({"system": self.system, **self.values}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def to_toml(self) -> str:
        """TOML that ``asdbench run SYSTEM --config FILE`` reads back to this same config.

        Component parameters are written as quoted dotted keys (``"frontend.n_mels" = 128``)
        because a ``[frontend]`` table could not sit beside ``frontend = "logmel"``.
        """
        lines = [f"# asdbench resolved config for system {self.system!r}, hash {self.hash}"]
        for key, value in sorted(self.values.items(), key=lambda kv: ("." in kv[0], kv[0])):
            if value is not None:
                name = f'"{key}"' if "." in key else key
                lines.append(f"{name} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"


def resolve(
    plugins: Registries,
    system: str,
    file_values: dict[str, Any] | None = None,
    set_values: dict[str, Any] | None = None,
) -> RunConfig:
    spec = plugins.registry("system").get(system).factory
    user = {**(file_values or {}), **(set_values or {})}
    chosen = {
        "dataset": "synthetic",
        "frontend": spec.frontend,
        "backbone": spec.backbone,
        "loss": spec.loss,
        "scorer": spec.scorer,
        "augmentation": "none",  # a recipe that augments names one in its defaults
    }
    for kind in COMPONENT_KINDS:
        if kind in spec.defaults:
            chosen[kind] = spec.defaults[kind]
        if kind in user:
            chosen[kind] = user[kind]
        chosen[kind] = normalize(str(chosen[kind]))

    defaults: dict[str, Any] = {**CORE_DEFAULTS, **chosen}
    for kind in COMPONENT_KINDS:
        entry = plugins.registry(kind).get(chosen[kind])
        defaults.update({f"{kind}.{p}": d for p, d in entry_params(entry).items()})

    recipe = {k: v for k, v in spec.defaults.items() if k in defaults and k not in COMPONENT_KINDS}
    values = _layer(_layer(dict(defaults), recipe, f"system '{system}'"), user, f"system '{system}'")
    return RunConfig(normalize(system), values, tuple(sorted(user)))


def _layer(values: dict[str, Any], layer: dict[str, Any], context: str) -> dict[str, Any]:
    """Apply ``layer`` over ``values``: every key must exist already, and values keep their defaults' types."""
    for key, value in layer.items():
        if key in COMPONENT_KINDS:
            continue
        if key not in values:
            raise AsdbenchError(f"unknown config key '{key}' for {context}. Valid keys: {', '.join(sorted(values))}")
        values[key] = _coerce(key, value, values[key])
    return values


def resolve_dataset(plugins: Registries, user: dict[str, Any]) -> RunConfig:
    """A config of the dataset keys alone, for commands that only read data (``asdbench data check``)."""
    name = normalize(str(user.get("dataset", "synthetic")))
    entry = plugins.registry("dataset").get(name)
    defaults = {"dataset": name, **{f"dataset.{p}": d for p, d in entry_params(entry).items()}}
    return RunConfig("", _layer(defaults, user, f"dataset '{name}'"), tuple(sorted(user)))
