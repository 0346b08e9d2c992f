"""The recommended action of each customer: a function of their state (rhythm, risk, value)."""

from __future__ import annotations

import pandas as pd
import pytest

from retain.actions import ACTIONS, recommend_actions
from retain.actions.recommend import CUSTOMER_STATES, NEEDED_COLUMNS, customer_state
from retain.errors import RetainInputError

# A repeat customer on rhythm (five purchase days over 400 days: a usual gap of 95 days, last
# purchase 20 days ago), alive, low churn risk, unlikely to buy within 30 days: nurtured.
QUIET = {
    "p_alive": 0.9,
    "churn_probability": 0.3,
    "p_purchase_30d": 0.2,
    "segment": "Loyal",
    "frequency": 4.0,
    "T": 400.0,
    "days_since_last_purchase": 20.0,
}
# Archetypes, as changes to QUIET.
FREQUENT_RECENT = {  # orders every 10 days, bought yesterday; a 90-day churn risk can still be high
    "segment": "Champions",
    "frequency": 30.0,
    "T": 301.0,
    "days_since_last_purchase": 1.0,
}
LONG_GAP_CHAMPION = {  # orders every ~120 days, bought 9 days ago: P(no order in 90 days) is high
    "segment": "Champions",
    "frequency": 4.0,
    "T": 489.0,
    "days_since_last_purchase": 9.0,
    "churn_probability": 0.8,
}
OVERDUE = {"days_since_last_purchase": 150.0, "T": 530.0}  # usual gap 95 days, 150 since
LONG_LAPSED = {"days_since_last_purchase": 400.0, "T": 780.0, "churn_probability": 0.95}
ONE_TIME = {"frequency": 0.0, "T": 40.0, "days_since_last_purchase": 40.0}


def action_of(**scores: object) -> str:
    return str(recommend_actions(pd.DataFrame([QUIET | scores])).iloc[0])


def state_of(**scores: object) -> str:
    return str(customer_state(pd.DataFrame([QUIET | scores])).iloc[0])


def test_the_actions_and_states() -> None:
    assert ACTIONS == ("let go", "win back", "reactivate", "no discount", "nurture")
    assert CUSTOMER_STATES == ("lapsed", "new", "overdue", "on rhythm")


@pytest.mark.parametrize("segment", ["Champions", "Loyal", "Lost"])
@pytest.mark.parametrize("churn", [0.0, 0.6, 0.99])
@pytest.mark.parametrize("p30", [0.1, 0.9])
def test_a_frequent_recent_buyer_is_never_won_back(segment: str, churn: float, p30: float) -> None:
    row = FREQUENT_RECENT | {
        "segment": segment,
        "churn_probability": churn,
        "p_purchase_30d": p30,
    }
    assert state_of(**row) == "on rhythm"
    assert action_of(**row) == ("no discount" if p30 >= 0.5 else "nurture")


def test_a_champion_with_a_long_usual_gap_is_reminded_not_won_back() -> None:
    # The case: high churn over a 90-day horizon only because they order every 4 months.
    assert state_of(**LONG_GAP_CHAMPION) == "on rhythm"
    assert action_of(**LONG_GAP_CHAMPION) == "nurture"


@pytest.mark.parametrize("segment", ["Champions", "Loyal", "Can't lose", "At risk"])
def test_a_long_lapsed_valuable_customer_is_won_back(segment: str) -> None:
    assert state_of(**LONG_LAPSED) == "lapsed"
    assert action_of(**LONG_LAPSED, segment=segment) == "win back"
    # even when BG/NBD thinks them gone
    assert action_of(**LONG_LAPSED, segment=segment, p_alive=0.01) == "win back"


@pytest.mark.parametrize("segment", ["Hibernating", "Lost", "Need attention"])
def test_a_long_lapsed_ordinary_customer_is_reactivated_or_let_go(segment: str) -> None:
    assert action_of(**LONG_LAPSED, segment=segment) == "reactivate"
    assert action_of(**LONG_LAPSED, segment=segment, p_alive=0.04) == "let go"
    assert action_of(**LONG_LAPSED, segment=segment, p_alive=0.05) == "reactivate"


def test_an_overdue_customer_is_won_back_only_at_risk_and_valuable() -> None:
    assert state_of(**OVERDUE) == "overdue"
    assert action_of(**OVERDUE, churn_probability=0.6) == "win back"
    assert action_of(**OVERDUE, churn_probability=0.6, segment="Lost") == "reactivate"
    assert action_of(**OVERDUE, churn_probability=0.5999) == "nurture"
    assert action_of(**OVERDUE, churn_probability=0.5, p_purchase_30d=0.5) == "no discount"


def test_overdue_and_lapsed_are_judged_against_the_customers_own_rhythm() -> None:
    # Usual gap 95 days: overdue after 95 + 7 days, lapsed after 3 x 95 + 7 days.
    assert state_of(days_since_last_purchase=102.0, T=482.0) == "on rhythm"
    assert state_of(days_since_last_purchase=103.0, T=483.0) == "overdue"
    assert state_of(days_since_last_purchase=292.0, T=672.0) == "overdue"
    assert state_of(days_since_last_purchase=293.0, T=673.0) == "lapsed"


def test_one_time_buyers() -> None:
    assert state_of(**ONE_TIME) == "new"
    assert action_of(**ONE_TIME) == "nurture"
    assert action_of(**ONE_TIME, churn_probability=0.8) == "reactivate"
    assert action_of(**ONE_TIME, churn_probability=0.8, segment="At risk") == "reactivate"
    # a year without a second order: lapsed
    assert state_of(frequency=0.0, T=366.0, days_since_last_purchase=366.0) == "lapsed"
    assert action_of(frequency=0.0, T=366.0, days_since_last_purchase=366.0) == "win back"


def test_nobody_matching_a_rule_is_nurtured() -> None:
    assert action_of() == "nurture"
    assert action_of(churn_probability=0.99) == "nurture"  # on rhythm: high risk, long gap


@pytest.mark.parametrize(("p30", "expected"), [(0.5, "no discount"), (0.4999, "nurture")])
def test_no_discount_for_likely_buyers(p30: float, expected: str) -> None:
    assert action_of(p_purchase_30d=p30) == expected


def test_a_table_keeps_its_index_and_every_row_has_an_action() -> None:
    rows = [
        QUIET | LONG_LAPSED | {"segment": "Lost", "p_alive": 0.01},
        QUIET | LONG_LAPSED,
        QUIET | OVERDUE | {"segment": "Lost", "churn_probability": 0.7},
        QUIET | {"p_purchase_30d": 0.8},
        QUIET,
    ]
    table = pd.DataFrame(rows, index=[10, 11, 12, 13, 14])
    table["segment"] = pd.Categorical(table["segment"])
    actions = recommend_actions(table)
    assert actions.name == "action"
    assert actions.index.tolist() == [10, 11, 12, 13, 14]
    assert actions.tolist() == ["let go", "win back", "reactivate", "no discount", "nurture"]
    assert pd.api.types.is_string_dtype(actions)


def test_an_empty_table_has_no_actions() -> None:
    empty = pd.DataFrame(columns=list(QUIET)).astype({"p_alive": float})
    assert recommend_actions(empty).empty


@pytest.mark.parametrize("column", NEEDED_COLUMNS)
def test_a_missing_column_is_named(column: str) -> None:
    table = pd.DataFrame([QUIET]).drop(columns=column)
    with pytest.raises(RetainInputError, match=f"scores: missing column\\(s\\) {column}"):
        recommend_actions(table)
