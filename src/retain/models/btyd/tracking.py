"""Tracking a cohort: actual against expected cumulative repeat transactions over time.

This is the BTYD papers' main check of a fitted model (FHL 2005, figure 3, on CDNOW): the model is
fitted on a calibration period, and for every later date the repeat transactions it expects from
the whole cohort, each customer counted from their own first purchase, are compared with those
that happened. A model that tracks the curve well through the holdout predicts well in aggregate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.data.dates import DateLike, utc_day
from retain.errors import RetainInputError
from retain.models.btyd._base import UNIT_DAYS, TransactionModel

__all__ = ["cumulative_repeat_transactions", "purchase_days"]


def purchase_days(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and UTC day with a purchase (``amount >= 0``), with ``first``.

    A purchase day is what the feature table counts (same-day purchases merged); ``first`` is the
    customer's first purchase day, so repeat purchases are the rows with ``day > first``.
    """
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in transactions.columns]
    if missing:
        raise RetainInputError(f"transactions: missing column(s) {', '.join(missing)}")
    stamps = pd.to_datetime(transactions["timestamp"])
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    purchases = pd.DataFrame(
        {"customer_id": transactions["customer_id"], "day": stamps.dt.normalize()}
    )[transactions["amount"].to_numpy() >= 0]
    days = purchases.drop_duplicates(ignore_index=True)
    days["first"] = days.groupby("customer_id")["day"].transform("min")
    return days


def cumulative_repeat_transactions(
    model: TransactionModel,
    transactions: pd.DataFrame,
    *,
    end: DateLike,
    start: DateLike | None = None,
    period_days: int = 7,
    unit_days: float | None = None,
) -> pd.DataFrame:
    """Actual and expected cumulative repeat purchase days of the cohort, at each period's end.

    The cohort is every customer with a first purchase on or before ``end``. Periods of
    ``period_days`` run from ``start`` (default: the first purchase in the data); period ``k`` ends
    on the day ``start + k * period_days - 1``, and the last row is ``end`` itself. At the end of
    day ``d``:

    - ``actual``: repeat purchase days (a customer's purchase days after their first) up to ``d``;
    - ``expected``: the sum over customers whose first purchase is on or before ``d`` of
      ``model.expected_number_of_purchases_up_to_time((d - first) / unit_days)``, the clock
      starting on the first purchase day as ``T`` does in the feature table.

    ``unit_days`` is the length of the model's time unit in days (default: from ``time_unit_``).
    Returns one row per period: ``period``, ``date`` (its last day), ``actual``, ``expected``.
    """
    model._require_fitted()
    if unit_days is None:
        if model.time_unit_ not in UNIT_DAYS:
            raise RetainInputError(
                f"the model's time unit {model.time_unit_!r} is not one of "
                f"{', '.join(UNIT_DAYS)}: pass unit_days"
            )
        unit_days = UNIT_DAYS[model.time_unit_]
    if not (isinstance(period_days, int) and period_days >= 1):
        raise RetainInputError(f"period_days must be a whole number >= 1, got {period_days!r}")
    last = utc_day(end, "end")
    days = purchase_days(transactions)
    days = days[days["first"] <= last]
    if days.empty:
        raise RetainInputError(f"transactions: no purchase on or before {last:%Y-%m-%d}")
    first_day = utc_day(start, "start") if start is not None else days["first"].min()
    n_periods = (last - first_day).days // period_days + 1
    ends = first_day + pd.to_timedelta(np.arange(1, n_periods + 1) * period_days - 1, unit="D")
    ends = ends[ends < last].append(pd.DatetimeIndex([last]))

    repeat = np.sort(days.loc[days["day"] > days["first"], "day"].to_numpy())
    actual = np.searchsorted(repeat, ends.to_numpy(), side="right")

    cohort = days.drop_duplicates("customer_id")["first"].value_counts()
    ages = (ends.to_numpy()[:, None] - cohort.index.to_numpy()[None, :]) / np.timedelta64(1, "D")
    expected = np.where(
        ages >= 0,
        model.expected_number_of_purchases_up_to_time(np.maximum(ages, 0.0) / unit_days),
        0.0,
    ) @ cohort.to_numpy(dtype=np.float64)
    return pd.DataFrame(
        {
            "period": np.arange(1, ends.size + 1),
            "date": ends,
            "actual": actual.astype(np.int64),
            "expected": expected,
        }
    )
