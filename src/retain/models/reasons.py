"""Each customer's top churn reasons, in words a marketer reads, from LightGBM's contributions.

The churn model's per-feature contributions (``pred_contrib``: additive on the log-odds) say which
features push this customer's risk up. A contribution alone makes no reason: trees split on
interactions, so a large recent spend can carry a positive contribution ("spent 3,850.90 in the
last 30 days" as a churn reason), and some features mean nothing to a marketer ("usually orders
around 14:48 UTC"). So only the features of a fixed vocabulary can be reasons, each with the
direction in which it raises churn risk and where its risky side starts. A feature is a reason
for a customer only when

1. its contribution raises the customer's churn risk (is positive), and
2. the customer's own value is on the risky side (a recent order never is a churn reason), and
3. the value is known (NaN: no reason).

Features that say the same thing (recency, the overdue ratio, no order in the last 90 days) share
a topic, said once, in the words of the strongest. A customer with no such feature gets no reason:
none is better than a nonsense one.

========================================  ==========  =========================================
feature(s)                                raises risk risky side
========================================  ==========  =========================================
days_since_last_purchase, overdue_ratio,  higher      at least 30 days since the last order, and
orders_30d / _90d / _180d (recency)                   past the usual gap (overdue ratio above 1)
                                                      when there is one; the counts: 0 orders
frequency (repeat purchase days)          lower       at most 1
orders_total                              lower       at most 2
orders_365d                               lower       at most 1
ipt_median, ipt_mean (gap between orders) higher      at least 60 days
spend_trend (last 90 days vs the 90       lower       at most -1/3 (half the spend or less)
before)
refund_share                              higher      at least 10%
btyd_p_alive                              lower       below 50%
orders_ly_next_30d / _90d (last year)     lower       0 orders
days_since_last_session                   higher      at least 30 days
sessions_30d / _90d                       lower       0
email_opens_30d / _90d                    lower       0
email_click_rate_90d                      lower       below 5%
cart_abandons_30d / _90d                  higher      at least 1
support_tickets_30d / _90d                higher      at least 1
========================================  ==========  =========================================

The thresholds are round numbers chosen so that the words are true on their own ("no order for
45 days, 2.1 times their usual gap of 21 days"); they decide whether a sentence is said, never
the churn probability.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

__all__ = ["VOCABULARY", "Term", "churn_reasons", "describe", "speakable"]


class _Columns(dict[str, np.ndarray]):
    """A table's columns as arrays, each taken from the table when first asked for: one customer's
    reasons read a handful of a table's seventy columns."""

    def __init__(self, table: pd.DataFrame) -> None:
        super().__init__()
        self._table = table

    def __missing__(self, name: str) -> np.ndarray:
        column = self._table[name].to_numpy()
        self[name] = column
        return column

    def get(self, name: str, default: Any = None) -> Any:
        if name in self:
            return dict.__getitem__(self, name)
        return self[name] if name in self._table.columns else default


class _Row:
    """One customer's values, read straight from column arrays (``iloc`` per row is far slower)."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: _Columns, i: int) -> None:
        self._columns = columns
        self._i = i

    def __getitem__(self, name: str) -> Any:
        return self._columns[name][self._i]

    def get(self, name: str, default: Any = None) -> Any:
        column = self._columns.get(name)
        return default if column is None else column[self._i]


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _count(value: float, unit: str) -> str:
    """``1 day``, ``2 days``, ``1,234 orders``: a count with its unit, plural unless one."""
    return f"{_num(value)} {unit}{'' if round(value) == 1 else 's'}"


def _known(row: Any, name: str) -> bool:
    value = row.get(name, np.nan)
    return value is not None and not _missing(value)


@dataclass(frozen=True)
class Term:
    """One feature of the vocabulary: what it says, which way it raises churn risk, and whether a
    customer's value is on that side."""

    topic: str
    """Features of one topic say the same thing; a customer hears it once."""
    raises_risk: Literal["higher", "lower"]
    """The direction of the feature that raises churn risk."""
    risky: Callable[[Any], bool]
    """Whether this customer's value is on the risky side (a row of the feature table)."""
    words: Callable[[Any], str]
    """The reason in words, quoting the customer's own values."""


MIN_QUIET_DAYS: Final = 30.0


def _overdue(row: _Row) -> bool:
    """Long enough without an order, and past the usual gap when the customer has one."""
    if row["days_since_last_purchase"] < MIN_QUIET_DAYS:
        return False
    ratio = row.get("overdue_ratio", np.nan)
    return not _known(row, "overdue_ratio") or ratio > 1


def _recency(row: _Row) -> str:
    days = row["days_since_last_purchase"]
    if _known(row, "overdue_ratio") and _known(row, "ipt_median"):
        return (
            f"no order for {_count(days, 'day')}, {row['overdue_ratio']:.1f} times their usual gap "
            f"of {_count(row['ipt_median'], 'day')}"
        )
    return f"no order for {_count(days, 'day')}"


def _trend(row: _Row) -> str:
    trend = row["spend_trend"]  # (recent - prior) / (recent + prior)
    less = 1 - (1 + trend) / (1 - trend) if trend > -1 else 1.0
    if less >= 1:
        return "spent nothing in the last 90 days, after spending in the 90 before"
    return f"spent {less:.0%} less in the last 90 days than in the 90 before"


def _at_most(name: str, limit: float) -> Callable[[Any], bool]:
    return lambda r: bool(r[name] <= limit)


def _at_least(name: str, limit: float) -> Callable[[Any], bool]:
    return lambda r: bool(r[name] >= limit)


def _below(name: str, limit: float) -> Callable[[Any], bool]:
    return lambda r: bool(r[name] < limit)


def _frequency(row: _Row) -> str:
    days = row["frequency"] + 1
    return (
        "a single purchase day so far"
        if days <= 1
        else f"only {_count(days, 'purchase day')} so far"
    )


VOCABULARY: dict[str, Term] = {
    "days_since_last_purchase": Term("recency", "higher", _overdue, _recency),
    "overdue_ratio": Term(
        "recency", "higher", lambda r: bool(r["overdue_ratio"] > 1) and _overdue(r), _recency
    ),
    "frequency": Term("frequency", "lower", _at_most("frequency", 1), _frequency),
    "orders_total": Term(
        "frequency",
        "lower",
        _at_most("orders_total", 2),
        lambda r: f"only {_count(r['orders_total'], 'order')} so far",
    ),
    "orders_365d": Term(
        "orders_365d",
        "lower",
        _at_most("orders_365d", 1),
        lambda r: (
            "no order in the last 365 days"
            if r["orders_365d"] == 0
            else f"only {_count(r['orders_365d'], 'order')} in the last 365 days"
        ),
    ),
    "ipt_median": Term(
        "gap",
        "higher",
        _at_least("ipt_median", 60),
        lambda r: f"usually orders only every {_count(r['ipt_median'], 'day')}",
    ),
    "ipt_mean": Term(
        "gap",
        "higher",
        _at_least("ipt_mean", 60),
        lambda r: f"orders only every {_count(r['ipt_mean'], 'day')} on average",
    ),
    "spend_trend": Term("trend", "lower", _at_most("spend_trend", -1 / 3), _trend),
    "refund_share": Term(
        "refunds",
        "higher",
        _at_least("refund_share", 0.1),
        lambda r: f"{r['refund_share']:.0%} of their spend refunded",
    ),
    "btyd_p_alive": Term(
        "alive",
        "lower",
        _below("btyd_p_alive", 0.5),
        lambda r: (
            f"their order pattern gives a {r['btyd_p_alive']:.0%} chance they are still a "
            "customer (BG/NBD)"
        ),
    ),
    "days_since_last_session": Term(
        "visits",
        "higher",
        _at_least("days_since_last_session", 30),
        lambda r: f"last visit {_count(r['days_since_last_session'], 'day')} ago",
    ),
    "email_click_rate_90d": Term(
        "email",
        "lower",
        _below("email_click_rate_90d", 0.05),
        lambda r: (
            f"clicked {r['email_click_rate_90d']:.0%} of the e-mails they opened in the last "
            "90 days"
        ),
    ),
}


def _none_and_overdue(name: str) -> Callable[[Any], bool]:
    return lambda r: bool(r[name] == 0) and _overdue(r)


def _fixed(text: str) -> Callable[[Any], str]:
    return lambda r: text


def _counted(name: str, unit: str, days: str) -> Callable[[Any], str]:
    return lambda r: f"{_count(r[name], unit)} in the last {days} days"


for _days in ("30", "90", "180"):
    VOCABULARY[f"orders_{_days}d"] = Term(
        "recency", "lower", _none_and_overdue(f"orders_{_days}d"), _recency
    )
for _days in ("30", "90"):
    VOCABULARY[f"orders_ly_next_{_days}d"] = Term(
        "season",
        "lower",
        _at_most(f"orders_ly_next_{_days}d", 0),
        _fixed(f"no order in the same {_days} days a year ago"),
    )
    VOCABULARY[f"sessions_{_days}d"] = Term(
        "visits",
        "lower",
        _at_most(f"sessions_{_days}d", 0),
        _fixed(f"no visit in the last {_days} days"),
    )
    VOCABULARY[f"email_opens_{_days}d"] = Term(
        "email",
        "lower",
        _at_most(f"email_opens_{_days}d", 0),
        _fixed(f"opened no e-mail in the last {_days} days"),
    )
    VOCABULARY[f"cart_abandons_{_days}d"] = Term(
        "carts",
        "higher",
        _at_least(f"cart_abandons_{_days}d", 1),
        _counted(f"cart_abandons_{_days}d", "abandoned cart", _days),
    )
    VOCABULARY[f"support_tickets_{_days}d"] = Term(
        "support",
        "higher",
        _at_least(f"support_tickets_{_days}d", 1),
        _counted(f"support_tickets_{_days}d", "support ticket", _days),
    )


def speakable(feature: str, row: _Row | pd.Series) -> str | None:
    """One feature of one customer as a churn reason in words, or None when it is none: not in
    the vocabulary, value unknown, or the value on the safe side."""
    term = VOCABULARY.get(feature)
    if term is None or not _known(row, feature):
        return None
    try:
        return term.words(row) if term.risky(row) else None
    except (KeyError, TypeError, ValueError):  # a column the words need is missing
        return None


def describe(feature: str, row: _Row | pd.Series) -> str:
    """One feature of one customer in words when it is a churn reason (:func:`speakable`), else a
    plain ``name = value``."""
    value = row.get(feature, np.nan)
    if value is None or pd.isna(value):
        return f"{feature.replace('_', ' ')} unknown"
    text = speakable(feature, row)
    return text if text is not None else f"{feature.replace('_', ' ')} = {value:,.3g}"


def churn_reasons(
    contributions: pd.DataFrame, table: pd.DataFrame, n_reasons: int = 3
) -> list[list[str]]:
    """For each customer, up to ``n_reasons`` reasons for their churn risk, strongest first: the
    vocabulary's features (:data:`VOCABULARY`) whose contribution raises the risk and whose value
    is on the risky side, one per topic. Possibly none."""
    names = [str(c) for c in contributions.columns.tolist()]
    matrix = contributions.to_numpy()
    keep = [j for j, name in enumerate(names) if name in VOCABULARY]  # the bias is no reason
    names, matrix = [names[j] for j in keep], matrix[:, keep]
    order = np.argsort(-matrix, axis=1)
    columns = _Columns(table)
    terms = [VOCABULARY[name] for name in names]
    present = [name in table.columns for name in names]

    reasons: list[list[str]] = []
    for i in range(len(table)):
        row = _Row(columns, i)
        said: list[str] = []
        topics: set[str] = set()
        for j in order[i]:
            if matrix[i, j] <= 0 or len(said) == n_reasons:
                break
            term = terms[j]
            if term.topic in topics or not present[j] or _missing(columns[names[j]][i]):
                continue
            try:
                if not term.risky(row):
                    continue
                text = term.words(row)
            except (KeyError, TypeError, ValueError):  # a column the words need is missing
                continue
            said.append(text)
            topics.add(term.topic)
        reasons.append(said)
    return reasons


def _missing(value: Any) -> bool:
    """``pd.isna`` for one value, without its overhead on plain floats."""
    if isinstance(value, float):
        return value != value
    return value is None or bool(pd.isna(value))
