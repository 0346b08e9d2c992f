"""Discount targeting under a budget: who gets which discount, and why.

See :mod:`.settings` for the economics, :mod:`.policy` for the two modes (uplift from a campaign's
history, or a transparent rule), :mod:`.uplift` for the meta-learners, :mod:`.budget` for the
knapsack and :mod:`.simulation` for synthetic campaigns with known effects (not imported here:
``python -m retain.actions.discounts.simulation`` prints how the policy does on them).
"""

from retain.actions.discounts.budget import Allocation, allocate
from retain.actions.discounts.metrics import auuc, qini_coefficient, qini_curve, uplift_curve
from retain.actions.discounts.policy import DiscountPolicy, value_effects
from retain.actions.discounts.settings import DiscountSettings
from retain.actions.discounts.uplift import EFFECT_COLUMNS, TLearner, XLearner

__all__ = [
    "EFFECT_COLUMNS",
    "Allocation",
    "DiscountPolicy",
    "DiscountSettings",
    "TLearner",
    "XLearner",
    "allocate",
    "auuc",
    "qini_coefficient",
    "qini_curve",
    "uplift_curve",
    "value_effects",
]
