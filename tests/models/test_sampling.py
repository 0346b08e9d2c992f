"""The training sample of customers (issue 18): by id, seeded, and only above the cap."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.models.retention import RetentionModel
from retain.models.sampling import customer_sample, in_sample

AS_OF = "2023-12-31"


def test_the_sample_keeps_about_the_cap_by_id_alone() -> None:
    ids = pd.Series([f"c{i}" for i in range(100_000)])
    rule = customer_sample(len(ids), 20_000, random_state=3)
    kept = in_sample(ids, rule)
    assert rule.rate == pytest.approx(0.2)
    # Binomial(100,000, 0.2): the standard deviation is 126.
    assert abs(int(kept.sum()) - 20_000) < 600
    # A customer is in or out whatever else is in the table, in any order: Spark partitions
    # and the local engine draw the same sample.
    shuffled = ids.sample(frac=1.0, random_state=1)
    assert (in_sample(shuffled, rule) == kept[shuffled.index.to_numpy()]).all()
    assert (in_sample(ids[:500], rule) == kept[:500]).all()
    other_seed = in_sample(ids, customer_sample(len(ids), 20_000, random_state=4))
    assert (other_seed != kept).mean() > 0.2


def test_no_sample_below_the_cap() -> None:
    rule = customer_sample(1_000, 1_000, random_state=0)
    assert not rule.sampled and in_sample(np.array(["a", "b"]), rule).all()
    assert not customer_sample(10**7, None, random_state=0).sampled


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return simulate(3_000, start="2022-01-01", end=AS_OF, seed=5).transactions


def test_a_fit_above_the_cap_learns_from_the_sample_and_scores_everyone(
    transactions: pd.DataFrame, tmp_path: Path
) -> None:
    buyers = transactions.loc[transactions["amount"] >= 0, "customer_id"].nunique()
    capped = RetentionModel(90, n_cutoffs=2, max_training_customers=1_000, n_jobs=1)
    capped.fit(transactions, AS_OF)
    full = RetentionModel(90, n_cutoffs=2, max_training_customers=None, n_jobs=1)
    full.fit(transactions, AS_OF)
    assert capped.training_sample_ == {
        "customers": str(buyers),
        "sample_rate": f"{1_000 / buyers:.6g}",
        "sample_seed": "0",
    }
    assert full.training_sample_["sample_rate"] == "1"
    # About a third of the customers at each cutoff (the sample is by id, so not exactly).
    share = capped.training_rows_ / full.training_rows_
    assert 0.25 < share < 0.42, share
    # What is fitted at as_of sees everybody: the BTYD models kept for scoring.
    assert (
        capped.btyd_.transactions_.n_customers_ == buyers == full.btyd_.transactions_.n_customers_
    )
    scores = capped.predict(transactions, AS_OF, n_reasons=0)
    assert len(scores) == buyers and scores["churn_probability"].between(0, 1).all()
    loaded = RetentionModel.load(capped.save(tmp_path / "model"))
    assert loaded.training_sample_ == capped.training_sample_
    assert loaded.max_training_customers == 1_000


def test_a_cap_below_the_smallest_table_is_refused(transactions: pd.DataFrame) -> None:
    with pytest.raises(RetainInputError, match="max_training_customers must be at least 50"):
        RetentionModel(90, max_training_customers=10).fit(transactions, AS_OF)
