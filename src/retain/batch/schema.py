"""The columns of ``scores.parquet``: one row per customer, the same for both engines."""

from __future__ import annotations

from typing import Final

import pandas as pd
import pyarrow as pa

__all__ = ["SCORES_SCHEMA", "to_arrow"]

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
    ]
)


def to_arrow(scores: pd.DataFrame) -> pa.Table:
    """A scores frame (``score_chunk``) as an Arrow table of exactly ``SCORES_SCHEMA``."""
    frame = scores[SCORES_SCHEMA.names].copy()
    dates = pd.to_datetime(frame["expected_next_purchase_date"])
    frame["expected_next_purchase_date"] = dates.dt.date
    return pa.Table.from_pandas(frame, schema=SCORES_SCHEMA, preserve_index=False)
