"""Holdout metrics of next-purchase timing: Harrell's C-index and the integrated Brier score.

The outcome of each customer is the number of days from the cutoff to the next purchase, censored
at the horizon: ``days`` is the day of the next purchase (1..horizon) when ``purchased``, and the
horizon otherwise (no purchase in it). The arrays follow the conventions of
:mod:`retain.evaluation.metrics` (one value per customer, same order; NaN, infinite values and
mismatched lengths raise :class:`~retain.errors.RetainInputError` naming the argument).

- :func:`timing_cindex`: does the score put the customers who buy sooner first? Harrell's
  concordance over the comparable pairs.
- :func:`integrated_brier_score`: how close the predicted survival curves ``S_i(t) = P(no purchase
  by day t)`` are to what happened, averaged over the days of the horizon.
- :func:`timing_score`: the "buys sooner" score of a predicted ``days_to_next_purchase`` that may be
  null (no purchase expected within the horizon), for :func:`timing_cindex`.

Why the C-index is written here: neither lifelines nor scikit-survival is a dependency of retain,
and the definition is short. It runs in O(n log n) (a Fenwick tree over the score ranks, queried
and updated for whole groups of equal times at once with NumPy), so a million customers take
seconds; the tests check it against a literal O(n^2) count of the pairs.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from retain.errors import RetainInputError
from retain.evaluation.metrics import _check_same_customers, _labels, _values

__all__ = ["integrated_brier_score", "timing_cindex", "timing_score"]


def timing_cindex(days: ArrayLike, purchased: ArrayLike, score: ArrayLike) -> float:
    """Harrell's concordance index of a "buys sooner" score against the days to the next purchase.

    ``days``: days from the cutoff to the next purchase, or to the end of the observation (the
    horizon) for a customer who did not buy (``purchased`` False: censored). ``score``: higher
    means a sooner purchase, e.g. P(purchase within 30 days) or ``-days_to_next_purchase``.

    A pair (i, j) is comparable when i bought first and j is known to have waited longer: i
    ``purchased`` and ``days_i < days_j``, or ``days_i == days_j`` with j censored (j did not buy
    by that day). Two purchases on the same day are not comparable: nothing says who came first.
    The pair is concordant when ``score_i > score_j``, and counts a half when the scores tie.
    The index is (concordant + ties / 2) / comparable pairs: 1 for a perfect ordering, 0.5 for a
    random or constant score. The same definition as ``lifelines.utils.concordance_index`` with
    ``predicted_scores = -score`` (lifelines' scores are "higher = later").
    """
    time = _values("days", days)
    event = _labels("purchased", purchased)
    risk = _values("score", score)
    _check_same_customers("days", days, len(time), "purchased", purchased, len(event))
    _check_same_customers("days", days, len(time), "score", score, len(risk))
    # Dense ranks of the score, 1-based: the positions of the Fenwick tree.
    values, rank = np.unique(risk, return_inverse=True)
    tree = np.zeros(values.size + 1, dtype=np.int64)
    # Groups of equal times, the longest first: the tree holds everyone known to wait longer.
    order = np.lexsort((event, -time))  # by time descending; within a time, censored first
    sorted_time = time[order]
    starts = np.flatnonzero(np.r_[True, sorted_time[1:] != sorted_time[:-1]])
    ends = np.r_[starts[1:], len(order)]
    concordant = tied = comparable = 0.0
    inserted = 0
    for first, last in zip(starts, ends, strict=True):
        members = order[first:last]
        is_event = event[members]
        censored = members[~is_event]
        buyers = members[is_event]
        # Censored at this time: they waited at least as long as a buyer on this day.
        _add(tree, rank[censored] + 1)
        inserted += censored.size
        if buyers.size:
            below = _prefix_counts(tree, rank[buyers])  # scores strictly below
            at_or_below = _prefix_counts(tree, rank[buyers] + 1)
            concordant += float(below.sum())
            tied += float((at_or_below - below).sum())
            comparable += float(inserted) * buyers.size
        _add(tree, rank[buyers] + 1)
        inserted += buyers.size
    if comparable == 0:
        raise RetainInputError(
            "timing_cindex: no comparable pair (it needs a customer who bought before another "
            "was known to be still waiting)"
        )
    return (concordant + 0.5 * tied) / comparable


def timing_score(
    days_to_next_purchase: ArrayLike, p_purchase_in_horizon: ArrayLike, horizon_days: float
) -> NDArray[np.float64]:
    """A "buys sooner" score for :func:`timing_cindex` from predicted days to the next purchase.

    ``days_to_next_purchase``: the predicted day of the next purchase (0..``horizon_days``), or
    null/NaN for "no purchase expected within the horizon" (retain leaves it null when P(purchase
    within the horizon) < 0.5). ``p_purchase_in_horizon``: P(purchase within the horizon), in
    [0, 1]. The score is ``-days`` where a day is given; a customer without one ranks below every
    dated customer, and those are ordered among themselves by ``p_purchase_in_horizon`` (likelier
    = sooner): ``-(horizon_days + 1 + (1 - p))``, so every null scores in
    ``[-(horizon_days + 2), -(horizon_days + 1)]``, below the lowest dated score ``-horizon_days``.
    """
    days = _days_or_nulls(days_to_next_purchase)
    p = _values("p_purchase_in_horizon", p_purchase_in_horizon)
    _check_same_customers(
        "days_to_next_purchase",
        days_to_next_purchase,
        len(days),
        "p_purchase_in_horizon",
        p_purchase_in_horizon,
        len(p),
    )
    if (p < 0).any() or (p > 1).any():
        raise RetainInputError(
            "p_purchase_in_horizon must hold probabilities in [0, 1]; "
            f"{int(((p < 0) | (p > 1)).sum()):,} value(s) are outside"
        )
    if (
        not isinstance(horizon_days, numbers.Real)
        or isinstance(horizon_days, bool)
        or not np.isfinite(horizon_days)
        or horizon_days <= 0
    ):
        raise RetainInputError(f"horizon_days must be a positive number, not {horizon_days!r}")
    dated = ~np.isnan(days)
    infinite = dated & ~np.isfinite(days)
    if infinite.any():
        raise RetainInputError(
            f"days_to_next_purchase holds {int(infinite.sum()):,} infinite value(s); leave "
            "the day null (NaN) when no purchase is expected within the horizon"
        )
    outside = dated & ((days < 0) | (days > horizon_days))
    if outside.any():
        raise RetainInputError(
            f"days_to_next_purchase holds {int(outside.sum()):,} day(s) outside 0..{horizon_days:g} "
            "(a date past the horizon should be null)"
        )
    return np.where(dated, 0.0 - days, -(float(horizon_days) + 1.0 + (1.0 - p)))


def _days_or_nulls(values: object) -> NDArray[np.float64]:
    """Predicted days as a one-dimensional float array, nulls (None, pd.NA, NaN) as NaN."""
    name = "days_to_next_purchase"
    if isinstance(values, pd.DataFrame):
        raise RetainInputError(
            f"{name} must be one-dimensional (an array or a Series), not a DataFrame"
        )
    try:
        if isinstance(values, pd.Series | pd.Index):
            days = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            raw = np.asarray(values)
            if raw.dtype.kind in "biuf":
                days = raw.astype(np.float64)
            elif raw.ndim == 1:  # None or pd.NA among numbers: nulls
                days = (
                    pd.Series(raw, dtype=object)
                    .astype("Float64")
                    .to_numpy(np.float64, na_value=np.nan)
                )
            else:
                days = raw.astype(np.float64)
    except (TypeError, ValueError) as error:
        raise RetainInputError(f"{name} must hold numbers or nulls: {error}") from error
    if days.ndim != 1:
        raise RetainInputError(
            f"{name} must be one-dimensional (one value per customer), not of shape {days.shape}"
        )
    if len(days) == 0:
        raise RetainInputError(f"{name} is empty: there is no customer to score")
    return days


def _add(tree: NDArray[np.int64], positions: NDArray[np.intp]) -> None:
    """Add one at each of ``positions`` (1-based) of a Fenwick tree, all at once."""
    index = positions.astype(np.int64)
    while index.size:
        np.add.at(tree, index, 1)
        index = index + (index & -index)
        index = index[index < tree.size]


def _prefix_counts(tree: NDArray[np.int64], positions: NDArray[np.intp]) -> NDArray[np.int64]:
    """How many entries sit at positions 1..p, for each p of ``positions`` (0 gives 0)."""
    index = positions.astype(np.int64)
    total = np.zeros(index.size, dtype=np.int64)
    while (index > 0).any():
        total += tree[index]  # tree[0] is always 0: finished queries add nothing
        index = index - (index & -index)
    return total


def integrated_brier_score(
    days: ArrayLike, purchased: ArrayLike, survival: ArrayLike, horizon_days: int
) -> float:
    """The Brier score of ``S(t) = P(no purchase by day t)``, averaged over days 1..horizon.

    ``survival`` has shape ``(customers, horizon_days)``: column ``t - 1`` is each customer's
    predicted probability of no purchase in days 1..t after the cutoff. ``days`` and
    ``purchased`` are as in :func:`timing_cindex`, censored at the horizon. On day t the outcome is
    ``1(no purchase by day t)`` and the score is ``mean_i (S_i(t) - outcome_i(t))^2``; the result
    is the mean over the days, i.e. the integral of the Brier score over the horizon divided by its
    length (the outcomes change only at whole days, so the daily grid is exact).

    Censoring: Graf et al. (1999) weight each outcome by the inverse probability of censoring
    (IPCW) to correct for customers lost before t. Here the only censoring is at the horizon, after
    its last day has been observed: every customer's status is known on every day t <= horizon,
    the censoring survival is G(t) = 1 throughout, and every IPCW weight is 1, so the plain mean is
    the IPCW estimate. For that reason a censored customer must have ``days == horizon_days``
    (anything shorter is an error), and a purchase must lie in 1..horizon.
    """
    time = _values("days", days)
    event = _labels("purchased", purchased)
    _check_same_customers("days", days, len(time), "purchased", purchased, len(event))
    horizon = int(horizon_days)
    if horizon < 1 or horizon != horizon_days:
        raise RetainInputError(f"horizon_days must be a whole number >= 1, not {horizon_days!r}")
    curves = np.asarray(survival, dtype=np.float64)
    if curves.shape != (len(time), horizon):
        raise RetainInputError(
            f"survival must have shape (customers, horizon_days) = ({len(time)}, {horizon}), "
            f"not {curves.shape}"
        )
    if not np.isfinite(curves).all() or (curves < 0).any() or (curves > 1).any():
        raise RetainInputError("survival must hold probabilities in [0, 1] (no NaN)")
    early = ~event & (time != horizon)
    if early.any():
        raise RetainInputError(
            f"integrated_brier_score: {int(early.sum()):,} customer(s) are censored before the "
            f"horizon ({horizon} days); only censoring at the horizon is supported (no IPCW "
            "weights are estimated)"
        )
    outside = event & ((time < 1) | (time > horizon))
    if outside.any():
        raise RetainInputError(
            f"integrated_brier_score: {int(outside.sum()):,} purchase day(s) lie outside "
            f"1..{horizon}"
        )
    day = np.arange(1, horizon + 1)
    # outcome_i(t) = 1 while no purchase has happened by day t.
    still_waiting = ~(event[:, None] & (time[:, None] <= day[None, :]))
    return float(np.mean((curves - still_waiting) ** 2))
