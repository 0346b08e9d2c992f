"""Training examples from rolling origins inside the given history.

A model that predicts the next ``horizon_days`` after ``as_of`` learns from cutoffs whose horizon
has already been seen: the last one at ``as_of - horizon_days``, earlier ones ``step_days`` apart.
Features come from data on or before each cutoff and labels from the horizon after it, so nothing
after ``as_of`` is ever read: the transactions are cut at ``as_of`` before anything else.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import pandas as pd

from retain.data.dates import DateLike
from retain.errors import RetainInputError
from retain.features import FeatureBuilder, build_features, to_cutoff

__all__ = ["on_or_before", "rolling_cutoffs", "training_table", "up_to"]


@overload
def up_to(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame: ...
@overload
def up_to(frame: None, day: pd.Timestamp) -> None: ...
def up_to(frame: pd.DataFrame | None, day: pd.Timestamp) -> pd.DataFrame | None:
    """Rows of a timestamped frame on or before ``day`` (a naive UTC midnight)."""
    if frame is None:
        return None
    keep = on_or_before(frame["timestamp"], day)
    return frame if keep.all() else frame.loc[keep]


def on_or_before(timestamps: pd.Series, day: pd.Timestamp) -> np.ndarray:
    """Which UTC timestamps fall on or before ``day`` (a naive UTC midnight)."""
    # In NumPy: a zoned column comes out in UTC, and pandas' own comparison costs far more.
    end = (day + pd.Timedelta(days=1)).as_unit("us").to_datetime64()
    return timestamps.to_numpy(dtype="datetime64[us]") < end


def rolling_cutoffs(
    transactions: pd.DataFrame,
    as_of: DateLike,
    horizon_days: int,
    n_cutoffs: int = 4,
    step_days: int | None = None,
    min_history_days: int = 90,
    same_season: bool = True,
) -> list[pd.Timestamp]:
    """Cutoffs for training, oldest first: the last at ``as_of - horizon_days``.

    ``step_days`` defaults to half the horizon. Cutoffs with less than ``min_history_days`` of
    history before them are left out; at least one must remain.

    ``same_season``: also train on the cutoff a year before ``as_of`` when the history reaches back
    that far and no cutoff is already within a month of it. Its horizon covers the same weeks of
    the year as the horizon predicted, so the models see the season they are asked about, and the
    value models take their level from it (:func:`~retain.models.retention.reference_cutoff`).
    Rolling cutoffs alone stop a horizon before ``as_of``: on Online Retail II as of 2011-09-09
    (90 days, Christmas orders inside), they all look at spring and summer, and the predicted
    spend came out 41% short; with the year-ago cutoff, 3% short.
    """
    if horizon_days < 1 or n_cutoffs < 1:
        raise RetainInputError("horizon_days and n_cutoffs must be at least 1")
    day = to_cutoff(as_of)
    step = step_days or max(horizon_days // 2, 1)
    first = transactions["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    earliest = first + pd.Timedelta(days=min_history_days)
    last_cutoff = day - pd.Timedelta(days=horizon_days)
    cutoffs = [last_cutoff - pd.Timedelta(days=k * step) for k in range(n_cutoffs)]
    cutoffs = [c for c in cutoffs if c >= earliest]
    if not cutoffs:
        raise RetainInputError(
            f"training: the history from {first:%Y-%m-%d} to {day:%Y-%m-%d} is too short for a "
            f"{horizon_days}-day horizon: the last training cutoff ({last_cutoff:%Y-%m-%d}) needs "
            f"at least {min_history_days} days of history before it"
        )
    year_ago = day - pd.Timedelta(days=365)
    if (
        same_season
        and earliest <= year_ago <= last_cutoff
        and all(abs((year_ago - c).days) > 31 for c in cutoffs)
    ):
        cutoffs.append(year_ago)
    return sorted(cutoffs)


def training_table(
    transactions: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon_days: int,
    *,
    as_of: DateLike,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    builder: FeatureBuilder | None = None,
) -> pd.DataFrame:
    """Features and labels of every customer at every cutoff, stacked, with a ``cutoff`` column."""
    day = to_cutoff(as_of)
    late = [c for c in cutoffs if c + pd.Timedelta(days=horizon_days) > day]
    if late:
        raise RetainInputError(
            f"training: cutoffs {[f'{c:%Y-%m-%d}' for c in late]} have horizons that end after "
            f"the as-of date {day:%Y-%m-%d}"
        )
    history = up_to(transactions, day)
    events = up_to(events, day)
    tables = [
        build_features(
            history,
            cutoff,
            events=events,
            customers=customers,
            horizon_days=horizon_days,
            observed_until=day,
            builder=builder,
        ).assign(cutoff=cutoff)
        for cutoff in cutoffs
    ]
    return pd.concat(tables, ignore_index=True)
