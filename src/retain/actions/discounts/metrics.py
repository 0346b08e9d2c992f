"""How well an uplift model ranks customers, measured on a randomised hold-out: Qini and AUUC.

Both curves rank customers by predicted uplift, best first, and follow the observed effect of the
campaign among the top ``k`` as ``k`` grows, comparing treated with control customers of the same
top group:

- **Qini curve** (Radcliffe 2007, "Using control groups to target on predicted lift"):
  ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``, the incremental outcomes (extra purchases, extra
  revenue) of treating the top ``k``, with ``Y`` the summed outcomes and ``N`` the counts of treated
  (t) and control (c) customers among them.
- **Uplift curve** (Rzepakowski & Jaroszewicz 2012, "Decision trees for uplift modeling with single
  and multiple treatments"): ``U(k) = (Y_t(k) / N_t(k) - Y_c(k) / N_c(k)) * k``, the difference of
  the group means, scaled to the top group's size.

Customers with the same score are not ordered among themselves: the curves move from one distinct
score to the next, as ROC curves do. A random ranking gives the straight line from (0, 0) to the
curve's end point; the **perfect** ranking of the observed data puts treated customers with high
outcomes first and control customers with high outcomes last (scores ``y * t - y * (1 - t)``, as in
scikit-uplift's ``perfect_qini_curve`` with ``negative_effect=True``). The normalised scores are the
area between the model's curve and the random line over the same area for the perfect curve:
1 for a perfect ranking, 0 for a random one, negative for a ranking worse than random. The
definitions follow scikit-uplift (``qini_auc_score``, ``uplift_auc_score``), reimplemented because
that library is not installed here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from retain.errors import RetainInputError

__all__ = ["auuc", "qini_coefficient", "qini_curve", "uplift_curve"]


def qini_curve(y: object, treatment: object, uplift: object) -> tuple[np.ndarray, np.ndarray]:
    """The Qini curve: (number of customers targeted, incremental outcomes among them).

    ``y`` the observed outcome (0/1 purchase or revenue), ``treatment`` 1 for treated and 0 for
    control customers, ``uplift`` the predicted uplift (higher: targeted first). Starts at (0, 0).
    """
    k, n_t, n_c, y_t, y_c = _cumulative(y, treatment, uplift)
    with np.errstate(divide="ignore", invalid="ignore"):
        incremental = np.where(n_c > 0, y_t - y_c * n_t / n_c, y_t)
    return k, incremental


def uplift_curve(y: object, treatment: object, uplift: object) -> tuple[np.ndarray, np.ndarray]:
    """The uplift curve: (number of customers targeted, difference of means x that number)."""
    k, n_t, n_c, y_t, y_c = _cumulative(y, treatment, uplift)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_t = np.where(n_t > 0, y_t / n_t, 0.0)
        mean_c = np.where(n_c > 0, y_c / n_c, 0.0)
    return k, (mean_t - mean_c) * k


def qini_coefficient(y: object, treatment: object, uplift: object) -> float:
    """Normalised area between the Qini curve and the random line (1 perfect, 0 random).

    NaN when the perfect ranking is no better than random (e.g. no outcome at all).
    """
    return _normalised(qini_curve, y, treatment, uplift)


def auuc(y: object, treatment: object, uplift: object) -> float:
    """Normalised area under the uplift curve, over the random line (1 perfect, 0 random)."""
    return _normalised(uplift_curve, y, treatment, uplift)


_Curve = Callable[[object, object, object], tuple[np.ndarray, np.ndarray]]


def _normalised(curve: _Curve, y: object, treatment: object, uplift: object) -> float:
    y_arr, t_arr, score = _check(y, treatment, uplift)
    gain = _area_over_random(*curve(y_arr, t_arr, score))
    best = _area_over_random(*curve(y_arr, t_arr, y_arr * t_arr - y_arr * (1 - t_arr)))
    if not best > 0:
        return float("nan")
    return float(gain / best)


def _area_over_random(x: np.ndarray, curve: np.ndarray) -> float:
    """Area between the curve and the straight line from (0, 0) to its end point."""
    area = float(np.trapezoid(curve, x))
    return area - float(x[-1] * curve[-1] / 2)


def _cumulative(
    y: object, treatment: object, uplift: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Counts and summed outcomes of treated and control customers among the top ``k``, at the
    end of each run of tied scores, with a leading 0."""
    y_arr, t_arr, score = _check(y, treatment, uplift)
    order = np.argsort(-score, kind="stable")
    y_arr, t_arr, score = y_arr[order], t_arr[order], score[order]
    ends = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    n_t = np.cumsum(t_arr)[ends]
    n_c = np.cumsum(1 - t_arr)[ends]
    y_t = np.cumsum(y_arr * t_arr)[ends]
    y_c = np.cumsum(y_arr * (1 - t_arr))[ends]
    k = (ends + 1).astype(np.float64)
    return tuple(np.r_[0.0, a] for a in (k, n_t, n_c, y_t, y_c))


def _check(y: object, treatment: object, uplift: object) -> tuple[np.ndarray, ...]:
    arrays = []
    for name, values in (("y", y), ("treatment", treatment), ("uplift", uplift)):
        try:
            array = np.asarray(values, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise RetainInputError(f"{name} must be numeric ({error})") from error
        if array.ndim != 1:
            raise RetainInputError(f"{name} must be one-dimensional, not of shape {array.shape}")
        bad = int((~np.isfinite(array)).sum())
        if bad:
            raise RetainInputError(f"{name} is missing or infinite in {bad} of {len(array)} rows")
        arrays.append(array)
    y_arr, t_arr, score = arrays
    if not len(y_arr) == len(t_arr) == len(score):
        raise RetainInputError(
            f"y, treatment and uplift must have one value per customer, not "
            f"{len(y_arr)}, {len(t_arr)} and {len(score)}"
        )
    not_binary = int((~np.isin(t_arr, (0.0, 1.0))).sum())
    if not_binary:
        raise RetainInputError(
            f"treatment must be 1 (treated) or 0 (control), not in {not_binary} of "
            f"{len(t_arr)} rows"
        )
    if not 0 < t_arr.sum() < len(t_arr):
        raise RetainInputError(
            f"treatment: the {len(t_arr)} rows need both treated and control customers "
            f"({int(t_arr.sum())} treated)"
        )
    return y_arr, t_arr, score
