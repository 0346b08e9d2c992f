"""Cumulative repeat transactions of a cohort: the CDNOW tracking numbers of FHL (2005), figure 3,
and the definitions on a small hand-made history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.helpers import transactions
from tests.models.btyd.helpers import CALIBRATION_END, HOLDOUT_END, RFM

from retain.errors import NotFittedError, RetainInputError
from retain.models.btyd import BetaGeoModel, ParetoNBDModel, TransactionModel
from retain.models.btyd.tracking import cumulative_repeat_transactions, purchase_days


@pytest.fixture(scope="module")
def cdnow_tracking(
    cdnow_fitted: dict[str, TransactionModel], cdnow_transactions: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    return {
        key: cumulative_repeat_transactions(model, cdnow_transactions, end=HOLDOUT_END)
        for key, model in cdnow_fitted.items()
    }


def test_cdnow_week_78_matches_the_paper(cdnow_tracking: dict[str, pd.DataFrame]) -> None:
    """78 weeks from 1997-01-01 end on 1998-06-30: 4,339 repeat transactions happened; the
    BG/NBD expected about 4,161 and the Pareto/NBD about 4,270 (FHL 2005, section 5)."""
    bgnbd, pareto = cdnow_tracking["bgnbd"], cdnow_tracking["pareto"]
    for table in (bgnbd, pareto):
        assert len(table) == 78
        assert table["period"].tolist() == list(range(1, 79))
        last = table.iloc[-1]
        assert last["date"] == pd.Timestamp(HOLDOUT_END)
        assert last["actual"] == 4_339
    assert bgnbd.iloc[-1]["expected"] == pytest.approx(4_161, abs=2)
    assert pareto.iloc[-1]["expected"] == pytest.approx(4_270, abs=2)
    # The models under-forecast the holdout by 4 % and 1.6 %: within the paper's figure.
    assert bgnbd.iloc[-1]["expected"] / 4_339 == pytest.approx(0.959, abs=0.001)


def test_cdnow_calibration_end_is_week_39(
    cdnow_tracking: dict[str, pd.DataFrame], cdnow_weeks: RFM
) -> None:
    """Week 39 ends on the calibration day, and its actual count is the feature table's."""
    week_39 = cdnow_tracking["bgnbd"].iloc[38]
    assert week_39["date"] == pd.Timestamp(CALIBRATION_END)
    assert week_39["actual"] == cdnow_weeks.x.sum() == 2_457
    # In-sample the model tracks the actual curve within 2 %.
    assert week_39["expected"] == pytest.approx(2_457, rel=0.02)


def test_cdnow_curves_are_cumulative(cdnow_tracking: dict[str, pd.DataFrame]) -> None:
    for table in cdnow_tracking.values():
        assert (np.diff(table["actual"]) >= 0).all()
        assert (np.diff(table["expected"]) > 0).all()
        assert (np.diff(table["date"]) == pd.Timedelta(days=7)).all()
        assert table["actual"].dtype == np.int64


MODEL = BetaGeoModel.from_dict(
    {"params": {"r": 0.5, "alpha": 20.0, "a": 0.8, "b": 2.5}, "time_unit": "days"}
)
HISTORY = transactions(
    [
        ("A", "2021-01-01T09:00:00", 10.0),  # A's first purchase
        ("A", "2021-01-01T18:00:00", 5.0),  # same day: merged with the first
        ("A", "2021-01-04T10:00:00", 8.0),  # repeat, week 1
        ("A", "2021-01-09T10:00:00", 8.0),  # repeat, week 2 (from day 8)
        ("A", "2021-01-09T11:00:00", 2.0),  # same day again: one purchase day
        ("A", "2021-01-10T11:00:00", -8.0),  # a refund is not a purchase
        ("B", "2021-01-06T23:30:00", 20.0),  # B's first purchase, week 1
        ("B", "2021-01-15T08:00:00", 20.0),  # repeat, week 3
        ("C", "2021-01-20T08:00:00", 30.0),  # first purchase after the end: not in the cohort
    ]
)


def test_actual_and_expected_on_a_small_history() -> None:
    table = cumulative_repeat_transactions(MODEL, HISTORY, end="2021-01-17")
    # Periods of 7 days from the first purchase (2021-01-01), the last cut at the end.
    assert table["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2021-01-07",
        "2021-01-14",
        "2021-01-17",
    ]
    assert table["actual"].tolist() == [1, 2, 3]
    # Expected: each customer's clock starts on their first purchase day (A: Jan 1, B: Jan 6).
    ages = np.array([[6.0, 1.0], [13.0, 8.0], [16.0, 11.0]])
    np.testing.assert_allclose(
        table["expected"], MODEL.expected_number_of_purchases_up_to_time(ages).sum(axis=1)
    )


def test_start_period_and_unit() -> None:
    table = cumulative_repeat_transactions(
        MODEL, HISTORY, end="2021-01-17", start="2021-01-05", period_days=3
    )
    assert table["date"].dt.day.tolist() == [7, 10, 13, 16, 17]
    assert table["actual"].tolist() == [1, 2, 2, 3, 3]
    # The first period starts on Jan 5 but the clocks on the first purchases: A 6 days, B 1.
    assert table["expected"].iloc[0] == pytest.approx(
        MODEL.expected_number_of_purchases_up_to_time(6.0)
        + MODEL.expected_number_of_purchases_up_to_time(1.0)
    )
    weekly = BetaGeoModel.from_dict(
        {"params": {**MODEL.params_, "alpha": 20.0 / 7}, "time_unit": "weeks"}
    )
    in_weeks = cumulative_repeat_transactions(weekly, HISTORY, end="2021-01-17")
    in_days = cumulative_repeat_transactions(MODEL, HISTORY, end="2021-01-17")
    # The same model in weeks: its clock runs in days / 7.
    np.testing.assert_allclose(in_weeks["expected"], in_days["expected"], rtol=1e-12)
    overridden = cumulative_repeat_transactions(weekly, HISTORY, end="2021-01-17", unit_days=1.0)
    assert not np.allclose(overridden["expected"], in_days["expected"])


def test_purchase_days_merges_the_day_and_drops_refunds() -> None:
    days = purchase_days(HISTORY)
    assert days.groupby("customer_id")["day"].size().to_dict() == {"A": 3, "B": 2, "C": 1}
    assert (days["first"] <= days["day"]).all()


def test_tracking_errors() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        cumulative_repeat_transactions(ParetoNBDModel(), HISTORY, end="2021-01-17")
    with pytest.raises(RetainInputError, match="missing column"):
        cumulative_repeat_transactions(MODEL, HISTORY.drop(columns="amount"), end="2021-01-17")
    with pytest.raises(RetainInputError, match="no purchase on or before 2020-12-31"):
        cumulative_repeat_transactions(MODEL, HISTORY, end="2020-12-31")
    with pytest.raises(RetainInputError, match="period_days"):
        cumulative_repeat_transactions(MODEL, HISTORY, end="2021-01-17", period_days=0)
    monthly = BetaGeoModel.from_dict({"params": MODEL.params_, "time_unit": "months"})
    with pytest.raises(RetainInputError, match="pass unit_days"):
        cumulative_repeat_transactions(monthly, HISTORY, end="2021-01-17")
