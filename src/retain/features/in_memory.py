"""The feature table of a few customers in NumPy: the same numbers as the builder's SQL, sooner.

DuckDB plans and runs the feature SQL in about 20 ms however small the input, which is the whole
latency budget of scoring one customer over HTTP. For inputs of up to :data:`MAX_ROWS` rows the
builder computes the same table here instead, with sorts and ``bincount`` sums over the rows: well
under a millisecond for one customer and a few milliseconds for a thousand. Above that size the SQL
is faster and leaner, so large tables never come here.

Every definition is the SQL's (see :mod:`retain.features.builder`), and
``tests/features/test_in_memory.py`` holds the two to the same values, column by column, on random
histories and on CDNOW. Sums can add in another order than DuckDB's; the builder rounds floats to 9
decimals on both paths, which makes them equal. The columns, their order and dtypes are the feature
registry's (:mod:`retain.features.registry`), which the builder checks on every build and
``tests/features/test_registry.py`` holds both engines to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from retain.data.contract import EVENT_TYPES

__all__ = ["MAX_ROWS", "event_features", "transaction_features"]

MAX_ROWS: Final = 50_000
_SECOND: Final = 1_000_000  # timestamps are in microseconds, as the data contract stores them
_DAY: Final = 86_400 * _SECOND


def transaction_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    windows: Sequence[int],
    trend_days: int,
    event_columns: Sequence[str],
) -> pd.DataFrame:
    """The builder's transaction features, ordered by customer_id; ``event_columns`` come as NaN
    (no events table: unknown, not zero)."""
    rows = _Rows.up_to(transactions, cutoff)
    days = _Days(rows)
    c = _Customers(days)
    cut = int((cutoff - _EPOCH).days)

    def per_customer(values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """Sums over each customer's days (those ``where`` says)."""
        code = days.customer if where is None else days.customer[where]
        weights = values if where is None else values[where]
        return np.bincount(code, weights, minlength=days.n_customers)[c.kept]

    def before(lo: int, hi: int = 0) -> np.ndarray:
        """Days in (cutoff - lo, cutoff - hi]."""
        return (days.day > cut - lo) & (days.day <= cut - hi)

    orders = days.orders.astype("float64")
    columns: dict[str, np.ndarray] = {}
    frequency = c.purchase_days - 1.0
    columns["frequency"] = frequency
    columns["recency"] = (c.last_day - c.first_day).astype("float64")
    columns["T"] = (cut - c.first_day).astype("float64")
    columns["monetary_value"] = np.where(
        frequency > 0, _over(c.purchase_day_net - c.first_day_net, frequency), 0.0
    )
    since_last = (cut - c.last_day).astype("float64")
    columns["days_since_last_purchase"] = since_last
    orders_total = per_customer(orders)
    gross = per_customer(days.gross)
    refunded = per_customer(days.refunded)
    columns["orders_total"] = orders_total
    columns["spend_total"] = per_customer(days.net)
    columns["gross_total"] = gross
    columns["refund_total"] = refunded
    columns["avg_order_value"] = _over(gross, orders_total)
    columns["ipt_mean"] = _over(columns["recency"], frequency)
    columns["ipt_median"] = c.gap_median
    columns["ipt_std"] = c.gap_std
    columns["overdue_ratio"] = _over(since_last, c.gap_median)
    recent = per_customer(days.gross, before(trend_days))
    prior = per_customer(days.gross, before(2 * trend_days, trend_days))
    both = recent + prior
    columns["spend_trend"] = np.where(both > 0, _over(recent - prior, both), 0.0)
    columns["refund_share"] = np.where(gross != 0, _over(refunded, gross), 0.0)
    columns["weekend_share"] = c.weekend_days / c.purchase_days
    for w in windows:
        columns[f"orders_{w}d"] = per_customer(orders, before(w))
        columns[f"spend_{w}d"] = per_customer(days.net, before(w))
    year_old = cut - c.first_day >= 365
    for name, lo, hi in (("orders_ly_next_30d", 365, 335), ("orders_ly_next_90d", 365, 275)):
        columns[name] = np.where(year_old, per_customer(orders, before(lo, hi)), np.nan)
    for column, name in (("product_id", "n_products"), ("category", "n_categories")):
        columns[name] = rows.distinct_per_customer(column, days.n_customers)[c.kept]
    purchase_rows = per_customer(days.purchase_rows.astype("float64"))
    columns["discount_share"] = (
        _over(per_customer(days.discounted_rows.astype("float64")), purchase_rows)
        if "discount" in rows.columns
        else np.full(len(c.kept), np.nan)
    )
    columns["mean_purchase_hour"] = _over(per_customer(days.hour_sum), purchase_rows)
    for name in event_columns:
        columns[name] = np.full(len(c.kept), np.nan)
    return _table(rows.customer_ids[c.kept], columns)


def event_features(
    events: pd.DataFrame, cutoff: pd.Timestamp, windows: Sequence[int]
) -> pd.DataFrame:
    """The builder's event features (counts of each type in the short windows, days since the
    last session, the email click rate over 90 days), one row per customer with an event."""
    stamps = _micros(events["timestamp"])
    keep = stamps < _day_micros(cutoff) + _DAY
    code, ids = pd.factorize(events["customer_id"][keep], sort=True)
    day = stamps[keep] // _DAY
    kinds, names = pd.factorize(events["event_type"][keep])
    kind = {name: kinds == i for i, name in enumerate(names)}
    nothing = np.zeros(len(day), dtype=bool)
    cut = int((cutoff - _EPOCH).days)
    n = len(ids)

    def count(of: np.ndarray) -> np.ndarray:
        return np.bincount(code[of], minlength=n).astype("float64")

    columns: dict[str, np.ndarray] = {}
    for event_type in EVENT_TYPES:
        for w in windows:
            of_type = kind.get(event_type, nothing)
            columns[f"{event_type}s_{w}d"] = count(of_type & (day > cut - w))
    sessions = kind.get("session", nothing)
    last_session = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(last_session, code[sessions], day[sessions])
    columns["days_since_last_session"] = np.where(
        last_session > np.iinfo(np.int64).min, cut - last_session, np.nan
    ).astype("float64")
    opens = count(kind.get("email_open", nothing) & (day > cut - 90))
    clicks = count(kind.get("email_click", nothing) & (day > cut - 90))
    columns["email_click_rate_90d"] = _over(clicks, opens)
    return _table(np.asarray(ids, dtype=object), columns)


def _over(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / nullif(denominator, 0)``: NaN where the SQL's division is NULL."""
    return numerator / np.where(denominator != 0, denominator, np.nan)


def _table(ids: np.ndarray, columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The feature frame as the SQL path gives it: customer_id text, floats rounded to 9
    decimals (see ``builder._fetch``)."""
    values = np.round(np.column_stack(list(columns.values())).astype("float64"), 9)
    frame = pd.DataFrame(values, columns=list(columns))
    frame.insert(0, "customer_id", pd.Series(ids, dtype="str"))
    return frame


# -- the steps --------------------------------------------------------------------------------------

_EPOCH: Final = pd.Timestamp("1970-01-01")


class _Rows:
    """The transactions up to the cutoff, sorted by customer, day and order."""

    def __init__(self, frame: pd.DataFrame, stamps: np.ndarray) -> None:
        self.columns = frame.columns
        customer, ids = pd.factorize(frame["customer_id"], sort=True)
        self.customer_ids = np.asarray(ids, dtype=object)
        day = stamps // _DAY
        order = (
            _codes(frame["order_id"])
            if "order_id" in frame
            else np.full(len(frame), -1, dtype=np.int64)
        )
        sort = np.lexsort((order, day, customer))
        self._frame, self._sort = frame, sort
        self.customer = customer[sort]
        self.day = day[sort]
        self.order = order[sort]
        self.amount = frame["amount"].to_numpy(dtype="float64")[sort]
        self.purchase = self.amount >= 0
        seconds = (stamps[sort] % _DAY) // _SECOND
        self.hour = seconds // 3600 + (seconds % 3600 // 60) / 60.0

    @classmethod
    def up_to(cls, frame: pd.DataFrame, cutoff: pd.Timestamp) -> _Rows:
        stamps = _micros(frame["timestamp"])
        keep = stamps < _day_micros(cutoff) + _DAY
        if keep.all():  # the usual request: a history up to the day scored
            return cls(frame, stamps)
        return cls(frame.loc[keep], stamps[keep])

    def sorted_column(self, name: str) -> np.ndarray:
        """A column of the rows, in their sorted order."""
        return self._frame[name].to_numpy()[self._sort]

    def distinct_per_customer(self, column: str, n_customers: int) -> np.ndarray:
        """Distinct non-null values of ``column`` among each customer's purchase rows (NaN
        without the column)."""
        if column not in self.columns:
            return np.full(n_customers, np.nan)
        values = _codes(self.sorted_column(column))
        rows = self.purchase & (values >= 0)
        pairs = np.unique(self.customer[rows] * (values.max(initial=0) + 1) + values[rows])
        return np.bincount(pairs // (values.max(initial=0) + 1), minlength=n_customers).astype(
            "float64"
        )


class _Days:
    """One entry per customer and day (sorted by both), as the SQL's ``days`` table."""

    def __init__(self, rows: _Rows) -> None:
        self.n_customers = len(rows.customer_ids)
        new = np.ones(len(rows.day), dtype=bool)
        new[1:] = (rows.customer[1:] != rows.customer[:-1]) | (rows.day[1:] != rows.day[:-1])
        starts = np.flatnonzero(new)
        group = np.cumsum(new) - 1
        n = len(starts)
        purchase = rows.purchase.astype("float64")

        def total(values: np.ndarray) -> np.ndarray:
            return np.bincount(group, values, minlength=n)

        self.customer = rows.customer[starts]
        self.day = rows.day[starts]
        self.net = total(rows.amount)
        self.gross = total(np.where(rows.purchase, rows.amount, 0.0))
        self.refunded = -total(np.where(rows.purchase, 0.0, rows.amount))
        self.purchase_rows = total(purchase)
        self.purchase = self.purchase_rows > 0
        self.hour_sum = total(np.where(rows.purchase, rows.hour, 0.0))
        self.discounted_rows = (
            total(purchase * (np.nan_to_num(rows.sorted_column("discount").astype("float64")) > 0))
            if "discount" in rows.columns
            else np.zeros(n)
        )
        # Orders: distinct order ids among a day's purchase rows, plus each purchase row without
        # one. Rows are sorted by order within a day, so a distinct id is a change of id.
        with_id = rows.purchase & (rows.order >= 0)
        g, o = group[with_id], rows.order[with_id]
        first = np.ones(len(g), dtype=bool)
        first[1:] = (g[1:] != g[:-1]) | (o[1:] != o[:-1])
        self.orders = np.bincount(g[first], minlength=n) + np.bincount(
            group[rows.purchase & (rows.order < 0)], minlength=n
        )


class _Customers:
    """Per customer with a purchase day: RFM parts, weekend days and purchase-gap statistics.
    ``kept`` indexes them among all customers (in customer_id order)."""

    def __init__(self, days: _Days) -> None:
        code, day = days.customer[days.purchase], days.day[days.purchase]
        net = days.net[days.purchase]
        n = days.n_customers
        self.kept, first, counts = np.unique(code, return_index=True, return_counts=True)
        last = first + counts - 1
        self.purchase_days = counts.astype("float64")
        self.first_day = day[first]
        self.last_day = day[last]
        self.first_day_net = net[first]
        self.purchase_day_net = np.bincount(code, net, minlength=n)[self.kept]
        weekend = np.isin((day + 4) % 7, (0, 6)).astype("float64")  # 1970-01-01 was a Thursday
        self.weekend_days = np.bincount(code, weekend, minlength=n)[self.kept]
        self.gap_median, self.gap_std = _gap_statistics(code, day, len(self.kept), first, counts)


def _gap_statistics(
    code: np.ndarray, day: np.ndarray, n: int, first: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Median and sample standard deviation of the gaps between consecutive purchase days, per
    customer (NaN with no gap, and the deviation NaN with one)."""
    same = code[1:] == code[:-1]
    gaps = (day[1:] - day[:-1])[same].astype("float64")
    owner = np.repeat(np.arange(n), counts - 1)  # the gaps come in customer order
    n_gaps = counts - 1
    start = first - np.arange(n)  # each customer's first gap among `gaps`
    ordered = gaps[np.lexsort((gaps, owner))]
    has = n_gaps > 0
    lo = np.where(has, start + (n_gaps - 1) // 2, 0)
    hi = np.where(has, start + n_gaps // 2, 0)
    median = np.where(has, (ordered[lo] + ordered[hi]) / 2 if len(ordered) else 0.0, np.nan)
    sums = np.bincount(owner, gaps, minlength=n)
    mean = sums / np.where(has, n_gaps, 1)
    squares = np.bincount(owner, (gaps - mean[owner]) ** 2, minlength=n)
    std = np.where(n_gaps > 1, np.sqrt(squares / np.where(n_gaps > 1, n_gaps - 1, 1)), np.nan)
    return median, std


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    """Integer codes of a column's values, -1 for missing ones."""
    return pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64)


def _micros(stamps: pd.Series) -> np.ndarray:
    """Microseconds since the epoch, UTC."""
    # A zoned column converts to UTC on the way out (a hundred times sooner than tz_convert).
    return stamps.to_numpy(dtype="datetime64[us]").view(np.int64)


def _day_micros(day: pd.Timestamp) -> int:
    return int((day - _EPOCH).days) * _DAY
