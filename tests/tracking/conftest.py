"""Tracking tests: every MLflow store lives in a temporary folder, never in the repository.

A sqlite store puts run artefacts in ``./mlruns`` of the working directory, so whatever creates an
experiment runs from a temporary folder (``monkeypatch.chdir``). ``train_tracked`` sets MLflow's
tracking URI for the whole process (and with it ``MLFLOW_TRACKING_URI``); the autouse fixture
clears MLflow's and retain's variables before each test and MLflow's URI after it, and fails the
test if it left an ``mlflow.db``, ``mlruns`` or ``mlartifacts`` in the repository.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pytest

from retain.data.datasets import Dataset
from retain.data.validation import ValidationOptions
from retain.models.retention import RetentionModel
from retain.tracking import TrackedTraining, TrackingSettings, train_tracked

REPO = Path(__file__).resolve().parents[2]
AS_OF = "1997-12-31"
HORIZON = 90
# How load_cdnow reads the sample: its date column under the contract's timestamp, as %Y%m%d days.
CDNOW_COLUMNS = {"transactions": {"timestamp": "date"}}
CDNOW_READING = ValidationOptions(timestamp_format="%Y%m%d", strict=True)


def small_model(horizon_days: int) -> RetentionModel:
    """A quick RetentionModel: two training cutoffs, one thread (bit-identical results)."""
    return RetentionModel(horizon_days, n_cutoffs=2, n_jobs=1)


def sqlite_settings(folder: Path, **fields: Any) -> TrackingSettings:
    return TrackingSettings(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", **fields)


@pytest.fixture(autouse=True)
def isolated_mlflow(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith(("MLFLOW_", "RETAIN_")):
            monkeypatch.delenv(name)
    watched = [REPO / name for name in ("mlflow.db", "mlruns", "mlartifacts")]
    existed = {path: path.exists() for path in watched}
    yield
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None unsets it (and the variable)
    created = [path.name for path in watched if path.exists() and not existed[path]]
    assert not created, f"the test wrote {created} into the repository"


@dataclass(frozen=True)
class Tracked:
    """One tracked training on the CDNOW sample, in its own store."""

    folder: Path
    settings: TrackingSettings
    result: TrackedTraining


@pytest.fixture(scope="session")
def tracked(tmp_path_factory: pytest.TempPathFactory, cdnow_sample: Dataset) -> Tracked:
    """CDNOW sample, as of 1997-12-31, 90 days, with how the file was read: trained once per
    session (tests only read it)."""
    folder = tmp_path_factory.mktemp("tracked")
    settings = sqlite_settings(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        result = train_tracked(
            cdnow_sample.transactions.frame,
            AS_OF,
            HORIZON,
            settings=settings,
            model_factory=small_model,
            columns=CDNOW_COLUMNS,
            validation=CDNOW_READING,
        )
    return Tracked(folder, settings, result)
