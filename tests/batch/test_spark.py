"""The Spark engine against the local one: same scores, same counts, same refusals.

A real Spark session in local mode (two cores) on 127.0.0.1; the model reads events and customer
records too, so the partitions carry all three tables (transactions cogrouped with the others).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.helpers import PREDICTED_FLOATS, customer_records

from retain.batch import BatchSettings, Manifest
from retain.batch.chunks import chunk_of
from retain.data.synthetic import simulate
from retain.data.validation import parse_customer_ids, validate_customers, validate_events
from retain.errors import RetainInputError
from retain.jobs import ScoreJob
from retain.models.retention import RetentionModel

pytest.importorskip("pyspark")

AS_OF = "2024-06-30"


@dataclass(frozen=True)
class Inputs:
    model: Path
    transactions: Path
    events: Path
    customers: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    folder = tmp_path_factory.mktemp("spark")
    data = simulate(2_500, seed=7, events=True)
    assert data.events is not None
    customers = customer_records(data.truth, 7, channels=True)
    model = RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(
        data.transactions,
        AS_OF,
        events=validate_events(data.events).frame,
        customers=validate_customers(customers).frame,
    )
    # A few unusable rows, which both engines must count the same way.
    transactions = data.transactions.astype({"amount": "object"})
    transactions.loc[transactions.index[:7], "amount"] = "n/a"
    paths = Inputs(
        model=model.save(folder / "model"),
        transactions=folder / "transactions.parquet",
        events=folder / "events.parquet",
        customers=folder / "customers.csv",
    )
    transactions.astype({"amount": "str"}).to_parquet(paths.transactions, index=False)
    data.events.to_parquet(paths.events, index=False)
    # Semicolons, as spreadsheets in many locales export: both engines find the separator.
    customers.to_csv(paths.customers, index=False, sep=";")
    return paths


def _run(inputs: Inputs, out: Path, engine: str, **extra: object) -> Manifest:
    settings = BatchSettings(
        transactions=inputs.transactions,
        events=inputs.events,
        customers=inputs.customers,
        as_of=AS_OF,
        out=out,
        model=str(inputs.model),
        engine=engine,
        spark_master="local[2]",
        partitions=3,
        chunk_customers=1_000,
        progress=False,
        **extra,
    )
    return ScoreJob.of(settings).run(log=lambda _: None, warn=lambda _: None)


@pytest.fixture(scope="module")
def both(inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Manifest]:
    """Both engines' manifests; their outputs are in ``OUTPUTS / engine``."""
    folder = tmp_path_factory.mktemp("engines")
    manifests = {engine: _run(inputs, folder / engine, engine) for engine in ("local", "spark")}
    for engine, manifest in manifests.items():
        manifest.output["folder"] = str(folder / engine)
    return manifests


def _scores(out: Path) -> pd.DataFrame:
    frame = pd.read_parquet(out / "scores.parquet")
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def test_spark_gives_the_local_scores(both: dict[str, Manifest]) -> None:
    local, spark = (_scores(Path(str(both[e].output["folder"]))) for e in ("local", "spark"))
    assert len(local) == len(spark) == both["local"].customers_scored > 2_000
    assert local["customer_id"].tolist() == spark["customer_id"].tolist()
    for column in PREDICTED_FLOATS:
        np.testing.assert_allclose(spark[column], local[column], rtol=0, atol=1e-9, err_msg=column)
    for column in ("expected_next_purchase_date", "segment", "action"):
        assert local[column].tolist() == spark[column].tolist(), column
    assert [list(r) for r in local["reasons"]] == [list(r) for r in spark["reasons"]]


def test_both_engines_store_a_date_and_nulls(both: dict[str, Manifest]) -> None:
    """The expected next purchase date is a Parquet DATE in both outputs; a customer with no
    purchase expected within the horizon has nulls (not NaN) in both columns."""
    for engine, manifest in both.items():
        table = pq.read_table(Path(str(manifest.output["folder"])) / "scores.parquet")
        assert table.schema.field("expected_next_purchase_date").type == pa.date32(), engine
        days = table.column("days_to_next_purchase")
        assert 0 < days.null_count < len(table), engine
        assert days.is_null().equals(table.column("expected_next_purchase_date").is_null()), engine
        assert not pc.any(pc.is_nan(days)).as_py(), engine
        assert pc.max(days).as_py() <= manifest.horizon_days, engine


def test_spark_counts_what_the_local_engine_counts(both: dict[str, Manifest]) -> None:
    local, spark = both["local"], both["spark"]
    assert spark.engine == "spark"
    for table in ("transactions", "events", "customers"):
        ours, theirs = local.inputs[table], spark.inputs[table]
        assert (theirs.rows_read, theirs.rows_valid, theirs.rows_rejected) == (
            ours.rows_read,
            ours.rows_valid,
            ours.rows_rejected,
        ), table
        assert theirs.sha256 == ours.sha256
        assert (theirs.normalised_ids, theirs.nonpositive_quantity_rows) == (
            ours.normalised_ids,
            ours.nonpositive_quantity_rows,
        ), table
    assert local.inputs["transactions"].rows_rejected == {"non-numeric amount": 7}
    assert spark.customers_without_purchase == local.customers_without_purchase
    assert spark.output["transactions_after_as_of"] == local.output["transactions_after_as_of"] > 0
    assert spark.drift is not None and local.drift is not None
    assert spark.drift.features == pytest.approx(local.drift.features, abs=1e-9)
    assert spark.drift.predictions == pytest.approx(local.drift.predictions, abs=1e-9)


def test_spark_rerun_writes_the_same_files(
    inputs: Inputs, both: dict[str, Manifest], tmp_path: Path
) -> None:
    again = _run(inputs, tmp_path / "again", "spark")
    first = Path(str(both["spark"].output["folder"])) / "scores.parquet"
    second = tmp_path / "again" / "scores.parquet"
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    pd.testing.assert_frame_equal(pd.read_parquet(first), pd.read_parquet(second))
    assert again.output["sha256"] == both["spark"].output["sha256"]


def test_spark_output_gets_the_actions_of_the_local_one(both: dict[str, Manifest]) -> None:
    # The Spark engine writes scores.parquet as a folder of part files; the actions step reads it
    # whole, and plans the same actions as for the local engine's single file.
    plans = {
        engine: pd.read_parquet(
            Path(str(manifest.output["folder"])) / "actions" / "actions.parquet"
        )
        .sort_values("customer_id", kind="stable")
        .reset_index(drop=True)
        for engine, manifest in both.items()
    }
    assert len(plans["spark"]) == both["spark"].customers_scored
    for column in ("customer_id", "lifecycle_segment", "loyalty_tier", "contact_date", "discount"):
        assert (
            plans["spark"][column].astype(str).tolist()
            == plans["local"][column].astype(str).tolist()
        ), column


def test_spark_refuses_bad_input_and_writes_nothing(inputs: Inputs, tmp_path: Path) -> None:
    frame = pd.read_parquet(inputs.transactions)
    frame["timestamp"] = frame["timestamp"].astype("str")
    frame.loc[frame.index[: int(len(frame) * 0.8)], "timestamp"] = "yesterday"
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad, index=False)
    out = tmp_path / "out"
    with pytest.raises(RetainInputError, match="timestamp"):
        _run(Inputs(inputs.model, bad, inputs.events, inputs.customers), out, "spark")
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))

    no_amount = tmp_path / "no_amount.parquet"
    pd.read_parquet(inputs.transactions).drop(columns="amount").to_parquet(no_amount, index=False)
    with pytest.raises(RetainInputError, match="required column 'amount' is missing"):
        _run(Inputs(inputs.model, no_amount, inputs.events, inputs.customers), out, "spark")
    assert not out.exists()


def test_spark_refuses_currencies_that_differ_between_partitions(
    inputs: Inputs, tmp_path: Path
) -> None:
    """Issue 17, finding 10 on Spark: each partition of customers holds one currency, so no
    partition sees a mix; the whole table is refused all the same, and --currency picks one."""
    frame = pd.read_parquet(inputs.transactions)
    partition = chunk_of(parse_customer_ids(frame["customer_id"]), 3)
    frame["Currency"] = np.where(partition == 0, "EUR", "USD")
    assert frame.groupby(partition)["Currency"].nunique().max() == 1
    mixed = tmp_path / "mixed.parquet"
    frame.to_parquet(mixed, index=False)
    tables = Inputs(inputs.model, mixed, inputs.events, inputs.customers)
    out = tmp_path / "out"
    with pytest.raises(RetainInputError, match=r"column 'currency' holds 2 currencies: .*EUR"):
        _run(tables, out, "spark")
    assert not out.exists()
    manifest = _run(tables, out, "spark", validation={"currency": "usd"})
    summary = manifest.inputs["transactions"]
    eur = int((partition == 0).sum())
    assert summary.currencies == {"EUR": eur, "USD": len(frame) - eur}
    assert summary.rows_rejected["currency other than USD"] == eur


def test_spark_actions_get_the_local_kpis_without_the_transactions(
    both: dict[str, Manifest],
) -> None:
    # Spark hands the actions step reduced KPI rows (kpi_rows), not the transactions: the CRR
    # forecast, its observed periods and the audiences are the local engine's.
    summaries = {
        engine: json.loads(
            (Path(str(manifest.output["folder"])) / "actions" / "actions.json").read_text()
        )
        for engine, manifest in both.items()
    }
    local, spark = summaries["local"], summaries["spark"]
    assert spark["audiences"] == local["audiences"]
    forecast, expected = spark["crr_forecast"], local["crr_forecast"]
    assert forecast.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert forecast[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
        else:
            assert forecast[key] == value, key


def test_the_default_partitions_grow_with_the_input_files(inputs: Inputs, tmp_path: Path) -> None:
    """Two per core for small inputs; one per PARTITION_BYTES of input files for large ones (the
    1.6M-customer file in 4 partitions ran Spark's JVM out of memory)."""
    from retain.batch.spark import PARTITION_BYTES, _session, default_partitions
    from retain.jobs.inputs import Inputs as JobInputs
    from retain.jobs.inputs import TableSource

    spark = _session("local[2]")
    small = JobInputs(transactions=TableSource(path=inputs.transactions))
    assert default_partitions(spark, small) == 4  # 2 cores
    large = tmp_path / "large.parquet"
    with large.open("wb") as file:
        file.truncate(9 * PARTITION_BYTES + 1)  # sparse: its size is what counts
    folder = tmp_path / "folder"
    folder.mkdir()
    with (folder / "part-0.parquet").open("wb") as file:
        file.truncate(6 * PARTITION_BYTES)
    two = JobInputs(transactions=TableSource(path=large), customers=TableSource(path=folder))
    assert default_partitions(spark, JobInputs(transactions=TableSource(path=large))) == 10
    assert default_partitions(spark, two) == 16  # the files of a folder count, added up
