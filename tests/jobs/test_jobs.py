"""The jobs layer: inputs loaded once, strict settings, and the Spark engine's reduced KPI rows
giving the KPIs of the whole transactions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from retain.batch import BatchSettings
from retain.batch.spark import kpi_rows
from retain.data.synthetic import simulate
from retain.data.validation import validate_transactions
from retain.features.builder import to_cutoff
from retain.jobs import Inputs, ScoreJob, TableSource
from retain.kpis import cohort_retention, retention_kpis
from retain.models.training import up_to

AS_OF = "2024-03-31"


def test_inputs_validate_each_file_once(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("customer_id,timestamp,amount\n1,2024-01-01,10\n1,2024-01-01,10\nx,no,1\n")
    inputs = Inputs(transactions=TableSource(path=path), quarantine=tmp_path / "bad.csv")
    lines: list[str] = []
    first = inputs.table("transactions", lines.append)
    again = inputs.table("transactions", lines.append)
    assert first is again
    assert sum("quarantine: 1 rows written" in line for line in lines) == 1
    assert inputs.table("events") is None


def test_settings_are_frozen_and_refuse_unknown_keys(tmp_path: Path) -> None:
    settings = BatchSettings(transactions=tmp_path / "tx.csv", as_of=AS_OF, out=tmp_path)
    with pytest.raises(ValidationError, match="frozen"):
        settings.as_of = "2024-01-01"  # type: ignore[misc]
    with pytest.raises(ValidationError, match=r"chunk_customer\n.*[Ee]xtra inputs"):
        BatchSettings(transactions=tmp_path / "tx.csv", as_of=AS_OF, out=tmp_path, chunk_customer=5)
    # The actions' options belong to the job that writes them, not to the engine's settings.
    with pytest.raises(ValidationError, match="budget"):
        BatchSettings(transactions=tmp_path / "tx.csv", as_of=AS_OF, out=tmp_path, budget=5.0)
    job = ScoreJob.of(settings, budget=5.0)
    assert job.budget == 5.0 and job.inputs.transactions.path == tmp_path / "tx.csv"


@pytest.mark.parametrize("order_ids", [True, False])
def test_the_reduced_kpi_rows_give_the_kpis_of_every_row(order_ids: bool) -> None:
    raw = simulate(400, seed=5).transactions
    # Line items: every order split in two rows at the same instant, some refunds among them.
    halves = raw.assign(amount=raw["amount"] / 2)
    lines = pd.concat([raw.assign(amount=raw["amount"] / 2), halves], ignore_index=True)
    if not order_ids:
        lines = lines.drop(columns=[c for c in ("order_id",) if c in lines])
    transactions = validate_transactions(lines).frame
    day = to_cutoff(AS_OF)
    reduced = kpi_rows(transactions, day)
    known = up_to(transactions, day)
    if order_ids and "order_id" in transactions:
        assert len(reduced) < len(known)
    for period in ("M", "Q"):
        expected = retention_kpis(known, period=period)
        actual = retention_kpis(reduced, period=period)
        pd.testing.assert_frame_equal(actual, expected, rtol=1e-12)
        pd.testing.assert_frame_equal(
            cohort_retention(reduced, period=period), cohort_retention(known, period=period)
        )
    assert np.isclose(reduced["amount"].sum(), known["amount"].sum(), rtol=1e-12)
