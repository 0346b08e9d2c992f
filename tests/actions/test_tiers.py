"""Loyalty tiers: cut points from quantiles of the base's CLV or from amounts, inclusive."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.actions import ActionSettings, TierSettings, loyalty_tiers, tier_cuts
from retain.errors import RetainInputError

CLV = pd.Series(np.arange(1.0, 101.0), index=np.arange(100, 200))


def amounts(*cuts: float, names: tuple[str, ...] = ("A", "B", "C")) -> ActionSettings:
    return ActionSettings(tiers=TierSettings(names=list(names), amounts=list(cuts)))


def quantile(q: float) -> ActionSettings:
    return ActionSettings(tiers=TierSettings(names=["A", "B"], quantiles=[q]))


def test_default_quantile_cuts_on_a_known_vector() -> None:
    tiers = loyalty_tiers(CLV)
    # Quantiles of 1..100: the median 50.5, the 80th percentile 80.2, the 95th 95.05.
    assert tiers.value_counts(sort=False).tolist() == [50, 30, 15, 5]
    assert tiers.loc[[100, 149, 150, 179, 180, 194, 195, 199]].tolist() == [
        "Bronze",
        "Bronze",
        "Silver",
        "Silver",
        "Gold",
        "Gold",
        "Platinum",
        "Platinum",
    ]
    cuts = tier_cuts(CLV)
    assert cuts.index.tolist() == ["Bronze", "Silver", "Gold", "Platinum"]
    assert cuts.index.name == "loyalty_tier"
    assert cuts["min_clv"].tolist() == pytest.approx([-np.inf, 50.5, 80.2, 95.05])
    assert cuts["max_clv"].tolist() == pytest.approx([50.5, 80.2, 95.05, np.inf])
    assert cuts["from_quantile"].tolist()[1:] == [0.5, 0.8, 0.95]
    assert np.isnan(cuts["from_quantile"].iloc[0])
    assert cuts["customers"].tolist() == [50, 30, 15, 5]


def test_an_ordered_categorical_with_the_index() -> None:
    tiers = loyalty_tiers(CLV)
    assert tiers.name == "loyalty_tier"
    assert tiers.index.equals(CLV.index)
    assert tiers.cat.ordered
    assert list(tiers.cat.categories) == ["Bronze", "Silver", "Gold", "Platinum"]
    assert tiers.iloc[0] < tiers.iloc[-1]


def test_absolute_cuts_are_inclusive() -> None:
    settings = amounts(10.0, 100.0)
    clv = pd.Series([0.0, 9.99, 10.0, 99.99, 100.0, 1e6])
    assert loyalty_tiers(clv, settings).tolist() == ["A", "A", "B", "B", "C", "C"]
    cuts = tier_cuts(clv, settings)
    assert cuts["min_clv"].tolist() == [-np.inf, 10.0, 100.0]
    assert cuts["from_quantile"].isna().all()
    assert cuts["customers"].tolist() == [2, 2, 2]


def test_amounts_do_not_depend_on_the_base() -> None:
    settings = amounts(10.0, 100.0)
    assert loyalty_tiers(pd.Series([50.0]), settings).tolist() == ["B"]
    assert loyalty_tiers(pd.Series([50.0, 1.0, 1.0, 1.0]), settings).tolist()[0] == "B"


def test_custom_names_and_quantiles() -> None:
    settings = ActionSettings(tiers=TierSettings(names=["Member", "VIP"], quantiles=[0.9]))
    tiers = loyalty_tiers(CLV, settings)
    assert tiers.value_counts(sort=False).to_dict() == {"Member": 90, "VIP": 10}


def test_customers_on_a_quantile_cut_stay_below_it() -> None:
    # Most customers have no predicted value: the median and 80th percentile are both 0, and the
    # zeros stay together at the bottom rather than fill Gold.
    clv = pd.Series([0.0] * 9 + [10.0])
    tiers = loyalty_tiers(clv)
    cuts = tier_cuts(clv)
    assert cuts["min_clv"].tolist()[1:] == pytest.approx([0.0, 0.0, 5.5])
    assert tiers.value_counts(sort=False).to_dict() == {
        "Bronze": 9,
        "Silver": 0,
        "Gold": 0,
        "Platinum": 1,
    }
    assert cuts["customers"].tolist() == [9, 0, 0, 1]
    # Everyone alike: nobody stands out.
    assert set(loyalty_tiers(pd.Series([3.0] * 5))) == {"Bronze"}
    # A value on the median of an odd count stays below it.
    assert loyalty_tiers(pd.Series([1.0, 2.0, 3.0]), quantile(0.5)).tolist() == ["A", "A", "B"]


def test_a_plain_array() -> None:
    tiers = loyalty_tiers(np.array([1.0, 2.0, 3.0]), amounts(2.0, 3.0))
    assert tiers.tolist() == ["A", "B", "C"]
    assert tiers.index.tolist() == [0, 1, 2]


def test_an_empty_base() -> None:
    assert loyalty_tiers(pd.Series([], dtype="float64")).empty
    cuts = tier_cuts(pd.Series([], dtype="float64"))
    assert cuts["customers"].tolist() == [0, 0, 0, 0]
    assert cuts["min_clv"].iloc[1:].isna().all()


def test_missing_values_are_counted() -> None:
    with pytest.raises(RetainInputError, match="clv has 2 missing or non-numeric values in 4 rows"):
        loyalty_tiers(pd.Series([1.0, np.nan, None, 3.0]))
    with pytest.raises(RetainInputError, match="clv has 1 missing"):
        tier_cuts(pd.Series([1.0, "lots"], dtype=object))
