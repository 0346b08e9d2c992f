"""One recommended action per customer, from their scores alone.

The rules read a customer's own scores (no population statistics), so the HTTP service, scoring one
customer, and the batch job, scoring millions, recommend the same thing. First match wins:

1. ``let go``: P(alive) under 5% (BG/NBD): spend nothing on them; exclude them from paid audiences.
2. ``win back``: churn risk at least 60% in a valuable segment (Champions, Loyal, Can't lose, At
   risk): personal outreach with an offer, now.
3. ``reactivate``: churn risk at least 60%: an automated reactivation email.
4. ``no discount``: at least 50% likely to buy within 30 days anyway: cross-sell, no incentive.
5. ``nurture``: everyone else: a reminder timed for their expected next purchase.

The thresholds are deliberate round numbers for a first campaign; budgeted discount targeting
belongs to the targeting module, which compares customers with each other.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from retain.errors import RetainInputError

__all__ = ["ACTIONS", "recommend_actions"]

ACTIONS: Final = ("let go", "win back", "reactivate", "no discount", "nurture")
VALUABLE_SEGMENTS: Final = frozenset({"Champions", "Loyal", "Can't lose", "At risk"})
_NEEDED: Final = ("p_alive", "churn_probability", "p_purchase_30d", "segment")


def recommend_actions(scores: pd.DataFrame) -> pd.Series:
    """The action of each row of a scores table (``RetentionModel.predict`` output)."""
    missing = [c for c in _NEEDED if c not in scores.columns]
    if missing:
        raise RetainInputError(f"scores: missing column(s) {', '.join(missing)}")
    p_alive = scores["p_alive"].to_numpy(float)
    churn = scores["churn_probability"].to_numpy(float)
    p30 = scores["p_purchase_30d"].to_numpy(float)
    valuable = np.array([str(s) in VALUABLE_SEGMENTS for s in scores["segment"].tolist()], bool)
    action = np.select(
        [p_alive < 0.05, (churn >= 0.6) & valuable, churn >= 0.6, p30 >= 0.5],
        list(ACTIONS[:4]),
        default=ACTIONS[4],
    )
    return pd.Series(action, index=scores.index, name="action", dtype="str")
