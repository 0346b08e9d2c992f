"""Holdout metrics: by hand on tiny arrays, against scikit-learn / scipy / a literal reference, and
the errors users see.

Hand example for the normalized Gini (used several times below):
  actual    [10, 0, 5, 0], mean 3.75
  predicted [.9, .8, .3, .1]  -> order 10, 0, 5, 0 -> cumulative 10, 10, 15, 15
  random line k * mean         3.75, 7.5, 11.25, 15
  area = 6.25 + 2.5 + 3.75 + 0 = 12.5
  perfect order 10, 5, 0, 0 -> cumulative 10, 15, 15, 15 -> area 6.25 + 7.5 + 3.75 = 17.5
  normalized Gini = 12.5 / 17.5 = 5 / 7
With predicted [1, 1, 0, 0] (two runs of ties) the runs are replaced by their means 5, 5 | 2.5, 2.5:
  cumulative 5, 10, 12.5, 15 -> area 1.25 + 2.5 + 1.25 = 5 -> normalized Gini 5 / 17.5 = 2 / 7.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from retain.errors import RetainInputError
from retain.evaluation import (
    calibration_table,
    churn_metrics,
    count_metrics,
    decile_table,
    gains_curve,
    lift_table,
    normalized_gini,
    repurchase_auc,
    value_metrics,
)

RNG_SEED = 20240611


def kaggle_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The Kaggle (Liberty Mutual / Porto Seguro) reference, verbatim in spirit; no ties allowed."""
    table = np.c_[actual, predicted, np.arange(len(actual))].astype(float)
    table = table[np.lexsort((table[:, 2], -1 * table[:, 1]))]
    gini_sum = table[:, 0].cumsum().sum() / table[:, 0].sum()
    gini_sum -= (len(actual) + 1) / 2.0
    return float(gini_sum / len(actual))


# --- normalized Gini -------------------------------------------------------------------------


def test_gini_perfect_ordering_is_one_and_reversed_is_minus_one() -> None:
    actual = np.array([3.0, 10.0, 0.0, 7.5, 1.0])
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, actual * 100 + 4) == pytest.approx(1.0)  # only order counts
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)


def test_gini_hand_example() -> None:
    actual = [10.0, 0.0, 5.0, 0.0]
    assert normalized_gini(actual, [0.9, 0.8, 0.3, 0.1]) == pytest.approx(5 / 7)


def test_gini_ties_are_ordered_at_random() -> None:
    actual = np.array([10.0, 0.0, 5.0, 0.0])
    assert normalized_gini(actual, [1.0, 1.0, 0.0, 0.0]) == pytest.approx(2 / 7)
    # the same customers in another row order: same answer (a stable sort would differ)
    order = [1, 0, 3, 2]
    assert normalized_gini(actual[order], np.array([1.0, 1.0, 0.0, 0.0])[order]) == (
        pytest.approx(2 / 7)
    )
    assert normalized_gini(actual, np.full(4, 3.0)) == pytest.approx(0.0)


def test_gini_matches_the_kaggle_reference_without_ties() -> None:
    rng = np.random.default_rng(RNG_SEED)
    actual = rng.gamma(0.8, 120.0, size=400) * (rng.random(400) < 0.6)
    predicted = actual + rng.normal(0.0, 60.0, size=400)  # continuous: no ties
    expected = kaggle_gini(actual, predicted) / kaggle_gini(actual, actual)
    assert normalized_gini(actual, predicted) == pytest.approx(expected, rel=1e-12)


def test_gini_of_binary_outcomes_is_two_auc_minus_one_with_ties() -> None:
    rng = np.random.default_rng(RNG_SEED)
    y = rng.random(300) < 0.3
    score = np.round(rng.random(300) + 0.4 * y, 1)  # ~14 distinct values: many ties
    auc = skm.roc_auc_score(y, score)
    assert normalized_gini(y.astype(float), score) == pytest.approx(2 * auc - 1, abs=1e-12)


def test_gini_with_negative_actuals_stays_in_range() -> None:
    actual = np.array([100.0, -20.0, 0.0, 50.0])  # a net refunder
    assert normalized_gini(actual, actual) == pytest.approx(1.0)
    assert normalized_gini(actual, -actual) == pytest.approx(-1.0)
    # refunder ranked first, rest in order: 100/50/0 after -20
    # order -20, 100, 50, 0 -> cumulative -20, 80, 130, 130; mean 32.5 -> area -52.5+15+32.5+0
    # perfect 100, 50, 0, -20 -> cumulative 100, 150, 150, 130 -> area 67.5+85+52.5+0 = 205
    assert normalized_gini(actual, [3.0, 4.0, 1.0, 2.0]) == pytest.approx(-5.0 / 205.0)
    rng = np.random.default_rng(RNG_SEED)
    for _ in range(20):
        values = rng.normal(10.0, 30.0, size=50)  # many negative values, total of either sign
        gini = normalized_gini(values, rng.normal(size=50))
        assert -1.0 - 1e-12 <= gini <= 1.0 + 1e-12


def test_gini_undefined_when_actual_is_constant() -> None:
    with pytest.raises(RetainInputError, match=r"actual has the same value \(4\) for all 3"):
        normalized_gini([4.0, 4.0, 4.0], [1.0, 2.0, 3.0])


# --- churn -----------------------------------------------------------------------------------


def test_churn_metrics_by_hand() -> None:
    # pairs (positive, negative): (.9,.2) (.9,.6) (.4,.2) right, (.4,.6) wrong -> AUC 3/4
    # by decreasing p: .9 (1), .6 (0), .4 (1), .2 (0): AP = 1/2 * 1 + 1/2 * 2/3
    result = churn_metrics([True, False, True, False], [0.9, 0.2, 0.4, 0.6])
    assert result == pytest.approx(
        {
            "roc_auc": 0.75,
            "pr_auc": 0.5 + 1 / 3,
            "brier": (0.01 + 0.04 + 0.36 + 0.36) / 4,
            "log_loss": -(math.log(0.9) + math.log(0.8) + math.log(0.4) + math.log(0.4)) / 4,
            "base_rate": 0.5,
            "mean_predicted": 0.525,
        }
    )


def test_churn_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(RNG_SEED)
    p = rng.random(1000)
    y = rng.random(1000) < p
    result = churn_metrics(pd.Series(y.astype(int)), pd.Series(p))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert result["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert result["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    assert result["log_loss"] == pytest.approx(skm.log_loss(y, p))
    assert result["base_rate"] == pytest.approx(y.mean())
    assert set(result) == {"roc_auc", "pr_auc", "brier", "log_loss", "base_rate", "mean_predicted"}


def test_log_loss_of_a_confident_mistake_is_finite() -> None:
    result = churn_metrics([1, 0], [0.0, 0.0])
    assert result["log_loss"] == pytest.approx(-math.log(1e-15) / 2)


def test_repurchase_auc_matches_sklearn_and_takes_any_score() -> None:
    rng = np.random.default_rng(RNG_SEED)
    y = rng.random(200) < 0.4
    days_to_next = rng.exponential(30.0, 200) - 20.0 * y
    assert repurchase_auc(y, -days_to_next) == pytest.approx(skm.roc_auc_score(y, -days_to_next))
    assert repurchase_auc([0, 1, 1], [0.1, 0.3, 0.2]) == 1.0


# --- calibration -----------------------------------------------------------------------------


def test_calibration_table_uniform_bins_by_hand() -> None:
    # edge 0.5: (.., 0.5] is bin 1, like sklearn
    table = calibration_table(
        [0, 0, 1, 1, 0], [0.1, 0.2, 0.5, 0.7, 0.9], n_bins=2, strategy="uniform"
    )
    assert list(table.columns) == ["bin", "n", "mean_predicted", "observed_rate", "gap"]
    assert table["bin"].tolist() == [1, 2]
    assert table["n"].tolist() == [3, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.8 / 3, 0.8])
    assert table["observed_rate"].tolist() == pytest.approx([1 / 3, 0.5])
    assert table["gap"].tolist() == pytest.approx([0.8 / 3 - 1 / 3, 0.3])


def test_calibration_table_skips_empty_bins() -> None:
    table = calibration_table([0, 1, 0, 1], [0.05, 0.15, 0.95, 0.95], n_bins=10, strategy="uniform")
    assert table["bin"].tolist() == [1, 2, 10]
    assert table["n"].tolist() == [1, 1, 2]
    assert table["observed_rate"].tolist() == [0.0, 1.0, 0.5]


@pytest.mark.parametrize("strategy", ["quantile", "uniform"])
def test_calibration_table_matches_sklearn(strategy: Any) -> None:
    rng = np.random.default_rng(RNG_SEED)
    p = np.round(rng.beta(0.7, 2.0, 2000), 2)  # skewed with ties: quantile edges repeat
    y = rng.random(2000) < p
    table = calibration_table(y, p, n_bins=10, strategy=strategy)
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy=strategy)
    assert table["observed_rate"].to_numpy() == pytest.approx(observed)
    assert table["mean_predicted"].to_numpy() == pytest.approx(predicted)
    assert table["n"].sum() == 2000


def test_calibration_table_arguments() -> None:
    with pytest.raises(RetainInputError, match="strategy must be one of 'quantile', 'uniform'"):
        calibration_table([0, 1], [0.2, 0.4], strategy="kmeans")  # type: ignore[arg-type]
    with pytest.raises(RetainInputError, match="n_bins must be a whole number >= 1, not 0"):
        calibration_table([0, 1], [0.2, 0.4], n_bins=0)


# --- purchases -------------------------------------------------------------------------------


def test_count_metrics_by_hand() -> None:
    result = count_metrics([0, 1, 3], [0.5, 1.0, 2.5])
    assert result == pytest.approx(
        {
            "spearman": 1.0,
            "any_auc": 1.0,
            "buyers_spearman": 1.0,
            "mae": 1 / 3,
            "rmse": math.sqrt(0.5 / 3),
            "total_actual": 4.0,
            "total_predicted": 4.0,
            "total_error": 0.0,
        }
    )


def test_total_error_sign() -> None:
    assert count_metrics([1, 3], [2.0, 4.0])["total_error"] == pytest.approx(0.5)  # over
    assert count_metrics([1, 3], [1.0, 2.0])["total_error"] == pytest.approx(-0.25)  # under
    assert value_metrics([10.0, 30.0], [20.0, 40.0])["total_error"] == pytest.approx(0.5)
    assert value_metrics([10.0, 30.0], [5.0, 15.0])["total_error"] == pytest.approx(-0.5)


def test_count_metrics_spearman_matches_scipy_and_is_nan_for_constant() -> None:
    rng = np.random.default_rng(RNG_SEED)
    actual = rng.poisson(1.5, 300)
    predicted = actual + rng.gamma(1.0, 1.0, 300)
    expected = stats.spearmanr(actual, predicted).statistic
    assert count_metrics(actual, predicted)["spearman"] == pytest.approx(expected)
    assert math.isnan(count_metrics(actual, np.full(300, 1.5))["spearman"])


def test_count_metrics_split_spearman_into_who_buys_and_how_much() -> None:
    actual = [0] * 8 + [1, 1, 2, 5]
    # Orders the non-buyers among themselves; one of them above two buyers.
    continuous = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.2, 0.8, 1.0, 1.5, 4.0]
    # Ties the non-buyers at zero, and one buyer with them: misses more of who buys.
    tied = [0] * 8 + [0, 1, 2, 5]
    good, naive = count_metrics(actual, continuous), count_metrics(actual, tied)
    assert good["any_auc"] == pytest.approx(30 / 32)  # 2 of 32 pairs wrong
    assert naive["any_auc"] == pytest.approx(28 / 32)  # 8 pairs tied, counted half
    assert good["buyers_spearman"] == pytest.approx(naive["buyers_spearman"])
    # ... and yet the tied rule wins the overall rank correlation.
    assert naive["spearman"] > good["spearman"] + 0.1
    assert naive["spearman"] == pytest.approx(stats.spearmanr(actual, tied).statistic)


def test_count_metrics_parts_are_nan_when_undefined() -> None:
    nobody_buys_twice = count_metrics([0, 0, 1], [0.1, 0.2, 0.3])
    assert nobody_buys_twice["any_auc"] == 1.0
    assert math.isnan(nobody_buys_twice["buyers_spearman"])  # one buyer: nothing to rank
    everyone_buys = count_metrics([1, 2, 3], [0.1, 0.2, 0.3])
    assert math.isnan(everyone_buys["any_auc"])
    assert everyone_buys["buyers_spearman"] == pytest.approx(1.0)


def test_count_metrics_reject_negative_counts_and_zero_total() -> None:
    with pytest.raises(RetainInputError, match=r"actual holds purchase counts but 1 value"):
        count_metrics([2, -1], [1.0, 1.0])
    with pytest.raises(RetainInputError, match="actual sums to 0; total_error need"):
        count_metrics([0, 0], [1.0, 1.0])


# --- value and deciles -----------------------------------------------------------------------


def test_value_metrics_by_hand() -> None:
    actual = np.arange(20, dtype=float)  # total 190; top 10% = 2 customers
    result = value_metrics(actual, actual[::-1] + 1.0)  # reversed: customers 0 and 1 on top
    assert set(result) == {"normalized_gini", "spearman", "mae", "total_error", "top_decile_share"}
    assert result["top_decile_share"] == pytest.approx((0 + 1) / 190)
    assert result["normalized_gini"] == pytest.approx(-1.0)
    assert result["spearman"] == pytest.approx(-1.0)
    assert result["mae"] == pytest.approx(np.mean(np.abs(np.arange(20) * 2 - 20)))  # |20-2i|
    assert result["total_error"] == pytest.approx(20 / 190)
    assert value_metrics(actual, actual)["top_decile_share"] == pytest.approx((19 + 18) / 190)


def test_decile_table_sums_to_totals_and_orders_by_prediction() -> None:
    rng = np.random.default_rng(RNG_SEED)
    actual = rng.gamma(0.5, 200.0, 1003)
    predicted = actual * rng.lognormal(0.0, 0.5, 1003)
    table = decile_table(actual, predicted)
    assert list(table.columns) == [
        "decile",
        "n",
        "mean_predicted",
        "mean_actual",
        "share_of_actual",
        "cumulative_share",
    ]
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["n"].sum() == 1003
    assert set(table["n"]) == {100, 101}
    assert (table["n"] * table["mean_actual"]).sum() == pytest.approx(actual.sum())
    assert (table["n"] * table["mean_predicted"]).sum() == pytest.approx(predicted.sum())
    assert table["share_of_actual"].sum() == pytest.approx(1.0)
    assert table["cumulative_share"].iloc[-1] == pytest.approx(1.0)
    assert table["mean_predicted"].is_monotonic_decreasing
    assert table["share_of_actual"].iloc[0] == pytest.approx(
        value_metrics(actual, predicted)["top_decile_share"]
    )


def test_decile_table_by_hand_with_ties() -> None:
    # sorted by prediction: 9 (a=1), then 5, 5 tie (a=10, 0 -> 5, 5), then 1 (a=4)
    table = decile_table([10.0, 0.0, 1.0, 4.0], [5.0, 5.0, 9.0, 1.0], n=2)
    assert table["n"].tolist() == [2, 2]
    assert table["mean_predicted"].tolist() == [7.0, 3.0]
    assert table["mean_actual"].tolist() == [3.0, 4.5]
    assert table["share_of_actual"].tolist() == pytest.approx([6 / 15, 9 / 15])
    assert table["cumulative_share"].tolist() == pytest.approx([6 / 15, 1.0])


def test_constant_prediction_has_flat_deciles() -> None:
    actual = np.arange(1.0, 21.0)  # sorted: a stable sort would give a perfect ranking
    table = decile_table(actual, np.zeros(20), n=4)
    assert table["mean_actual"].tolist() == pytest.approx([10.5] * 4)
    assert value_metrics(actual, np.zeros(20))["top_decile_share"] == pytest.approx(0.1)


def test_decile_group_sizes_differ_by_at_most_one() -> None:
    table = decile_table(np.arange(1.0, 12.0), np.arange(11.0), n=10)
    assert table["n"].tolist() == [2, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    with pytest.raises(RetainInputError, match="n=10 groups need at least 10 customers"):
        decile_table([1.0, 2.0], [1.0, 2.0])


def test_value_shares_need_a_positive_total() -> None:
    with pytest.raises(RetainInputError, match=r"actual sums to -5; total_error and top_decile"):
        value_metrics([-10.0, 5.0], [1.0, 2.0])
    with pytest.raises(RetainInputError, match="actual sums to 0; share_of_actual"):
        decile_table([-1.0, 1.0], [1.0, 2.0], n=2)


# --- gains and lift --------------------------------------------------------------------------


def test_lift_table_by_hand() -> None:
    y = [1, 1, 0, 0, 0, 1, 0, 0, 0, 0]
    score = np.arange(10.0, 0.0, -1.0)  # already in decreasing order
    table = lift_table(y, score, n=5)
    assert table["n"].tolist() == [2] * 5
    assert table["positives"].tolist() == [2, 0, 1, 0, 0]
    assert table["positive_rate"].tolist() == [1.0, 0.0, 0.5, 0.0, 0.0]
    assert table["lift"].tolist() == pytest.approx([10 / 3, 0.0, 5 / 3, 0.0, 0.0])
    assert table["cumulative_share_of_customers"].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8, 1])
    assert table["cumulative_gain"].tolist() == pytest.approx([2 / 3, 2 / 3, 1.0, 1.0, 1.0])
    assert table["cumulative_lift"].tolist() == pytest.approx([10 / 3, 5 / 3, 5 / 3, 1.25, 1.0])


def test_lift_table_ties_give_expected_counts() -> None:
    table = lift_table([1, 0, 0, 1], [1.0, 1.0, 1.0, 0.0], n=2)  # 1 positive among 3 tied
    assert table["positives"].tolist() == pytest.approx([2 / 3, 1 / 3 + 1])


def test_gains_curve() -> None:
    curve = gains_curve([0, 1, 1, 0], [0.1, 0.9, 0.5, 0.5])
    assert curve["share_targeted"].tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    # 0.9 (1), then the tie 0.5 holds one positive in two -> half a positive each
    assert curve["share_captured"].tolist() == pytest.approx([0.0, 0.5, 0.75, 1.0, 1.0])
    with pytest.raises(RetainInputError, match="y_true sums to 0; the gains curve"):
        gains_curve([0, 0], [0.1, 0.2])


# --- input errors ----------------------------------------------------------------------------

TWO_ARRAYS: list[tuple[str, Callable[..., object], tuple[str, str]]] = [
    ("churn_metrics", churn_metrics, ("churned", "p_churn")),
    ("calibration_table", calibration_table, ("y", "p")),
    ("repurchase_auc", repurchase_auc, ("purchased_within_30d", "p_purchase_30d")),
    ("count_metrics", count_metrics, ("actual", "predicted")),
    ("value_metrics", value_metrics, ("actual", "predicted")),
    ("normalized_gini", normalized_gini, ("actual", "predicted")),
    ("decile_table", lambda a, p: decile_table(a, p, n=2), ("actual", "predicted")),
    ("lift_table", lambda a, p: lift_table(a, p, n=2), ("y_true", "score")),
    ("gains_curve", gains_curve, ("y_true", "score")),
]
GOOD_FIRST = np.array([1.0, 0.0, 1.0, 0.0])
GOOD_SECOND = np.array([0.9, 0.1, 0.6, 0.3])


@pytest.mark.parametrize(("label", "function", "names"), TWO_ARRAYS, ids=[t[0] for t in TWO_ARRAYS])
def test_nan_is_named(label: str, function: Callable[..., object], names: tuple[str, str]) -> None:
    with pytest.raises(RetainInputError, match=rf"^{names[1]} has 1 missing \(NaN\) value"):
        function(GOOD_FIRST, np.array([0.9, np.nan, 0.6, 0.3]))
    with pytest.raises(RetainInputError, match=rf"^{names[0]} has 2 missing \(NaN\) value"):
        function(pd.Series([1.0, None, np.nan, 0.0]), GOOD_SECOND)


@pytest.mark.parametrize(("label", "function", "names"), TWO_ARRAYS, ids=[t[0] for t in TWO_ARRAYS])
def test_length_mismatch_is_named(
    label: str, function: Callable[..., object], names: tuple[str, str]
) -> None:
    message = rf"^{names[0]} has 4 values but {names[1]} has 3"
    with pytest.raises(RetainInputError, match=message):
        function(GOOD_FIRST, GOOD_SECOND[:3])


@pytest.mark.parametrize(("label", "function", "names"), TWO_ARRAYS, ids=[t[0] for t in TWO_ARRAYS])
def test_misaligned_series_are_refused(
    label: str, function: Callable[..., object], names: tuple[str, str]
) -> None:
    first = pd.Series(GOOD_FIRST, index=["a", "b", "c", "d"])
    with pytest.raises(RetainInputError, match="are Series with different indexes"):
        function(first, pd.Series(GOOD_SECOND, index=["b", "a", "c", "d"]))
    function(first, pd.Series(GOOD_SECOND, index=["a", "b", "c", "d"]))  # aligned: fine


def test_infinite_and_empty_and_shape_errors() -> None:
    with pytest.raises(RetainInputError, match=r"predicted has 1 infinite value\(s\) out of 2"):
        count_metrics([1, 2], [1.0, np.inf])
    with pytest.raises(RetainInputError, match="actual is empty"):
        count_metrics([], [])
    with pytest.raises(RetainInputError, match=r"actual must be one-dimensional .* \(2, 2\)"):
        count_metrics(np.ones((2, 2)), np.ones(4))
    with pytest.raises(
        RetainInputError, match=r"actual must be one-dimensional .* not a DataFrame"
    ):
        value_metrics(pd.DataFrame({"a": [1.0]}), [1.0])
    with pytest.raises(RetainInputError, match="predicted must hold numbers"):
        value_metrics([1.0, 2.0], ["high", "low"])


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: churn_metrics([1, 1, 1], [0.2, 0.5, 0.9]), "churned"),
        (lambda: repurchase_auc([0, 0], [0.2, 0.5]), "purchased_within_30d"),
    ],
)
def test_single_class_is_a_clear_error(call: Callable[[], object], name: str) -> None:
    with pytest.raises(RetainInputError, match=rf"^{name} holds a single class") as error:
        call()
    assert "undefined without both outcomes" in str(error.value)
    assert "Only one class" not in str(error.value)  # not scikit-learn's message


def test_labels_and_probabilities_are_checked() -> None:
    with pytest.raises(RetainInputError, match=r"churned must hold 0/1 .* \(e.g. 2\)"):
        churn_metrics([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(RetainInputError, match=r"p_churn must hold probabilities in \[0, 1\]"):
        churn_metrics([0, 1], [0.1, 1.2])
    with pytest.raises(RetainInputError, match=r"churned has 1 missing \(NaN\)"):
        churn_metrics(pd.Series([True, None, False], dtype="boolean"), [0.1, 0.2, 0.3])


def test_error_is_a_value_error_for_generic_callers() -> None:
    with pytest.raises(ValueError, match="p has 1 missing"):
        calibration_table([0, 1], [0.5, float("nan")])
