"""Timing metrics: by hand on tiny arrays, against a literal O(n^2) count, and the errors users see.

Hand example for the C-index (higher score = sooner purchase):
  days      [2, 5, 5, 9]   purchased [1, 1, 0, 0]   score [.9, .3, .5, .1]
  comparable pairs (first bought, other known to wait longer):
    (0,1) 2<5           score .9 > .3 concordant
    (0,2) 2<5           .9 > .5      concordant
    (0,3) 2<9           .9 > .1      concordant
    (1,2) 5=5, 2 censored  .3 < .5   discordant
    (1,3) 5<9           .3 > .1      concordant
  C = 4 / 5 = 0.8. With score [.9, .5, .5, .1] the pair (1,2) ties: C = (4 + 0.5) / 5 = 0.9.

Hand example for the integrated Brier score, horizon 2 days:
  customer A bought on day 1, B did not buy (censored at 2).
  survival A = [.5, .2], B = [.8, .6]
  day 1: outcomes A 0, B 1 -> ((.5-0)^2 + (.8-1)^2) / 2 = (.25 + .04) / 2 = .145
  day 2: outcomes A 0, B 1 -> ((.2-0)^2 + (.6-1)^2) / 2 = (.04 + .16) / 2 = .10
  integrated = (.145 + .10) / 2 = .1225
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.errors import RetainInputError
from retain.evaluation.timing_metrics import integrated_brier_score, timing_cindex, timing_score


def brute_force_cindex(days: np.ndarray, purchased: np.ndarray, score: np.ndarray) -> float:
    """Harrell's C by looking at every ordered pair: the definition, literally."""
    concordant = comparable = 0.0
    for i in range(len(days)):
        if not purchased[i]:
            continue
        for j in range(len(days)):
            if i == j:
                continue
            if days[i] < days[j] or (days[i] == days[j] and not purchased[j]):
                comparable += 1
                if score[i] > score[j]:
                    concordant += 1
                elif score[i] == score[j]:
                    concordant += 0.5
    return concordant / comparable


def test_cindex_by_hand() -> None:
    days = np.array([2, 5, 5, 9])
    bought = np.array([1, 1, 0, 0])
    assert timing_cindex(days, bought, [0.9, 0.3, 0.5, 0.1]) == pytest.approx(0.8)
    assert timing_cindex(days, bought, [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.9)


def test_cindex_perfect_reversed_and_constant() -> None:
    days = np.array([1.0, 3, 4, 10, 10])
    bought = np.array([True, True, True, False, False])
    assert timing_cindex(days, bought, -days) == 1.0
    assert timing_cindex(days, bought, days) == 0.0
    assert timing_cindex(days, bought, np.zeros(5)) == 0.5


@pytest.mark.parametrize("seed", range(6))
def test_cindex_matches_the_pairwise_count(seed: int) -> None:
    """Many tied days (whole days, censoring at the horizon) and tied scores, as in a holdout."""
    rng = np.random.default_rng(seed)
    n, horizon = 300, 30
    days = rng.integers(1, 60, n).astype(float)
    bought = days <= horizon
    days = np.minimum(days, horizon)
    score = np.round(-days + rng.normal(0, 8, n)) if seed % 2 else rng.random(n)
    assert timing_cindex(days, bought, score) == pytest.approx(
        brute_force_cindex(days, bought, score), abs=1e-12
    )


def test_cindex_matches_the_pairwise_count_with_censoring_anywhere() -> None:
    rng = np.random.default_rng(42)
    days = rng.exponential(10, 200).round(1)
    bought = rng.random(200) < 0.6
    score = rng.normal(size=200) - 0.05 * days
    assert timing_cindex(days, bought, score) == pytest.approx(
        brute_force_cindex(days, bought, score), abs=1e-12
    )


def test_cindex_errors() -> None:
    with pytest.raises(RetainInputError, match="comparable pair"):
        timing_cindex([5, 5], [0, 0], [0.1, 0.2])
    with pytest.raises(RetainInputError, match="score has 1 missing"):
        timing_cindex([1, 5], [1, 0], [np.nan, 0.2])
    with pytest.raises(RetainInputError, match="days has 2 values but score has 3"):
        timing_cindex([1, 5], [1, 0], [0.1, 0.2, 0.3])


def test_integrated_brier_by_hand() -> None:
    survival = np.array([[0.5, 0.2], [0.8, 0.6]])
    assert integrated_brier_score([1, 2], [1, 0], survival, 2) == pytest.approx(0.1225)


def test_integrated_brier_perfect_and_uninformed() -> None:
    days = np.array([1, 3, 3])
    bought = np.array([True, True, False])
    perfect = np.array([[0, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=float)
    assert integrated_brier_score(days, bought, perfect, 3) == 0.0
    assert integrated_brier_score(days, bought, np.full((3, 3), 0.5), 3) == pytest.approx(0.25)


def test_integrated_brier_errors() -> None:
    with pytest.raises(RetainInputError, match="censored before the horizon"):
        integrated_brier_score([1, 2], [1, 0], np.full((2, 3), 0.5), 3)
    with pytest.raises(RetainInputError, match="shape"):
        integrated_brier_score([1, 3], [1, 0], np.full((2, 2), 0.5), 3)
    with pytest.raises(RetainInputError, match="probabilities"):
        integrated_brier_score([1, 3], [1, 0], np.full((2, 3), 1.5), 3)
    with pytest.raises(RetainInputError, match="outside"):
        integrated_brier_score([4, 3], [1, 0], np.full((2, 3), 0.5), 3)


def test_timing_score_ranks_undated_below_dated_and_by_probability() -> None:
    # Horizon 30: two dated customers (3 and 30 days), three without a day (no purchase expected
    # within the horizon), P(purchase within the horizon) .45, .10 and .30.
    days = [3.0, np.nan, 30.0, None, np.nan]
    p = [0.9, 0.45, 0.5, 0.10, 0.30]
    score = timing_score(days, p, 30)
    assert score[0] == -3.0 and score[2] == -30.0
    # Every undated customer ranks below the latest dated one...
    assert score[[1, 3, 4]].max() < score[2]
    # ... and the undated ones are ordered by P(purchase within the horizon), never tied.
    assert list(np.argsort(-score)) == [0, 2, 1, 4, 3]
    assert score[1] == pytest.approx(-(30 + 1 + 0.55))
    # The same from a Series with pandas' nulls.
    series = timing_score(pd.Series(days, dtype="Float64"), pd.Series(p), 30)
    np.testing.assert_array_equal(series, score)


def test_timing_score_orders_the_undated_in_the_cindex() -> None:
    # Horizon 60: customer 0 bought on day 40, customer 1 never (censored at 60); neither has a
    # predicted day. Only P(purchase) tells them apart: ranking customer 0 first is concordant;
    # a score that tied the nulls would give 0.5.
    days = np.array([40.0, 60.0])
    bought = np.array([True, False])
    right = timing_score([np.nan, np.nan], [0.4, 0.1], 60)
    assert timing_cindex(days, bought, right) == 1.0
    assert timing_cindex(days, bought, timing_score([np.nan, np.nan], [0.1, 0.4], 60)) == 0.0
    # A dated customer beats an undated one even if the latter is likelier to buy at all.
    assert timing_cindex(days, bought, timing_score([55.0, np.nan], [0.5, 0.49], 60)) == 1.0


def test_timing_score_errors() -> None:
    with pytest.raises(RetainInputError, match=r"days_to_next_purchase .*outside 0\.\.30"):
        timing_score([31.0], [0.5], 30)
    with pytest.raises(RetainInputError, match=r"days_to_next_purchase .*infinite"):
        timing_score([np.inf], [0.2], 30)
    with pytest.raises(RetainInputError, match="days_to_next_purchase must hold numbers"):
        timing_score(["soon"], [0.2], 30)
    with pytest.raises(RetainInputError, match="days_to_next_purchase must be one-dimensional"):
        timing_score([[1.0]], [0.2], 30)
    with pytest.raises(RetainInputError, match="p_purchase_in_horizon must hold probabilities"):
        timing_score([1.0], [1.5], 30)
    with pytest.raises(RetainInputError, match=r"p_purchase_in_horizon .*missing"):
        timing_score([np.nan], [np.nan], 30)
    with pytest.raises(RetainInputError, match="has 2 values but p_purchase_in_horizon has 1"):
        timing_score([1.0, 2.0], [0.5], 30)
    with pytest.raises(RetainInputError, match="horizon_days must be a positive number"):
        timing_score([1.0], [0.5], 0)
