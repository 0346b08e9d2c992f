"""Hand-made rows of a scores table (``scores.parquet``) for the action tests.

``ROW`` is a quiet repeat customer: four repeat purchase days over 380 days (a usual gap of 95
days), last purchase 20 days ago, low churn risk, a CLV of 10; no rule but ``steady`` matches it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

AS_OF = "2024-06-30"

ROW: dict[str, Any] = {
    "customer_id": "c",
    "churn_probability": 0.4,
    "p_alive": 0.8,
    "expected_purchases": 1.0,
    "p_purchase_30d": 0.2,
    "days_to_next_purchase": 20.0,
    "expected_next_purchase_date": dt.date(2024, 7, 20),
    "clv": 10.0,
    "segment": "Loyal",
    "reasons": ["first reason", "second reason"],
    "action": "nurture",
    "frequency": 4.0,
    "T": 400.0,
    "days_since_last_purchase": 20.0,
    "orders_total": 5.0,
    "spend_total": 200.0,
}


def scores(*rows: dict[str, Any], index: list[Any] | None = None) -> pd.DataFrame:
    """A scores table of ``ROW`` with each row's changes; ids ``c0, c1, ...`` unless given."""
    frame = pd.DataFrame(
        [ROW | {"customer_id": f"c{i}"} | row for i, row in enumerate(rows)], index=index
    )
    frame["customer_id"] = frame["customer_id"].astype("str")
    return frame
