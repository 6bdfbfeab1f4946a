"""The MLflow pyfunc scores recordings sent as data (WAV bytes, float arrays with a sample rate) as well as paths, in
process and behind a real ``mlflow models serve`` on the loopback: the scores of posted WAVs equal ``score``'s of the
same files, and a request it cannot read is a 400 whose message is one line."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from asdbench.serving.model import load_model
from support import tiny_data_root


@pytest.fixture(scope="module")
def served_model(dcase_ae_run, tmp_path_factory):
    run_id, uri = dcase_ae_run
    model_dir = Path(mlflow.artifacts.download_artifacts(f"runs:/{run_id}/model", tracking_uri=uri,
                                                         dst_path=str(tmp_path_factory.mktemp("served"))))
    return run_id, uri, model_dir


def _clips() -> list[Path]:
    test = tiny_data_root() / "valve" / "test"
    return sorted(test.glob("normal_id_02_*.wav"))[:2] + sorted(test.glob("anomaly_id_02_*.wav"))[:2]


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def test_the_pyfunc_scores_wav_bytes_and_arrays_as_score_scores_the_files(served_model):
    run_id, uri, model_dir = served_model
    clips = _clips()
    expected = [d.score for d in load_model(run_id, tracking_uri=uri).score(clips)]
    pyfunc = mlflow.pyfunc.load_model(str(model_dir))
    by_bytes = pyfunc.predict(pd.DataFrame({"wav": [p.read_bytes() for p in clips], "machine_type": "valve",
                                            "machine_id": "02"}))
    assert by_bytes["score"].tolist() == expected and by_bytes["file"].tolist() == [f"row {i}" for i in range(4)]
    assert by_bytes["decision"].tolist() == [int(s > t) for s, t in zip(expected, by_bytes["threshold"])]
    waves = [sf.read(str(p), dtype="float32") for p in clips]
    by_arrays = pyfunc.predict({"audio": [w.tolist() for w, _ in waves], "sample_rate": [r for _, r in waves],
                                "machine_type": ["valve"] * 4, "machine_id": ["02"] * 4})
    assert by_arrays["score"].tolist() == pytest.approx(expected, rel=1e-6)
    # at twice the rate, resampled as a file at that rate would be
    wave, rate = waves[0]
    resampled = pyfunc.predict({"audio": [np.repeat(wave, 2).tolist()], "sample_rate": [2 * rate],
                                "machine_type": ["valve"], "machine_id": ["02"]})
    assert resampled["score"][0] == pytest.approx(expected[0], rel=0.05)
    assert pyfunc.predict([str(p) for p in clips])["score"].tolist() == expected  # paths, as before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port: int, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_mlflow_models_serve_scores_posted_wavs_and_answers_bad_input_with_a_400(served_model, tmp_path):
    run_id, uri, model_dir = served_model
    clips = _clips()
    expected = [d.score for d in load_model(run_id, tracking_uri=uri).score(clips)]
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log = open(tmp_path / "serve.log", "w")
    path = f"{mlflow_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"  # as in an activated venv: uvicorn is there
    server = subprocess.Popen([str(mlflow_cli), "models", "serve", "-m", str(model_dir), "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "PATH": path})
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-2000:]
            time.sleep(0.5)
        status, body = _post(port, {"dataframe_records": [{"wav": _b64(p), "machine_type": "valve",
                                                           "machine_id": "02"} for p in clips]})
        assert status == 200, body
        rows = body["predictions"]
        assert [r["score"] for r in rows] == pytest.approx(expected, rel=1e-9)
        assert [r["decision"] for r in rows] == [int(s > r["threshold"]) for s, r in zip(expected, rows)]
        # bad input: not base64, not a WAV, a machine the model lacks, no machine at all: 400, one line each
        for record, message in (
            ({"wav": "%%%", "machine_type": "valve", "machine_id": "02"}, "row 0: wav is not base64 text"),
            ({"wav": base64.b64encode(b"RIFFjunk").decode(), "machine_type": "valve", "machine_id": "02"},
             "row 0: wav is not a readable WAV file"),
            ({"wav": _b64(clips[0]), "machine_type": "valve", "machine_id": "07"}, "this model has no valve/id_07"),
            ({"audio": [0.1, 0.2], "machine_type": "valve", "machine_id": "02"}, "row 0: audio needs its sample_rate"),
        ):
            status, body = _post(port, {"dataframe_records": [record]})
            assert status == 400 and message in body["message"], (status, body)
            assert "\n" not in body["message"] and len(body["message"]) < 400, body
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
