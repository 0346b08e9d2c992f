"""The multiple-choice knapsack: the hull greedy against brute force on tiny instances."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from retain.actions.discounts import allocate
from retain.errors import RetainInputError

LEVELS = (0.05, 0.10, 0.20)


def candidates(values: np.ndarray, costs: np.ndarray) -> pd.DataFrame:
    """Candidates of customers c0, c1, ... (rows) at the levels (columns)."""
    n, k = values.shape
    return pd.DataFrame(
        {
            "customer_id": np.repeat([f"c{i}" for i in range(n)], k),
            "level": np.tile(LEVELS[:k], n),
            "value": values.ravel(),
            "cost": costs.ravel(),
        }
    )


def brute_force(values: np.ndarray, costs: np.ndarray, budget: float) -> float:
    """The best total value over every assignment (-1: no discount) within the budget."""
    n, k = values.shape
    best = 0.0
    for assignment in itertools.product(range(-1, k), repeat=n):
        chosen = [(i, j) for i, j in enumerate(assignment) if j >= 0]
        cost = sum(costs[i, j] for i, j in chosen)
        if cost <= budget + 1e-9:
            best = max(best, sum(values[i, j] for i, j in chosen))
    return best


def random_instance(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    n, k = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    costs = np.round(rng.uniform(0, 10, (n, k)), 2)
    values = np.round(rng.normal(2, 4, (n, k)), 2)
    budget = float(np.round(rng.uniform(0, costs.sum()), 2))
    return values, costs, budget


def test_greedy_against_brute_force_on_tiny_instances() -> None:
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(400):
        values, costs, budget = random_instance(rng)
        result = allocate(candidates(values, costs), budget)
        optimum = brute_force(values, costs, budget)
        best_option = max(values.max(), 0.0)
        # Feasible; no better than the optimum, which is no better than the LP bound.
        assert result.total_cost <= budget + 1e-9
        assert result.total_value <= optimum + 1e-9
        assert optimum <= result.upper_bound + 1e-9
        # The guarantees of the module docstring: within one option's value, and at least half.
        assert result.total_value >= optimum - best_option - 1e-9
        assert result.total_value >= optimum / 2 - 1e-9
        # The table agrees with the totals, and nobody gets an offer worth nothing.
        assert result.choice["value"].sum() == pytest.approx(result.total_value)
        assert (result.choice.loc[result.choice["level"] > 0, "value"] > 0).all()
        ratios.append(result.total_value / optimum if optimum > 0 else 1.0)
    # On average very close to the optimum even on instances of 1 to 5 customers.
    assert np.mean(ratios) > 0.95
    assert np.mean(np.isclose(ratios, 1.0)) > 0.8


def test_without_a_budget_everyone_gets_their_best_positive_option() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        values, costs, _ = random_instance(rng)
        result = allocate(candidates(values, costs), None)
        assert result.total_value == pytest.approx(brute_force(values, costs, np.inf))
        best = values.max(axis=1)
        assert np.allclose(result.choice["value"], np.maximum(best, 0.0))
        assert result.upper_bound == pytest.approx(result.total_value)


def test_near_optimal_on_many_customers() -> None:
    """With many small customers the LP bound certifies the greedy within a fraction of 1%."""
    rng = np.random.default_rng(0)
    n = 20_000
    costs = rng.gamma(2.0, 1.0, (n, 3)) * np.array([1.0, 2.0, 4.0])
    values = rng.normal(1.0, 2.0, (n, 3))
    budget = 0.2 * costs.sum() / 3
    result = allocate(candidates(values, costs), budget)
    assert result.total_cost <= budget * (1 + 1e-9)
    assert result.total_value >= 0.999 * result.upper_bound


def test_sure_buyers_get_nothing() -> None:
    # c0 would buy anyway: each level only costs (negative value); c1 responds.
    frame = pd.DataFrame(
        {
            "customer_id": ["c0", "c0", "c1", "c1"],
            "level": [0.05, 0.10, 0.05, 0.10],
            "value": [-3.0, -6.0, 2.0, 3.0],
            "cost": [3.0, 6.0, 1.0, 3.0],
        }
    )
    result = allocate(frame, None)
    assert result.choice["level"].tolist() == [0.0, 0.10]
    assert result.choice["candidate"].tolist() == [-1, 3]
    # With a budget of 2, c1 gets the cheaper level.
    assert allocate(frame, 2.0).choice["level"].tolist() == [0.0, 0.05]
    # A zero budget gives nothing; min_value removes offers worth too little.
    assert allocate(frame, 0.0).total_value == 0.0
    assert allocate(frame, None, min_value=3.0).choice["level"].tolist() == [0.0, 0.0]


def test_dominated_and_free_options() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "level": [0.05, 0.10, 0.20, 0.05],
            "value": [1.0, 0.5, 4.0, 2.0],  # 10% is dominated by 5% (cheaper and worth more)
            "cost": [1.0, 2.0, 4.0, 0.0],  # b's offer is free: always taken
        }
    )
    result = allocate(frame, 1.0)
    assert result.choice.set_index("customer_id")["level"].to_dict() == {"a": 0.05, "b": 0.05}
    assert allocate(frame, 10.0).choice["level"].tolist() == [0.20, 0.05]


def test_one_large_offer_beats_many_small_ones_when_it_is_worth_more() -> None:
    # The greedy prefers c1 and c2 (efficiency 2), then cannot afford c0 (efficiency 1.5), so
    # the single best option (worth 15) replaces them (worth 4).
    frame = pd.DataFrame(
        {
            "customer_id": ["c0", "c1", "c2"],
            "level": [0.10, 0.10, 0.10],
            "value": [15.0, 2.0, 2.0],
            "cost": [10.0, 1.0, 1.0],
        }
    )
    result = allocate(frame, 10.0)
    assert result.choice["level"].tolist() == [0.10, 0.0, 0.0]
    assert result.total_value == 15.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="cost"), "missing column"),
        (lambda f: f.assign(cost=[1.0, np.nan]), "cost is missing or infinite in 1 of 2 rows"),
        (lambda f: f.assign(cost=[-1.0, 1.0]), "cost is negative in 1 of 2 rows"),
        (lambda f: f.assign(value=["a", "b"]), "value must be numeric"),
        (lambda f: f.assign(level=[0.0, 0.1]), "level must be in \\(0, 1\\).*1 of 2 rows"),
        (lambda f: f.assign(level=[0.1, 0.1], customer_id="x"), "1 of 2 rows repeat"),
        (lambda f: f.assign(customer_id=[None, "x"]), "customer_id is missing in 1 of 2"),
    ],
)
def test_bad_candidates(change: object, message: str) -> None:
    frame = pd.DataFrame(
        {"customer_id": ["a", "b"], "level": [0.1, 0.1], "value": [1.0, 1.0], "cost": [1.0, 1.0]}
    )
    assert callable(change)
    with pytest.raises(RetainInputError, match=message):
        allocate(change(frame), 1.0)


@pytest.mark.parametrize("budget", [-1.0, float("nan"), "lots"])
def test_bad_budget(budget: object) -> None:
    frame = pd.DataFrame({"customer_id": ["a"], "level": [0.1], "value": [1.0], "cost": [1.0]})
    with pytest.raises(RetainInputError, match="budget"):
        allocate(frame, budget)  # type: ignore[arg-type]
