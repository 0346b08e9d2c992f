"""Training, registration and loading through a real ``mlflow server``, as a team would run it.

The server runs as a subprocess in its own process group, with a sqlite backend and proxied
artefacts (``--serve-artifacts``) in a temporary folder; the client trains from another temporary
folder, so the run's artefacts can only reach the server over HTTP. Job execution (MLflow 3's
background workers, a dozen processes, not used by retain) is switched off to keep the server
light on a two-core machine.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from tests.tracking.conftest import AS_OF, HORIZON, small_model

from retain.data.datasets import Dataset
from retain.tracking import (
    TrackingSettings,
    check_tracking_server,
    load_model,
    promote,
    register_version,
    to_model_input,
    train_tracked,
)

STARTUP_TIMEOUT_S = 240.0  # about 20-35 s on the two-core machine; CI machines can be slower


@dataclass(frozen=True)
class Server:
    uri: str
    folder: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(uri: str) -> bool:
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End the server's process group (the CLI, uvicorn and its worker): SIGTERM, and SIGKILL
    for whatever is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        if not _group_alive(process.pid):
            break
        os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the leader: a zombie still counts as a member of the group
            if not _group_alive(process.pid):
                break
            time.sleep(0.2)
    process.poll()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("mlflow-server")
    uri = f"http://127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", "127.0.0.1",
        "--port", uri.rsplit(":", 1)[1],
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination", str(folder / "artifacts"),
        "--serve-artifacts",
    ]  # fmt: skip
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, ended as a whole in teardown
        )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not _healthy(uri):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
                pytest.fail(f"mlflow server did not come up at {uri}:\n{tail}")
            time.sleep(0.5)
        yield Server(uri, folder)
    finally:
        _stop(process)


def test_train_register_load_and_promote_through_a_server(
    server: Server, cdnow_sample: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    tx = cdnow_sample.transactions.frame
    settings = TrackingSettings(tracking_uri=server.uri)
    assert check_tracking_server(settings) == server.uri

    result = train_tracked(tx, AS_OF, HORIZON, settings=settings, model_factory=small_model)
    assert result.registration is not None
    assert (result.registration.version, result.registration.champion) == ("1", True)

    # Everything went to the server: its store has the run, its folder the artefacts; the
    # client's working directory stayed empty.
    client = MlflowClient(server.uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert run.data.metrics["churn_roc_auc/retain"] > 0.5
    artefacts = server.folder / "artifacts"
    assert len(list(artefacts.rglob("evaluation/report.md"))) == 1
    assert len(list(artefacts.rglob("model_code.py"))) == 1
    assert list(tmp_path.iterdir()) == []

    expected = result.model.predict(tx, AS_OF)
    # retain's loader: the RetentionModel behind models:/retain@champion.
    pd.testing.assert_frame_equal(load_model(settings=settings).predict(tx, AS_OF), expected)
    # Plain MLflow: raw transactions in, the scores table out.
    mlflow.set_tracking_uri(server.uri)
    pyfunc = mlflow.pyfunc.load_model("models:/retain@champion")
    scored = pyfunc.predict(to_model_input(tx), params={"as_of": AS_OF})
    pd.testing.assert_frame_equal(
        scored, expected.assign(reasons=expected["reasons"].map("; ".join))
    )

    # A server refuses a models:/<model_id> source without the model's id: register_version
    # reads it from the URI when not given. The same model again ties with the champion and
    # stays challenger until a person promotes it.
    again = register_version(client, result.run_id, result.model_uri, settings)
    assert (again.version, again.champion) == ("2", False)
    assert again.reason.startswith("does not beat version 1")
    assert promote(again.version, settings).champion
    assert str(client.get_model_version_by_alias("retain", "champion").version) == "2"
    some = tx[tx["customer_id"].isin(["1", "2", "3"])]
    scores = load_model(settings=settings).predict(some, AS_OF)
    assert scores["customer_id"].tolist() == ["1", "2", "3"]
