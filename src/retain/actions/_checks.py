"""Checks of the scores tables the action modules read: clear errors naming the column and rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from retain.data.dates import DateLike, utc_day
from retain.errors import RetainInputError

__all__ = ["as_of_day", "days", "finite_numbers", "numbers", "require"]


def require(frame: pd.DataFrame, columns: Iterable[str], table: str = "scores") -> None:
    """Raise naming every column of ``columns`` that ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RetainInputError(f"{table}: missing column(s) {', '.join(missing)}")


def numbers(frame: pd.DataFrame, column: str, table: str = "scores") -> np.ndarray:
    """A column as float64, refusing text and missing values (with their number of rows)."""
    try:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype="float64")
    except (TypeError, ValueError) as error:
        raise RetainInputError(f"{table}: column {column} is not numeric") from error
    bad = int(np.isnan(values).sum())
    if bad:
        raise RetainInputError(
            f"{table}: column {column} has {bad} missing or non-numeric values in "
            f"{len(values)} rows"
        )
    return values


def finite_numbers(frame: pd.DataFrame, column: str, table: str = "scores") -> np.ndarray:
    """A numeric column as finite float64: text or booleans, missing and infinite values refused
    (stricter than :func:`numbers`, which reads numbers written as text)."""
    values = frame[column]
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise RetainInputError(f"{table}: {column} must be numeric, not {values.dtype}")
    array = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise RetainInputError(
            f"{table}: {column} is missing or infinite in {bad} of {len(array)} rows"
        )
    return array


def days(
    frame: pd.DataFrame, column: str, table: str = "scores", *, missing: bool = False
) -> np.ndarray:
    """A date column (dates, timestamps or ISO text) as naive UTC days, ``datetime64[s]``.

    ``missing=True`` keeps missing values (None, NaT, NaN) as NaT, for a column where a null has
    a meaning (no date expected); text that is not a date is refused either way.
    """
    values = frame[column]
    try:
        parsed = pd.to_datetime(values, errors="coerce", utc=True)
    except (TypeError, ValueError) as error:  # mixed types pandas cannot read at all
        raise RetainInputError(f"{table}: column {column} is not a date") from error
    if missing:
        bad = int((parsed.isna() & values.notna()).sum())
        if bad:
            raise RetainInputError(
                f"{table}: column {column} has {bad} unreadable dates in {len(values)} rows"
            )
    else:
        bad = int(parsed.isna().sum())
        if bad:
            raise RetainInputError(
                f"{table}: column {column} has {bad} missing or unreadable dates in "
                f"{len(values)} rows"
            )
    return parsed.dt.tz_localize(None).dt.floor("D").to_numpy(dtype="datetime64[s]")


def as_of_day(as_of: DateLike) -> np.datetime64:
    """The as-of day (the UTC day of a date, timestamp or ISO text)."""
    return utc_day(as_of, "as_of").to_datetime64().astype("datetime64[s]")
