"""Lifecycle segments: what marketing should do about a customer, from their predictions.

Two segment schemes exist, with names that cannot be mistaken for each other:

- the **RFM segment** (``segment``; :mod:`retain.features.segments`): where a customer stands on
  past recency, frequency and spend, capitalised names from the usual RFM grid (Champions, Loyal,
  At risk, ...);
- the **lifecycle segment** (``lifecycle_segment``, this module): what the models predict for
  them, lower-case names of their own (none is an RFM name, nor the registry's ``champion``
  alias).

The recommended action (:mod:`retain.actions.recommend`) reads neither: it is a function of the
customer state defined there, because it must be computed per customer by the HTTP service,
while these segments compare a customer with the rest of the scored base (high value is a quantile).

First match wins (thresholds from :class:`~retain.actions.settings.SegmentRules`, defaults in
brackets):

1. ``newcomer``: one purchase day so far (``frequency == 0``) made fewer than ``new_max_days`` (90)
   days ago: welcome them and ask for a second order; their churn risk is no verdict yet.
2. ``lapsed``: BG/NBD P(alive) under ``lapsed_p_alive`` (0.1), or no purchase for more than
   ``lapsed_days`` (365) days: probably gone; a cheap win-back at most.
3. ``high value, slipping``: high value and churn probability at least ``at_risk_churn`` (0.5):
   the customers worth personal attention now.
4. ``overdue``: a repeat customer later than their own usual gap between purchases (the rule of
   :mod:`retain.actions.outreach`, with :class:`~retain.actions.settings.OutreachSettings`): a
   timely reminder.
5. ``high value, secure``: high value and churn probability below ``champion_max_churn`` (0.3):
   reward, do not discount.
6. ``one-off``: one purchase day so far, made ``new_max_days`` or more ago (and not lapsed): no
   habit formed; their churn risk is high by nature, which is why they are not ``steady``.
7. ``steady``: everyone else: repeat customers within their rhythm; the regular programme.

High value means predicted CLV (``clv``) above the ``high_value_quantile`` (0.8) quantile of the
scored table (strictly: when many customers share the quantile's value, zero say, none of them is
high value), or at or above ``high_value_clv`` when that amount is set. The quantile is of the
table given, so segment the whole base at once, not a part of it.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from retain.actions._checks import numbers, require
from retain.actions.outreach import overdue
from retain.actions.settings import ActionSettings, SegmentRules

__all__ = [
    "LIFECYCLE_SEGMENTS",
    "high_value",
    "high_value_threshold",
    "lifecycle_segments",
    "segment_summary",
]

LIFECYCLE_SEGMENTS: Final = (
    "newcomer",
    "lapsed",
    "high value, slipping",
    "overdue",
    "high value, secure",
    "one-off",
    "steady",
)
_NEEDED: Final = (
    "churn_probability",
    "p_alive",
    "clv",
    "frequency",
    "T",
    "days_since_last_purchase",
)


def high_value_threshold(clv: pd.Series | np.ndarray, rules: SegmentRules | None = None) -> float:
    """The CLV that high value customers are above (the quantile of ``clv``; infinite for an
    empty table), or at or above (the amount, when set)."""
    rules = rules or SegmentRules()
    if rules.high_value_clv is not None:
        return float(rules.high_value_clv)
    values = np.asarray(clv, dtype="float64")
    return float(np.quantile(values, rules.high_value_quantile)) if values.size else np.inf


def high_value(clv: np.ndarray, rules: SegmentRules | None = None) -> np.ndarray:
    """Whether each CLV is high value (see :func:`high_value_threshold`)."""
    rules = rules or SegmentRules()
    threshold = high_value_threshold(clv, rules)
    return clv >= threshold if rules.high_value_clv is not None else clv > threshold


def lifecycle_segments(scores: pd.DataFrame, settings: ActionSettings | None = None) -> pd.Series:
    """The lifecycle segment of each row of a scores table (same index), a categorical of
    ``LIFECYCLE_SEGMENTS`` named ``lifecycle_segment``."""
    settings = settings or ActionSettings()
    rules = settings.segments
    require(scores, _NEEDED)
    churn = numbers(scores, "churn_probability")
    clv = numbers(scores, "clv")
    high = high_value(clv, rules)
    late, _ = overdue(scores, settings.outreach)
    one_time = numbers(scores, "frequency") == 0
    conditions = [
        one_time & (numbers(scores, "T") < rules.new_max_days),
        (numbers(scores, "p_alive") < rules.lapsed_p_alive)
        | (numbers(scores, "days_since_last_purchase") > rules.lapsed_days),
        high & (churn >= rules.at_risk_churn),
        late,
        high & (churn < rules.champion_max_churn),
        one_time,
    ]
    codes = np.select(conditions, list(range(len(conditions))), default=len(conditions))
    return pd.Series(
        pd.Categorical.from_codes(codes.astype(np.int64), categories=pd.Index(LIFECYCLE_SEGMENTS)),
        index=scores.index,
        name="lifecycle_segment",
    )


def segment_summary(plan: pd.DataFrame, by: str = "lifecycle_segment") -> pd.DataFrame:
    """Size and value of each segment of a planned table (:func:`~retain.actions.plan_actions`,
    or scores with a ``lifecycle_segment`` column): one row per segment, every category of a
    categorical ``by`` column (lifecycle segments, loyalty tiers) in order, even when empty.

    Columns: ``customers``, ``share`` (of all rows), ``clv_total``, ``clv_mean``,
    ``churn_probability_mean`` and ``value_at_risk`` (sum of churn probability x CLV).
    """
    require(plan, (by, "clv", "churn_probability"))
    churn = numbers(plan, "churn_probability")
    clv = numbers(plan, "clv")
    frame = pd.DataFrame(
        {"group": plan[by].to_numpy(), "clv": clv, "churn": churn, "risk": churn * clv}
    )
    if isinstance(plan[by].dtype, pd.CategoricalDtype):
        frame["group"] = frame["group"].astype(plan[by].dtype)
    grouped = frame.groupby("group", observed=False, sort=True)
    summary = pd.DataFrame(
        {
            "customers": grouped.size().astype("int64"),
            "share": grouped.size() / max(len(frame), 1),
            "clv_total": grouped["clv"].sum(),
            "clv_mean": grouped["clv"].mean(),
            "churn_probability_mean": grouped["churn"].mean(),
            "value_at_risk": grouped["risk"].sum(),
        }
    )
    summary.index.name = by
    return summary
