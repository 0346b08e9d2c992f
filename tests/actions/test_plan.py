"""plan_actions: every customer's segment, tier, value at risk and timing beside their scores; and
the whole chain on a real scores table (a fitted model's batch output)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.actions.rows import AS_OF, scores

from retain.actions import (
    LIFECYCLE_SEGMENTS,
    PLAN_COLUMNS,
    ActionSettings,
    TierSettings,
    plan_actions,
    retargeting_audience,
    segment_summary,
    tier_cuts,
    write_audience,
)
from retain.batch.chunks import score_chunk
from retain.batch.schema import SCORES_SCHEMA, to_output_frame
from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.models.retention import RetentionModel


def test_the_plan_columns() -> None:
    table = scores(
        {"churn_probability": 0.5, "clv": 8.0},
        {
            "frequency": 0.0,
            "T": 10.0,
            "days_since_last_purchase": 10.0,
            "expected_next_purchase_date": dt.date(2024, 7, 1),
        },
        {"days_since_last_purchase": 300.0, "T": 680.0, "p_alive": 0.5},
        index=[4, 2, 9],
    )
    settings = ActionSettings(tiers=TierSettings(names=["low", "high"], amounts=[9.0]))
    plan = plan_actions(table, AS_OF, settings)
    assert list(plan.columns) == [*table.columns, *PLAN_COLUMNS]
    assert plan.index.tolist() == [4, 2, 9]
    assert plan["lifecycle_segment"].tolist() == ["steady", "newcomer", "overdue"]
    assert plan["loyalty_tier"].tolist() == ["low", "high", "high"]
    assert plan["value_at_risk"].tolist() == pytest.approx([4.0, 4.0, 4.0])
    assert plan["contact_date"].tolist() == [
        pd.Timestamp("2024-07-17"),
        pd.Timestamp("2024-06-30"),
        pd.Timestamp("2024-07-17"),
    ]
    assert plan["overdue"].tolist() == [False, False, True]
    assert plan["days_overdue"].tolist() == [0.0, 0.0, 205.0]  # usual gap 95 days


def test_the_scores_are_left_alone() -> None:
    table = scores({}, {})
    before = table.copy()
    plan_actions(table, AS_OF)
    pd.testing.assert_frame_equal(table, before)


def test_a_second_plan_replaces_the_first() -> None:
    table = scores({}, {"clv": 50.0})
    once = plan_actions(table, AS_OF)
    twice = plan_actions(once, AS_OF)
    assert list(twice.columns) == list(once.columns)
    pd.testing.assert_frame_equal(twice, once)


def test_a_missing_column_is_named_before_anything_is_done() -> None:
    with pytest.raises(RetainInputError, match=r"scores: missing column\(s\) clv"):
        plan_actions(scores({}).drop(columns="clv"), AS_OF)
    with pytest.raises(RetainInputError, match="expected_next_purchase_date"):
        plan_actions(scores({}).drop(columns="expected_next_purchase_date"), AS_OF)


# -- a real scores table ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_scores(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """2,000 simulated customers scored as the batch job scores them, read back from parquet
    (dates as dates, reasons as arrays), as the report and the CLI read ``scores.parquet``."""
    transactions = simulate(2000, seed=1).transactions
    model = RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(transactions, AS_OF)
    result = score_chunk(model, transactions, pd.Timestamp(AS_OF))
    path = tmp_path_factory.mktemp("scores") / "scores.parquet"
    to_output_frame(result.scores).to_parquet(path, index=False)
    return pd.read_parquet(path)


def test_every_customer_of_a_real_table_is_planned(real_scores: pd.DataFrame) -> None:
    assert list(real_scores.columns) == SCORES_SCHEMA.names
    plan = plan_actions(real_scores, AS_OF)
    assert len(plan) == len(real_scores) == 2000
    assert plan["lifecycle_segment"].notna().all()
    assert set(plan["lifecycle_segment"]) <= set(LIFECYCLE_SEGMENTS)
    assert plan["loyalty_tier"].notna().all()
    assert set(plan["loyalty_tier"]) <= {"Bronze", "Silver", "Gold", "Platinum"}
    # No contact date exactly where no purchase is expected within the horizon.
    assert plan["contact_date"].isna().eq(real_scores["expected_next_purchase_date"].isna()).all()
    assert (plan["contact_date"].dropna() >= pd.Timestamp(AS_OF)).all()
    assert (plan["value_at_risk"] >= 0).all()
    assert plan["value_at_risk"].to_numpy() == pytest.approx(
        (real_scores["churn_probability"] * real_scores["clv"]).to_numpy()
    )
    # Only repeat customers can be overdue; every segment but "newcomer" and "one-off" (nobody
    # bought first in the last year of this shop: its one-time buyers are lapsed) is populated.
    assert not plan.loc[plan["frequency"] == 0, "overdue"].any()
    assert (plan["days_overdue"] > 0).eq(plan["overdue"]).all()
    summary = segment_summary(plan)
    assert summary["customers"].sum() == 2000
    assert (summary.drop(index=["newcomer", "one-off"])["customers"] > 0).all()
    # Quantile tiers: the top 5% of 2,000 customers is Platinum, the bottom half Bronze.
    counts = plan["loyalty_tier"].value_counts()
    assert counts["Platinum"] == 100
    assert counts["Bronze"] == 1000
    assert tier_cuts(plan["clv"])["customers"].tolist() == [1000, 600, 300, 100]
    # High value at risk and champions come from the top fifth of CLV.
    high = plan["clv"] > plan["clv"].quantile(0.8)
    assert high[
        plan["lifecycle_segment"].isin(["high value, slipping", "high value, secure"])
    ].all()


def test_an_audience_of_a_real_table(real_scores: pd.DataFrame, tmp_path: Path) -> None:
    ids = real_scores["customer_id"]
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "email": np.where(np.arange(len(ids)) % 4 == 0, None, " " + ids + "@Example.com"),
        }
    )
    audience = retargeting_audience(real_scores, customers=customers)
    assert 0 < len(audience) < len(real_scores)
    assert audience["value_at_risk"].is_monotonic_decreasing
    assert (audience["churn_probability"] >= 0.5).all()
    # The audience is who the actions say to win back or reactivate, never a customer on rhythm.
    assert set(audience["action"]) <= {"win back", "reactivate"}
    actions = real_scores.set_index("customer_id")["action"]
    risky = real_scores["churn_probability"].to_numpy() >= 0.5
    chosen = set(
        real_scores["customer_id"][risky & actions.isin(["win back", "reactivate"]).to_numpy()]
    )
    assert set(audience["customer_id"]) == chosen
    # A reason only where one is a reason (a vocabulary feature on its risky side): most have one.
    assert audience["reason"].notna().mean() > 0.8
    written = write_audience(audience, tmp_path)
    assert written["rows"] == len(audience)
    assert written["customer_match_rows"] + written["rows_without_email"] == len(audience)
    assert written["rows_without_email"] > 0
    text = "".join(p.read_text() for p in tmp_path.iterdir())
    assert "@" not in text
    assert "example" not in text.lower()
