"""One recommended action per customer, from one documented customer state.

The rules read a customer's own scores and history (no population statistics), so the HTTP
service, scoring one customer, and the batch job, scoring millions, recommend the same thing.

Why a state and not the churn probability alone: ``churn_probability`` is P(no purchase in the
horizon). With a 90-day horizon it is high for a good customer who usually orders every four
months, right after their last order; a rule "churn risk at least 60% -> win back" sent such
customers (RFM Champions among them) a win-back offer the day after they bought. The state first
asks where the customer stands against their *own* rhythm, then how likely they are to churn and
how much they are worth.

The customer state has three parts:

rhythm (:func:`customer_state`, from ``frequency``, ``T``, ``days_since_last_purchase``, ``p_alive``)
    The usual gap is the mean time between a repeat customer's purchase days (the rule of
    :mod:`retain.actions.outreach`, with its default settings: ``gap_factor`` 1, ``grace_days`` 7).
    First match wins:

    ============  ==========================================================================
    ``lapsed``    P(alive) under 5% (BG/NBD); or a repeat customer more than 3 usual gaps
                  (+ 7 days) since their last purchase; or a one-time buyer with no purchase
                  for more than 365 days
    ``new``       one purchase day so far (``frequency == 0``): no rhythm yet
    ``overdue``   a repeat customer past their usual gap (+ 7 days)
    ``on rhythm`` a repeat customer within their usual gap (+ 7 days)
    ============  ==========================================================================

risk
    ``churn_probability`` at least 60%.

value
    The RFM segment (``segment``) is one of Champions, Loyal, Can't lose, At risk: the segments of
    the top frequency-and-spend scores, against the *training* population's quintiles (kept in
    the model), so one customer is valued the same alone or in a whole base.

Action (first match wins):

==================  =========================================  ===================================
action              state                                      what marketing does
==================  =========================================  ===================================
``win back``        valuable, and lapsed, or overdue at risk   personal outreach with an offer, now
``let go``          not valuable, lapsed, P(alive) under 5%    nothing; kept out of paid audiences
``reactivate``      not valuable and lapsed or overdue at      an automated reactivation e-mail
                    risk; or new at risk
``no discount``     at least 50% likely to buy within 30       cross-sell, no incentive
                    days (``p_purchase_30d``)
``nurture``         everyone else                              a reminder timed for their
                                                               expected next purchase
==================  =========================================  ===================================

So a customer on rhythm is never ``win back`` nor ``reactivate``, whatever their churn risk: a
high risk on rhythm means a usual gap longer than the horizon, and the reminder timed for their
next order (``nurture``) is what they need. A valuable customer long past their rhythm is ``win
back`` even when BG/NBD thinks them gone: they are worth a personal try.

The thresholds are deliberate round numbers for a first campaign, fixed here (not settings) so the
service and the batch job cannot disagree; budgeted discount targeting belongs to the targeting
module, which compares customers with each other.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from retain.actions._checks import numbers, require
from retain.actions.outreach import usual_gap

__all__ = [
    "ACTIONS",
    "CUSTOMER_STATES",
    "NEEDED_COLUMNS",
    "VALUABLE_SEGMENTS",
    "customer_state",
    "recommend_actions",
]

ACTIONS: Final = ("let go", "win back", "reactivate", "no discount", "nurture")
CUSTOMER_STATES: Final = ("lapsed", "new", "overdue", "on rhythm")
VALUABLE_SEGMENTS: Final = frozenset({"Champions", "Loyal", "Can't lose", "At risk"})
# The columns the rules read: scores and the history columns that scores.parquet carries.
NEEDED_COLUMNS: Final = (
    "p_alive",
    "churn_probability",
    "p_purchase_30d",
    "segment",
    "frequency",
    "T",
    "days_since_last_purchase",
)

GONE_P_ALIVE: Final = 0.05
AT_RISK_CHURN: Final = 0.6
LIKELY_BUYER_P30: Final = 0.5
GRACE_DAYS: Final = 7.0  # OutreachSettings().grace_days: the same "overdue" as the outreach plan
LAPSED_GAPS: Final = 3.0
LAPSED_ONE_TIME_DAYS: Final = 365.0


def customer_state(scores: pd.DataFrame) -> pd.Series:
    """The rhythm part of each customer's state (see the module's table): a categorical of
    ``CUSTOMER_STATES`` named ``customer_state``, on the index of ``scores``."""
    require(scores, NEEDED_COLUMNS)
    return pd.Series(
        pd.Categorical.from_codes(_state_codes(scores), categories=pd.Index(CUSTOMER_STATES)),
        index=scores.index,
        name="customer_state",
    )


def _state_codes(scores: pd.DataFrame) -> np.ndarray:
    since = numbers(scores, "days_since_last_purchase")
    one_time = numbers(scores, "frequency") == 0
    gap = np.nan_to_num(usual_gap(scores), nan=np.inf)  # one-time buyers: no gap to be late on
    lapsed = (
        (numbers(scores, "p_alive") < GONE_P_ALIVE)
        | (~one_time & (since > LAPSED_GAPS * gap + GRACE_DAYS))
        | (one_time & (since > LAPSED_ONE_TIME_DAYS))
    )
    late = ~one_time & (since > gap + GRACE_DAYS)
    codes = np.select([lapsed, one_time, late], [0, 1, 2], default=3)
    return codes.astype(np.int64)


def recommend_actions(scores: pd.DataFrame) -> pd.Series:
    """The action of each row of a scores table: ``RetentionModel.predict`` output with the
    history columns ``frequency``, ``T`` and ``days_since_last_purchase`` (``scores.parquet`` has
    them; the service adds them from its feature table)."""
    require(scores, NEEDED_COLUMNS)
    state = _state_codes(scores)
    lapsed, new, late = state == 0, state == 1, state == 2
    p_alive = numbers(scores, "p_alive")
    risky = numbers(scores, "churn_probability") >= AT_RISK_CHURN
    likely = numbers(scores, "p_purchase_30d") >= LIKELY_BUYER_P30
    valuable = scores["segment"].astype("str").isin(VALUABLE_SEGMENTS).to_numpy()
    action = np.select(
        [
            valuable & (lapsed | (late & risky)),
            ~valuable & lapsed & (p_alive < GONE_P_ALIVE),
            lapsed | ((late | new) & risky),  # the valuable ones took the first rule
            likely,
        ],
        ["win back", "let go", "reactivate", "no discount"],
        default="nurture",
    )
    return pd.Series(action, index=scores.index, name="action", dtype="str")
