"""Diagnostic plots of a fitted transaction model; each returns the matplotlib ``Axes``.

- :func:`plot_cumulative_transactions`: actual against expected cumulative repeat transactions of
  the cohort (calibration and holdout), the papers' tracking plot;
- :func:`plot_frequency_recency_matrix`: expected purchases in the next ``t`` by frequency and
  recency, for customers of a given age;
- :func:`plot_probability_alive_matrix`: P(alive) on the same grid.

In the matrices, customers without repeat purchases have recency 0 by definition, so the other
cells of the ``frequency = 0`` column are left blank.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from retain.data.dates import DateLike, utc_day
from retain.errors import RetainInputError
from retain.models.btyd._base import TransactionModel
from retain.models.btyd.tracking import cumulative_repeat_transactions

__all__ = [
    "plot_cumulative_transactions",
    "plot_frequency_recency_matrix",
    "plot_probability_alive_matrix",
]


def plot_cumulative_transactions(
    model: TransactionModel,
    transactions: pd.DataFrame,
    *,
    end: DateLike,
    calibration_end: DateLike | None = None,
    start: DateLike | None = None,
    period_days: int = 7,
    unit_days: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Actual and model cumulative repeat transactions per period, to ``end``.

    See :func:`~retain.models.btyd.tracking.cumulative_repeat_transactions` for the definitions;
    ``calibration_end`` (the fit's cutoff) is drawn as a vertical line.
    """
    table = cumulative_repeat_transactions(
        model, transactions, end=end, start=start, period_days=period_days, unit_days=unit_days
    )
    ax = ax if ax is not None else plt.subplots(figsize=(8, 4.5))[1]
    ax.plot(table["period"], table["actual"], color="black", label="actual")
    ax.plot(
        table["period"],
        table["expected"],
        color="tab:blue",
        linestyle="--",
        label=f"{type(model).__name__}",
    )
    if calibration_end is not None:
        cutoff = utc_day(calibration_end, "calibration_end")
        period = int(np.searchsorted(table["date"].to_numpy(), np.datetime64(cutoff)) + 1)
        ax.axvline(period, color="grey", linestyle=":", label="end of calibration")
    ax.set_xlabel(f"period ({period_days} days)")
    ax.set_ylabel("cumulative repeat transactions")
    ax.set_title("Tracking cumulative repeat transactions")
    ax.legend(loc="upper left")
    return ax


def _grid(
    max_frequency: int, T: float, max_recency: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not (isinstance(max_frequency, int | np.integer) and max_frequency >= 0):
        raise RetainInputError(f"max_frequency must be a whole number >= 0, got {max_frequency!r}")
    if not (np.isfinite(T) and T > 0):
        raise RetainInputError(f"T must be a positive number, got {T!r}")
    top = T if max_recency is None else max_recency
    if not (0 <= top <= T):
        raise RetainInputError(f"max_recency must be between 0 and T ({T}), got {top!r}")
    frequency = np.arange(max_frequency + 1, dtype=np.float64)
    recency = np.arange(int(np.floor(top)) + 1, dtype=np.float64)
    x, t_x = np.meshgrid(frequency, recency)  # rows: recency, columns: frequency
    possible = (x > 0) | (t_x == 0)
    return np.where(possible, x, 0.0), np.where(possible, t_x, 0.0), possible


def _matrix_plot(matrix: np.ndarray, title: str, label: str, ax: Axes | None) -> Axes:
    ax = ax if ax is not None else plt.subplots(figsize=(6, 5))[1]
    image = ax.imshow(matrix, origin="lower", aspect="auto", cmap="viridis")
    ax.figure.colorbar(image, ax=ax, label=label)
    ax.set_xlabel("frequency (repeat purchases)")
    ax.set_ylabel("recency")
    ax.set_title(title)
    return ax


def plot_frequency_recency_matrix(
    model: TransactionModel,
    *,
    T: float,
    max_frequency: int,
    max_recency: float | None = None,
    t: float = 1.0,
    ax: Axes | None = None,
) -> Axes:
    """Expected purchases in the next ``t`` for customers of age ``T``, by frequency and recency.

    Recency runs over whole time units from 0 to ``max_recency`` (default ``T``).
    """
    x, t_x, possible = _grid(max_frequency, T, max_recency)
    values = np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, np.full(x.shape, T))
    )
    unit = model.time_unit_
    return _matrix_plot(
        np.where(possible, values, np.nan),
        f"Expected purchases in the next {t:g} {unit}\n(customers of age T = {T:g} {unit})",
        "expected purchases",
        ax,
    )


def plot_probability_alive_matrix(
    model: TransactionModel,
    *,
    T: float,
    max_frequency: int,
    max_recency: float | None = None,
    ax: Axes | None = None,
) -> Axes:
    """P(alive) for customers of age ``T``, by frequency and recency (0 to ``max_recency``)."""
    x, t_x, possible = _grid(max_frequency, T, max_recency)
    values = np.asarray(model.conditional_probability_alive(x, t_x, np.full(x.shape, T)))
    return _matrix_plot(
        np.where(possible, values, np.nan),
        f"Probability of being alive\n(customers of age T = {T:g} {model.time_unit_})",
        "P(alive)",
        ax,
    )
