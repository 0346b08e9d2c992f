"""Lifecycle segments: six rules on a customer's predictions and rhythm, first match wins."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.actions.rows import ROW, scores

from retain.actions import (
    LIFECYCLE_SEGMENTS,
    ActionSettings,
    OutreachSettings,
    SegmentRules,
    high_value,
    high_value_threshold,
    lifecycle_segments,
    segment_summary,
)
from retain.errors import RetainInputError

# High value from a CLV of 100 (an amount: no quantile of a table of one row to think about).
SETTINGS = ActionSettings(segments=SegmentRules(high_value_clv=100.0))
HIGH = {"clv": 100.0}
NEW = {"frequency": 0.0, "T": 30.0, "days_since_last_purchase": 30.0}
LAPSED = {"p_alive": 0.05}
AT_RISK = {"churn_probability": 0.5}
SAFE = {"churn_probability": 0.2}
# Usual gap (400 - 200) / 4 = 50 days; 200 days since the last purchase: overdue.
OVERDUE = {"days_since_last_purchase": 200.0}


def segment_of(*changes: dict[str, Any], settings: ActionSettings = SETTINGS) -> str:
    row: dict[str, Any] = {}
    for change in changes:
        row |= change
    return str(lifecycle_segments(scores(row), settings).iloc[0])


def test_the_segments_in_rule_order() -> None:
    assert LIFECYCLE_SEGMENTS == (
        "newcomer",
        "lapsed",
        "high value, slipping",
        "overdue",
        "high value, secure",
        "one-off",
        "steady",
    )


def test_no_lifecycle_segment_is_named_like_an_rfm_segment() -> None:
    """The issue's confusion: RFM "Champions" beside lifecycle "champion" in one report."""
    from retain.features.segments import SEGMENTS

    def words(name: str) -> set[str]:
        return {w.strip(",").rstrip("s") for w in name.lower().split()}

    for lifecycle in LIFECYCLE_SEGMENTS:
        for rfm in SEGMENTS:
            assert not words(lifecycle) & words(rfm), (lifecycle, rfm)
        assert lifecycle != "champion"  # the registry's alias of the model in use


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ((), "steady"),
        ((NEW,), "newcomer"),
        ((LAPSED,), "lapsed"),
        (({"days_since_last_purchase": 366.0, "T": 900.0},), "lapsed"),
        ((HIGH, AT_RISK), "high value, slipping"),
        ((OVERDUE,), "overdue"),
        ((HIGH, SAFE), "high value, secure"),
        # High value with a middling churn risk (0.3 to 0.5): neither at risk nor champion.
        ((HIGH, {"churn_probability": 0.4}), "steady"),
        ((AT_RISK,), "steady"),  # at risk but not high value
    ],
)
def test_each_rule(changes: tuple[dict[str, Any], ...], expected: str) -> None:
    assert segment_of(*changes) == expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # new beats everything: no verdict on a customer who has not had the time to come back
        ((NEW, HIGH, AT_RISK, LAPSED), "newcomer"),
        # lapsed beats high value at risk and overdue
        ((LAPSED, HIGH, AT_RISK, OVERDUE), "lapsed"),
        # high value at risk beats overdue
        ((HIGH, AT_RISK, OVERDUE), "high value, slipping"),
        # overdue beats champion
        ((HIGH, SAFE, OVERDUE), "overdue"),
    ],
)
def test_first_match_wins(changes: tuple[dict[str, Any], ...], expected: str) -> None:
    assert segment_of(*changes) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"frequency": 0.0, "T": 89.0, "days_since_last_purchase": 89.0}, "newcomer"),
        ({"frequency": 0.0, "T": 90.0, "days_since_last_purchase": 90.0}, "one-off"),
        ({"p_alive": 0.0999}, "lapsed"),
        ({"p_alive": 0.1}, "steady"),
        # Usual gap 335 days: overdue at 365 days, lapsed only past 365.
        ({"T": 700.0, "frequency": 1.0, "days_since_last_purchase": 365.0}, "overdue"),
        ({"T": 700.5, "frequency": 1.0, "days_since_last_purchase": 365.5}, "lapsed"),
        (HIGH | {"churn_probability": 0.4999}, "steady"),
        (HIGH | {"churn_probability": 0.5}, "high value, slipping"),
        (HIGH | {"churn_probability": 0.2999}, "high value, secure"),
        (HIGH | {"churn_probability": 0.3}, "steady"),
        ({"clv": 99.99, "churn_probability": 0.9}, "steady"),
    ],
)
def test_boundaries(change: dict[str, Any], expected: str) -> None:
    assert segment_of(change) == expected


def test_a_one_time_buyer_past_the_new_window_is_one_off_never_overdue_nor_steady() -> None:
    old_single = {"frequency": 0.0, "T": 300.0, "days_since_last_purchase": 300.0}
    assert segment_of(old_single) == "one-off"
    # A high value one with a low churn risk is still high value, secure (that rule comes first).
    assert segment_of(old_single, HIGH, SAFE) == "high value, secure"


def test_overdue_follows_the_outreach_settings() -> None:
    # Usual gap 95 days; 110 days since the last purchase: 15 days late.
    late = {"days_since_last_purchase": 110.0, "T": 490.0}
    assert segment_of(late) == "overdue"
    lenient = ActionSettings(outreach=OutreachSettings(grace_days=20))
    assert segment_of(late, settings=lenient) == "steady"


def test_thresholds_are_configurable() -> None:
    def rules(**values: Any) -> ActionSettings:
        return ActionSettings(segments=SegmentRules(**values))

    assert segment_of(settings=rules(high_value_clv=5.0, at_risk_churn=0.35)) == (
        "high value, slipping"
    )
    assert (
        segment_of(settings=rules(high_value_clv=5.0, champion_max_churn=0.5))
        == "high value, secure"
    )
    assert segment_of(settings=rules(lapsed_p_alive=0.9)) == "lapsed"
    assert segment_of(settings=rules(lapsed_days=10)) == "lapsed"
    assert segment_of(NEW, settings=rules(new_max_days=10)) == "one-off"


def test_high_value_is_a_quantile_of_the_table() -> None:
    table = scores(*({"clv": float(v), "churn_probability": 0.1} for v in range(1, 11)))
    # The 80th percentile of 1..10 is 8.2: the customers with 9 and 10 are high value.
    assert high_value_threshold(table["clv"]) == pytest.approx(8.2)
    segments = lifecycle_segments(table)
    assert segments.tolist() == ["steady"] * 8 + ["high value, secure"] * 2
    assert high_value_threshold(np.array([])) == np.inf


def test_customers_on_the_quantile_are_not_high_value() -> None:
    # Most CLVs are 0: the 80th percentile is 0, and a zero is no high value.
    clv = np.array([0.0] * 9 + [7.0])
    assert high_value_threshold(clv) == 0.0
    assert high_value(clv).tolist() == [False] * 9 + [True]
    # An amount counts from itself.
    assert high_value(clv, SegmentRules(high_value_clv=7.0)).tolist() == [False] * 9 + [True]
    assert high_value(clv, SegmentRules(high_value_clv=0.0)).all()


def test_an_amount_replaces_the_quantile() -> None:
    table = scores(*({"clv": float(v), "churn_probability": 0.1} for v in range(1, 11)))
    settings = ActionSettings(segments=SegmentRules(high_value_clv=3.0))
    assert high_value_threshold(table["clv"], settings.segments) == 3.0
    assert (
        lifecycle_segments(table, settings).tolist() == ["steady"] * 2 + ["high value, secure"] * 8
    )


def test_a_categorical_with_the_index() -> None:
    table = scores(NEW, LAPSED, {}, index=[7, 3, 5])
    segments = lifecycle_segments(table, SETTINGS)
    assert segments.name == "lifecycle_segment"
    assert segments.index.tolist() == [7, 3, 5]
    assert list(segments.cat.categories) == list(LIFECYCLE_SEGMENTS)
    assert segments.tolist() == ["newcomer", "lapsed", "steady"]


def test_an_empty_table() -> None:
    empty = scores(ROW).iloc[:0]
    assert lifecycle_segments(empty).empty


@pytest.mark.parametrize(
    "column",
    ["churn_probability", "p_alive", "clv", "frequency", "T", "days_since_last_purchase"],
)
def test_a_missing_column_is_named(column: str) -> None:
    with pytest.raises(RetainInputError, match=f"scores: missing column\\(s\\) {column}"):
        lifecycle_segments(scores({}).drop(columns=column))


def test_missing_values_are_counted() -> None:
    table = scores({}, {"churn_probability": np.nan}, {"churn_probability": None})
    with pytest.raises(
        RetainInputError,
        match="column churn_probability has 2 missing or non-numeric values in 3 rows",
    ):
        lifecycle_segments(table)


def test_segment_summary() -> None:
    table = scores(
        NEW | {"clv": 4.0, "churn_probability": 0.5},
        LAPSED | {"clv": 2.0, "churn_probability": 0.9},
        LAPSED | {"clv": 6.0, "churn_probability": 0.7},
        HIGH | SAFE,
    )
    table["lifecycle_segment"] = lifecycle_segments(table, SETTINGS)
    summary = segment_summary(table)
    assert summary.index.tolist() == list(LIFECYCLE_SEGMENTS)  # empty segments too, in order
    assert summary.index.name == "lifecycle_segment"
    assert summary["customers"].tolist() == [1, 2, 0, 0, 1, 0, 0]
    assert summary["share"].tolist() == [0.25, 0.5, 0, 0, 0.25, 0, 0]
    assert summary.loc["lapsed", "clv_total"] == pytest.approx(8.0)
    assert summary.loc["lapsed", "clv_mean"] == pytest.approx(4.0)
    assert summary.loc["lapsed", "churn_probability_mean"] == pytest.approx(0.8)
    assert summary.loc["lapsed", "value_at_risk"] == pytest.approx(0.9 * 2 + 0.7 * 6)
    assert summary.loc["high value, secure", "value_at_risk"] == pytest.approx(0.2 * 100)
    assert summary.loc["overdue", "value_at_risk"] == 0
    assert summary["customers"].sum() == len(table)


def test_segment_summary_by_another_column() -> None:
    table = scores({"segment": "Loyal"}, {"segment": "Lost", "clv": 3.0}, {"segment": "Loyal"})
    summary = segment_summary(table, by="segment")
    assert summary.index.tolist() == ["Lost", "Loyal"]
    assert summary["customers"].tolist() == [1, 2]
    assert summary.loc["Lost", "clv_total"] == 3.0


def test_segment_summary_needs_its_columns() -> None:
    with pytest.raises(RetainInputError, match=r"missing column\(s\) lifecycle_segment"):
        segment_summary(scores({}))
