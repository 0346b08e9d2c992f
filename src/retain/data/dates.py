"""Reading the dates users give (as-of days, period bounds) the same way everywhere."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from retain.errors import RetainInputError

__all__ = ["DateLike", "to_utc", "utc_day"]

DateLike = str | dt.date | dt.datetime | pd.Timestamp


def to_utc(value: DateLike, name: str) -> pd.Timestamp:
    """``value`` as a UTC timestamp; a value without a zone is read as UTC."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise RetainInputError(f"{name}: cannot read {value!r} as a date") from error
    if stamp is pd.NaT:
        raise RetainInputError(f"{name}: cannot read {value!r} as a date")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def utc_day(value: DateLike, name: str) -> pd.Timestamp:
    """The UTC day of ``value``, as a naive midnight timestamp."""
    return to_utc(value, name).tz_localize(None).normalize()
