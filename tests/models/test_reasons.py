"""Churn reasons: only the vocabulary's features, only when they raise the risk and the customer's
value is on the risky side; archetypes of the issue's nonsense reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from retain.models.reasons import VOCABULARY, churn_reasons, describe, speakable

# A repeat customer with a usual gap of 20 days.
BASE: dict[str, Any] = {
    "days_since_last_purchase": 10.0,
    "overdue_ratio": 0.5,
    "ipt_median": 20.0,
    "ipt_mean": 22.0,
    "frequency": 9.0,
    "orders_total": 12.0,
    "orders_30d": 1.0,
    "orders_90d": 3.0,
    "orders_365d": 10.0,
    "spend_30d": 3850.9,
    "spend_trend": 0.2,
    "refund_share": 0.0,
    "btyd_p_alive": 0.95,
    "mean_purchase_hour": 14.8,
    "monetary_value": 0.0,
    "T": 300.0,
}


def reasons_of(contributions: dict[str, float], **values: Any) -> list[str]:
    """The reasons of one customer whose every listed feature raises their risk by the given
    amount (the rest of BASE: no contribution)."""
    table = pd.DataFrame([BASE | values])
    frame = pd.DataFrame([{name: contributions.get(name, 0.0) for name in table.columns}])
    frame["bias"] = 5.0
    return churn_reasons(frame, table, n_reasons=3)[0]


EVERYTHING_RAISES_RISK = dict.fromkeys(BASE, 1.0)


def test_a_customer_who_bought_yesterday_gets_no_recency_reason() -> None:
    # The customer 12372: "no order for 1 days, 0.0x their usual gap".
    reasons = reasons_of(
        {"days_since_last_purchase": 2.0, "overdue_ratio": 1.5},
        days_since_last_purchase=1.0,
        overdue_ratio=0.05,
    )
    assert reasons == []


def test_a_recent_large_spend_is_no_churn_reason() -> None:
    # retargeting.csv's first customer: "spent 3,850.90 in the last 30 days".
    assert reasons_of({"spend_30d": 3.0}, spend_30d=3850.9) == []


def test_features_without_meaning_to_a_marketer_are_never_reasons() -> None:
    # "usually orders around 14:48 UTC", "spends 0.00 per repeat purchase day", "customer for".
    reasons = reasons_of({"mean_purchase_hour": 3.0, "monetary_value": 2.0, "T": 1.0})
    assert reasons == []
    for name in ("mean_purchase_hour", "monetary_value", "T", "spend_30d", "weekend_share"):
        assert name not in VOCABULARY


def test_an_overdue_customer_hears_it_once_with_plural_days() -> None:
    reasons = reasons_of(
        {"days_since_last_purchase": 2.0, "overdue_ratio": 1.5, "orders_90d": 1.0},
        days_since_last_purchase=62.0,
        overdue_ratio=3.1,
        orders_30d=0.0,
        orders_90d=1.0,
    )
    assert reasons == ["no order for 62 days, 3.1 times their usual gap of 20 days"]


def test_a_quiet_spell_within_a_long_usual_gap_is_no_recency_reason() -> None:
    # 45 days since the last order, but they usually order every 120 days: not late.
    reasons = reasons_of(
        {"days_since_last_purchase": 2.0, "ipt_median": 1.0},
        days_since_last_purchase=45.0,
        overdue_ratio=0.375,
        ipt_median=120.0,
    )
    # The long gap itself is the reason a 90-day churn risk is high.
    assert reasons == ["usually orders only every 120 days"]


def test_a_one_time_buyer() -> None:
    one_time = {
        "frequency": 0.0,
        "orders_total": 1.0,
        "overdue_ratio": np.nan,
        "ipt_median": np.nan,
        "ipt_mean": np.nan,
        "orders_365d": 1.0,
    }
    recent = reasons_of(EVERYTHING_RAISES_RISK, **one_time, days_since_last_purchase=3.0)
    assert "a single purchase day so far" in recent
    assert not any(reason.startswith("no order for") for reason in recent)
    long_ago = reasons_of(
        {"days_since_last_purchase": 3.0, "orders_total": 1.0},
        **one_time,
        days_since_last_purchase=200.0,
    )
    assert long_ago == ["no order for 200 days", "only 1 order so far"]


def test_singular_and_plural() -> None:
    row = pd.Series(BASE | {"days_since_last_purchase": 31.0, "overdue_ratio": 31.0})
    row["ipt_median"] = 1.0
    assert speakable("days_since_last_purchase", row) == (
        "no order for 31 days, 31.0 times their usual gap of 1 day"
    )
    assert speakable("frequency", pd.Series({"frequency": 1.0})) == "only 2 purchase days so far"
    assert speakable("orders_365d", pd.Series({"orders_365d": 1.0})) == (
        "only 1 order in the last 365 days"
    )
    assert speakable("cart_abandons_30d", pd.Series({"cart_abandons_30d": 1.0})) == (
        "1 abandoned cart in the last 30 days"
    )


@pytest.mark.parametrize(
    ("feature", "safe", "risky"),
    [
        ("frequency", 2.0, 1.0),
        ("orders_total", 3.0, 2.0),
        ("orders_365d", 2.0, 1.0),
        ("ipt_median", 59.0, 60.0),
        ("spend_trend", 0.0, -0.5),
        ("refund_share", 0.05, 0.2),
        ("btyd_p_alive", 0.5, 0.3),
        ("orders_ly_next_90d", 1.0, 0.0),
        ("days_since_last_session", 10.0, 45.0),
        ("sessions_30d", 1.0, 0.0),
        ("email_click_rate_90d", 0.2, 0.0),
        ("support_tickets_90d", 0.0, 2.0),
    ],
)
def test_each_direction(feature: str, safe: float, risky: float) -> None:
    """A feature raising the risk is a reason only on its risky side."""
    assert reasons_of({feature: 1.0}, **{feature: safe}) == []
    assert len(reasons_of({feature: 1.0}, **{feature: risky})) == 1


def test_a_contribution_lowering_the_risk_is_never_a_reason() -> None:
    assert reasons_of({"frequency": -1.0}, frequency=0.0) == []
    assert reasons_of({}, frequency=0.0) == []


def test_strongest_first_and_at_most_n() -> None:
    reasons = reasons_of(
        {"btyd_p_alive": 0.5, "frequency": 2.0, "refund_share": 1.0, "spend_trend": 0.1},
        btyd_p_alive=0.2,
        frequency=1.0,
        refund_share=0.3,
        spend_trend=-1.0,
    )
    assert reasons == [
        "only 2 purchase days so far",
        "30% of their spend refunded",
        "their order pattern gives a 20% chance they are still a customer (BG/NBD)",
    ]
    assert reasons_of({"spend_trend": 1.0}, spend_trend=-0.5) == [
        "spent 67% less in the last 90 days than in the 90 before"
    ]


def test_unknown_values_are_no_reason() -> None:
    assert reasons_of({"ipt_median": 5.0}, ipt_median=np.nan) == []


def test_describe_falls_back_to_name_and_value() -> None:
    row = pd.Series({"sessions_30d": 0.0, "odd_feature": 0.1234, "gone": np.nan})
    assert describe("sessions_30d", row) == "no visit in the last 30 days"
    assert describe("odd_feature", row) == "odd feature = 0.123"
    assert describe("gone", row) == "gone unknown"
