"""Each customer's top reasons, in words a marketer reads, from LightGBM's own contributions.

The churn model's per-feature contributions (``pred_contrib``: additive on the log-odds) say which
features push this customer's risk up. The largest positive ones become sentences that quote the
customer's own values: "no order for 143 days, 3.1x their usual gap".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["churn_reasons", "describe"]


class _Row:
    """One customer's values, read straight from column arrays (``iloc`` per row is far slower)."""

    __slots__ = ("_columns", "_i")

    def __init__(self, columns: dict[str, np.ndarray], i: int) -> None:
        self._columns = columns
        self._i = i

    def __getitem__(self, name: str) -> Any:
        return self._columns[name][self._i]

    def get(self, name: str, default: Any = None) -> Any:
        column = self._columns.get(name)
        return default if column is None else column[self._i]


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _recency(row: _Row) -> str:
    days = row["days_since_last_purchase"]
    ratio = row.get("overdue_ratio", np.nan)
    if pd.notna(ratio) and ratio > 0:
        return f"no order for {_num(days)} days, {ratio:.1f}x their usual gap"
    return f"no order for {_num(days)} days"


def _window(kind: str, days: str) -> Callable[[_Row], str]:
    def text(row: _Row) -> str:
        value = row[f"{kind}_{days}d"]
        if kind == "orders":
            return f"{_num(value)} orders in the last {days} days"
        return f"spent {_num(value, 2)} in the last {days} days"

    return text


_TEMPLATES: dict[str, Callable[[Any], str]] = {
    "days_since_last_purchase": _recency,
    "overdue_ratio": _recency,
    "frequency": lambda r: (
        f"{_num(r['frequency'])} repeat purchase day{'' if r['frequency'] == 1 else 's'} so far"
    ),
    "recency": lambda r: f"last order {_num(r['recency'])} days after their first",
    "T": lambda r: f"customer for {_num(r['T'])} days",
    "monetary_value": lambda r: f"spends {_num(r['monetary_value'], 2)} per repeat purchase day",
    "spend_total": lambda r: f"{_num(r['spend_total'], 2)} spent in all",
    "orders_total": lambda r: f"{_num(r['orders_total'])} orders in all",
    "avg_order_value": lambda r: f"average order {_num(r['avg_order_value'], 2)}",
    "spend_trend": lambda r: (
        f"spending {'down' if r['spend_trend'] < 0 else 'up'} "
        f"({r['spend_trend']:+.0%} recent vs earlier)"
    ),
    "refund_share": lambda r: f"{r['refund_share']:.0%} of spend refunded",
    "ipt_median": lambda r: f"usually orders every {_num(r['ipt_median'])} days",
    "ipt_mean": lambda r: f"orders every {_num(r['ipt_mean'])} days on average",
    "btyd_p_alive": lambda r: f"probability still active {r['btyd_p_alive']:.0%} (BG/NBD)",
    "btyd_p_no_purchase": lambda r: (
        f"BG/NBD gives {r['btyd_p_no_purchase']:.0%} chance of no order in the horizon"
    ),
    "btyd_expected_purchases": lambda r: (
        f"BG/NBD expects {r['btyd_expected_purchases']:.1f} orders in the horizon"
    ),
    "n_products": lambda r: f"bought {_num(r['n_products'])} different products",
    "discount_share": lambda r: f"{r['discount_share']:.0%} of orders discounted",
    "days_since_last_session": lambda r: (
        f"last visit {_num(r['days_since_last_session'])} days ago"
    ),
}
for _days in ("30", "90", "180", "365"):
    _TEMPLATES[f"orders_{_days}d"] = _window("orders", _days)
    _TEMPLATES[f"spend_{_days}d"] = _window("spend", _days)


def describe(feature: str, row: _Row | pd.Series) -> str:
    """One feature of one customer in words (a plain ``name = value`` when there is no template)."""
    template = _TEMPLATES.get(feature)
    value = row.get(feature, np.nan)
    if pd.isna(value):
        return f"{feature.replace('_', ' ')} unknown"
    if template is not None:
        try:
            return template(row)
        except (KeyError, TypeError, ValueError):
            pass
    if feature.endswith(("_30d", "_90d")):
        kind, days = feature.rsplit("_", 1)
        return f"{_num(value)} {kind.replace('_', ' ')} in the last {days[:-1]} days"
    return f"{feature.replace('_', ' ')} = {value:,.3g}"


def churn_reasons(
    contributions: pd.DataFrame, table: pd.DataFrame, n_reasons: int = 3
) -> list[list[str]]:
    """For each customer, the ``n_reasons`` features that raise their churn risk most, in words.

    Features that describe the same thing (recency and the overdue ratio) are said once. A
    customer whose risk no feature raises gets the features that lower it most, marked so.
    """
    values = contributions.drop(columns=["bias"], errors="ignore")
    names = np.asarray(values.columns)
    matrix = values.to_numpy()
    order = np.argsort(-matrix, axis=1)[:, : n_reasons + 2]
    reasons: list[list[str]] = []
    columns = {c: table[c].to_numpy() for c in table.columns}
    for i in range(len(table)):
        row = _Row(columns, i)
        said: list[str] = []
        for j in order[i]:
            if matrix[i, j] <= 0 or len(said) == n_reasons:
                break
            text = describe(str(names[j]), row)
            if text not in said:
                said.append(text)
        if not said:
            for j in np.argsort(matrix[i])[: n_reasons + 2]:
                text = f"{describe(str(names[j]), row)} (lowers risk)"
                if text not in said and len(said) < n_reasons:
                    said.append(text)
        reasons.append(said)
    return reasons
