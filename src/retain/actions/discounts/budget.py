"""Who gets which discount under a budget: a multiple-choice knapsack, solved greedily on hulls.

Each customer ``i`` may get at most one of their options ``j`` (a discount level), worth ``v_ij``
(expected net value: incremental margin minus the discount's expected cost) and costing ``c_ij``
(expected discount cost); no discount is always an option, worth 0 at cost 0. The campaign wants the
largest total value whose total cost is within the budget. This is the multiple-choice knapsack
problem (MCKP), NP-hard in general; with thousands of customers, each a tiny part of the budget,
the classic greedy below is within one option's value of the optimum.

The greedy (Sinha & Zoltners 1979; Kellerer, Pferschy & Pisinger, *Knapsack Problems*, 2004,
ch. 11.2), O(n log n) in the number of options:

1. Options worth no more than ``min_value`` are dropped (no discount, 0 at cost 0, beats them), and
   so are options that cost more than the whole budget.
2. Each customer's remaining options, together with (0, 0), are reduced to the **upper convex hull**
   of (cost, value): an option below the hull is beaten by a mix of its neighbours, so neither the
   linear relaxation nor (in practice) the greedy would ever choose it. Moving up the hull, each
   step buys ``dv`` more value for ``dc`` more cost at an **incremental efficiency** ``dv / dc`` that
   decreases from step to step.
3. All customers' steps are sorted by efficiency, best first, and taken in that order while they fit
   (a step is taken only after the same customer's previous step: the decreasing efficiencies make
   the sorted order respect that). Where the first step does not fit, the linear relaxation would
   take a fraction of it: that fractional total, ``upper_bound``, is a bound no allocation within the
   budget can beat (the LP relaxation of MCKP, solved exactly by this greedy).
4. The remaining steps are still scanned, in the same order, and taken wherever one fits (always
   the next step of its customer): the budget left over by the first step that did not fit is
   spent on smaller ones.
5. If a single option alone is worth more than the whole greedy allocation (possible only when one
   customer's offer is a large part of the budget), it is chosen alone; this makes the result at
   least half of the optimum in every case.

**Approximation.** The greedy prefix (step 3) is worth at least ``upper_bound`` minus the value of
the one step that did not fit, and ``upper_bound`` >= the optimum; so the shortfall against the
optimum is at most the value of one customer's offer, a negligible share of a campaign that
reaches many customers. ``Allocation.upper_bound`` lets a caller check the gap on its own data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

from retain.actions._checks import finite_numbers
from retain.errors import RetainInputError

__all__ = ["CANDIDATE_COLUMNS", "Allocation", "allocate"]

CANDIDATE_COLUMNS: Final = ("customer_id", "level", "value", "cost")
# Relative slack on the budget, for sums of floating-point costs that should equal it.
_BUDGET_SLACK: Final = 1e-12


@dataclass(frozen=True)
class Allocation:
    """The result of :func:`allocate`.

    ``choice`` has one row per customer of the candidates, in their order of first appearance:
    ``customer_id``, ``level`` (0.0 for no discount), ``value`` and ``cost`` of the chosen option
    (0 without one), and ``candidate``: the chosen row's position in the candidates (-1 for none).
    ``upper_bound`` is the linear relaxation's value: no allocation within the budget is worth more.
    """

    choice: pd.DataFrame
    budget: float
    total_value: float
    total_cost: float
    upper_bound: float


def allocate(
    candidates: pd.DataFrame, budget: float | None = None, *, min_value: float = 0.0
) -> Allocation:
    """Give each customer at most one option so that the total value is (near) maximal and the
    total cost at most ``budget`` (None: no cap); see the module docstring for the method.

    ``candidates`` has one row per customer and discount level: ``customer_id``, ``level`` (> 0),
    ``value`` (expected net value, may be negative) and ``cost`` (expected cost, >= 0). Options
    worth ``min_value`` or less are never chosen.
    """
    limit = _check_budget(budget)
    ids, level, value, cost = _check_candidates(candidates)
    codes, uniques = pd.factorize(ids, sort=False)
    n_customers = len(uniques)
    positions = np.arange(len(codes))

    # The options worth making, sorted by customer, then cost (cheapest first), then value (best
    # first): the hull walk below breaks ties of efficiency towards the cheapest option.
    cap = limit * (1 + _BUDGET_SLACK)
    keep = (value > min_value) & (cost <= cap)  # an option costing more than the budget never fits
    order = np.lexsort((-value[keep], cost[keep], codes[keep]))
    kept = positions[keep][order]
    customer = codes[kept]
    rank = _rank_within(customer)
    width = int(rank.max()) + 1 if len(rank) else 0
    wide_cost = np.full((n_customers, width), np.nan)
    wide_value = np.full((n_customers, width), np.nan)
    wide_row = np.full((n_customers, width), -1, dtype=np.int64)
    wide_cost[customer, rank] = cost[kept]
    wide_value[customer, rank] = value[kept]
    wide_row[customer, rank] = kept

    steps = _hull_steps(wide_cost, wide_value)
    chosen_step = _greedy(steps, limit)
    row = np.full(n_customers, -1, dtype=np.int64)
    taken = chosen_step >= 0
    row[taken] = wide_row[taken, steps.option[taken, chosen_step[taken]]]

    # A single option worth more than the whole greedy allocation (see step 5).
    total = float(value[row[taken]].sum())
    fits = np.flatnonzero(keep)
    if len(fits):
        best = fits[np.argmax(value[fits])]
        if value[best] > total:
            row[:] = -1
            row[codes[best]] = best

    has = row >= 0
    chosen_level = np.where(has, level[np.where(has, row, 0)], 0.0)
    chosen_value = np.where(has, value[np.where(has, row, 0)], 0.0)
    chosen_cost = np.where(has, cost[np.where(has, row, 0)], 0.0)
    choice = pd.DataFrame(
        {
            "customer_id": uniques,
            "level": chosen_level,
            "value": chosen_value,
            "cost": chosen_cost,
            "candidate": row,
        }
    )
    return Allocation(
        choice=choice,
        budget=limit,
        total_value=float(chosen_value.sum()),
        total_cost=float(chosen_cost.sum()),
        upper_bound=max(steps.upper_bound, float(chosen_value.sum())),
    )


# -- the greedy -----------------------------------------------------------------------------------


@dataclass
class _Steps:
    """Each customer's hull steps, as (customer x step) matrices; NaN / -1 where there is none."""

    option: np.ndarray  # the option (column of the wide matrices) reached by the step
    cost: np.ndarray  # dc of the step
    value: np.ndarray  # dv of the step
    efficiency: np.ndarray  # dv / dc, +inf for a free step
    upper_bound: float = 0.0  # set by _greedy: the linear relaxation's value


def _hull_steps(wide_cost: np.ndarray, wide_value: np.ndarray) -> _Steps:
    """Walk every customer's upper convex hull from (0, 0), all customers at once.

    At each round, every customer moves from their current point to the option of steepest slope
    among those that add value (the cheapest of equally steep ones, options being sorted by cost):
    that is the next hull vertex. A customer has at most as many steps as options.
    """
    n, width = wide_cost.shape
    option = np.full((n, width), -1, dtype=np.int64)
    step_cost = np.full((n, width), np.nan)
    step_value = np.full((n, width), np.nan)
    efficiency = np.full((n, width), np.nan)
    at_cost = np.zeros(n)
    at_value = np.zeros(n)
    everyone = np.arange(n)
    for k in range(width):
        dc = wide_cost - at_cost[:, None]
        dv = wide_value - at_value[:, None]
        eligible = (dv > 0) & (dc >= 0)  # NaN (no option) compares False
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dc > 0, dv / dc, np.inf)
        slope = np.where(eligible, slope, -np.inf)
        moves = eligible.any(axis=1)
        if not moves.any():
            break
        best = np.argmax(slope, axis=1)
        who = everyone[moves]
        to = best[moves]
        option[who, k] = to
        step_cost[who, k] = dc[who, to]
        step_value[who, k] = dv[who, to]
        efficiency[who, k] = slope[who, to]
        at_cost[who] = wide_cost[who, to]
        at_value[who] = wide_value[who, to]
    # Efficiencies fall along a hull; rounding must not make a later step look better than an
    # earlier one (the sorted order would then take it first).
    efficiency = np.minimum.accumulate(efficiency, axis=1)
    return _Steps(option, step_cost, step_value, efficiency)


def _greedy(steps: _Steps, limit: float) -> np.ndarray:
    """The index of each customer's last step taken (-1: none); sets ``steps.upper_bound``."""
    n, _ = steps.option.shape
    who, k = np.nonzero(steps.option >= 0)
    dc = steps.cost[who, k]
    dv = steps.value[who, k]
    order = np.lexsort((k, who, -steps.efficiency[who, k]))
    who, k, dc, dv = who[order], k[order], dc[order], dv[order]
    cap = limit * (1 + _BUDGET_SLACK) if np.isfinite(limit) else np.inf

    spent = np.cumsum(dc)
    n_prefix = int(np.searchsorted(spent, cap, side="right"))
    last = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last, who[:n_prefix], k[:n_prefix])
    value = float(dv[:n_prefix].sum())
    left = limit - (float(spent[n_prefix - 1]) if n_prefix else 0.0)
    if n_prefix < len(dc):  # the linear relaxation takes a fraction of the first step that misses
        steps.upper_bound = value + dv[n_prefix] * max(left, 0.0) / dc[n_prefix]
    else:
        steps.upper_bound = value

    # Spend what is left on later steps that fit, each the next one of its customer.
    if n_prefix < len(dc) and left > 0:
        rest_min = np.minimum.accumulate(dc[::-1])[::-1]  # cheapest step from here on
        for s in range(n_prefix + 1, len(dc)):
            if rest_min[s] > left * (1 + _BUDGET_SLACK):
                break
            i = who[s]
            if last[i] == k[s] - 1 and dc[s] <= left * (1 + _BUDGET_SLACK):
                last[i] = k[s]
                left -= dc[s]
    return last


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal values of a sorted array."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    lengths = np.diff(np.r_[starts, len(groups)])
    return np.arange(len(groups)) - np.repeat(starts, lengths)


# -- checks ---------------------------------------------------------------------------------------


def _check_budget(budget: float | None) -> float:
    if budget is None:
        return float("inf")
    try:
        limit = float(budget)
    except (TypeError, ValueError) as error:
        raise RetainInputError(f"budget must be a number, not {budget!r}") from error
    if np.isnan(limit) or limit < 0:
        raise RetainInputError(f"budget must be zero or more, not {budget!r}")
    return limit


def _check_candidates(
    candidates: pd.DataFrame,
) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(candidates, pd.DataFrame):
        raise RetainInputError(
            f"candidates must be a pandas DataFrame, not {type(candidates).__name__}"
        )
    missing = [c for c in CANDIDATE_COLUMNS if c not in candidates.columns]
    if missing:
        raise RetainInputError(f"candidates: missing column(s) {', '.join(missing)}")
    n = len(candidates)
    ids = candidates["customer_id"].reset_index(drop=True)
    if int(ids.isna().sum()):
        raise RetainInputError(
            f"candidates: customer_id is missing in {int(ids.isna().sum())} of {n} rows"
        )
    level, value, cost = (
        finite_numbers(candidates, name, "candidates") for name in ("level", "value", "cost")
    )
    bad_level = int(((level <= 0) | (level >= 1)).sum())
    if bad_level:
        raise RetainInputError(
            f"candidates: level must be in (0, 1) in every row (no discount is implicit), "
            f"but is not in {bad_level} of {n} rows"
        )
    negative = int((cost < 0).sum())
    if negative:
        raise RetainInputError(f"candidates: cost is negative in {negative} of {n} rows")
    repeated = int(pd.DataFrame({"c": ids, "l": level}).duplicated().sum())
    if repeated:
        raise RetainInputError(
            f"candidates: {repeated} of {n} rows repeat a (customer_id, level) pair"
        )
    return ids, level, value, cost
