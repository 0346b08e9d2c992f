"""The service's request and response models, made from the data contract: the same fields and the
same strictness as when they were written by hand (no server needed)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from retain.data.contract import SCORE_COLUMNS, TRANSACTIONS
from retain.serving.schemas import Event, Prediction, Transaction

LINE = {"timestamp": "2024-01-02T10:00:00", "amount": 12.5}


def test_the_fields_are_the_served_contract_columns_in_the_api_order() -> None:
    assert list(Transaction.model_fields) == [
        "timestamp",
        "amount",
        "order_id",
        "product_id",
        "category",
        "quantity",
        "discount",
    ]
    assert set(Transaction.model_fields) < set(TRANSACTIONS.columns)
    assert list(Event.model_fields) == ["timestamp", "event_type"]
    assert list(Prediction.model_fields) == [*SCORE_COLUMNS, "action", "model_version"]
    assert Transaction.__name__ == "Transaction" and Transaction.__module__ == Event.__module__
    amount = Transaction.model_json_schema()["properties"]["amount"]
    assert amount["description"] == "net revenue; negative for a refund"


@pytest.mark.parametrize(
    "change",
    [
        {"price": 3.0},  # unknown field (the contract's price is not served)
        {"amount": float("inf")},
        {"quantity": float("nan")},
        {"order_id": "   "},  # blank after stripping
        {"category": "x" * 201},
        {"timestamp": "yesterday"},
    ],
)
def test_a_bad_line_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Transaction.model_validate(LINE | change)


def test_required_fields_are_required_and_optional_ones_default_to_null() -> None:
    with pytest.raises(ValidationError, match="amount"):
        Transaction.model_validate({"timestamp": LINE["timestamp"]})
    line = Transaction.model_validate(LINE | {"order_id": "  A1 "})
    assert line.order_id == "A1" and line.discount is None and line.amount == 12.5
    assert line.timestamp == dt.datetime(2024, 1, 2, 10)
    with pytest.raises(ValidationError, match="event_type"):
        Event.model_validate({"timestamp": LINE["timestamp"], "event_type": ""})


def test_a_prediction_without_a_next_purchase_has_null_timing_but_must_say_so() -> None:
    scores: dict[str, Any] = {
        "customer_id": "c1",
        "churn_probability": 0.9,
        "p_alive": 0.2,
        "expected_purchases": 0.1,
        "p_purchase_30d": 0.05,
        "days_to_next_purchase": None,
        "expected_next_purchase_date": None,
        "clv": 3.0,
        "segment": "lost",
        "reasons": ["no purchase for 300 days"],
        "action": "none",
        "model_version": "1",
    }
    assert Prediction.model_validate(scores).days_to_next_purchase is None
    with pytest.raises(ValidationError, match="days_to_next_purchase"):
        Prediction.model_validate({k: v for k, v in scores.items() if k != "days_to_next_purchase"})
    with pytest.raises(ValidationError, match="clv"):
        Prediction.model_validate(scores | {"clv": None})
