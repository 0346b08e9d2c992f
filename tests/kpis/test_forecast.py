"""The CRR of one period and the expected CRR of the next, both against hand computations.

Hand table (W = 60 days). A customer counts at a boundary b with a purchase in [b - 60 days, b):
  2011-03-01 - 60 days = 2010-12-31, 2011-04-01 - 60 days = 2011-01-31,
  2011-05-01 - 60 days = 2011-03-02, 2011-07-01 - 60 days = 2011-05-02.

  A  2011-01-10 a1 100 | 2011-03-20 a2 40
  B  2011-01-05 b1 200 | 2011-01-20 b1 -50 (a refund: not a purchase) | 2011-04-10 b2 80
  C  2011-02-01 00:00 c1 70 + c1 5 (one order, two lines)
  D  2011-01-25 d1 10
  E  2011-03-05 e1 90 (first purchase in March: new)
  G  2010-12-15 g1 25
  H  2011-01-31 00:00 h1 35 (exactly 60 days before 2011-04-01: still active then)
  K  2011-04-05 k1 60 (first purchase in April: new in the forecast period)
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from tests.helpers import transactions

from retain.errors import RetainInputError
from retain.kpis import retention_kpis
from retain.kpis.forecast import forecast_crr, purchase_probability

W = 60
ROWS = [
    ("A", "2011-01-10T10:00", 100.0, "a1"),
    ("A", "2011-03-20T12:00", 40.0, "a2"),
    ("B", "2011-01-05T12:00", 200.0, "b1"),
    ("B", "2011-01-20T12:00", -50.0, "b1"),
    ("B", "2011-04-10T12:00", 80.0, "b2"),
    ("C", "2011-02-01T00:00", 70.0, "c1"),
    ("C", "2011-02-01T00:00", 5.0, "c1"),
    ("D", "2011-01-25T15:00", 10.0, "d1"),
    ("E", "2011-03-05T11:00", 90.0, "e1"),
    ("G", "2010-12-15T12:00", 25.0, "g1"),
    ("H", "2011-01-31T00:00", 35.0, "h1"),
    ("K", "2011-04-05T09:00", 60.0, "k1"),
]


def hand_table() -> pd.DataFrame:
    return transactions([(c, t, a) for c, t, a, _ in ROWS], order_id=[o for *_, o in ROWS])


def scores(**columns: dict[str, float]) -> pd.DataFrame:
    """Scores of A..H (K is scored too: it must not count), one column per keyword."""
    ids = ["A", "B", "C", "D", "E", "G", "H", "K"]
    frame = pd.DataFrame({"customer_id": ids})
    for name, values in columns.items():
        frame[name] = [values.get(i, 0.0) for i in ids]
    return frame


def test_the_crr_of_march_equals_the_hand_computation() -> None:
    # B = active at 2011-03-01 = a purchase in [2010-12-31, 2011-03-01):
    #     A (01-10), B (01-05), C (02-01), D (01-25), H (01-31); not G (2010-12-15)   -> B = 5
    # E = active at 2011-04-01 = a purchase in [2011-01-31, 2011-04-01):
    #     A (03-20), C (02-01), E (03-05), H (01-31 00:00, the window's first instant);
    #     not B (last purchase 01-05; its refund on 01-20 is no purchase), not D (01-25)  -> E = 4
    # N = first purchase in March: E                                                   -> N = 1
    # CRR = (E - N) / B x 100 = (4 - 1) / 5 x 100 = 60 %; churned = {B, D} -> 2 / 5 = 40 %.
    b, e, n = 5, 4, 1
    march = retention_kpis(hand_table(), active_window_days=W).set_index("period").loc["2011-03"]

    assert (march["customers_start"], march["customers_end"], march["new_customers"]) == (b, e, n)
    assert march["crr"] == pytest.approx((e - n) / b * 100) == 60.0
    assert march["churn_rate"] == pytest.approx(40.0)
    # Orders a2, e1: AOV (40 + 90) / 2 = 65; repeat buyers: A (two orders), not E -> 50 %.
    assert march["average_order_value"] == pytest.approx(65.0)
    assert march["repeat_purchase_rate"] == pytest.approx(50.0)


# P(a purchase in the next 30 days) of the customers not active for sure at 2011-05-01.
P30 = {"A": 0.9, "B": 0.5, "C": 0.2, "D": 0.1, "E": 0.3, "G": 0.05, "H": 0.4, "K": 0.99}


def test_the_expected_crr_of_the_next_month_equals_the_hand_computation() -> None:
    # Scores as of 2011-03-31 (they know purchases before 2011-04-01): April is forecast, from
    # 2011-04-01 to 2011-05-01. B's purchase of 04-10 and K's of 04-05 are after the scores' as_of
    # and are ignored.
    # B = active at 04-01 = {A, C, E, H} (as E of March above)                         -> B = 4
    # Existing = a purchase before 04-01: A, B, C, D, E, G, H (7).
    # Active for sure at 05-01 = last purchase on or after 05-01 - 60 days = 03-02: A, E.
    # The others buy in [04-01, 05-01), 30 days, with P = p_purchase_30d exactly:
    #   E - N = 2 + B 0.5 + C 0.2 + D 0.1 + G 0.05 + H 0.4 = 3.25
    # Expected CRR = 3.25 / 4 x 100 = 81.25 %.
    # Expected churn: of B, A and E stay, C and H with 0.2 and 0.4 -> (4 - 2.6) / 4 = 35 %.
    forecast = forecast_crr(
        scores(p_purchase_30d=P30, churn_probability={}),
        "2011-03-31",
        horizon_days=90,
        transactions=hand_table(),
        active_window_days=W,
    )

    assert forecast.period == "2011-04"
    assert forecast.period_start == pd.Timestamp("2011-04-01", tz="UTC")
    assert forecast.period_end == pd.Timestamp("2011-05-01", tz="UTC")
    assert forecast.customers_start == 4
    assert forecast.existing_customers == 7
    assert forecast.active_for_sure == 2
    assert forecast.days_predicted == 30
    assert forecast.probability_source == "p_purchase_30d"
    assert not forecast.extrapolated
    assert forecast.expected_retained == pytest.approx(3.25)
    assert forecast.expected_crr == pytest.approx(81.25)
    assert forecast.expected_churn_rate == pytest.approx(35.0)
    assert forecast.customers_unscored == 0
    # The last whole months, as retention_kpis reports them (March: 60 %, above).
    assert forecast.observed["period"].tolist()[-1] == "2011-03"
    assert forecast.observed["crr"].iloc[-1] == pytest.approx(60.0)
    assert forecast.as_dict()["last_observed_crr"]["2011-03"] == pytest.approx(60.0)


def test_mid_month_only_the_rest_of_the_month_is_predicted() -> None:
    # Scores as of 2011-04-15: April is under way, 15 days are left (04-16 to 05-01).
    # B = active at 04-01 = {A, C, E, H} = 4, as before (the period start does not move).
    # K bought first on 04-05: new in April, in E and in N, so it cancels (not existing).
    # Active for sure at 05-01: last purchase on or after 03-02: A, E and now B (04-10).
    # The others: P = 1 - (1 - p30) ** (15 / 30) = 1 - sqrt(1 - p30):
    #   C 1 - sqrt(0.81) = 0.1, D 1 - sqrt(0.64) = 0.2, G 1 - sqrt(0.49) = 0.3, H 1 - sqrt(0.25) = 0.5
    # E - N = 3 + 0.1 + 0.2 + 0.3 + 0.5 = 4.1; CRR = 4.1 / 4 x 100 = 102.5 % (B came back: the
    # formula counts a reactivated customer as retained).
    # Churn of B = {A, C, E, H}: expected active 2 + 0.1 + 0.5 = 2.6 -> 35 %.
    p30 = {"A": 0.5, "B": 0.5, "C": 0.19, "D": 0.36, "E": 0.5, "G": 0.51, "H": 0.75, "K": 0.5}
    forecast = forecast_crr(
        scores(p_purchase_30d=p30, churn_probability={}),
        "2011-04-15",
        horizon_days=90,
        transactions=hand_table(),
        active_window_days=W,
    )

    assert forecast.period == "2011-04"
    assert (forecast.customers_start, forecast.existing_customers) == (4, 7)
    assert forecast.active_for_sure == 3
    assert forecast.days_predicted == 15
    assert forecast.expected_retained == pytest.approx(4.1)
    assert forecast.expected_crr == pytest.approx(102.5)
    assert forecast.expected_churn_rate == pytest.approx(35.0)


def test_a_quarter_uses_the_churn_probability_interpolated_to_its_window() -> None:
    # Scores as of 2011-03-31, quarterly: 2011Q2 runs from 04-01 to 07-01. Active at 07-01 needs a
    # purchase in [05-02, 07-01): nobody is active for sure, and the window is 60 days after
    # 05-02 - only the last 60 days of the quarter count (W < the quarter's length).
    # P(a purchase in 60 days) = 1 - churn ** (60 / 90):
    #   A 0.008 -> 1 - 0.04 = 0.96, B and E 0.125 -> 1 - 0.25 = 0.75, C and D 0.729 -> 0.19,
    #   G and H 1.0 -> 0.
    # E - N = 0.96 + 0.75 + 0.19 + 0.19 + 0.75 + 0 + 0 = 2.84; B = {A, C, E, H} = 4 -> 71 %.
    # Churn of B: expected active 0.96 + 0.19 + 0.75 + 0 = 1.9 -> (4 - 1.9) / 4 = 52.5 %.
    churn = {"A": 0.008, "B": 0.125, "C": 0.729, "D": 0.729, "E": 0.125, "G": 1.0, "H": 1.0}
    forecast = forecast_crr(
        scores(p_purchase_30d={}, churn_probability=churn),
        "2011-03-31",
        horizon_days=90,
        transactions=hand_table(),
        period="Q",
        active_window_days=W,
    )

    assert forecast.period == "2011Q2"
    assert forecast.days_predicted == 60
    assert forecast.probability_source == "churn_probability"
    assert not forecast.extrapolated
    assert forecast.active_for_sure == 0
    assert forecast.expected_retained == pytest.approx(2.84)
    assert forecast.expected_crr == pytest.approx(71.0)
    assert forecast.expected_churn_rate == pytest.approx(52.5)


def test_at_a_period_start_the_scores_alone_give_the_same_forecast() -> None:
    # days_since_last_purchase as of 2011-03-31: A 11 (03-20), B 85 (01-05), C 58 (02-01),
    # D 65 (01-25), E 26 (03-05), G 106 (2010-12-15), H 59 (01-31). K is not scored as of 03-31.
    since = {"A": 11, "B": 85, "C": 58, "D": 65, "E": 26, "G": 106, "H": 59}
    frame = scores(p_purchase_30d=P30, churn_probability={}, days_since_last_purchase=since)
    frame = frame.loc[frame["customer_id"] != "K"]
    alone = forecast_crr(frame, "2011-03-31", horizon_days=90, active_window_days=W)
    with_data = forecast_crr(
        frame, "2011-03-31", horizon_days=90, transactions=hand_table(), active_window_days=W
    )

    for name in ("customers_start", "existing_customers", "active_for_sure", "days_predicted"):
        assert getattr(alone, name) == getattr(with_data, name), name
    assert alone.expected_crr == pytest.approx(with_data.expected_crr) == pytest.approx(81.25)
    assert alone.expected_churn_rate == pytest.approx(35.0)
    assert alone.observed.empty


def test_the_forecast_says_whether_the_data_cover_the_window_before_its_period() -> None:
    # April's window [2011-01-31, 2011-04-01) lies inside the data (from 2010-12-15) with W = 60;
    # with W = 365 it starts in 2010-04, before the data: a CRR near 100 % by construction.
    frame = scores(p_purchase_30d=P30, churn_probability={}, days_since_last_purchase={})
    covered = forecast_crr(
        frame, "2011-03-31", horizon_days=90, transactions=hand_table(), active_window_days=W
    )
    assert covered.window_covered is True and covered.active_window_days == W
    year = forecast_crr(frame, "2011-03-31", horizon_days=90, transactions=hand_table())
    assert year.window_covered is False and year.as_dict()["window_covered"] is False
    assert not year.observed["window_covered"].any()
    # The scores alone do not say when the data start.
    alone = forecast_crr(frame, "2011-03-31", horizon_days=90, active_window_days=W)
    assert alone.window_covered is None


def test_mid_period_without_transactions_is_refused() -> None:
    frame = scores(p_purchase_30d=P30, churn_probability={}, days_since_last_purchase={})
    with pytest.raises(RetainInputError, match="not the last day of a period"):
        forecast_crr(frame, "2011-04-15", horizon_days=90, active_window_days=W)


def test_a_customer_missing_from_the_scores_counts_only_when_active_for_sure() -> None:
    frame = scores(p_purchase_30d=P30, churn_probability={})
    # Without A (active for sure) and D (P = 0.1): E - N = 3.25 - 0.1 = 3.15; A still counts.
    frame = frame.loc[~frame["customer_id"].isin(["A", "D"])]
    forecast = forecast_crr(
        frame, "2011-03-31", horizon_days=90, transactions=hand_table(), active_window_days=W
    )
    assert forecast.customers_unscored == 2
    assert forecast.expected_retained == pytest.approx(3.15)


def test_beyond_the_horizon_the_constant_hazard_is_extrapolated_and_flagged() -> None:
    frame = pd.DataFrame({"p_purchase_30d": [0.5], "churn_probability": [0.25]})
    p, source, extrapolated = purchase_probability(frame, 120, horizon_days=60)
    assert (source, extrapolated) == ("churn_probability", True)
    assert p[0] == pytest.approx(1 - 0.25**2)
    p, source, extrapolated = purchase_probability(frame, 31, horizon_days=60)
    assert (source, extrapolated) == ("p_purchase_30d", False)
    assert p[0] == pytest.approx(1 - 0.5 ** (31 / 30))


def test_no_customer_active_at_the_start_gives_nan_not_zero() -> None:
    # W = 10 days: nobody bought in [03-22, 04-01) (A's last purchase is on 03-20), so B = 0; the
    # customers may still buy in [04-21, 05-01) and be active at 05-01.
    forecast = forecast_crr(
        scores(p_purchase_30d=P30, churn_probability={}),
        "2011-03-31",
        horizon_days=90,
        transactions=hand_table(),
        active_window_days=10,
    )
    assert forecast.customers_start == 0
    assert math.isnan(forecast.expected_crr) and math.isnan(forecast.expected_churn_rate)
    assert forecast.expected_retained > 0


@pytest.mark.parametrize(
    ("argument", "value", "message"),
    [("period", "W", "period must be"), ("active_window_days", 0, "active_window_days")],
)
def test_bad_arguments_are_refused(argument: str, value: object, message: str) -> None:
    frame = scores(p_purchase_30d=P30, churn_probability={})
    with pytest.raises(RetainInputError, match=message):
        forecast_crr(frame, "2011-03-31", horizon_days=90, **{argument: value})  # type: ignore[arg-type]
