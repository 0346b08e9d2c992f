"""The columns of ``scores.parquet``: one row per customer, the same for both engines."""

from __future__ import annotations

from typing import Final

import pandas as pd
import pyarrow as pa

__all__ = ["HISTORY_COLUMNS", "SCORES_SCHEMA", "to_arrow", "to_output_frame"]

SCORES_SCHEMA: Final = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("churn_probability", pa.float64()),
        pa.field("p_alive", pa.float64()),
        pa.field("expected_purchases", pa.float64()),
        pa.field("p_purchase_30d", pa.float64()),
        pa.field("days_to_next_purchase", pa.float64()),
        pa.field("expected_next_purchase_date", pa.date32()),
        pa.field("clv", pa.float64()),
        pa.field("segment", pa.string()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("action", pa.string()),
        # What the customer did, beside what the models predict: what audiences and reports
        # (and people reading the file) need to know.
        pa.field("frequency", pa.float64()),
        pa.field("T", pa.float64()),
        pa.field("days_since_last_purchase", pa.float64()),
        pa.field("orders_total", pa.float64()),
        pa.field("spend_total", pa.float64()),
    ]
)
# The columns of ``SCORES_SCHEMA`` taken from the feature table rather than from the models.
HISTORY_COLUMNS: Final = (
    "frequency",
    "T",
    "days_since_last_purchase",
    "orders_total",
    "spend_total",
)


def to_output_frame(scores: pd.DataFrame) -> pd.DataFrame:
    """A scores frame (``score_chunk``) with the output's columns, in order; the expected next
    purchase date as a date (it is a day, not an instant: Parquet DATE, Arrow ``date32``, Spark
    ``DateType``). Where no purchase is expected within the horizon the date is NaT and the days
    NaN: both become nulls in Arrow (``TimingModel.predict_days``)."""
    frame = scores[SCORES_SCHEMA.names].copy()
    frame["expected_next_purchase_date"] = pd.to_datetime(
        frame["expected_next_purchase_date"]
    ).dt.date
    return frame


def to_arrow(scores: pd.DataFrame) -> pa.Table:
    """A scores frame as an Arrow table of exactly ``SCORES_SCHEMA``."""
    return pa.Table.from_pandas(to_output_frame(scores), schema=SCORES_SCHEMA, preserve_index=False)
