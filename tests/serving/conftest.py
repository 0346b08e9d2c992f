"""Serving tests: a small model trained once, exported to a folder, and the real ``bentoml serve``.

The model is fitted on the CDNOW sample as of 1998-03-31 (90-day horizon, two training cutoffs, one
thread) and written as ``retain export`` writes it (a ``retain-model`` folder and ``retain.json``), so the
service loads it from ``RETAIN_SERVE_MODEL_DIR`` without MLflow. Servers are real processes, each in
its own process group (killed as a group at teardown), started from a temporary folder with MLflow's
and retain's variables cleared, and waited for on ``/readyz``.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from retain.data.datasets import Dataset
from retain.models.retention import RetentionModel
from retain.serving.scoring import _EXPORT_META, EXPORT_MODEL

AS_OF = "1998-03-31"
HORIZON = 90
VERSION = "7"
SERVICE = "retain.serving.service:RetentionService"
BENTOML = str(Path(sys.executable).with_name("bentoml"))
START_TIMEOUT_S = 90.0
# Small limits, so that 413s are cheap to provoke.
MAX_CUSTOMERS = 50
MAX_TRANSACTIONS = 500


@dataclass(frozen=True)
class Trained:
    """The model, the transactions it was trained on, and the folder it was exported to."""

    model: RetentionModel
    transactions: pd.DataFrame
    model_dir: Path


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, cdnow_sample: Dataset) -> Trained:
    transactions = cdnow_sample.transactions.frame
    model = RetentionModel(HORIZON, n_cutoffs=2, n_jobs=1).fit(transactions, AS_OF)
    folder = tmp_path_factory.mktemp("export")
    model.save(folder / EXPORT_MODEL)
    (folder / _EXPORT_META).write_text(json.dumps({"version": VERSION, "source": "test"}))
    return Trained(model, transactions, folder)


# -- requests ----------------------------------------------------------------------------------------


def histories(transactions: pd.DataFrame, customer_ids: list[str]) -> list[dict[str, Any]]:
    """The request's ``customers``: each customer's whole history (later rows included: the
    service, like the batch job, reads only what happened on or before as_of)."""
    chosen = transactions.loc[transactions["customer_id"].isin(customer_ids)]
    lines: dict[str, list[dict[str, Any]]] = {c: [] for c in customer_ids}
    for row in chosen.to_dict("records"):
        line = {"timestamp": row["timestamp"].isoformat(), "amount": row["amount"]}
        if not pd.isna(row.get("quantity")):
            line["quantity"] = row["quantity"]
        lines[row["customer_id"]].append(line)
    return [{"customer_id": c, "transactions": lines[c]} for c in customer_ids]


def json_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """A feature table as JSON rows; NaN (no JSON for it) becomes null."""
    rows = table.astype(object).to_dict("records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]


# -- servers -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60, headers=headers)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


@contextmanager
def running_server(
    folder: Path, env: dict[str, str], *, wait_ready: bool = True
) -> Iterator[Server]:
    """``bentoml serve`` with these variables (on top of a clean environment), until /livez (and
    /readyz, if ``wait_ready``) answers 200; its whole process group is killed afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    port = _free_port()
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [BENTOML, "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=clean | {"BENTOML_HOME": str(folder / "bentoml")} | env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", log, process)
    try:
        probe = f"{server.url}/readyz" if wait_ready else f"{server.url}/livez"
        deadline = time.monotonic() + START_TIMEOUT_S
        while _status(probe) != 200:
            if process.poll() is not None:
                pytest.fail(f"bentoml serve exited with {process.returncode}:\n{server.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{probe} not 200 after {START_TIMEOUT_S:.0f}s:\n{server.output()}")
            time.sleep(0.5)
        yield server
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def serving_env(trained: Trained, **extra: str) -> dict[str, str]:
    return {
        "RETAIN_SERVE_MODEL_DIR": str(trained.model_dir),
        "RETAIN_SERVE_MAX_CUSTOMERS": str(MAX_CUSTOMERS),
        "RETAIN_SERVE_MAX_TRANSACTIONS": str(MAX_TRANSACTIONS),
        **extra,
    }


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, trained: Trained) -> Iterator[Server]:
    """The service with the exported model and small limits, shared by the session."""
    with running_server(tmp_path_factory.mktemp("server"), serving_env(trained)) as started:
        yield started
