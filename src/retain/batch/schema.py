"""The columns of ``scores.parquet``: one row per customer, the same for both engines."""

from __future__ import annotations

from typing import Final

import pandas as pd
import pyarrow as pa

from retain.data.contract import SCORES, scores_arrow_schema

__all__ = ["HISTORY_COLUMNS", "SCORES_SCHEMA", "to_arrow", "to_output_frame"]

SCORES_SCHEMA: Final = scores_arrow_schema()
"""The Arrow schema of ``scores.parquet``: the scores contract's (``retain.data.contract.SCORES``)."""
HISTORY_COLUMNS: Final = tuple(c.name for c in SCORES.specs if c.source == "history")
"""The columns of ``SCORES_SCHEMA`` taken from the feature table rather than from the models."""


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
