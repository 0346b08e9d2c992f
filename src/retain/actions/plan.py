"""The action plan of a scored base: every customer's lifecycle segment, loyalty tier, value at
risk, contact date and overdue status, beside their scores.

One call for the report and the command line; the rules are those of
:mod:`retain.actions.segments`, :mod:`retain.actions.tiers` and :mod:`retain.actions.outreach`,
with the thresholds of :class:`~retain.actions.settings.ActionSettings`. Quantile thresholds (high
value, tiers) are of the table given: plan the whole base at once.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

from retain.actions._checks import numbers
from retain.actions.outreach import outreach_schedule
from retain.actions.segments import lifecycle_segments
from retain.actions.settings import ActionSettings
from retain.actions.tiers import loyalty_tiers
from retain.data.dates import DateLike

__all__ = ["PLAN_COLUMNS", "plan_actions"]

PLAN_COLUMNS: Final = (
    "lifecycle_segment",
    "loyalty_tier",
    "value_at_risk",
    "contact_date",
    "overdue",
    "days_overdue",
)


def plan_actions(
    scores: pd.DataFrame, as_of: DateLike, settings: ActionSettings | None = None
) -> pd.DataFrame:
    """A copy of ``scores`` (``scores.parquet``: same rows, index and columns) with the columns
    ``PLAN_COLUMNS`` added (replaced if present):

    - ``lifecycle_segment``: categorical, see :mod:`retain.actions.segments`;
    - ``loyalty_tier``: ordered categorical, lowest first, see :mod:`retain.actions.tiers`;
    - ``value_at_risk``: churn probability x predicted CLV;
    - ``contact_date``: expected next purchase date minus the lead days, not before ``as_of``
      (naive ``datetime64`` days); NaT where no purchase is expected within the horizon;
    - ``overdue``, ``days_overdue``: later than the customer's usual gap between purchases, see
      :mod:`retain.actions.outreach`.
    """
    settings = settings or ActionSettings()
    segments = lifecycle_segments(scores, settings)  # checks every column it needs first
    schedule = outreach_schedule(scores, as_of, settings)
    plan = scores.copy()
    plan["lifecycle_segment"] = segments
    plan["loyalty_tier"] = loyalty_tiers(scores["clv"], settings)
    plan["value_at_risk"] = numbers(scores, "churn_probability") * numbers(scores, "clv")
    for column in ("contact_date", "overdue", "days_overdue"):
        plan[column] = schedule[column]
    return plan
