"""The customer retention rate expected for the period under way, from the models' scores.

:func:`retention_kpis` says what the CRR was; :func:`forecast_crr` says what it is expected to be
at the end of the period that the scores look into. Definitions are those of
:mod:`retain.kpis.retention` (a purchase, active = a purchase in the ``active_window_days`` (W)
days before an instant, B, E, N, CRR = (E - N) / B x 100).

The forecast period
-------------------
Scores are made *as of* a day D: they know every purchase up to the end of D, the instant
``c = D + 1 day`` (00:00 UTC). The forecast period is the calendar period that contains ``c``: when
D is the last day of a period it is the next period, wholly in the future; otherwise it is the
period under way, whose purchases up to ``c`` are known.

Expected CRR
------------
E - N counts the customers active at the period end who were not new in the period. A customer
whose first purchase falls in the period is in both E and N and cancels out, so::

    E - N = sum, over the customers with a purchase before the period start ("existing"),
            of P(active at the period end)

- A customer whose last purchase before ``c`` lies within W of the period end ``e``
  (on or after ``e - W``) is active at ``e`` whatever happens next: P = 1.
- Any other existing customer is active at ``e`` exactly if they buy in ``[max(e - W, c), e)``, a
  window of h days: P = P(a purchase in h days), from their scores.
- B (the customers active at the period start) comes from the transactions, as in
  :func:`retention_kpis`; expected CRR = expected (E - N) / B x 100. The expected churn rate is
  the expected share of B not active at ``e``, as ``churn_rate``.

P(a purchase in h days) from the scores, under a **constant-hazard assumption**: the chance of no
purchase in t days is taken as ``(1 - p_ref) ** (t / ref)``, i.e. purchases arrive at a constant
rate, fitted to one of the models' probabilities:

- ``p_purchase_30d`` (P(a purchase in the 30 days after D)) when h <= 31 days (a month at most);
- ``1 - churn_probability`` (P(a purchase in the model's horizon H)) for longer windows,
  interpolated when h <= H and *extrapolated* (flagged in the result) beyond it.

So a monthly forecast made at a month end uses ``p_purchase_30d`` scaled to the month's length,
and a quarterly one with a 90-day model uses ``churn_probability``. The assumption ignores that
the hazard falls as a customer's silence grows: over windows shorter than the reference it
slightly under-states the chance of a purchase (the hazard is front-loaded), over longer ones it
over-states it.

Without transactions the forecast is still exact when ``c`` is a period start: every scored
customer existed before it, B is the scored customers with ``days_since_last_purchase < W`` and
"active for sure" is read off the same column. Mid-period it needs the transactions (who was
active at the period start cannot be told from the scores).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.dates import DateLike
from retain.errors import RetainInputError
from retain.kpis.retention import PERIODS, retention_kpis

__all__ = ["CRRForecast", "forecast_crr", "purchase_probability"]

MONTH_DAYS: Final = 31
"""Windows up to this many days take their probability from ``p_purchase_30d``."""
_REFERENCE_30D: Final = 30
_DAY: Final = pd.Timedelta(days=1)


@dataclass(frozen=True)
class CRRForecast:
    """The expected CRR of one period, how it was made, and the CRRs observed before it."""

    period: str
    period_start: pd.Timestamp
    period_end: pd.Timestamp
    as_of: str
    customers_start: int
    """B: customers active at the period start."""
    existing_customers: int
    """Customers with a purchase before the period start (the only ones E - N can count)."""
    active_for_sure: int
    """Existing customers whose last purchase keeps them active at the period end."""
    expected_retained: float
    """Expected E - N."""
    expected_crr: float
    """Expected (E - N) / B x 100; NaN when B = 0."""
    expected_churn_rate: float
    """Expected share (x 100) of B not active at the period end; NaN when B = 0."""
    days_predicted: int
    """h: days of the period end's window that lie after the scores' as_of."""
    probability_source: str
    """Which score gave P(a purchase in h days): "p_purchase_30d" or "churn_probability"."""
    extrapolated: bool
    """True when h exceeds the model's horizon (the constant hazard is extrapolated)."""
    customers_unscored: int = 0
    """Existing customers missing from the scores (counted as not retained unless for sure)."""
    observed: pd.DataFrame = field(default_factory=pd.DataFrame)
    """The last whole periods before this one (period, crr, churn_rate, window_covered, ...) from
    the transactions; empty without them."""
    active_window_days: int = 365
    """W: a customer is active at an instant with a purchase in the W days before it."""
    window_covered: bool | None = None
    """Whether the transactions reach back W days before the period start, as
    :func:`retention_kpis`' column: when they do not, the CRR is near 100 % by construction, not
    a measurement. None without transactions (unknown)."""

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain values (for JSON and the report), without ``observed``."""
        return {
            "period": self.period,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "as_of": self.as_of,
            "customers_start": self.customers_start,
            "existing_customers": self.existing_customers,
            "active_for_sure": self.active_for_sure,
            "expected_retained": self.expected_retained,
            "expected_crr": self.expected_crr,
            "expected_churn_rate": self.expected_churn_rate,
            "days_predicted": self.days_predicted,
            "probability_source": self.probability_source,
            "extrapolated": self.extrapolated,
            "customers_unscored": self.customers_unscored,
            "active_window_days": self.active_window_days,
            "window_covered": self.window_covered,
            "last_observed_crr": {
                str(p): float(v)
                for p, v in zip(
                    self.observed.get("period", []), self.observed.get("crr", []), strict=True
                )
            },
        }


def purchase_probability(
    scores: pd.DataFrame, days: int, horizon_days: int
) -> tuple[np.ndarray, str, bool]:
    """P(a purchase in the next ``days`` days) per row of ``scores``, by constant hazard.

    Returns the probabilities, the score they come from and whether ``days`` lies beyond the
    model's horizon (see the module doc).
    """
    if days <= 0:
        return np.zeros(len(scores)), "none", False
    if days <= MONTH_DAYS:
        source, reference = "p_purchase_30d", _REFERENCE_30D
        p_ref = _column(scores, source)
    else:
        source, reference = "churn_probability", horizon_days
        p_ref = 1.0 - _column(scores, source)
    p_ref = np.clip(p_ref, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        p = 1.0 - np.power(1.0 - p_ref, days / reference)
    return p, source, source == "churn_probability" and days > horizon_days


def forecast_crr(
    scores: pd.DataFrame,
    as_of: DateLike,
    *,
    horizon_days: int,
    transactions: pd.DataFrame | None = None,
    period: str = "M",
    active_window_days: int = 365,
    observed_periods: int = 6,
    kpis: pd.DataFrame | None = None,
) -> CRRForecast:
    """The expected CRR of the period that contains the end of ``as_of`` (see the module doc).

    ``scores`` has one row per customer with ``customer_id``, ``p_purchase_30d``,
    ``churn_probability`` and, without transactions, ``days_since_last_purchase`` (as
    ``scores.parquet`` has). ``transactions`` is a validated frame; rows after ``as_of`` are
    ignored. ``observed_periods`` whole periods before the forecast one are returned beside it,
    from ``kpis`` when the caller already has :func:`retention_kpis` of these transactions with
    the same period and window (else computed here).
    """
    from retain.data.dates import utc_day

    if not isinstance(period, str) or period not in PERIODS:
        raise RetainInputError(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
    window_days = _positive_days(active_window_days, "active_window_days")
    horizon = _positive_days(horizon_days, "horizon_days")
    if "customer_id" not in scores:
        raise RetainInputError("scores: missing column customer_id")
    day = utc_day(as_of, "as_of")
    cutoff = (day + _DAY).tz_localize("UTC")
    current = pd.Period(cutoff.tz_localize(None), freq=period)
    start = current.start_time.tz_localize("UTC")
    end = (current + 1).start_time.tz_localize("UTC")
    window = pd.Timedelta(days=window_days)
    days = int((end - max(end - window, cutoff)) / _DAY)

    covered = None
    if transactions is not None:
        counts = _from_transactions(transactions, scores, cutoff, start, end, window)
        observed = _observed(transactions, cutoff, period, window_days, observed_periods, kpis)
        first_day = pd.to_datetime(transactions["timestamp"], utc=True).min().normalize()
        covered = bool(start - window >= first_day)
    elif cutoff == start:
        counts = _from_scores(scores, start, end, window)
        observed = pd.DataFrame()
    else:
        raise RetainInputError(
            f"forecast: as_of {day:%Y-%m-%d} is not the last day of a period ({current}), so "
            "who was active at the period start is not in the scores: give the transactions"
        )

    probability, source, extrapolated = purchase_probability(counts.uncertain, days, horizon)
    p_existing = np.where(counts.uncertain_existing, probability, 0.0)
    p_in_b = np.where(counts.uncertain_in_b, probability, 0.0)
    expected = counts.certain + float(p_existing.sum())
    b = counts.customers_start
    expected_active_in_b = counts.certain_in_b + float(p_in_b.sum())
    return CRRForecast(
        period=str(current),
        period_start=start,
        period_end=end,
        as_of=f"{day:%Y-%m-%d}",
        customers_start=b,
        existing_customers=counts.existing,
        active_for_sure=counts.certain,
        expected_retained=expected,
        expected_crr=expected / b * 100 if b else math.nan,
        expected_churn_rate=(b - expected_active_in_b) / b * 100 if b else math.nan,
        days_predicted=days,
        probability_source=source,
        extrapolated=extrapolated,
        customers_unscored=counts.unscored,
        observed=observed,
        active_window_days=window_days,
        window_covered=covered,
    )


# -- counting ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Counts:
    """Who counts in the forecast: B, the existing customers, those active for sure, and the
    scores of the others (``uncertain``: one row per scored customer, with two masks saying
    whether the row is an existing customer not active for sure, and whether it is also in B)."""

    customers_start: int
    existing: int
    certain: int
    certain_in_b: int
    unscored: int
    uncertain: pd.DataFrame
    uncertain_existing: np.ndarray
    uncertain_in_b: np.ndarray


def _from_transactions(
    transactions: pd.DataFrame,
    scores: pd.DataFrame,
    cutoff: pd.Timestamp,
    start: pd.Timestamp,
    end: pd.Timestamp,
    window: pd.Timedelta,
) -> _Counts:
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in transactions]
    if missing:
        raise RetainInputError(f"transactions: missing column(s) {', '.join(missing)}")
    timestamps = pd.to_datetime(transactions["timestamp"], utc=True)
    amount = pd.to_numeric(transactions["amount"], errors="coerce")
    purchase = ((amount >= 0) & (timestamps < cutoff)).to_numpy()
    time = timestamps[purchase].reset_index(drop=True)
    bought = pd.DataFrame(
        {
            "customer_id": transactions["customer_id"].astype("str").to_numpy()[purchase],
            "time": time,
            "at_start": (time >= start - window) & (time < start),
        }
    )
    per_customer = bought.groupby("customer_id", sort=False).agg(
        first=("time", "min"), last=("time", "max"), at_start=("at_start", "any")
    )
    existing = per_customer["first"] < start
    certain = existing & (per_customer["last"] >= end - window)
    in_b = per_customer["at_start"]
    ids = scores["customer_id"].astype("str")
    existing_ids = per_customer.index[existing]
    unscored = int((~_member(existing_ids, ids)).sum())
    uncertain_ids = per_customer.index[existing & ~certain]
    b_ids = per_customer.index[existing & ~certain & in_b]
    return _Counts(
        customers_start=int(in_b.sum()),
        existing=int(existing.sum()),
        certain=int(certain.sum()),
        certain_in_b=int((certain & in_b).sum()),
        unscored=unscored,
        uncertain=scores,
        uncertain_existing=_member(ids, uncertain_ids),
        uncertain_in_b=_member(ids, b_ids),
    )


def _from_scores(
    scores: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, window: pd.Timedelta
) -> _Counts:
    """The counts when the scores' cutoff is the period start: ``days_since_last_purchase`` is
    days from the last purchase day L to D = start - 1 day; the purchase lies in [L, L + 1 day)."""
    since = _column(scores, "days_since_last_purchase")
    last_day = start - _DAY - pd.to_timedelta(since, unit="D")
    in_b = np.asarray(last_day >= start - window)  # a purchase in [start - W, start)
    certain = np.asarray(last_day >= end - window)  # a purchase on a day at or after e - W
    return _Counts(
        customers_start=int(in_b.sum()),
        existing=len(scores),
        certain=int(certain.sum()),
        certain_in_b=int((certain & in_b).sum()),
        unscored=0,
        uncertain=scores,
        uncertain_existing=~certain,
        uncertain_in_b=~certain & in_b,
    )


def _observed(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    period: str,
    window_days: int,
    last: int,
    kpis: pd.DataFrame | None,
) -> pd.DataFrame:
    """The last whole periods before the cutoff, as :func:`retention_kpis` reports them."""
    if last <= 0:
        return pd.DataFrame()
    if kpis is None:
        timestamps = pd.to_datetime(transactions["timestamp"], utc=True)
        known = transactions.loc[(timestamps < cutoff).to_numpy()]
        if known.empty:
            return pd.DataFrame()
        kpis = retention_kpis(known, period=period, active_window_days=window_days)
    whole = kpis.loc[kpis["period_end"] <= cutoff]
    return whole.tail(last).reset_index(drop=True)


def _member(values: pd.Series | pd.Index, of: pd.Series | pd.Index) -> np.ndarray:
    """``values.isin(of)`` for text ids, by Arrow's hash lookup (pandas' own ``isin`` on Arrow
    strings loops in Python: 16 s for 1.6 million customers against 0.2 s)."""
    found = pc.is_in(pa.array(values, type=pa.string()), value_set=pa.array(of, type=pa.string()))
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _column(scores: pd.DataFrame, name: str) -> np.ndarray:
    if name not in scores:
        raise RetainInputError(f"scores: missing column {name}")
    values = pd.to_numeric(scores[name], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(values).any():
        raise RetainInputError(
            f"scores: column {name} has {int(np.isnan(values).sum()):,} missing values"
        )
    return values


def _positive_days(value: object, name: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise RetainInputError(f"{name} must be a positive whole number of days, not {value!r}")
    return int(value)
