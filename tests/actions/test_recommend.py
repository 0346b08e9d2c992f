"""The recommended action of each customer: five rules on their own scores, first match wins."""

from __future__ import annotations

import pandas as pd
import pytest

from retain.actions import ACTIONS, recommend_actions
from retain.errors import RetainInputError

# A customer who matches no rule (alive, low churn risk, unlikely to buy within 30 days).
QUIET = {"p_alive": 0.9, "churn_probability": 0.3, "p_purchase_30d": 0.2, "segment": "Loyal"}


def action_of(**scores: object) -> str:
    return str(recommend_actions(pd.DataFrame([QUIET | scores])).iloc[0])


def test_the_actions() -> None:
    assert ACTIONS == ("let go", "win back", "reactivate", "no discount", "nurture")


def test_nobody_matching_a_rule_is_nurtured() -> None:
    assert action_of() == "nurture"


@pytest.mark.parametrize(
    ("p_alive", "expected"), [(0.0, "let go"), (0.0499, "let go"), (0.05, "nurture")]
)
def test_let_go_below_five_percent_alive(p_alive: float, expected: str) -> None:
    assert action_of(p_alive=p_alive) == expected


@pytest.mark.parametrize("segment", ["Champions", "Loyal", "Can't lose", "At risk"])
def test_win_back_risky_valuable_customers(segment: str) -> None:
    assert action_of(churn_probability=0.6, segment=segment) == "win back"
    assert action_of(churn_probability=0.5999, segment=segment) == "nurture"


@pytest.mark.parametrize(
    "segment", ["Hibernating", "Lost", "New", "Need attention", "Potential loyalist", "champions"]
)
def test_reactivate_risky_other_customers(segment: str) -> None:
    assert action_of(churn_probability=0.6, segment=segment) == "reactivate"
    assert action_of(churn_probability=0.99, segment=segment) == "reactivate"


@pytest.mark.parametrize(("p30", "expected"), [(0.5, "no discount"), (0.4999, "nurture")])
def test_no_discount_for_likely_buyers(p30: float, expected: str) -> None:
    assert action_of(p_purchase_30d=p30) == expected


def test_first_match_wins() -> None:
    # Everything at once: nearly dead beats risky, valuable, and likely to buy.
    assert action_of(p_alive=0.01, churn_probability=0.9, p_purchase_30d=0.9) == "let go"
    # Risky and valuable beats merely risky and likely to buy.
    assert action_of(churn_probability=0.9, p_purchase_30d=0.9) == "win back"
    # Risky (not valuable) beats likely to buy.
    assert action_of(churn_probability=0.9, p_purchase_30d=0.9, segment="Lost") == "reactivate"


def test_a_table_keeps_its_index_and_every_row_has_an_action() -> None:
    table = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "p_alive": [0.01, 0.9, 0.9, 0.9, 0.9],
            "churn_probability": [0.9, 0.7, 0.7, 0.1, 0.1],
            "p_purchase_30d": [0.9, 0.9, 0.9, 0.8, 0.1],
            "segment": pd.Categorical(["Champions", "At risk", "Lost", "New", "Champions"]),
        },
        index=[10, 11, 12, 13, 14],
    )
    actions = recommend_actions(table)
    assert actions.name == "action"
    assert actions.index.tolist() == [10, 11, 12, 13, 14]
    assert actions.tolist() == ["let go", "win back", "reactivate", "no discount", "nurture"]
    assert pd.api.types.is_string_dtype(actions)


def test_an_empty_table_has_no_actions() -> None:
    empty = pd.DataFrame(columns=list(QUIET)).astype({"p_alive": float})
    assert recommend_actions(empty).empty


@pytest.mark.parametrize("column", list(QUIET))
def test_a_missing_column_is_named(column: str) -> None:
    table = pd.DataFrame([QUIET]).drop(columns=column)
    with pytest.raises(RetainInputError, match=f"scores: missing column\\(s\\) {column}"):
        recommend_actions(table)


def test_every_missing_column_is_named() -> None:
    with pytest.raises(
        RetainInputError, match="p_alive, churn_probability, p_purchase_30d, segment"
    ):
        recommend_actions(pd.DataFrame({"customer_id": ["a"]}))
