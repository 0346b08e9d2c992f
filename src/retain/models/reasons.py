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

__all__ = ["churn_reasons", "describe", "speakable"]


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


def _alive(row: _Row) -> str | None:
    # A high P(alive) is no reason to worry, whatever its contribution: say it only when low.
    p = row["btyd_p_alive"]
    return f"BG/NBD gives a {p:.0%} chance they are still active" if p < 0.5 else None


def _hour(row: _Row) -> str:
    hours = row["mean_purchase_hour"]
    return f"usually orders around {int(hours):02d}:{int(hours % 1 * 60):02d} UTC"


_TEMPLATES: dict[str, Callable[[Any], str | None]] = {
    "days_since_last_purchase": _recency,
    "overdue_ratio": _recency,
    "frequency": lambda r: (
        f"{_num(r['frequency'])} repeat purchase day{'' if r['frequency'] == 1 else 's'} so far"
    ),
    "recency": lambda r: f"last order {_num(r['recency'])} days after their first",
    "T": lambda r: f"customer for {_num(r['T'])} days",
    "monetary_value": lambda r: f"spends {_num(r['monetary_value'], 2)} per repeat purchase day",
    "spend_total": lambda r: f"{_num(r['spend_total'], 2)} spent in all",
    "gross_total": lambda r: f"{_num(r['gross_total'], 2)} bought in all",
    "refund_total": lambda r: f"{_num(r['refund_total'], 2)} refunded in all",
    "orders_total": lambda r: f"{_num(r['orders_total'])} orders in all",
    "avg_order_value": lambda r: f"average order {_num(r['avg_order_value'], 2)}",
    "spend_trend": lambda r: (
        f"spending {'down' if r['spend_trend'] < 0 else 'up'} "
        f"({r['spend_trend']:+.0%} recent vs earlier)"
    ),
    "refund_share": lambda r: f"{r['refund_share']:.0%} of spend refunded",
    "ipt_median": lambda r: f"usually orders every {_num(r['ipt_median'])} days",
    "ipt_mean": lambda r: f"orders every {_num(r['ipt_mean'])} days on average",
    "ipt_std": lambda r: f"irregular: gaps between orders vary by about {_num(r['ipt_std'])} days",
    "weekend_share": lambda r: f"{r['weekend_share']:.0%} of purchase days at weekends",
    "mean_purchase_hour": _hour,
    "btyd_p_alive": _alive,
    "btyd_p_no_purchase": lambda r: (
        f"BG/NBD gives {r['btyd_p_no_purchase']:.0%} chance of no order in the horizon"
    ),
    "btyd_p_no_purchase_30d": lambda r: (
        f"BG/NBD gives {r['btyd_p_no_purchase_30d']:.0%} chance of no order in the next 30 days"
    ),
    "btyd_expected_purchases": lambda r: (
        f"BG/NBD expects {r['btyd_expected_purchases']:.1f} orders in the horizon"
    ),
    "btyd_expected_spend": lambda r: (
        f"expected to spend {_num(r['btyd_expected_spend'], 2)} per order (Gamma-Gamma)"
    ),
    "btyd_clv": lambda r: f"expected value {_num(r['btyd_clv'], 2)} in the horizon (BG/NBD)",
    "n_products": lambda r: f"bought {_num(r['n_products'])} different products",
    "n_categories": lambda r: f"bought from {_num(r['n_categories'])} categories",
    "discount_share": lambda r: f"{r['discount_share']:.0%} of orders discounted",
    "days_since_last_session": lambda r: (
        f"last visit {_num(r['days_since_last_session'])} days ago"
    ),
    "email_click_rate_90d": lambda r: (
        f"clicked {r['email_click_rate_90d']:.0%} of emails opened in the last 90 days"
    ),
    "days_since_signup": lambda r: f"signed up {_num(r['days_since_signup'])} days ago",
    "orders_ly_next_30d": lambda r: (
        f"{_num(r['orders_ly_next_30d'])} orders in these coming 30 days' dates last year"
    ),
    "orders_ly_next_90d": lambda r: (
        f"{_num(r['orders_ly_next_90d'])} orders in these coming 90 days' dates last year"
    ),
}
for _days in ("30", "90", "180", "365"):
    _TEMPLATES[f"orders_{_days}d"] = _window("orders", _days)
    _TEMPLATES[f"spend_{_days}d"] = _window("spend", _days)
_EVENT_WORDS = {
    "session": "visits",
    "add_to_cart": "add-to-carts",
    "cart_abandon": "abandoned carts",
    "wishlist_add": "wishlist adds",
    "email_open": "emails opened",
    "email_click": "email clicks",
    "support_ticket": "support tickets",
}


def _event_count(feature: str) -> Callable[[_Row], str]:
    kind, days = feature.rsplit("s_", 1)
    return lambda r: f"{_num(r[feature])} {_EVENT_WORDS[kind]} in the last {days[:-1]} days"


for _kind in _EVENT_WORDS:
    for _days in ("30", "90", "180", "365"):
        _TEMPLATES[f"{_kind}s_{_days}d"] = _event_count(f"{_kind}s_{_days}d")


def speakable(feature: str, row: _Row | pd.Series) -> str | None:
    """One feature of one customer in words a marketer reads, or None when there are none: the
    value is unknown, the feature has no wording, or its wording does not apply to this value."""
    template = _TEMPLATES.get(feature)
    value = row.get(feature, np.nan)
    if template is None or value is None or pd.isna(value):
        return None
    try:
        return template(row)
    except (KeyError, TypeError, ValueError):
        return None


def describe(feature: str, row: _Row | pd.Series) -> str:
    """One feature of one customer in words (a plain ``name = value`` when there is no wording)."""
    value = row.get(feature, np.nan)
    if value is None or pd.isna(value):
        return f"{feature.replace('_', ' ')} unknown"
    text = speakable(feature, row)
    return text if text is not None else f"{feature.replace('_', ' ')} = {value:,.3g}"


def churn_reasons(
    contributions: pd.DataFrame, table: pd.DataFrame, n_reasons: int = 3
) -> list[list[str]]:
    """For each customer, the ``n_reasons`` features that raise their churn risk most, in words.

    Only features with words for this customer's value count (see :func:`speakable`): an unknown
    value or an identifier-like feature is no reason a marketer can act on. Features that
    describe the same thing (recency and the overdue ratio) are said once. A customer whose risk
    no feature raises gets the features that lower it most, marked so.
    """
    names = [str(c) for c in contributions.columns.tolist()]
    matrix = contributions.to_numpy()
    if "bias" in names:  # the baseline of every row, no reason
        keep = [j for j, name in enumerate(names) if name != "bias"]
        names, matrix = [names[j] for j in keep], matrix[:, keep]
    order = np.argsort(-matrix, axis=1)
    columns = _Columns(table)
    # Per contribution column: its wording; its values are read from the table when first needed.
    templates = [_TEMPLATES.get(name) for name in names]

    def say(j: int, row: _Row, i: int) -> str | None:
        template = templates[j]
        column = columns.get(names[j]) if template is not None else None
        if template is None or column is None or _missing(column[i]):
            return None
        try:
            return template(row)
        except (KeyError, TypeError, ValueError):
            return None

    reasons: list[list[str]] = []
    for i in range(len(table)):
        row = _Row(columns, i)
        said: list[str] = []
        for j in order[i]:
            if matrix[i, j] <= 0 or len(said) == n_reasons:
                break
            text = say(j, row, i)
            if text is not None and text not in said:
                said.append(text)
        if not said:
            for j in order[i][::-1]:
                if len(said) == n_reasons:
                    break
                text = say(j, row, i)
                if text is not None and f"{text} (lowers risk)" not in said:
                    said.append(f"{text} (lowers risk)")
        reasons.append(said)
    return reasons


def _missing(value: Any) -> bool:
    """``pd.isna`` for one value, without its overhead on plain floats."""
    if isinstance(value, float):
        return value != value
    return value is None or bool(pd.isna(value))
