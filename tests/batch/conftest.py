"""Batch tests: a small model fitted once, the transactions file it is scored on, and one run.

The model is a RetentionModel (90-day horizon, two training cutoffs, one thread: bit-identical
results) fitted on 3,000 simulated customers as of 2024-06-30 and saved with ``save``, as
``retain train --out`` saves it; the job loads it by path. The same transactions are written to a
parquet file: scoring them as of the model's as_of scores the very population the model's drift
profile was made from.

``run_cli`` runs ``retain`` as a user does: a fresh process with MLflow's and retain's variables
cleared, in a temporary working directory (a model path that does not exist is handed to MLflow,
which must not leave a store in the repository).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from retain.batch import BatchSettings, Manifest
from retain.data.synthetic import simulate
from retain.jobs import ScoreJob
from retain.models.retention import RetentionModel

AS_OF = "2024-06-30"
HORIZON = 90
N_CUSTOMERS = 3_000
RETAIN = [sys.executable, "-m", "retain.cli"]
ACTION_OPTIONS = ("actions", "budget", "action_settings")


@dataclass(frozen=True)
class Fitted:
    """The model, where it was saved, and the transactions it was fitted on (frame and file)."""

    model: RetentionModel
    model_path: Path
    transactions: pd.DataFrame
    path: Path


@pytest.fixture(scope="session")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Fitted:
    folder = tmp_path_factory.mktemp("fitted")
    transactions = simulate(N_CUSTOMERS, seed=1).transactions
    model = RetentionModel(HORIZON, n_cutoffs=2, n_jobs=1).fit(transactions, AS_OF)
    path = folder / "transactions.parquet"
    transactions.to_parquet(path, index=False)
    return Fitted(model, model.save(folder / "model"), transactions, path)


@dataclass
class Run:
    """One ScoringJob run: its manifest, output folder, and what it logged and warned."""

    manifest: Manifest
    out: Path
    log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def scores(self) -> pd.DataFrame:
        return pd.read_parquet(self.out / "scores.parquet")


def score(fitted: Fitted, out: Path, **settings: Any) -> Run:
    """Run the job (scores and actions: :class:`ScoreJob`) in this process on the fixture's file
    and model (``settings`` override, the actions' among them)."""
    log: list[str] = []
    warnings: list[str] = []
    arguments: dict[str, Any] = {
        "transactions": fitted.path,
        "as_of": AS_OF,
        "out": out,
        "model": str(fitted.model_path),
        "progress": False,
    }
    merged = arguments | settings
    actions = {k: merged.pop(k) for k in ACTION_OPTIONS if k in merged}
    manifest = ScoreJob.of(BatchSettings(**merged), **actions).run(log.append, warnings.append)
    return Run(manifest, out, log, warnings)


@pytest.fixture(scope="session")
def scored(tmp_path_factory: pytest.TempPathFactory, fitted: Fitted) -> Run:
    """The fixture's transactions scored as of the model's as_of, in one chunk (tests only read
    it; a test that needs an earlier output to replace copies it with ``copy_output``)."""
    return score(fitted, tmp_path_factory.mktemp("scored") / "out")


def copy_output(run: Run, destination: Path) -> Path:
    shutil.copytree(run.out, destination)
    return destination


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder, by relative path, with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(destination: Path) -> list[str]:
    """Hidden temporary or set-aside folders of ``atomic_directory`` beside ``destination`` (not
    its lock file, which a killed run leaves behind for the next one to take)."""
    return sorted(p.name for p in destination.parent.glob(f".{destination.name}.*") if p.is_dir())


def clean_env(**extra: str) -> dict[str, str]:
    """This process's variables without MLflow's or retain's (plus ``extra``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    return env | extra


def run_cli(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``retain ARGS`` in a fresh process, from ``cwd``, without MLflow's or retain's variables."""
    return subprocess.run(
        [*RETAIN, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=600,
    )


def dead_pid() -> int:
    """The id of a process that has exited and been reaped (so nothing is running under it)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
