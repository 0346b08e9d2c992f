"""Training on Spark against the local fit: same sample, same tables, same model.

A real Spark session in local mode (two cores) on 127.0.0.1. The simulated shop has events and a
customers file, and the model's ``max_training_customers`` is below its number of buyers, so the
boosters learn from a sample of customers (the same by a hash of the id on both engines) while the
BTYD models kept for scoring see the whole population.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tests.batch.conftest import run_cli
from tests.helpers import customer_records

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.jobs.inputs import Inputs, TableSource
from retain.models.retention import RetentionModel

pytest.importorskip("pyspark")

AS_OF = "2024-06-30"
MAX_CUSTOMERS = 1_200
BOOSTERS = ("churn_", "timing_", "spend_", "purchases_")


@dataclass(frozen=True)
class Shop:
    transactions: Path
    events: Path
    customers: Path

    def inputs(self, transactions: Path | None = None) -> Inputs:
        return Inputs(
            transactions=TableSource(path=transactions or self.transactions),
            events=TableSource(path=self.events),
            customers=TableSource(path=self.customers),
        )


def _model() -> RetentionModel:
    return RetentionModel(90, n_cutoffs=2, n_jobs=1, max_training_customers=MAX_CUSTOMERS)


@pytest.fixture(scope="module", autouse=True)
def _loopback() -> Iterator[None]:
    """Spark's driver and the CLI's on 127.0.0.1, not on the machine's outward address."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        yield


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    folder = tmp_path_factory.mktemp("spark_training")
    data = simulate(3_000, seed=11, events=True)
    assert data.events is not None
    customers = customer_records(data.truth, 11)
    # A few unusable rows, which both engines must leave out alike.
    transactions = data.transactions.astype({"amount": "object"})
    transactions.loc[transactions.index[:5], "amount"] = "n/a"
    paths = Shop(folder / "transactions.parquet", folder / "events.parquet", folder / "c.csv")
    transactions.astype({"amount": "str"}).to_parquet(paths.transactions, index=False)
    data.events.to_parquet(paths.events, index=False)
    customers.to_csv(paths.customers, index=False, sep=";")
    return paths


@pytest.fixture(scope="module")
def frames(shop: Shop) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The validated frames, as the local engine reads the files."""
    transactions, events, customers = shop.inputs().frames()
    assert events is not None and customers is not None
    return transactions, events, customers


@pytest.fixture(scope="module")
def fits(
    shop: Shop, frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> dict[str, RetentionModel]:
    from retain.batch.spark_training import fit_on_spark

    transactions, events, customers = frames
    local = _model().fit(transactions, AS_OF, events=events, customers=customers)
    spark = fit_on_spark(_model(), shop.inputs(), AS_OF, master="local[2]", partitions=3)
    return {"local": local, "spark": spark.model}


def test_spark_training_fits_the_local_model(
    fits: dict[str, RetentionModel], frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> None:
    local, spark = fits["local"], fits["spark"]
    sample = local.training_sample_
    assert float(sample["sample_rate"]) < 1.0, "the test must exercise the customer sample"
    assert spark.training_sample_ == sample
    assert spark.cutoffs_ == local.cutoffs_ and len(local.cutoffs_) >= 2
    assert spark.training_rows_ == local.training_rows_ > 0
    assert local.fallback_ is None and spark.fallback_ is None
    for name in BOOSTERS:
        ours, theirs = getattr(local, name), getattr(spark, name)
        assert theirs.booster_.model_to_string() == ours.booster_.model_to_string(), name
    transactions, events, customers = frames
    expected = local.predict(transactions, AS_OF, events=events, customers=customers)
    got = spark.predict(transactions, AS_OF, events=events, customers=customers)
    assert len(expected) > 2_000
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_spark_training_from_the_cli_makes_a_model_that_scores(shop: Shop, tmp_path: Path) -> None:
    trained = run_cli(
        "train",
        "--transactions",
        shop.transactions,
        "--customers",
        shop.customers,
        "--as-of",
        AS_OF,
        "--horizon-days",
        "90",
        "--cutoffs",
        "2",
        "--no-tracking",
        "--out",
        tmp_path / "trained",
        "--engine",
        "spark",
        "--master",
        "local[2]",
        "--partitions",
        "3",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert "on Spark" in trained.stdout
    model = tmp_path / "trained" / "model"
    assert RetentionModel.load(model).cutoffs_
    scored = run_cli(
        "score",
        "--transactions",
        shop.transactions,
        "--customers",
        shop.customers,
        "--as-of",
        AS_OF,
        "--model",
        model,
        "--out",
        tmp_path / "scores",
        "--no-actions",
        cwd=tmp_path,
    )
    assert scored.returncode == 0, scored.stderr
    scores = pd.read_parquet(tmp_path / "scores" / "scores.parquet")
    assert len(scores) > 2_000 and scores["churn_probability"].between(0, 1).all()


def test_spark_training_with_tracking_is_a_usage_error(shop: Shop, tmp_path: Path) -> None:
    done = run_cli(
        "train", "-t", shop.transactions, "--as-of", AS_OF, "--engine", "spark", cwd=tmp_path
    )
    assert done.returncode != 0
    assert "--no-tracking --out" in done.stderr and "Traceback" not in done.stderr


def test_spark_training_refuses_bad_input_as_scoring_does(shop: Shop, tmp_path: Path) -> None:
    from retain.batch.spark_training import fit_on_spark

    frame = pd.read_parquet(shop.transactions)
    frame["timestamp"] = frame["timestamp"].astype("str")
    frame.loc[frame.index[: int(len(frame) * 0.8)], "timestamp"] = "yesterday"
    bad = tmp_path / "bad.parquet"
    frame.to_parquet(bad, index=False)
    with pytest.raises(RetainInputError, match="timestamp"):
        fit_on_spark(_model(), shop.inputs(bad), AS_OF, master="local[2]", partitions=3)

    no_amount = tmp_path / "no_amount.parquet"
    pd.read_parquet(shop.transactions).drop(columns="amount").to_parquet(no_amount, index=False)
    done = run_cli(
        "train",
        "--transactions",
        no_amount,
        "--as-of",
        AS_OF,
        "--no-tracking",
        "--out",
        tmp_path / "out",
        "--engine",
        "spark",
        "--master",
        "local[2]",
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "required column 'amount' is missing" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
