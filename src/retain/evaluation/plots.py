"""Evaluation plots: the model and its baselines drawn on the same axes.

Every function takes data (outcomes and each contender's predictions, as a dict
``{"retain": ..., "bgnbd": ..., "naive": ...}``), not models, so a plot shows exactly what the
metrics of :mod:`retain.evaluation.metrics` measure, computed the same way (same checks, same
random ordering of ties). Each draws into ``ax`` when given, else into a new figure, and returns
the :class:`~matplotlib.axes.Axes`; nothing calls ``plt.show()``, so notebooks, reports and
headless jobs decide what to do with the figure. Contender number i is drawn in colour ``Ci`` of
the matplotlib cycle in every plot, so a contender keeps its colour across a report; reference
lines (random, perfect calibration, actual) are grey or black.

pyplot is imported only when a new figure is needed, so importing retain does not load it; the
backend is never chosen here (headless jobs set ``MPLBACKEND=Agg``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.ticker import PercentFormatter
from numpy.typing import ArrayLike, NDArray

from retain.data.dates import DateLike, to_utc
from retain.errors import RetainInputError
from retain.evaluation.metrics import (
    FloatArray,
    _check_same_customers,
    _labels,
    _probabilities,
    _values,
    _whole_number,
    calibration_table,
    decile_table,
    gains_curve,
    lift_table,
)

__all__ = [
    "axes_or_new",
    "plot_calibration",
    "plot_cumulative_repeat_transactions",
    "plot_feature_importance",
    "plot_gains",
    "plot_lift",
    "plot_value_deciles",
]

_MAX_CURVE_POINTS = 1001
"""Points drawn per gains curve: the curve is piecewise linear, so a million customers need not
be a million vertices (the PNG and the notebook stay light)."""

LegendLoc = Literal["upper left", "upper right", "lower right"]


def plot_calibration(
    y: ArrayLike,
    probabilities: Mapping[str, ArrayLike],
    n_bins: int = 10,
    strategy: Literal["quantile", "uniform"] = "quantile",
    ax: Axes | None = None,
) -> Axes:
    """Reliability diagram: observed rate against mean predicted probability, per bin.

    One line with markers per contender (bins of :func:`~retain.evaluation.calibration_table`)
    and the diagonal of perfect calibration. Points below the diagonal over-predict the event.
    """
    labels = _labels("y", y)
    tables = {
        name: calibration_table(labels, values, n_bins=n_bins, strategy=strategy)
        for name, values in _contenders(
            "probabilities", probabilities, ("y", y, len(labels)), _probabilities
        )
    }
    ax = axes_or_new(ax, (6.0, 6.0))
    ax.plot([0.0, 1.0], [0.0, 1.0], "--", color="grey", linewidth=1.0, label="perfectly calibrated")
    for i, (name, table) in enumerate(tables.items()):
        ax.plot(
            table["mean_predicted"], table["observed_rate"], marker="o", color=f"C{i}", label=name
        )
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("Mean predicted probability")
    ax.set_ylabel("Observed rate")
    ax.set_title(f"Calibration ({strategy} bins)")
    return _finish(ax, legend_loc="upper left")


def plot_gains(
    y: ArrayLike,
    scores: Mapping[str, ArrayLike],
    outcome: str = "positives",
    ax: Axes | None = None,
) -> Axes:
    """Cumulative gains: share of the ``outcome`` captured when targeting the top-scored customers.

    One curve per contender (ties ordered at random, see :func:`~retain.evaluation.gains_curve`)
    and the diagonal of random targeting. ``outcome`` names the positives on the y axis
    ("churners", "repeat buyers").
    """
    labels = _labels("y", y)
    curves = {
        name: gains_curve(labels, values)
        for name, values in _contenders("scores", scores, ("y", y, len(labels)), _values)
    }
    ax = axes_or_new(ax, (7.0, 5.0))
    ax.plot([0.0, 1.0], [0.0, 1.0], "--", color="grey", linewidth=1.0, label="random")
    for i, (name, curve) in enumerate(curves.items()):
        points = _thin(len(curve))
        ax.plot(
            curve["share_targeted"].to_numpy()[points],
            curve["share_captured"].to_numpy()[points],
            color=f"C{i}",
            label=name,
        )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("Customers targeted (highest scores first)")
    ax.set_ylabel(f"Share of {outcome} captured")
    ax.set_title("Cumulative gains")
    return _finish(ax, legend_loc="lower right")


def plot_lift(
    y: ArrayLike,
    scores: Mapping[str, ArrayLike],
    n: int = 10,
    outcome: str = "positives",
    ax: Axes | None = None,
) -> Axes:
    """Cumulative lift by decile: how many times the base rate the top k deciles hold.

    One line with markers per contender (``cumulative_lift`` of
    :func:`~retain.evaluation.lift_table`) and the line at 1 of random targeting.
    """
    labels = _labels("y", y)
    tables = {
        name: lift_table(labels, values, n=n)
        for name, values in _contenders("scores", scores, ("y", y, len(labels)), _values)
    }
    ax = axes_or_new(ax, (7.0, 5.0))
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1.0, label="random")
    for i, (name, table) in enumerate(tables.items()):
        ax.plot(
            table["cumulative_share_of_customers"],
            table["cumulative_lift"],
            marker="o",
            color=f"C{i}",
            label=name,
        )
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(bottom=0.0)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"Customers targeted (top deciles of {n}, highest scores first)")
    ax.set_ylabel(f"Cumulative lift ({outcome} rate / overall rate)")
    ax.set_title("Cumulative lift")
    return _finish(ax, legend_loc="upper right")


def plot_feature_importance(importance: pd.Series, top: int = 20, ax: Axes | None = None) -> Axes:
    """Horizontal bars of the ``top`` features by absolute importance, the largest at the top.

    ``importance`` is indexed by feature name (LightGBM gains, mean absolute SHAP values, ...);
    its name, if any, labels the x axis.
    """
    if not isinstance(importance, pd.Series):
        raise RetainInputError(
            f"importance must be a pandas Series indexed by feature name, not "
            f"{type(importance).__name__}"
        )
    values = _values("importance", importance)
    count = _whole_number("top", top, minimum=1)
    order = np.argsort(-np.abs(values), kind="stable")[:count][::-1]  # largest drawn last: on top
    names = [str(name) for name in importance.index[order]]
    ax = axes_or_new(ax, (7.0, 1.5 + 0.3 * len(order)))
    positions = np.arange(len(order))
    ax.barh(positions, values[order], color="C0")
    ax.set_yticks(positions, names)
    ax.set_ylim(-0.6, len(order) - 0.4)
    ax.set_xlabel(str(importance.name) if importance.name is not None else "Importance")
    shown = f" (top {len(order)} of {len(values)})" if len(order) < len(values) else ""
    ax.set_title(f"Feature importance{shown}")
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def plot_value_deciles(
    actual: ArrayLike,
    predictions: Mapping[str, ArrayLike],
    n: int = 10,
    ax: Axes | None = None,
) -> Axes:
    """Mean actual value per decile of each contender's prediction, as grouped bars.

    A good value model has bars falling steeply from decile 1 (its highest predictions) to
    decile n; a model no better than random has flat bars at the overall mean (dashed line).
    """
    values = _values("actual", actual)
    tables = {
        name: decile_table(values, predicted, n=n)
        for name, predicted in _contenders(
            "predictions", predictions, ("actual", actual, len(values)), _values
        )
    }
    ax = axes_or_new(ax, (9.0, 5.0))
    width = 0.8 / len(tables)
    deciles = np.arange(1, n + 1)
    for i, (name, table) in enumerate(tables.items()):
        offset = (i - (len(tables) - 1) / 2) * width
        ax.bar(deciles + offset, table["mean_actual"], width=width, color=f"C{i}", label=name)
    ax.axhline(
        float(values.mean()), color="grey", linestyle="--", linewidth=1.0, label="overall mean"
    )
    ax.set_xticks(deciles)
    ax.set_xlabel("Decile of predicted value (1 = highest predictions)")
    ax.set_ylabel("Mean actual value")
    ax.set_title("Actual value by decile of prediction")
    return _finish(ax, legend_loc="upper right", grid_axis="y")


def plot_cumulative_repeat_transactions(
    dates: ArrayLike,
    actual: ArrayLike,
    expected: Mapping[str, ArrayLike],
    calibration_end: DateLike | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Cumulative repeat transactions over time, actual against each contender's expectation.

    ``dates`` are increasing dates (naive ones are read as UTC); ``actual`` and each expected
    series hold *running totals* at those dates (a decrease means per-period counts were passed,
    which is an error). A dotted vertical line marks ``calibration_end``: left of it the models
    saw the data, right of it is the holdout.
    """
    times = _dates("dates", dates)
    counts = _cumulative("actual", actual)
    if len(times) != len(counts):
        raise RetainInputError(
            f"dates has {len(times):,} values but actual has {len(counts):,}; "
            f"both must hold one value per date"
        )
    lines = {
        name: _cumulative(f"expected[{name!r}]", values)
        for name, values in _contenders(
            "expected", expected, ("actual", actual, len(counts)), _values
        )
    }
    end = None
    if calibration_end is not None:
        end = to_utc(calibration_end, "calibration_end").tz_localize(None)
    ax = axes_or_new(ax, (9.0, 5.0))
    ax.plot(times, counts, color="black", linewidth=2.0, label="actual")
    for i, (name, values) in enumerate(lines.items()):
        ax.plot(times, values, color=f"C{i}", linewidth=1.5, label=name)
    if end is not None:
        ax.axvline(
            date2num(end), color="grey", linestyle=":", linewidth=1.5, label="end of calibration"
        )
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel("Date (UTC)")
    ax.set_ylabel("Cumulative repeat transactions")
    ax.set_title("Cumulative repeat transactions: actual and expected")
    return _finish(ax, legend_loc="upper left")


# --- helpers ---------------------------------------------------------------------------------


def axes_or_new(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new pyplot figure (so notebooks display it)."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise RetainInputError(f"ax must be a matplotlib Axes or None, not {type(ax).__name__}")
        return ax
    import matplotlib.pyplot as plt  # here, not at the top: only when a figure is made

    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _finish(ax: Axes, legend_loc: LegendLoc, grid_axis: Literal["both", "x", "y"] = "both") -> Axes:
    ax.legend(loc=legend_loc, frameon=False)
    ax.grid(axis=grid_axis, alpha=0.3)
    ax.set_axisbelow(True)
    return ax


def _contenders(
    name: str,
    contenders: object,
    reference: tuple[str, object, int],
    read: Callable[[str, object], FloatArray],
) -> list[tuple[str, FloatArray]]:
    """Each contender's values, read and checked against the reference (name, raw, length)."""
    if not isinstance(contenders, Mapping) or not contenders:
        raise RetainInputError(
            f"{name} must be a non-empty dict {{contender name: values}}, e.g. "
            f"{{'retain': ..., 'bgnbd': ...}}"
        )
    reference_name, reference_raw, length = reference
    checked = []
    for key, raw in contenders.items():
        label = f"{name}[{key!r}]"
        values = read(label, raw)
        _check_same_customers(reference_name, reference_raw, length, label, raw, len(values))
        checked.append((str(key), values))
    return checked


def _thin(points: int) -> np.ndarray:
    """Indices of at most ``_MAX_CURVE_POINTS`` evenly spread points, both ends included."""
    if points <= _MAX_CURVE_POINTS:
        return np.arange(points)
    return np.unique(np.linspace(0, points - 1, _MAX_CURVE_POINTS).round().astype(np.intp))


def _dates(name: str, dates: object) -> NDArray[np.datetime64]:
    """Increasing dates as naive UTC ``datetime64`` values (naive input is read as UTC)."""
    try:
        converted: Any = pd.to_datetime(cast(Any, dates), utc=True)
        index = pd.DatetimeIndex(converted)
    except (TypeError, ValueError, OverflowError) as error:
        raise RetainInputError(f"{name}: cannot read the values as dates ({error})") from error
    if len(index) == 0:
        raise RetainInputError(f"{name} is empty: there is nothing to plot")
    missing = int(np.count_nonzero(index.isna()))
    if missing:
        raise RetainInputError(f"{name} has {missing:,} missing (NaT) value(s)")
    if not index.is_monotonic_increasing or not index.is_unique:
        raise RetainInputError(f"{name} must be strictly increasing (one point per date, in order)")
    return index.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _cumulative(name: str, values: object) -> FloatArray:
    """Running totals: finite and never decreasing (up to rounding)."""
    array = _values(name, values)
    tolerance = 1e-9 * max(1.0, float(np.abs(array).max()))
    drops = np.flatnonzero(np.diff(array) < -tolerance)
    if len(drops):
        raise RetainInputError(
            f"{name} must be cumulative (a running total), but it decreases at {len(drops):,} "
            f"point(s), first after position {int(drops[0])}; pass e.g. counts.cumsum()"
        )
    return array
