"""``asdbench data download`` against a local HTTP server on the loopback that serves generated Zenodo records
(metadata and zips in the DCASE 2020 layout): the tree the data set reads, a transfer cut off midway and continued
with a range request, a corrupt file refused by its checksum, a zip that fails to unpack leaving nothing behind, and
a second call that fetches only what is missing."""

from __future__ import annotations

import hashlib
import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from asdbench.cli import cli
from asdbench_plugins.datasets.dcase2020t2 import DCASE2020T2


def _wav(seconds: float = 0.1, seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    rng = np.random.default_rng(seed)
    sf.write(buffer, rng.uniform(-0.3, 0.3, int(16000 * seconds)).astype(np.float32), 16000, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def dev_zip(machine_type: str, seconds: float = 0.1) -> bytes:
    """As the official dev_data_<Type>.zip: a <Type>/ folder with train/ and test/."""
    members = {f"{machine_type}/train/normal_id_00_{i:08d}.wav": _wav(seconds, seed=i) for i in range(3)}
    members |= {f"{machine_type}/test/{label}_id_00_{i:08d}.wav": _wav(seed=10 + i)
                for i in range(2) for label in ("normal", "anomaly")}
    return _zip(members)


class Zenodo:
    """Records 3678171 (dev) and 3727685 (additional) of DCASE 2020, served from memory. ``cut``: file names whose
    first transfer stops after half their bytes; ``corrupt``: names served with other bytes than the checksum's."""

    def __init__(self):
        self.files = {"3678171": {"dev_data_fan.zip": dev_zip("fan"), "dev_data_pump.zip": dev_zip("pump", 2.0)},
                      "3727685": {"eval_data_train_fan.zip": _zip(
                          {f"fan/train/normal_id_01_{i:08d}.wav": _wav(seed=20 + i) for i in range(2)})}}
        self.cut: set[str] = set()
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str]] = []  # (path, Range header)

    def serve(self):
        zenodo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                zenodo.requests.append((self.path, self.headers.get("Range", "")))
                parts = self.path.strip("/").split("/")  # api/records/<id>[/files/<name>/content]
                record = zenodo.files.get(parts[2]) if len(parts) >= 3 else None
                if record is None:
                    return self.send_error(404)
                if len(parts) == 3:
                    port = self.server.server_address[1]
                    body = json.dumps({"files": [
                        {"key": name, "size": len(data), "checksum": f"md5:{hashlib.md5(data).hexdigest()}",
                         "links": {"self": f"http://127.0.0.1:{port}/api/records/{parts[2]}/files/{name}/content"}}
                        for name, data in record.items()]}).encode()
                    return self._send(200, body, "application/json")
                name = parts[4]
                data = record[name]
                if name in zenodo.corrupt:
                    data = data[:100] + bytes(len(data) - 100)
                start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
                if name in zenodo.cut:  # the connection drops halfway: the client keeps what arrived
                    zenodo.cut.discard(name)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if start:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:])
                    return
                self._send(200, data, "application/zip")

            def _send(self, code, body, kind):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def zenodo(monkeypatch):
    fake = Zenodo()
    server = fake.serve()
    monkeypatch.setenv("ASDBENCH_ZENODO_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr("asdbench.data.download.time.sleep", lambda s: None)
    yield fake
    server.shutdown()


def _file_requests(fake: Zenodo) -> list[tuple[str, str]]:
    return [(path.split("/")[-2], span) for path, span in fake.requests if path.endswith("/content")]


def test_a_download_unpacks_into_the_layout_the_data_set_reads_and_resumes_a_cut_transfer(tmp_path, zenodo):
    zenodo.cut.add("dev_data_pump.zip")
    out = tmp_path / "dcase2020"
    result = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--part", "dev,additional", "--out", str(out)])
    assert result.exit_code == 0, result.output
    # the cut transfer was continued near the byte where it stopped (whole chunks of what arrived), not started over
    size = len(zenodo.files["3678171"]["dev_data_pump.zip"])
    pump = [span for name, span in _file_requests(zenodo) if name == "dev_data_pump.zip"]
    assert len(pump) == 2 and pump[0] == "" and size // 2 - 65536 < int(pump[1][6:-1]) <= size // 2, pump
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav"))[:3] == [
        "dev_data/fan/test/anomaly_id_00_00000000.wav", "dev_data/fan/test/anomaly_id_00_00000001.wav",
        "dev_data/fan/test/normal_id_00_00000000.wav"]
    assert (out / "eval_data" / "fan" / "train" / "normal_id_01_00000001.wav").is_file()
    data = DCASE2020T2(str(out))
    assert len(data.clips("train")) == 3 + 3 + 2 and len(data.clips("test")) == 8
    assert not list(out.glob(".unpacking-*")) and not list((out / ".downloads").iterdir())  # zips removed once unpacked
    # a second call finds everything done and fetches nothing
    zenodo.requests.clear()
    again = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--part", "dev,additional", "--out", str(out)])
    assert again.exit_code == 0 and _file_requests(zenodo) == []
    assert "dev_data_fan.zip: already in dev_data" in again.output


def test_a_corrupt_file_is_refused_and_a_later_call_fetches_only_what_is_missing(tmp_path, zenodo):
    zenodo.corrupt.add("dev_data_pump.zip")
    out = tmp_path / "data"
    result = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--out", str(out), "--retries", "1"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "dev_data_pump.zip (Zenodo record 3678171): its MD5 differs from the one record 3678171 publishes" in \
        " ".join(result.output.split()) and "tried 2 times" in result.output
    assert (out / "dev_data" / "fan" / "train").is_dir() and not (out / "dev_data" / "pump").exists()
    assert not [p for p in (out / ".downloads").iterdir()]  # no unchecked bytes kept as if whole
    zenodo.corrupt.clear()
    zenodo.requests.clear()
    fixed = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--out", str(out), "--types", "pump,fan"])
    assert fixed.exit_code == 0, fixed.output
    assert [name for name, _ in _file_requests(zenodo)] == ["dev_data_pump.zip"]
    assert len(DCASE2020T2(str(out)).clips("train")) == 6


def test_a_zip_that_fails_to_unpack_leaves_nothing_in_the_layout_and_options_are_checked(tmp_path, zenodo):
    good = zenodo.files["3678171"]["dev_data_fan.zip"]
    broken = bytearray(good)
    broken[good.index(b"RIFF", 200) + 10] ^= 0xFF  # a member's bytes no longer match its CRC
    zenodo.files["3678171"] = {"dev_data_fan.zip": bytes(broken)}
    out = tmp_path / "data"
    result = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--out", str(out), "--raw", "--keep-zips"])
    assert result.exit_code == 1 and "dev_data_fan.zip: cannot be unpacked" in " ".join(result.output.split())
    assert not (out / "dev_data" / "raw" / "fan").exists() and not list((out / "dev_data" / "raw").glob(".unpacking-*"))
    zenodo.files["3678171"] = {"dev_data_fan.zip": good}
    (out / ".downloads" / "dev_data_fan.zip").unlink()  # kept, but it was the broken one
    result = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--out", str(out), "--raw", "--keep-zips"])
    assert result.exit_code == 0 and (out / "dev_data" / "raw" / "fan" / "train").is_dir()
    assert (out / ".downloads" / "dev_data_fan.zip").read_bytes() == good
    bad_part = CliRunner().invoke(cli, ["data", "download", "dcase2020t2", "--out", str(out), "--part", "test"])
    assert bad_part.exit_code == 1 and "--part test: one of dev, additional, eval, labels" in bad_part.output
    not_downloadable = CliRunner().invoke(cli, ["data", "download", "synthetic", "--out", str(out)])
    assert not_downloadable.exit_code == 1 and "synthetic names no records to download" in not_downloadable.output
    assert "dcase2026t2" in not_downloadable.output
    no_labels = CliRunner().invoke(cli, ["data", "download", "dcase2024t2", "--out", str(out), "--part", "labels"])
    assert no_labels.exit_code == 1 and "dcase2024t2 has no 'labels' part" in no_labels.output
