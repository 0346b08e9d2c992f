"""Training cutoffs: rolling origins, and the same-season cutoff a year before ``as_of``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.data.datasets import Dataset
from retain.errors import RetainInputError
from retain.evaluation.holdout import temporal_holdout
from retain.models.retention import RetentionModel
from retain.models.training import plan_training, rolling_cutoffs, up_to


def _history(first: str, last: str) -> pd.DataFrame:
    days = pd.date_range(first, last, freq="7D", tz="UTC")
    return pd.DataFrame(
        {"customer_id": "1", "timestamp": days, "amount": np.ones(len(days))},
    )


def days(*values: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(v) for v in values]


def test_a_year_of_history_adds_the_cutoff_a_year_before_as_of() -> None:
    tx = _history("2010-01-01", "2011-09-09")
    cutoffs = rolling_cutoffs(tx, "2011-09-09", 90, n_cutoffs=2, step_days=45)
    assert cutoffs == days("2010-09-09", "2011-04-27", "2011-06-11")


def test_no_same_season_cutoff_without_the_history_or_when_asked_not_to() -> None:
    # Less than a year plus the minimum history (90 days) before as_of.
    short = _history("2010-08-01", "2011-09-09")
    assert rolling_cutoffs(short, "2011-09-09", 90, n_cutoffs=2) == days("2011-04-27", "2011-06-11")
    long = _history("2010-01-01", "2011-09-09")
    assert rolling_cutoffs(long, "2011-09-09", 90, n_cutoffs=2, same_season=False) == days(
        "2011-04-27", "2011-06-11"
    )


def test_no_second_cutoff_where_a_rolling_one_already_falls_in_the_season() -> None:
    # 183-day horizon, 91 days apart: 2010-06-09 is already a rolling cutoff.
    tx = _history("2009-12-01", "2011-06-09")
    cutoffs = rolling_cutoffs(tx, "2011-06-09", 183, n_cutoffs=4, step_days=91)
    assert cutoffs == days("2010-03-10", "2010-06-09", "2010-09-08", "2010-12-08")


def test_a_horizon_longer_than_a_year_adds_no_cutoff_whose_labels_are_unseen() -> None:
    # A year before as_of, a 400-day horizon would end after as_of.
    tx = _history("2008-01-01", "2011-09-09")
    cutoffs = rolling_cutoffs(tx, "2011-09-09", 400, n_cutoffs=1)
    assert cutoffs == days("2010-08-05")


@pytest.mark.slow
def test_spend_in_the_christmas_season_is_predicted_within_ten_percent(
    online_retail: Dataset,
) -> None:
    """Online Retail II as of 2011-09-09, 90 days: the horizon holds the Christmas orders, the
    largest quarter of the year. Trained on rolling cutoffs alone (spring and summer horizons) the
    predicted spend came out 41% short and the purchases 36% short; the year-ago cutoff brings the
    season in."""
    as_of, horizon = pd.Timestamp("2011-09-09"), 90
    end = as_of + pd.Timedelta(days=horizon)
    data = up_to(online_retail.transactions.frame, end)
    model = RetentionModel(horizon, n_jobs=1)
    result = temporal_holdout(data, as_of, horizon, model, observed_until=end)
    assert pd.Timestamp("2010-09-09") in model.cutoffs_
    assert model.reference_cutoff_ == pd.Timestamp("2010-09-09")
    retain = result.metrics["retain"]
    assert abs(retain["clv_total_error"]) < 0.10
    assert abs(retain["purchases_total_error"]) < 0.10
    # The season does not cost ranking: still ahead of BG/NBD on value.
    assert retain["clv_normalized_gini"] > result.metrics["bgnbd"]["clv_normalized_gini"]


# -- plans for short histories (issue 15) ----------------------------------------------------------


def test_ten_weeks_before_a_44_day_horizon_train_on_a_shorter_horizon() -> None:
    tx = _history("2011-01-01", "2011-03-12")  # 70 days
    plan = plan_training(tx, "2011-03-12", 44)
    assert plan.history_days == 70
    assert plan.min_history_days == 28
    assert plan.horizon_days == 42  # what is left after 28 days of history
    assert plan.cutoffs == days("2011-01-29")
    assert any("training horizon 42 days (predicted: 44)" in note for note in plan.notes)
    assert plan.as_params()["training_horizon_days"] == "42"


def test_eight_months_keep_the_whole_horizon_and_default_history() -> None:
    tx = _history("2011-01-01", "2011-09-01")  # 243 days
    plan = plan_training(tx, "2011-09-01", 122)
    assert (plan.horizon_days, plan.min_history_days, plan.step_days) == (122, 90, 61)
    # The second cutoff, 61 days earlier, would have 60 days of history: left out, and said.
    assert plan.cutoffs == days("2011-05-02")
    assert any("1 of 4 cutoffs fit" in note for note in plan.notes)


def test_a_year_before_a_181_day_horizon_gives_two_cutoffs() -> None:
    tx = _history("1997-01-01", "1997-12-31")
    plan = plan_training(tx, "1997-12-31", 181)
    assert plan.cutoffs == days("1997-04-04", "1997-07-03")
    assert plan.min_history_days == 90


def test_a_given_minimum_history_is_kept_even_when_it_leaves_no_cutoff() -> None:
    tx = _history("2011-01-01", "2011-03-12")
    plan = plan_training(tx, "2011-03-12", 44, min_history_days=90)
    assert plan.cutoffs == []
    assert plan.as_params()["cutoffs"] == "none"
    assert "no labelled cutoff" in plan.notes[-1]
    # Given ones are used as given.
    assert plan_training(
        tx, "2011-03-12", 21, n_cutoffs=3, step_days=7, min_history_days=28
    ).cutoffs == days("2011-02-05", "2011-02-12", "2011-02-19")


def test_the_plan_needs_sane_options() -> None:
    tx = _history("2011-01-01", "2011-03-12")
    with pytest.raises(RetainInputError, match="step_days must be at least 1"):
        plan_training(tx, "2011-03-12", 44, step_days=0)
    with pytest.raises(RetainInputError, match="min_history_days must be 0 or more"):
        plan_training(tx, "2011-03-12", 44, min_history_days=-1)
