"""What a served model accepts: WAV paths, WAV bytes, or float arrays with their sample rate, one recording per row.

``mlflow models serve`` passes the pyfunc what the request held: a DataFrame for ``dataframe_records`` /
``dataframe_split``, a dict of columns for ``inputs``, a list for a list. A recording is

- ``wav``: the bytes of a WAV file (base64 text in JSON, bytes in Python),
- ``audio`` with ``sample_rate``: its samples (a list of floats, or of ``[channel, ...]`` frames),
- ``path`` / ``file`` (or the first text column, or a plain list of strings): a WAV file the server can read,

with optional ``machine_type`` and ``machine_id`` (a model of one machine needs neither; DCASE-style paths name theirs).
Each is read as the model's data set read its clips (channel rule, resampling) and scored by the function ``score``
uses. A row that cannot be read is an :class:`asdbench.errors.AsdbenchError` naming the row.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf

from asdbench.errors import AsdbenchError, reason

COLUMNS = ("file", "machine_type", "machine_id", "score", "threshold", "decision")


def _frame(model_input: Any) -> pd.DataFrame:
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, Mapping):
        return pd.DataFrame({k: list(v) if isinstance(v, np.ndarray) and v.ndim > 1 else v
                             for k, v in model_input.items()})
    if isinstance(model_input, (list, tuple, np.ndarray)) and all(isinstance(v, (str, Path)) for v in model_input):
        return pd.DataFrame({"path": [str(v) for v in model_input]})
    raise AsdbenchError("the input must be rows of recordings: columns wav (WAV bytes, base64 in JSON), audio with "
                        "sample_rate, or path; optionally machine_type and machine_id")


def _wav_bytes(value: Any, row: int) -> tuple[np.ndarray, int]:
    if isinstance(value, str):
        try:
            value = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise AsdbenchError(f"row {row}: wav is not base64 text of a WAV file") from None
    try:
        data, rate = sf.read(io.BytesIO(bytes(value)), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AsdbenchError(f"row {row}: wav is not a readable WAV file ({reason(exc, last=True)})") from None
    if not len(data):
        raise AsdbenchError(f"row {row}: the WAV file holds no samples")
    return data, int(rate)


def _samples(value: Any, rate: Any, row: int) -> tuple[np.ndarray, int]:
    try:
        data = np.asarray([np.asarray(v, dtype=np.float32) for v in value] if len(value) and np.ndim(value[0])
                          else value, dtype=np.float32)
    except (TypeError, ValueError):
        raise AsdbenchError(f"row {row}: audio must be a list of numbers (or of [channel, ...] frames)") from None
    if data.ndim not in (1, 2) or not data.size:
        raise AsdbenchError(f"row {row}: audio must be a non-empty list of numbers (or of [channel, ...] frames)")
    if rate is None or isinstance(rate, bool) or not float(rate).is_integer() or int(rate) <= 0:
        raise AsdbenchError(f"row {row}: audio needs its sample_rate, a positive whole number (got {rate!r})")
    return (data[:, None] if data.ndim == 1 else data), int(rate)


def _value(frame: pd.DataFrame, column: str, row: int) -> Any:
    if column not in frame.columns:
        return None
    value = frame[column].iloc[row]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def decisions(model, model_input: Any, batch_size: int = 64) -> pd.DataFrame:
    """One row per recording: file (the path, or ``row N``), machine type and ID, score, threshold, decision."""
    frame = _frame(model_input)
    if not len(frame):
        raise AsdbenchError("the input holds no recordings")
    if "wav" not in frame.columns and "audio" not in frame.columns:
        paths = frame["path"] if "path" in frame.columns else frame["file"] if "file" in frame.columns else next(
            (frame[c] for c in frame.columns if frame[c].map(lambda v: isinstance(v, str)).all()), None)
        if paths is None:
            raise AsdbenchError("no wav, audio or path column in the input")
        rows = model.score([str(p) for p in paths], _one(frame, "machine_type"), _one(frame, "machine_id"),
                           batch_size)
        return pd.DataFrame([{"file": str(r.path), "machine_type": r.machine_type, "machine_id": r.machine_id,
                              "score": r.score, "threshold": r.threshold, "decision": int(r.anomalous)} for r in rows],
                            columns=list(COLUMNS))
    recordings, machines, names = [], [], []
    for row in range(len(frame)):
        wav = _value(frame, "wav", row)
        data, rate = _wav_bytes(wav, row) if wav is not None else _samples(
            _value(frame, "audio", row), _value(frame, "sample_rate", row), row)
        name = f"row {row}"
        recordings.append(model.as_signal(data, rate, name))
        mtype, mid = _value(frame, "machine_type", row), _value(frame, "machine_id", row)
        machines.append(model.machine_of(Path(name), None if mtype is None else str(mtype),
                                         None if mid is None else str(mid).zfill(2)))
        names.append(name)
    values = model.score_items(list(range(len(recordings))), machines, lambda i, n: recordings[i], batch_size)
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        raise AsdbenchError(f"row {row}: the model's score is not finite, so no decision can be made")
    return pd.DataFrame([{"file": name, "machine_type": t, "machine_id": i, "score": float(v),
                          "threshold": model.thresholds[(t, i)], "decision": int(v > model.thresholds[(t, i)])}
                         for name, (t, i), v in zip(names, machines, values)], columns=list(COLUMNS))


def _one(frame: pd.DataFrame, column: str) -> str | None:
    """A path request's machine type or ID: one value for every row (``score``'s --machine-type/--machine-id)."""
    if column not in frame.columns:
        return None
    values = {str(v) for v in frame[column] if v is not None}
    if len(values) > 1:
        raise AsdbenchError(f"rows of paths take one {column} for all of them; send rows of wav or audio to give each "
                            "its own")
    return next(iter(values), None)

