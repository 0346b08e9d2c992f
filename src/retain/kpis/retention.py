"""Retention KPIs over calendar periods: CRR, churn, buyers, orders, revenue, cohorts.

These are the figures a retention team reads every month beside the models' predictions: they say
what happened, the models say what will happen. They are computed from a validated transactions
frame (see :mod:`retain.data.contract`) with whole-array NumPy/pandas operations only (no loop over
customers or rows), so ten million transactions take seconds.

Definitions (the project's contract)
------------------------------------
- A *purchase* is a transaction row with ``amount >= 0``. A *refund* row (``amount < 0``) counts in
  revenue (net) but is never a purchase or an order.
- An *order* is a distinct ``order_id`` among purchase rows when the column exists, else a purchase
  row. An order belongs to its customer (the same ``order_id`` under two customers is two orders);
  a purchase row without an ``order_id`` is an order of its own. An order is dated by its first
  purchase row: it counts, with all its gross value, in the period of that row.
- A customer is *active at instant t* if they made a purchase in the ``active_window_days`` (W)
  days up to and including t, i.e. in the window ``(t - W, t]``.
- *Periods* are calendar periods in UTC, ``period`` in ``{"M", "Q", "Y"}``: month 2011-03 is
  ``[2011-03-01 00:00, 2011-04-01 00:00)``. ``period_end`` is the exclusive end, i.e. the next
  period's start.
- Activity at a period boundary b is taken *just before* b, so that a purchase at exactly b belongs
  to the new period and not to the old one: the window is the half-open ``[b - W, b)``, which is
  the limit of ``(t - W, t]`` as t approaches b from below and, for a whole number of days, exactly
  the W calendar days before b.
- B (``customers_start``) = customers active at the period start (a purchase in
  ``[start - W, start)``); E (``customers_end``) = customers active at the period end (a purchase
  in ``[end - W, end)``), so one period's E is the next period's B; N (``new_customers``) =
  customers whose first purchase ever falls in the period.
- ``crr`` = (E - N) / B x 100, the customer retention rate; NaN when B = 0. E also holds customers
  who were inactive at the start and came back during the period (reactivated), so CRR counts them
  as retained: that is the formula's convention, and ``churn_rate`` is the figure without it.
- ``churn_rate`` = share of B with no purchase in the window ending at the period end (in B but
  not in E) x 100; NaN when B = 0.
- ``window_covered`` says whether the data reach back a whole window before the period start (the
  window ``[start - W, start)`` begins on or after the day of the first transaction). When they do
  not, B misses the customers whose purchases precede the data, N counts some of them as new, and
  while the data are less than W old at the period end nobody can have churned: CRR is 100 and
  churn 0 by construction (2010-01 to 2010-11 in Online Retail II, with W = 365). Such periods keep
  the formula's values but are marked: the report and ``retain kpis`` show their CRR and churn as
  not measurable rather than as a perfect retention.
- ``buyers`` = distinct customers with an order in the period; ``orders`` = orders in the period;
  ``revenue`` = sum of ``amount`` over the period's rows (net: refunds included, by their own date);
  ``average_order_value`` = gross purchase revenue of the period's orders / ``orders``;
  ``purchase_frequency`` = ``orders`` / ``buyers``; ``repeat_purchase_rate`` = share (x 100) of the
  period's buyers who have at least two orders in total by the end of the period. Ratios with a zero
  denominator are NaN.
- A customer's *acquisition cohort* is the period of their first purchase; a cohort's retention
  k periods later is the share of the cohort with an order in the cohort's period plus k. Periods
  after the last transaction are not observed (NaN), not zero.
- Whole-history figures (:func:`summarize_kpis`) use the same definitions over the entire history;
  ``refund_share`` = refunded amount (minus the sum of negative amounts) / gross purchase revenue.
- Rates and shares of :func:`retention_kpis` and :func:`summarize_kpis` are percentages (0-100);
  the cells of :func:`cohort_retention` are fractions (0-1).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from retain.data.contract import TIMESTAMP_DTYPE
from retain.data.dates import DateLike, to_utc
from retain.errors import RetainInputError

__all__ = ["KPI_COLUMNS", "PERIODS", "cohort_retention", "retention_kpis", "summarize_kpis"]

PERIODS: Final = ("M", "Q", "Y")
"""Calendar period codes: month, quarter, year (pandas period aliases)."""

KPI_COLUMNS: Final = (
    "period",
    "period_start",
    "period_end",
    "customers_start",
    "customers_end",
    "new_customers",
    "crr",
    "churn_rate",
    "window_covered",
    "buyers",
    "orders",
    "revenue",
    "average_order_value",
    "purchase_frequency",
    "repeat_purchase_rate",
)
"""Columns of :func:`retention_kpis`, in order."""

_MICROSECONDS_PER_DAY: Final = 86_400 * 1_000_000


def retention_kpis(
    transactions: pd.DataFrame,
    *,
    period: str = "M",
    active_window_days: int = 365,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> pd.DataFrame:
    """Retention and purchase KPIs, one row per calendar period (definitions in the module doc).

    Rows run from the period of the first transaction (or the period containing ``start``) to the
    period of the last one (or the period containing ``end``). Activity and first purchases always
    use the whole history, so the first reported period's B counts customers who bought before
    ``start``. Timestamps given as ``start``/``end`` without a zone are read as UTC.
    """
    _check_period(period)
    window = _check_window(active_window_days)
    table = _Transactions.read(transactions)
    first = _to_utc(start, "start")
    last = _to_utc(end, "end")
    if first is not None and last is not None and first > last:
        raise RetainInputError(
            f"start ({first:%Y-%m-%d %H:%M}) is after end ({last:%Y-%m-%d %H:%M})"
        )

    data_first, data_last = table.time.min(), table.time.max()
    grid = _Grid.spanning(
        min(data_first, _micros(first) if first is not None else data_first),
        max(data_last, _micros(last) if last is not None else data_last),
        period,
    )
    n = grid.size
    row_period = grid.locate(table.time)
    buy = table.purchase
    active, ending = _activity(table.customer[buy], row_period[buy], table.time[buy], grid, window)
    customer_periods = _CustomerPeriods.of(table.orders(), grid)

    at_start, at_end = active[:n], active[1:]  # B and E of every period
    churned = ending[1:]  # in B, not in E
    new = np.bincount(customer_periods.period[customer_periods.first], minlength=n)
    buyers = np.bincount(customer_periods.period, minlength=n)
    repeaters = np.bincount(customer_periods.period[customer_periods.cumulative >= 2], minlength=n)
    orders = np.bincount(customer_periods.period, weights=customer_periods.orders, minlength=n)
    gross = np.bincount(customer_periods.period, weights=customer_periods.gross, minlength=n)
    revenue = np.bincount(row_period, weights=table.amount, minlength=n)

    boundaries = grid.timestamps()
    kpis = pd.DataFrame(
        {
            "period": grid.periods.astype("str"),
            "period_start": boundaries.array[:-1],
            "period_end": boundaries.array[1:],
            "customers_start": at_start,
            "customers_end": at_end,
            "new_customers": new,
            "crr": _ratio(at_end - new, at_start) * 100,
            "churn_rate": _ratio(churned, at_start) * 100,
            "window_covered": grid.bounds[:-1] - window >= _day_floor(data_first),
            "buyers": buyers,
            "orders": orders.astype(np.int64),
            "revenue": revenue,
            "average_order_value": _ratio(gross, orders),
            "purchase_frequency": _ratio(orders, buyers),
            "repeat_purchase_rate": _ratio(repeaters, buyers) * 100,
        },
        columns=list(KPI_COLUMNS),
    )
    shown = np.ones(n, dtype=bool)
    if first is not None:
        shown &= grid.bounds[1:] > _micros(first)
    if last is not None:
        shown &= grid.bounds[:-1] <= _micros(last)
    return kpis.loc[shown].reset_index(drop=True)


def cohort_retention(
    transactions: pd.DataFrame, *, period: str = "M", max_periods: int | None = None
) -> pd.DataFrame:
    """Share of each acquisition cohort with an order in each period after acquisition.

    Rows are the acquisition cohorts (the period of a customer's first purchase; only periods that
    acquired someone), labelled like ``"2011-03"``. The first column, ``cohort_size``, counts the
    cohort; columns ``0, 1, ..., k`` hold the share of the cohort with an order in the cohort's
    period plus that many periods. Column 0 is 1.0 by construction. Cells after the period of the
    last transaction are NaN (not observed), not 0; the last period itself may be partial.
    ``max_periods`` caps k (default: as far as the data reaches).
    """
    _check_period(period)
    if max_periods is not None and (
        not isinstance(max_periods, numbers.Integral)
        or isinstance(max_periods, bool)
        or max_periods < 0
    ):
        raise RetainInputError(
            f"max_periods must be a whole number of periods >= 0 or None, not {max_periods!r}"
        )
    table = _Transactions.read(transactions)
    grid = _Grid.spanning(table.time.min(), table.time.max(), period)
    customer_periods = _CustomerPeriods.of(table.orders(), grid)

    width = grid.size if max_periods is None else min(int(max_periods) + 1, grid.size)
    cohort = customer_periods.cohort
    offset = customer_periods.period - cohort
    counted = offset < width
    cells = np.bincount(
        cohort[counted] * width + offset[counted], minlength=grid.size * width
    ).reshape(grid.size, width)
    sizes = cells[:, 0]
    shares = cells / np.where(sizes > 0, sizes, 1)[:, None]
    observed = np.arange(grid.size)[:, None] + np.arange(width)[None, :] < grid.size
    shares = np.where(observed, shares, np.nan)

    acquired = sizes > 0
    matrix = pd.DataFrame(
        shares[acquired],
        index=pd.Index(grid.periods.astype("str")[acquired], name="cohort"),
        columns=pd.RangeIndex(width),
    )
    matrix.insert(0, "cohort_size", sizes[acquired])
    return matrix


def summarize_kpis(transactions: pd.DataFrame) -> dict[str, float]:
    """Whole-history figures, with the module's definitions applied to the entire history.

    ``customers`` = customers with at least one order; ``customers_without_purchase`` = customers
    whose rows are all refunds (negative amounts): validation counts them among the file's
    customers, the KPIs cannot (no order, no first purchase), so the two counts differ by them
    (61 of 5,942 in Online Retail II: returns and manual adjustments, all in the export's first
    year, so most likely of purchases made before it starts);
    ``orders``; ``revenue`` (net);
    ``average_order_value`` = gross purchase revenue / orders; ``purchase_frequency`` = orders /
    customers; ``repeat_purchase_rate`` = share (x 100) of customers with at least two orders;
    ``refund_share`` = refunded amount (minus the sum of negative amounts) as a share (x 100) of
    gross purchase revenue. Ratios with a zero denominator are NaN.
    """
    table = _Transactions.read(transactions)
    orders = table.orders()
    per_customer = np.bincount(orders.customer, minlength=table.customers)
    customers = int(np.count_nonzero(per_customer))
    repeaters = int(np.count_nonzero(per_customer >= 2))
    n_orders = len(orders.customer)
    gross = float(orders.gross.sum())
    refunded = abs(float(table.amount[~table.purchase].sum()))  # abs: no "-0.0" without refunds
    return {
        "customers": customers,
        "customers_without_purchase": table.customers - customers,
        "orders": n_orders,
        "revenue": float(table.amount.sum()),
        "average_order_value": _scalar_ratio(gross, n_orders),
        "purchase_frequency": _scalar_ratio(n_orders, customers),
        "repeat_purchase_rate": _scalar_ratio(repeaters, customers) * 100,
        "refund_share": _scalar_ratio(refunded, gross) * 100,
    }


# -- Inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Orders:
    """One entry per order: its customer code, its date (first purchase row) and gross value."""

    customer: np.ndarray
    time: np.ndarray
    gross: np.ndarray


@dataclass(frozen=True)
class _Transactions:
    """The columns the KPIs need, as flat arrays, one entry per transaction row.

    ``customer`` holds integer codes (0..customers-1) instead of strings: grouping and counting on
    integers is what keeps ten million rows fast. ``time`` is microseconds since the epoch (UTC).
    """

    customer: np.ndarray
    customers: int
    time: np.ndarray
    amount: np.ndarray
    purchase: np.ndarray
    order_id: pd.Series | None

    @classmethod
    def read(cls, transactions: pd.DataFrame) -> _Transactions:
        """Check the frame and pull out its arrays; bad input raises RetainInputError."""
        if len(transactions) == 0:
            raise RetainInputError("transactions: the frame is empty (no rows)")
        missing = [c for c in ("customer_id", "timestamp", "amount") if c not in transactions]
        if missing:
            raise RetainInputError(
                f"transactions: missing column(s) {', '.join(missing)}; "
                f"the frame has: {', '.join(map(str, transactions.columns))}"
            )
        timestamps = transactions["timestamp"]
        if not pd.api.types.is_datetime64_any_dtype(timestamps):
            raise RetainInputError(
                f"transactions: column timestamp must hold datetimes (a validated frame), "
                f"not {timestamps.dtype}"
            )
        if isinstance(timestamps.dtype, pd.DatetimeTZDtype):
            timestamps = timestamps.dt.tz_convert("UTC").dt.tz_localize(None)
        time = timestamps.to_numpy(dtype="datetime64[us]")
        amount = pd.to_numeric(transactions["amount"], errors="coerce").to_numpy(dtype=np.float64)
        customer, uniques = pd.factorize(transactions["customer_id"])
        for column, bad in (
            ("customer_id", customer < 0),
            ("timestamp", np.isnat(time)),
            ("amount", np.isnan(amount)),
        ):
            if bad.any():
                raise RetainInputError(
                    f"transactions: column {column} has {int(bad.sum()):,} missing or unreadable "
                    f"values; validate the table first (retain.data.validation)"
                )
        return cls(
            customer=customer.astype(np.int64),
            customers=len(uniques),
            time=time.view(np.int64),
            amount=amount,
            purchase=amount >= 0,
            order_id=transactions.get("order_id"),
        )

    def orders(self) -> _Orders:
        """The orders: purchase rows grouped by (customer, order_id), or the purchase rows."""
        buy = self.purchase
        if self.order_id is None:
            return _Orders(self.customer[buy], self.time[buy], self.amount[buy])
        codes, uniques = pd.factorize(self.order_id)
        codes = codes[buy]
        loose = codes < 0  # a purchase row without an order id is an order of its own
        codes[loose] = len(uniques) + np.arange(np.count_nonzero(loose))
        span = len(uniques) + int(np.count_nonzero(loose))
        runs = _Runs.of(self.customer[buy] * span + codes)
        return _Orders(
            customer=runs.keys // span,
            time=runs.min(self.time[buy]),
            gross=runs.sum(self.amount[buy]),
        )


def _check_period(period: object) -> None:
    if not isinstance(period, str) or period not in PERIODS:
        raise RetainInputError(
            f"period must be one of {', '.join(map(repr, PERIODS))} "
            f"(month, quarter, year), not {period!r}"
        )


def _check_window(days: object) -> int:
    """The window in microseconds, after checking it is a positive whole number of days."""
    if not isinstance(days, numbers.Integral) or isinstance(days, bool) or days <= 0:
        raise RetainInputError(
            f"active_window_days must be a positive whole number of days, not {days!r}"
        )
    return int(days) * _MICROSECONDS_PER_DAY


def _to_utc(value: DateLike | None, name: str) -> pd.Timestamp | None:
    """A start/end argument as a UTC timestamp; naive values are read as UTC."""
    return None if value is None else to_utc(value, name)


def _day_floor(micros: int) -> int:
    """The start (00:00 UTC) of the day holding an instant, both in microseconds since the epoch:
    a window that starts on the data's first day covers it, whatever hour the first sale was."""
    return micros - micros % _MICROSECONDS_PER_DAY


def _micros(stamp: pd.Timestamp) -> int:
    """A UTC timestamp as microseconds since the epoch."""
    return int(np.datetime64(stamp.tz_localize(None), "us").view(np.int64))


# -- Grouping ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Runs:
    """Rows grouped by an integer key with one sort: the group-by behind every figure here.

    On tens of millions of rows with millions of distinct keys, one NumPy sort followed by
    reductions over the runs of equal keys (``ufunc.reduceat``) is several times faster than a
    hash group-by. ``keys`` are the distinct keys in ascending order; ``starts`` are the positions,
    in sorted order, where each key's run begins.
    """

    order: np.ndarray
    keys: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, keys: np.ndarray) -> _Runs:
        order = np.argsort(keys)
        ordered = keys[order]
        starts = np.flatnonzero(_run_starts(ordered))
        return cls(order=order, keys=ordered[starts], starts=starts)

    def size(self) -> np.ndarray:
        return np.diff(np.r_[self.starts, len(self.order)])

    def min(self, values: np.ndarray) -> np.ndarray:
        return self._reduce(np.minimum, values)

    def max(self, values: np.ndarray) -> np.ndarray:
        return self._reduce(np.maximum, values)

    def sum(self, values: np.ndarray) -> np.ndarray:
        return self._reduce(np.add, values)

    def _reduce(self, ufunc: np.ufunc, values: np.ndarray) -> np.ndarray:
        if len(self.starts) == 0:
            return values[:0]
        return ufunc.reduceat(values[self.order], self.starts)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal values (a sorted array has one run a value)."""
    mask = np.ones(len(values), dtype=bool)
    mask[1:] = values[1:] != values[:-1]
    return mask


# -- Periods -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """Consecutive calendar periods and their boundaries (microseconds since the epoch, UTC).

    ``bounds`` has one entry more than ``periods``: bounds[k] is the start of period k and
    bounds[k + 1] its (exclusive) end.
    """

    periods: pd.PeriodIndex
    bounds: np.ndarray

    @classmethod
    def spanning(cls, first: int, last: int, period: str) -> _Grid:
        """Every period from the one containing ``first`` to the one containing ``last``."""
        first_period = pd.Period(pd.Timestamp(first, unit="us"), freq=period)
        last_period = pd.Period(pd.Timestamp(last, unit="us"), freq=period)
        edges = pd.period_range(first_period, last_period + 1, freq=period)
        bounds = edges.start_time.to_numpy(dtype="datetime64[us]").view(np.int64)
        return cls(periods=edges[:-1], bounds=bounds)

    @property
    def size(self) -> int:
        return len(self.periods)

    def locate(self, time: np.ndarray) -> np.ndarray:
        """Index of the period that holds each time (all times must lie inside the grid)."""
        return np.searchsorted(self.bounds, time, side="right") - 1

    def timestamps(self) -> pd.Series:
        """The boundaries as UTC timestamps of the contract's dtype."""
        naive = pd.Series(self.bounds.view("datetime64[us]"))
        return naive.dt.tz_localize("UTC").astype(TIMESTAMP_DTYPE)


@dataclass(frozen=True)
class _CustomerPeriods:
    """One entry per (customer, period with an order), sorted by customer then period.

    ``orders``/``gross`` are the customer's orders and their gross value in that period;
    ``cumulative`` counts the customer's orders up to the end of that period; ``cohort`` is the
    period of the customer's first order (the acquisition period) and ``first`` marks the entry
    of that period.
    """

    customer: np.ndarray
    period: np.ndarray
    orders: np.ndarray
    gross: np.ndarray
    cumulative: np.ndarray
    cohort: np.ndarray
    first: np.ndarray

    @classmethod
    def of(cls, orders: _Orders, grid: _Grid) -> _CustomerPeriods:
        runs = _Runs.of(orders.customer * grid.size + grid.locate(orders.time))
        customer, period = np.divmod(runs.keys, grid.size)
        counts = runs.size()
        first = _run_starts(customer)
        starts = np.flatnonzero(first)
        lengths = np.diff(np.r_[starts, len(customer)])
        # Per-customer running totals without a group-by: the overall running sum minus its value
        # just before the customer's first entry.
        running = np.cumsum(counts)
        return cls(
            customer=customer,
            period=period,
            orders=counts,
            gross=runs.sum(orders.gross),
            cumulative=running - np.repeat((running - counts)[starts], lengths),
            cohort=np.repeat(period[starts], lengths),
            first=first,
        )


# -- Activity ----------------------------------------------------------------------------------


def _activity(
    customer: np.ndarray, period: np.ndarray, time: np.ndarray, grid: _Grid, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Customers active at each boundary, and customers whose activity stops at each boundary.

    Takes the purchase rows (customer code, period index, time). A purchase at time p makes its
    customer active at every boundary b with b - W <= p < b, i.e. at the boundaries in (p, p + W]:
    a run of boundary indices [lo, hi). Within one period only the customer's last purchase
    matters (its run contains the runs of the earlier ones), so purchases are first reduced to one
    per customer and period. A customer's runs, in period order, are then merged where they touch
    or overlap; each merged run adds one to the active count of every boundary it covers, and its
    end is the boundary where the customer stops being active (churns). Both arrays have one entry
    per boundary (``grid.size + 1``).
    """
    boundaries = grid.size + 1
    # A window longer than the grid acts like one just longer than the grid; capping it keeps
    # p + W far from int64 overflow whatever the argument.
    window = min(window, int(grid.bounds[-1] - grid.bounds[0]) + 1)
    runs = _Runs.of(customer * grid.size + period)
    who, last_period = np.divmod(runs.keys, grid.size)
    lo = last_period + 1
    hi = np.searchsorted(grid.bounds, runs.max(time) + window, side="right")
    reaching = hi > lo  # with a window shorter than a period, a purchase may reach no boundary
    who, lo, hi = who[reaching], lo[reaching], hi[reaching]

    # hi never decreases within a customer (later periods have later last purchases), so a run
    # opens a new merged run exactly when it starts after the previous run's end.
    opens = _run_starts(who)
    opens[1:] |= lo[1:] > hi[:-1]
    closes = np.ones(len(opens), dtype=bool)
    closes[:-1] = opens[1:]
    starts = np.bincount(lo[opens], minlength=boundaries + 1)
    stops = np.bincount(hi[closes], minlength=boundaries + 1)
    active = np.cumsum(starts - stops)[:boundaries]
    return active, stops[:boundaries]


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise numerator / denominator as floats, NaN where the denominator is 0."""
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, np.nan, np.asarray(numerator, dtype=np.float64) / safe)


def _scalar_ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else float("nan")
