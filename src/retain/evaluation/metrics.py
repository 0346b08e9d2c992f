"""Holdout metrics for churn, repurchase timing, purchase counts and customer value.

Every retain report puts the model beside baselines scored on the same holdout (BG/NBD +
Gamma-Gamma, and a naive rule), so these functions take plain arrays or Series of predictions, not
models: any contender is evaluated the same way.

Conventions (the project's contract)
------------------------------------
- Inputs are one-dimensional arrays or Series with one value per customer, in the same order. Two
  Series must carry the same index: positions are compared, so a misaligned pair would silently
  compare different customers; align them first (``.reindex``).
- Missing (NaN) or infinite values, mismatched lengths, empty inputs, labels other than 0/1 and
  probabilities outside [0, 1] raise :class:`~retain.errors.RetainInputError` naming the argument.
  Nothing is dropped silently: a customer without a prediction is the caller's decision.
- *Ties in a score are ordered at random.* Rankings (normalized Gini, deciles, lift, gains) sort
  customers by decreasing score; customers with equal scores get the mean of their actual values,
  which is the expectation over every order of the ties. A constant score is therefore exactly as
  good as random, and results never depend on how the rows happened to be sorted. This matters for
  the naive baselines (recency in whole days, last period's spend) whose scores tie a lot. Counts of
  positives in :func:`lift_table` can be fractional for that reason.
- Deciles are by position: customers sorted by decreasing score, then cut into ``n`` groups whose
  sizes differ by at most one (the larger groups first). Decile 1 holds the highest scores.
- Rank correlations are NaN when either side is constant (the correlation is undefined); a
  constant prediction is a property of a contender, not an input error.
"""

from __future__ import annotations

import math
import numbers
from typing import Final, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats
from sklearn import metrics as skm

from retain.errors import RetainInputError

__all__ = [
    "CALIBRATION_STRATEGIES",
    "calibration_table",
    "churn_metrics",
    "count_metrics",
    "decile_table",
    "gains_curve",
    "lift_table",
    "normalized_gini",
    "repurchase_auc",
    "value_metrics",
]

CALIBRATION_STRATEGIES: Final = ("quantile", "uniform")
"""Binning of :func:`calibration_table`: equal-count bins, or equal-width bins on [0, 1]."""

LOG_LOSS_EPSILON: Final = 1e-15
"""Probabilities are clipped to [eps, 1 - eps] in the log loss, so that a confident wrong
prediction costs about 34.5 nats instead of infinity."""

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --- churn -----------------------------------------------------------------------------------


def churn_metrics(churned: ArrayLike, p_churn: ArrayLike) -> dict[str, float]:
    """Discrimination and calibration of churn probabilities on a holdout.

    ``churned`` holds 0/1 (or boolean) outcomes, ``p_churn`` the predicted probabilities of the
    same customers. Returns ``roc_auc``, ``pr_auc`` (average precision, the step-wise area that
    scikit-learn computes, not the trapezoid), ``brier`` (mean squared error of the probability),
    ``log_loss`` (natural log, probabilities clipped to ``LOG_LOSS_EPSILON``), ``base_rate``
    (observed churn share) and ``mean_predicted``: the last two side by side say at a glance
    whether the model's overall level is right, which the AUCs ignore.
    """
    y = _labels("churned", churned)
    p = _probabilities("p_churn", p_churn)
    _check_same_customers("churned", churned, len(y), "p_churn", p_churn, len(p))
    _require_both_classes("churned", y, "ROC-AUC and PR-AUC")
    clipped = np.clip(p, LOG_LOSS_EPSILON, 1.0 - LOG_LOSS_EPSILON)
    log_loss = -np.mean(np.where(y, np.log(clipped), np.log1p(-clipped)))
    return {
        "roc_auc": float(skm.roc_auc_score(y, p)),
        "pr_auc": float(skm.average_precision_score(y, p)),
        "brier": float(np.mean((p - y) ** 2)),
        "log_loss": float(log_loss),
        "base_rate": float(np.mean(y)),
        "mean_predicted": float(np.mean(p)),
    }


def calibration_table(
    y: ArrayLike,
    p: ArrayLike,
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
) -> pd.DataFrame:
    """Observed rate against mean predicted probability, bin by bin (a reliability table).

    ``strategy="quantile"`` cuts at the quantiles of ``p`` (bins of about equal size, so every bin
    has enough customers to estimate its rate); ``"uniform"`` cuts [0, 1] into equal widths. Bins
    are the same as :func:`sklearn.calibration.calibration_curve`: ``(edge_{k-1}, edge_k]``, the
    first one closed on the left. Empty bins (equal quantiles, when many probabilities tie) are
    left out, so ``bin`` (1..n_bins) can skip numbers.

    Columns: ``bin``, ``n``, ``mean_predicted``, ``observed_rate`` and ``gap`` =
    ``mean_predicted - observed_rate`` (positive: the model over-predicts the event in that bin).
    """
    labels = _labels("y", y)
    probabilities = _probabilities("p", p)
    _check_same_customers("y", y, len(labels), "p", p, len(probabilities))
    bins = _whole_number("n_bins", n_bins, minimum=1)
    if strategy not in CALIBRATION_STRATEGIES:
        raise RetainInputError(
            f"strategy must be one of {', '.join(map(repr, CALIBRATION_STRATEGIES))}, "
            f"not {strategy!r}"
        )
    if strategy == "quantile":
        edges = np.percentile(probabilities, np.linspace(0.0, 100.0, bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    bin_index = np.searchsorted(edges[1:-1], probabilities)
    counts = np.bincount(bin_index, minlength=bins)
    predicted = np.bincount(bin_index, weights=probabilities, minlength=bins)
    observed = np.bincount(bin_index, weights=labels.astype(np.float64), minlength=bins)
    used = counts > 0
    n = counts[used]
    mean_predicted = predicted[used] / n
    observed_rate = observed[used] / n
    return pd.DataFrame(
        {
            "bin": np.flatnonzero(used) + 1,
            "n": n,
            "mean_predicted": mean_predicted,
            "observed_rate": observed_rate,
            "gap": mean_predicted - observed_rate,
        }
    )


# --- timing ----------------------------------------------------------------------------------


def repurchase_auc(purchased_within_30d: ArrayLike, p_purchase_30d: ArrayLike) -> float:
    """ROC-AUC of the 30-day repurchase prediction.

    Only the ordering of ``p_purchase_30d`` matters, so any score where higher means "sooner"
    is accepted (a probability, or minus the expected days to the next purchase).
    """
    y = _labels("purchased_within_30d", purchased_within_30d)
    score = _values("p_purchase_30d", p_purchase_30d)
    _check_same_customers(
        "purchased_within_30d",
        purchased_within_30d,
        len(y),
        "p_purchase_30d",
        p_purchase_30d,
        len(score),
    )
    _require_both_classes("purchased_within_30d", y, "ROC-AUC")
    return float(skm.roc_auc_score(y, score))


# --- purchases -------------------------------------------------------------------------------


def count_metrics(actual: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """Errors of predicted purchase counts in the holdout, per customer and in total.

    Returns ``spearman`` (does the model rank the frequent buyers first), ``mae``, ``rmse``,
    ``total_actual``, ``total_predicted`` and ``total_error`` = (predicted - actual) / actual
    over the totals: signed, so +0.10 means the model expects 10% more purchases than happened.
    The total is what capacity and revenue planning use, and per-customer errors can cancel in
    it. ``actual`` must be counts (no negative values) with a positive total.

    ``spearman`` splits into two questions, also returned: ``any_auc``, the ROC-AUC of the
    predictions for "buys at all", and ``buyers_spearman``, the rank correlation among the
    customers who did buy (NaN with fewer than two of them). When most customers buy nothing,
    ``spearman`` favours predictions that tie them: a rule that predicts 0 for most of them (last
    period's count) can beat a better-ranking continuous prediction there, which the two parts
    show.
    """
    a = _values("actual", actual)
    p = _values("predicted", predicted)
    _check_same_customers("actual", actual, len(a), "predicted", predicted, len(p))
    negative = a < 0
    if negative.any():
        raise RetainInputError(
            f"actual holds purchase counts but {int(negative.sum()):,} value(s) are negative "
            f"(lowest {a.min():g})"
        )
    total_actual = _positive_total("actual", a, "total_error")
    total_predicted = float(p.sum())
    error = p - a
    bought = a > 0
    return {
        "spearman": _spearman(a, p),
        "any_auc": float(skm.roc_auc_score(bought, p)) if 0 < bought.sum() < len(a) else math.nan,
        "buyers_spearman": _spearman(a[bought], p[bought]),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "total_actual": total_actual,
        "total_predicted": total_predicted,
        "total_error": (total_predicted - total_actual) / total_actual,
    }


# --- value -----------------------------------------------------------------------------------


def normalized_gini(actual: ArrayLike, predicted: ArrayLike) -> float:
    """Gini of the predicted ordering over the Gini of the perfect ordering (Kaggle/insurance).

    Customers are sorted by decreasing ``predicted``; the Gini is the area between the curve of
    cumulative actual value and the diagonal of a random ordering, and the perfect ordering
    (sorted by ``actual`` itself) scales it to 1. A reversed ordering gives -1, a random or
    constant one 0. It is the standard ranking score of CLV models because it only rewards
    putting the valuable customers first, whatever the scale of the predictions.

    Negative actual values (net refunds) are allowed: the area is computed as
    ``sum_k (C_k - k * mean)`` where ``C_k`` is the actual value of the top k customers, which
    never divides by the total, so the result stays in [-1, 1] and the perfect ordering simply
    puts the refunders last. It is undefined when every actual value is the same (nothing to
    rank), which raises :class:`~retain.errors.RetainInputError`.

    For 0/1 actual values it equals ``2 * ROC-AUC - 1``, ties included.
    """
    a = _values("actual", actual)
    p = _values("predicted", predicted)
    _check_same_customers("actual", actual, len(a), "predicted", predicted, len(p))
    return _normalized_gini(a, p)


def value_metrics(actual: ArrayLike, predicted: ArrayLike) -> dict[str, float]:
    """Ranking, error and concentration of predicted customer value (CLV or spend in horizon).

    Returns ``normalized_gini`` (see :func:`normalized_gini`), ``spearman``, ``mae``,
    ``total_error`` = (sum predicted - sum actual) / sum actual (signed), and
    ``top_decile_share``: the share of the total actual value spent by the 10% of customers with
    the highest predictions, i.e. what a campaign on the model's top decile would reach (decile 1
    of :func:`decile_table`). The total actual value must be positive for the shares to mean
    anything.
    """
    a = _values("actual", actual)
    p = _values("predicted", predicted)
    _check_same_customers("actual", actual, len(a), "predicted", predicted, len(p))
    total_actual = _positive_total("actual", a, "total_error and top_decile_share")
    ordered = _ordered_by_score(a, p)
    top = -(-len(a) // 10)  # ceil(n / 10): decile 1 of decile_table(n=10)
    return {
        "normalized_gini": _normalized_gini(a, p),
        "spearman": _spearman(a, p),
        "mae": float(np.mean(np.abs(p - a))),
        "total_error": (float(p.sum()) - total_actual) / total_actual,
        "top_decile_share": float(ordered[:top].sum()) / total_actual,
    }


def decile_table(actual: ArrayLike, predicted: ArrayLike, n: int = 10) -> pd.DataFrame:
    """Mean predicted and mean actual value per decile of the prediction (1 = highest).

    The decile calibration of a CLV model: ``mean_predicted`` against ``mean_actual`` says
    whether the level is right in every band, and ``share_of_actual`` / ``cumulative_share``
    say how much of the value the top deciles hold. Columns: ``decile``, ``n``,
    ``mean_predicted``, ``mean_actual``, ``share_of_actual`` (decile's actual total over the
    overall total, which must be positive) and ``cumulative_share`` (deciles 1..k). Needs at
    least ``n`` customers so that no decile is empty.
    """
    a = _values("actual", actual)
    p = _values("predicted", predicted)
    _check_same_customers("actual", actual, len(a), "predicted", predicted, len(p))
    groups = _groups("n", n, len(a))
    total_actual = _positive_total("actual", a, "share_of_actual")
    ordered_actual = _ordered_by_score(a, p)
    ordered_predicted = np.sort(p)[::-1]
    size = np.bincount(groups)
    actual_sum = np.bincount(groups, weights=ordered_actual)
    share = actual_sum / total_actual
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(size) + 1),
            "n": size,
            "mean_predicted": np.bincount(groups, weights=ordered_predicted) / size,
            "mean_actual": actual_sum / size,
            "share_of_actual": share,
            "cumulative_share": np.cumsum(share),
        }
    )


# --- gains and lift --------------------------------------------------------------------------


def lift_table(y_true: ArrayLike, score: ArrayLike, n: int = 10) -> pd.DataFrame:
    """Gains and lift per decile of the score (1 = highest): what targeting the top k deciles buys.

    Columns: ``decile``, ``n`` (customers), ``positives`` (expected count: ties are ordered at
    random), ``positive_rate``, ``lift`` (the decile's rate over the overall rate),
    ``cumulative_share_of_customers``, ``cumulative_gain`` (share of all positives captured by
    deciles 1..k) and ``cumulative_lift`` (``cumulative_gain / cumulative_share_of_customers``).
    ``y_true`` needs at least one positive and ``n`` customers.
    """
    y = _labels("y_true", y_true)
    s = _values("score", score)
    _check_same_customers("y_true", y_true, len(y), "score", score, len(s))
    groups = _groups("n", n, len(y))
    positives_total = _positive_total("y_true", y.astype(np.float64), "gains and lift")
    size = np.bincount(groups)
    positives = np.bincount(groups, weights=_ordered_by_score(y.astype(np.float64), s))
    base_rate = positives_total / len(y)
    rate = positives / size
    share_of_customers = np.cumsum(size) / len(y)
    gain = np.cumsum(positives) / positives_total
    return pd.DataFrame(
        {
            "decile": np.arange(1, len(size) + 1),
            "n": size,
            "positives": positives,
            "positive_rate": rate,
            "lift": rate / base_rate,
            "cumulative_share_of_customers": share_of_customers,
            "cumulative_gain": gain,
            "cumulative_lift": gain / share_of_customers,
        }
    )


def gains_curve(y_true: ArrayLike, score: ArrayLike) -> pd.DataFrame:
    """The cumulative gains curve: share of positives captured against share of customers targeted.

    One row per number of customers targeted, from 0 to all (``len + 1`` rows), columns
    ``share_targeted`` and ``share_captured``. Ties in ``score`` are ordered at random, which makes
    the curve a straight segment across each run of ties. The random ordering is the diagonal.
    """
    y = _labels("y_true", y_true)
    s = _values("score", score)
    _check_same_customers("y_true", y_true, len(y), "score", score, len(s))
    positives_total = _positive_total("y_true", y.astype(np.float64), "the gains curve")
    captured = np.cumsum(_ordered_by_score(y.astype(np.float64), s)) / positives_total
    return pd.DataFrame(
        {
            "share_targeted": np.arange(len(y) + 1) / len(y),
            "share_captured": np.concatenate([[0.0], captured]),
        }
    )


# --- checks and shared computations (also used by retain.evaluation.plots) -------------------


def _values(name: str, values: object) -> FloatArray:
    """``values`` as a one-dimensional float array of finite numbers, or an error naming it."""
    if isinstance(values, pd.DataFrame):
        raise RetainInputError(
            f"{name} must be one-dimensional (an array or a Series), not a DataFrame"
        )
    try:
        if isinstance(values, pd.Series | pd.Index):
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise RetainInputError(f"{name} must hold numbers: {error}") from error
    if array.ndim != 1:
        raise RetainInputError(
            f"{name} must be one-dimensional (one value per customer), not of shape {array.shape}"
        )
    if len(array) == 0:
        raise RetainInputError(f"{name} is empty: there is no customer to evaluate")
    finite = np.isfinite(array)
    if not finite.all():
        missing = int(np.isnan(array).sum())
        infinite = int((~finite).sum()) - missing
        problems = [
            f"{count:,} {what}"
            for count, what in ((missing, "missing (NaN)"), (infinite, "infinite"))
            if count
        ]
        raise RetainInputError(
            f"{name} has {' and '.join(problems)} value(s) out of {len(array):,}; every customer "
            f"needs a number: drop those customers from all inputs, or fill the values, first"
        )
    return array


def _labels(name: str, values: object) -> BoolArray:
    """0/1 or boolean outcomes as a boolean array."""
    array = _values(name, values)
    other = (array != 0.0) & (array != 1.0)
    if other.any():
        examples = ", ".join(f"{v:g}" for v in np.unique(array[other])[:3])
        raise RetainInputError(
            f"{name} must hold 0/1 or True/False outcomes; {int(other.sum()):,} value(s) are "
            f"something else (e.g. {examples})"
        )
    return array == 1.0


def _probabilities(name: str, values: object) -> FloatArray:
    """Probabilities: finite numbers in [0, 1]."""
    array = _values(name, values)
    outside = (array < 0.0) | (array > 1.0)
    if outside.any():
        raise RetainInputError(
            f"{name} must hold probabilities in [0, 1]; {int(outside.sum()):,} value(s) are "
            f"outside (from {array.min():g} to {array.max():g})"
        )
    return array


def _check_same_customers(
    name_a: str, raw_a: object, len_a: int, name_b: str, raw_b: object, len_b: int
) -> None:
    """The two inputs describe the same customers: same length and, for Series, same index."""
    if len_a != len_b:
        raise RetainInputError(
            f"{name_a} has {len_a:,} values but {name_b} has {len_b:,}; both must hold one value "
            f"per customer, for the same customers in the same order"
        )
    if (
        isinstance(raw_a, pd.Series)
        and isinstance(raw_b, pd.Series)
        and not raw_a.index.equals(raw_b.index)
    ):
        raise RetainInputError(
            f"{name_a} and {name_b} are Series with different indexes; values are compared by "
            f"position, so align them first (e.g. with .reindex) so that each position is the "
            f"same customer"
        )


def _require_both_classes(name: str, y: BoolArray, metric: str) -> None:
    positives = int(y.sum())
    if positives in (0, len(y)):
        only = "1/True" if positives else "0/False"
        raise RetainInputError(
            f"{name} holds a single class (all {len(y):,} values are {only}): {metric} is "
            f"undefined without both outcomes in the holdout; use a longer holdout or more "
            f"customers"
        )


def _whole_number(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise RetainInputError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return int(value)


def _groups(name: str, n: object, customers: int) -> NDArray[np.intp]:
    """Decile (0-based group) of each position once customers are sorted by decreasing score."""
    count = _whole_number(name, n, minimum=1)
    if customers < count:
        raise RetainInputError(
            f"{name}={count} groups need at least {count} customers, but there are {customers:,}"
        )
    return (np.arange(customers) * count) // customers


def _positive_total(name: str, values: FloatArray, needed_for: str) -> float:
    total = float(values.sum())
    if not total > 0.0:
        raise RetainInputError(
            f"{name} sums to {total:g}; {needed_for} need(s) a positive total "
            f"(at least one purchase or positive value in the holdout)"
        )
    return total


def _ordered_by_score(values: FloatArray, score: FloatArray) -> FloatArray:
    """``values`` sorted by decreasing ``score``, each run of tied scores replaced by its mean.

    Why the mean: the order inside a run of ties is arbitrary (it is the input order), and the
    mean is the expectation over every order of the run. Partial sums over the result are then
    the expected value captured by the top k customers.
    """
    order = np.argsort(-score, kind="stable")
    sorted_score = score[order]
    sorted_values = values[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_score[1:] != sorted_score[:-1]]))
    sizes = np.diff(np.append(starts, len(sorted_values)))
    means = np.add.reduceat(sorted_values, starts) / sizes
    return np.repeat(means, sizes)


def _gini_area(actual: FloatArray, score: FloatArray) -> float:
    """Sum over k of (actual value of the top k by score) - k * mean: the area above random."""
    cumulative = np.cumsum(_ordered_by_score(actual, score))
    k = np.arange(1, len(actual) + 1)
    return float(np.sum(cumulative - k * actual.mean()))


def _normalized_gini(actual: FloatArray, predicted: FloatArray) -> float:
    if np.all(actual == actual[0]):
        raise RetainInputError(
            f"actual has the same value ({actual[0]:g}) for all {len(actual):,} customers: "
            f"there is no ordering to score, so the normalized Gini is undefined"
        )
    return _gini_area(actual, predicted) / _gini_area(actual, actual)


def _spearman(a: FloatArray, b: FloatArray) -> float:
    """Spearman's rank correlation; NaN when either side is constant (undefined)."""
    if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(stats.spearmanr(a, b).statistic)
