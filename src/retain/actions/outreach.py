"""When to contact each customer, and who is overdue.

Contact date
    The expected next purchase date (``expected_next_purchase_date``, from the timing model) minus
    ``lead_days`` (default 3): the reminder arrives while the customer is deciding. A date before
    the as-of day becomes the as-of day (nobody is contacted in the past). A customer with no
    expected date (null: the timing model expects no purchase within the horizon, see
    :meth:`~retain.models.timing.TimingModel.predict_days`) gets no contact date and stays out
    of the reminder calendar: a reminder presumes a purchase on its way; such a customer is
    lapsing, which is the retargeting audience's business, not a reminder's.

Overdue
    Judged against the customer's own rhythm, not the model's date (which is never before the
    as-of day, so never "passed"). A repeat customer's usual gap is the mean time between their
    purchase days, ``(T - days_since_last_purchase) / frequency`` (first to last purchase day over
    the repeat purchase days, the feature table's ``ipt_mean``). They are overdue when
    ``days_since_last_purchase > gap_factor * usual gap + grace_days`` (defaults 1 and 7 days);
    ``days_overdue`` is how far past their usual gap they are, ``days_since_last_purchase -
    gap_factor * usual gap`` (0 when not overdue). One-time buyers (``frequency == 0``) have no
    rhythm yet: never overdue.

    ``T / frequency`` would not do as the usual gap: it counts the open interval since the last
    purchase too, so a customer with two purchase days could never be overdue.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from retain.actions._checks import as_of_day, days, numbers, require
from retain.actions.settings import ActionSettings, OutreachSettings
from retain.data.dates import DateLike

__all__ = ["OUTREACH_COLUMNS", "outreach_schedule", "overdue", "usual_gap"]

OUTREACH_COLUMNS: Final = (
    "customer_id",
    "expected_next_purchase_date",
    "contact_date",
    "usual_gap_days",
    "overdue",
    "days_overdue",
)
_RHYTHM: Final = ("frequency", "T", "days_since_last_purchase")


def usual_gap(scores: pd.DataFrame) -> np.ndarray:
    """Mean days between a customer's purchase days; NaN for one-time buyers."""
    require(scores, _RHYTHM)
    frequency = numbers(scores, "frequency")
    recency = numbers(scores, "T") - numbers(scores, "days_since_last_purchase")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(frequency > 0, recency / np.where(frequency > 0, frequency, 1), np.nan)


def overdue(
    scores: pd.DataFrame, settings: OutreachSettings | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each customer is overdue, and by how many days (0 when not)."""
    settings = settings or OutreachSettings()
    gap = usual_gap(scores) * settings.gap_factor
    since = numbers(scores, "days_since_last_purchase")
    late = np.nan_to_num(since - gap, nan=-np.inf)
    flag = late > settings.grace_days
    return flag, np.where(flag, late, 0.0)


def outreach_schedule(
    scores: pd.DataFrame, as_of: DateLike, settings: ActionSettings | None = None
) -> pd.DataFrame:
    """Contact date and overdue status of each row of a scores table (same index); columns
    ``OUTREACH_COLUMNS``, dates as naive ``datetime64`` days; a null expected date gives a null
    contact date (NaT)."""
    settings = settings or ActionSettings()
    require(scores, ("customer_id", "expected_next_purchase_date", *_RHYTHM))
    day = as_of_day(as_of)
    expected = days(scores, "expected_next_purchase_date", missing=True)
    # np.maximum would carry NaT through too, but says so only by a NumPy convention.
    lead = expected - np.timedelta64(settings.outreach.lead_days, "D")
    contact = np.where(np.isnat(expected), expected, np.maximum(lead, day))
    flag, late = overdue(scores, settings.outreach)
    return pd.DataFrame(
        {
            "customer_id": scores["customer_id"].astype("str").to_numpy(),
            "expected_next_purchase_date": expected,
            "contact_date": contact,
            "usual_gap_days": usual_gap(scores),
            "overdue": flag,
            "days_overdue": late,
        },
        index=scores.index,
    )
