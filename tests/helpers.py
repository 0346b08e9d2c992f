"""Small builders of test tables."""

from __future__ import annotations

import pandas as pd


def transactions(rows: list[tuple[str, str, float]], **extra: list[object]) -> pd.DataFrame:
    """A validated-looking transactions frame from (customer, ISO timestamp, amount) rows."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").astype(
        "datetime64[us, UTC]"
    )
    frame["amount"] = frame["amount"].astype("float64")
    for name, values in extra.items():
        frame[name] = pd.Series(
            values, dtype="float64" if name in ("quantity", "discount") else "str"
        )
    return frame
