"""The official data sets in one command: the files of Zenodo records, checked and unpacked into the layout the data
set plugins read.

A data set factory that can be downloaded names its records (``zenodo = {"dev": "3678171", ...}``, a part each:
``dev``, ``additional`` (training data of the evaluation machines), ``eval``, ``labels``). For each part, the record's
metadata (``/api/records/<id>``: every file's name, size and MD5) is read, and each file is fetched by pooch, which
keeps a file only once its checksum matches, so a file on disk is a whole one. A transfer cut off midway leaves a
``.part`` file that the next attempt continues with an HTTP range request (the DCASE zips run to gigabytes). Zips are
unpacked into a hidden folder beside the target and moved into place folder by folder, so a failed or interrupted
unpack leaves nothing half-written in the layout; what is done is recorded in ``.asdbench-download.json``, and a
second call fetches only what is missing. ``ASDBENCH_ZENODO_URL`` points at a mirror (the tests' local server).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asdbench.errors import AsdbenchError, reason

PARTS = ("dev", "additional", "eval", "labels")
SUBSET = {"dev": "dev_data", "additional": "eval_data", "eval": "eval_data", "labels": ""}  # where each part goes
DONE = ".asdbench-download.json"
CHUNK = 1 << 16  # bytes written at a time: a cut transfer loses at most this much of what arrived


def zenodo_url() -> str:
    return os.environ.get("ASDBENCH_ZENODO_URL", "https://zenodo.org").rstrip("/")


@dataclass(frozen=True)
class RemoteFile:
    """One file of a record, as its metadata describes it."""

    record: str
    name: str
    size: int
    checksum: str  # "md5:<hex>", pooch's notation
    url: str


def record_files(record: str, timeout: float = 30.0) -> list[RemoteFile]:
    """The files of a Zenodo record, from its metadata."""
    import requests

    url = f"{zenodo_url()}/api/records/{record}"
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        entries = response.json()["files"]
        return [RemoteFile(record, f["key"], int(f["size"]), f["checksum"], f["links"]["self"]) for f in entries]
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise AsdbenchError(f"cannot read Zenodo record {record} ({url}): {reason(exc)}") from None


def wanted(files: Sequence[RemoteFile], types: Sequence[str]) -> list[RemoteFile]:
    """The files of the machine types asked for (a type is a ``_``-separated word of a zip's name:
    ``dev_data_fan.zip``, ``eval_data_ToyCar_train.zip``, ``dev_ToyCar_r2.zip``); every file without ``types``."""
    if not types:
        return list(files)
    return [f for f in files if set(Path(f.name).stem.split("_")) & set(types)]


class ResumableDownloader:
    """A pooch downloader that continues a cut-off transfer: bytes already received are kept in ``<file>.part``
    beside the target, and the next attempt asks only for the rest (``Range``). ``on_bytes`` sees each chunk."""

    def __init__(self, part: Path, size: int, on_bytes: Callable[[int], None], timeout: float = 60.0) -> None:
        self.part, self.size, self.on_bytes, self.timeout = part, size, on_bytes, timeout

    def __call__(self, url: str, output_file: str, pooch: Any, check_only: bool = False) -> None:
        import requests

        have = self.part.stat().st_size if self.part.exists() else 0
        if have > self.size:  # not the file the record describes now: start again
            self.part.unlink()
            have = 0
        self.on_bytes(have)
        if have < self.size:
            headers = {"Range": f"bytes={have}-"} if have else {}
            with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
                response.raise_for_status()
                if have and response.status_code != 206:  # the server ignored the range: take the whole file
                    self.part.unlink()
                    self.on_bytes(-have)
                with open(self.part, "ab") as fh:
                    for chunk in response.iter_content(CHUNK):
                        fh.write(chunk)
                        self.on_bytes(len(chunk))
            have = self.part.stat().st_size
            if have < self.size:  # the connection closed early without an error: keep what came, ask for the rest
                raise requests.ConnectionError(f"the transfer ended after {have:,} of {self.size:,} bytes")
        os.replace(self.part, output_file)  # pooch checks the checksum of the whole, then moves it into place


def fetch(file: RemoteFile, folder: Path, on_bytes: Callable[[int], None], retries: int = 3,
          wait: float = 1.0) -> Path:
    """``folder/<name>``, downloaded unless a copy whose checksum matches is already there; a transfer error or a
    checksum that does not match is tried again ``retries`` times (a transfer continues where it stopped; a wrong
    checksum starts over), then is one line naming the file."""
    import pooch
    import requests

    pooch.get_logger().setLevel("WARNING")
    part = folder / f"{file.name}.part"
    last = ""
    for attempt in range(retries + 1):
        try:
            return Path(pooch.retrieve(file.url, file.checksum, fname=file.name, path=folder,
                                       downloader=ResumableDownloader(part, file.size, on_bytes)))
        except ValueError as exc:  # pooch: the checksum does not match
            last = f"its MD5 differs from the one record {file.record} publishes ({reason(exc)})"
        except (requests.RequestException, OSError) as exc:
            last = f"the transfer failed ({reason(exc)})"
        if attempt < retries:
            time.sleep(wait * (attempt + 1))
    raise AsdbenchError(f"{file.name} (Zenodo record {file.record}): {last}; tried {retries + 1} times")


def _members_root(names: list[str], subset: str) -> str:
    """A prefix every member shares that the layout does not have (``dev_data/`` inside a dev zip)."""
    first = {n.split("/", 1)[0] for n in names if n}
    return f"{subset}/" if subset and first == {subset} else ""


@contextmanager
def _staging(folder: Path, name: str) -> Iterator[Path]:
    staging = folder / f".unpacking-{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        yield staging
    finally:  # an error or Ctrl-C: the hidden folder goes, nothing of it is in the layout
        shutil.rmtree(staging, ignore_errors=True)


def _move_into(source: Path, target: Path) -> None:
    """``source`` into ``target`` whole where ``target`` is new, else each entry (a type's ``train/`` beside its
    ``test/``, from two zips)."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return
    if not target.is_dir() or not source.is_dir():
        os.replace(source, target)
        return
    for entry in sorted(source.iterdir()):
        _move_into(entry, target / entry.name)


def unpack(zip_path: Path, target: Path, subset: str) -> int:
    """The zip's files under ``target``, through a hidden staging folder; the number of files."""
    try:
        with zipfile.ZipFile(zip_path) as archive, _staging(target, zip_path.stem) as staging:
            names = archive.namelist()
            strip = _members_root(names, subset)
            root = staging.resolve()
            for info in archive.infolist():
                inner = info.filename[len(strip):] if info.filename.startswith(strip) else info.filename
                if not inner or info.is_dir():
                    continue
                out = (staging / inner).resolve()
                if not out.is_relative_to(root):
                    raise AsdbenchError(f"{zip_path}: member {info.filename} would be written outside the data folder")
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
            count = sum(1 for p in staging.rglob("*") if p.is_file())
            for entry in sorted(staging.iterdir()):
                _move_into(entry, target / entry.name)
            return count
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise AsdbenchError(f"{zip_path.name}: cannot be unpacked ({reason(exc)}); nothing of it was left in "
                            f"{target}") from None


def read_done(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / DONE).read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise AsdbenchError(f"{out / DONE} is corrupt ({exc}); remove it to check every file again") from None


def record_done(out: Path, file: RemoteFile, placed: str, count: int) -> None:
    done = read_done(out)
    done[f"{file.record}/{file.name}"] = {"checksum": file.checksum, "size": file.size, "into": placed, "files": count}
    tmp = out / f".{DONE}.partial"
    tmp.write_text(json.dumps(done, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out / DONE)


def place(file: RemoteFile, out: Path, part: str, raw: bool, keep: bool, on_bytes: Callable[[int], None],
          retries: int = 3, wait: float = 1.0) -> str:
    """Download ``file`` of ``part`` and put it where the layout wants it: a zip unpacked into ``dev_data/`` or
    ``eval_data/`` (``raw``: their ``raw/`` folder, as the 2023-2026 baselines unpack), any other file (a ground
    truth list) into ``out``. What was done, for the log; nothing when an earlier call did it."""
    done = read_done(out)
    key = f"{file.record}/{file.name}"
    if done.get(key, {}).get("checksum") == file.checksum:
        return f"{file.name}: already in {done[key]['into']}"
    downloads = out / ".downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    local = fetch(file, downloads, on_bytes, retries, wait)
    subset = SUBSET[part]
    target = out / subset / "raw" if raw and subset else out / subset if subset else out
    if local.suffix.lower() == ".zip":
        count = unpack(local, target, subset)
    else:
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local, target / local.name)
        count = 1
    placed = str(target.relative_to(out)) if target != out else "."
    record_done(out, file, placed, count)
    if not keep:
        local.unlink()
    return f"{file.name}: {count} files into {placed}/"
