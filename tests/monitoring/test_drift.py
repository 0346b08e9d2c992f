"""Population stability: the index itself, decile profiles, and counts that add up over chunks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from retain.monitoring import DriftProfile, add_counts, population_stability_index


def test_the_same_distribution_has_an_index_of_zero() -> None:
    assert population_stability_index([50, 30, 20, 0], [50, 30, 20, 0]) == 0
    # Shares, not sizes: ten times the customers in the same proportions is no drift.
    assert population_stability_index([5, 3, 2], [50, 30, 20]) == pytest.approx(0, abs=1e-15)


def test_the_index_of_two_small_distributions_by_hand() -> None:
    # Shares 0.5/0.3/0.2 against 0.3/0.3/0.4:
    # (0.3 - 0.5) ln(0.3 / 0.5) + 0 + (0.4 - 0.2) ln(0.4 / 0.2) = 0.2 ln(5/3) + 0.2 ln 2.
    expected = 0.2 * math.log(5 / 3) + 0.2 * math.log(2)
    assert expected == pytest.approx(0.2407946, abs=1e-7)
    assert population_stability_index([50, 30, 20], [30, 30, 40]) == pytest.approx(expected)
    assert population_stability_index([30, 30, 40], [50, 30, 20]) == pytest.approx(expected)


def test_an_empty_bin_gives_a_large_finite_index() -> None:
    """A share of 0 is floored at 1e-4 before the logarithm."""
    psi = population_stability_index([100, 0], [50, 50])
    by_hand = (0.5 - 1) * math.log(0.5 / 1) + (0.5 - 1e-4) * math.log(0.5 / 1e-4)
    assert psi == pytest.approx(by_hand)
    assert math.isfinite(psi) and psi > 4
    assert population_stability_index([0, 0], [0, 0]) == 0  # nothing counted: nothing moved


def test_the_profile_of_1_to_100_has_decile_edges_and_ten_equal_bins() -> None:
    frame = pd.DataFrame({"x": np.arange(1.0, 101.0), "y": np.arange(100.0, 0.0, -1)})
    profile = DriftProfile.fit(frame, ["x", "y", "not there"])
    assert list(profile.edges) == ["x", "y"]  # a column the frame lacks is not profiled
    # numpy's linear quantile of 1..100 at q is 1 + 99 q.
    assert profile.edges["x"] == pytest.approx([1 + 99 * q / 10 for q in range(1, 10)])
    assert profile.edges["y"] == profile.edges["x"]
    assert profile.counts["x"] == [10] * 10 + [0]  # the last count: missing values
    assert profile.stability(profile.counts) == {"x": 0.0, "y": 0.0}


def test_a_value_on_an_edge_falls_in_the_bin_below_and_non_finite_values_are_missing() -> None:
    profile = DriftProfile(edges={"x": [1.0, 2.0]}, counts={"x": [1, 1, 1, 0]})
    frame = pd.DataFrame({"x": [0.0, 1.0, 1.5, 2.0, 2.5, np.nan, np.inf, -np.inf]})
    assert profile.count(frame) == {"x": [2, 2, 1, 3]}


def test_repeated_values_give_fewer_bins() -> None:
    frame = pd.DataFrame(
        {
            "constant": np.full(50, 7.0),
            "mostly_zero": np.r_[np.zeros(40), np.ones(10)],
            "empty": np.full(50, np.nan),
        }
    )
    profile = DriftProfile.fit(frame, frame.columns)
    assert profile.edges["constant"] == [7.0]
    assert profile.counts["constant"] == [50, 0, 0]
    # Deciles of 40 zeros and 10 ones (linear interpolation at q * 49): seven at 0, the 8th
    # between the last 0 and the first 1 (0.2), the 9th at 1: three edges, four bins.
    assert profile.edges["mostly_zero"] == pytest.approx([0.0, 0.2, 1.0])
    assert profile.counts["mostly_zero"] == [40, 0, 10, 0, 0]
    assert profile.edges["empty"] == []
    assert profile.counts["empty"] == [0, 50]


def test_a_column_that_goes_missing_counts_as_drift() -> None:
    reference = pd.DataFrame({"x": np.arange(1.0, 101.0)})
    profile = DriftProfile.fit(reference, ["x"])
    for scored in (pd.DataFrame({"x": np.full(60, np.nan)}), pd.DataFrame({"other": range(60)})):
        counts = profile.count(scored)
        assert counts == {"x": [0] * 10 + [60]}
        assert profile.stability(counts)["x"] > 10  # far above the 0.25 of a different population


def test_a_shifted_population_drifts_and_a_resample_does_not() -> None:
    rng = np.random.default_rng(0)
    profile = DriftProfile.fit(pd.DataFrame({"x": rng.normal(size=20_000)}), ["x"])
    same = profile.stability(profile.count(pd.DataFrame({"x": rng.normal(size=20_000)})))
    shifted = profile.stability(profile.count(pd.DataFrame({"x": rng.normal(1, size=20_000)})))
    assert same["x"] < 0.01
    assert shifted["x"] > 0.25


def test_counts_of_parts_add_up_to_the_counts_of_the_whole() -> None:
    rng = np.random.default_rng(1)
    whole = pd.DataFrame({"x": rng.gamma(2.0, size=1_001), "y": rng.integers(0, 4, size=1_001)})
    whole.loc[rng.choice(1_001, size=37, replace=False), "x"] = np.nan
    profile = DriftProfile.fit(whole.sample(frac=0.5, random_state=2), ["x", "y"])
    total: dict[str, list[int]] = {}
    for part in (whole.iloc[:400], whole.iloc[400:401], whole.iloc[401:]):
        add_counts(total, profile.count(part))
    assert total == profile.count(whole)
    assert total["x"][-1] == 37
    assert sum(total["y"]) == 1_001


def test_adding_counts_copies_them_and_refuses_other_bins() -> None:
    part = {"x": [1, 2, 3]}
    total = add_counts({}, part)
    part["x"][0] = 100
    assert total == {"x": [1, 2, 3]}
    assert add_counts(total, {"x": [1, 1, 1], "y": [5]}) == {"x": [2, 3, 4], "y": [5]}
    with pytest.raises(ValueError):
        add_counts(total, {"x": [1, 1]})
