"""Evaluation plots: what each draws (lines, bars, labels, data), into a given ax, and as a PNG."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: set by the tests, never by the library

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.dates import date2num
from tests.helpers import no_shown_figures  # noqa: F401  (the fixture, used by pytestmark)

from retain.errors import RetainInputError
from retain.evaluation import (
    calibration_table,
    decile_table,
    gains_curve,
    lift_table,
    plot_calibration,
    plot_cumulative_repeat_transactions,
    plot_feature_importance,
    plot_gains,
    plot_lift,
    plot_value_deciles,
)

N = 600


pytestmark = pytest.mark.usefixtures("no_shown_figures")


@pytest.fixture(scope="module")
def churn() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    p = rng.beta(1.5, 3.0, N)
    y = rng.random(N) < p
    return y, {
        "retain": p,
        "bgnbd": np.clip(p + rng.normal(0.0, 0.15, N), 0.0, 1.0),
        "naive": np.round(rng.random(N), 1),  # ties
    }


@pytest.fixture(scope="module")
def value() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(8)
    actual = rng.gamma(0.6, 150.0, N) * (rng.random(N) < 0.7)
    return actual, {
        "retain": actual * rng.lognormal(0.0, 0.4, N) + 5.0,
        "bgnbd": actual * rng.lognormal(0.0, 1.0, N) + 20.0,
        "naive": rng.gamma(0.6, 150.0, N),
    }


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def saves(ax: Axes, path: Path) -> None:
    ax.figure.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibration(churn: tuple[np.ndarray, dict[str, np.ndarray]], tmp_path: Path) -> None:
    y, probabilities = churn
    ax = plot_calibration(y, probabilities)
    assert isinstance(ax, Axes)
    assert len(ax.lines) == 4  # diagonal + one per contender
    assert legend_labels(ax) == ["perfectly calibrated", "retain", "bgnbd", "naive"]
    assert ax.get_xlabel() == "Mean predicted probability"
    assert ax.get_ylabel() == "Observed rate"
    assert ax.get_title() == "Calibration (quantile bins)"
    table = calibration_table(y, probabilities["retain"])
    assert ax.lines[1].get_xdata() == pytest.approx(table["mean_predicted"].to_numpy())
    assert ax.lines[1].get_ydata() == pytest.approx(table["observed_rate"].to_numpy())
    saves(ax, tmp_path / "calibration.png")


def test_gains(churn: tuple[np.ndarray, dict[str, np.ndarray]], tmp_path: Path) -> None:
    y, scores = churn
    ax = plot_gains(y, scores, outcome="churners")
    assert len(ax.lines) == 4  # random + one per contender
    assert legend_labels(ax) == ["random", "retain", "bgnbd", "naive"]
    assert ax.get_ylabel() == "Share of churners captured"
    assert ax.get_title() == "Cumulative gains"
    curve = gains_curve(y, scores["bgnbd"])
    assert ax.lines[2].get_ydata() == pytest.approx(curve["share_captured"].to_numpy())
    saves(ax, tmp_path / "gains.png")


def test_gains_thins_long_curves_keeping_the_ends() -> None:
    rng = np.random.default_rng(9)
    y = rng.random(5000) < 0.2
    ax = plot_gains(y, {"retain": rng.random(5000)})
    x, captured = ax.lines[1].get_xdata(), ax.lines[1].get_ydata()
    assert len(x) <= 1001
    assert (x[0], captured[0], x[-1], captured[-1]) == (0.0, 0.0, 1.0, 1.0)


def test_lift(churn: tuple[np.ndarray, dict[str, np.ndarray]], tmp_path: Path) -> None:
    y, scores = churn
    ax = plot_lift(y, scores, n=5)
    assert len(ax.lines) == 4  # random at 1 + one per contender
    assert legend_labels(ax) == ["random", "retain", "bgnbd", "naive"]
    assert list(ax.lines[0].get_ydata()) == [1.0, 1.0]
    table = lift_table(y, scores["retain"], n=5)
    assert ax.lines[1].get_ydata() == pytest.approx(table["cumulative_lift"].to_numpy())
    assert len(ax.lines[1].get_xdata()) == 5
    assert ax.get_title() == "Cumulative lift"
    saves(ax, tmp_path / "lift.png")


def test_feature_importance(tmp_path: Path) -> None:
    importance = pd.Series(
        {f"feature_{i:02d}": float(i) for i in range(30)} | {"refund_share": -40.0},
        name="gain",
    )
    ax = plot_feature_importance(importance, top=5)
    assert len(ax.patches) == 5
    labels = [tick.get_text() for tick in ax.get_yticklabels()]
    # by absolute value, the largest at the top (drawn last)
    assert labels == ["feature_26", "feature_27", "feature_28", "feature_29", "refund_share"]
    assert [bar.get_width() for bar in ax.patches] == [26.0, 27.0, 28.0, 29.0, -40.0]
    assert ax.get_title() == "Feature importance (top 5 of 31)"
    assert ax.get_xlabel() == "gain"
    saves(ax, tmp_path / "importance.png")
    small = plot_feature_importance(pd.Series({"a": 1.0, "b": 2.0}))
    assert small.get_title() == "Feature importance"
    assert small.get_xlabel() == "Importance"


def test_value_deciles(value: tuple[np.ndarray, dict[str, np.ndarray]], tmp_path: Path) -> None:
    actual, predictions = value
    ax = plot_value_deciles(actual, predictions)
    assert len(ax.patches) == 30  # 10 deciles x 3 contenders
    assert len(ax.lines) == 1  # the overall mean
    assert legend_labels(ax) == ["overall mean", "retain", "bgnbd", "naive"]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == [str(k) for k in range(1, 11)]
    retain_heights = [bar.get_height() for bar in ax.containers[0]]
    assert retain_heights == pytest.approx(
        decile_table(actual, predictions["retain"])["mean_actual"].to_numpy()
    )
    assert ax.get_ylabel() == "Mean actual value"
    saves(ax, tmp_path / "deciles.png")


def cumulative_data() -> tuple[pd.DatetimeIndex, pd.Series, dict[str, pd.Series]]:
    dates = pd.date_range("1997-01-08", periods=78, freq="W", tz="UTC")
    rng = np.random.default_rng(10)
    actual = pd.Series(np.cumsum(rng.poisson(40, 78)), index=dates, dtype=float)
    return (
        dates,
        actual,
        {
            "bgnbd": pd.Series(np.cumsum(np.full(78, 41.0)), index=dates),
            "retain": pd.Series(np.cumsum(np.full(78, 39.5)), index=dates),
        },
    )


def test_cumulative_repeat_transactions(tmp_path: Path) -> None:
    dates, actual, expected = cumulative_data()
    ax = plot_cumulative_repeat_transactions(dates, actual, expected, calibration_end="1997-09-30")
    assert len(ax.lines) == 4  # actual + 2 expected + the end of calibration
    assert legend_labels(ax) == ["actual", "bgnbd", "retain", "end of calibration"]
    vertical = ax.lines[-1].get_xdata()
    assert list(vertical) == [date2num(pd.Timestamp("1997-09-30"))] * 2
    assert ax.lines[0].get_ydata() == pytest.approx(actual.to_numpy())
    assert ax.get_ylabel() == "Cumulative repeat transactions"
    saves(ax, tmp_path / "cumulative.png")
    without_end = plot_cumulative_repeat_transactions(dates, actual, expected)
    assert len(without_end.lines) == 3


def test_draws_into_a_given_ax(
    churn: tuple[np.ndarray, dict[str, np.ndarray]],
    value: tuple[np.ndarray, dict[str, np.ndarray]],
    tmp_path: Path,
) -> None:
    y, scores = churn
    actual, predictions = value
    dates, counts, expected = cumulative_data()
    calls: list[Callable[[Axes], Axes]] = [
        lambda ax: plot_calibration(y, scores, ax=ax),
        lambda ax: plot_gains(y, scores, ax=ax),
        lambda ax: plot_lift(y, scores, ax=ax),
        lambda ax: plot_feature_importance(pd.Series({"a": 1.0, "b": 3.0}), ax=ax),
        lambda ax: plot_value_deciles(actual, predictions, ax=ax),
        lambda ax: plot_cumulative_repeat_transactions(dates, counts, expected, ax=ax),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(18, 10))
    figures_before = plt.get_fignums()
    for call, ax in zip(calls, axes.flat, strict=True):
        assert call(ax) is ax
        assert ax.has_data()
    assert plt.get_fignums() == figures_before  # no new figure
    figure.savefig(tmp_path / "grid.png")


def test_plot_errors(churn: tuple[np.ndarray, dict[str, np.ndarray]]) -> None:
    y, scores = churn
    with pytest.raises(RetainInputError, match=r"y has 600 values but scores\['bgnbd'\] has 599"):
        plot_gains(y, {"retain": scores["retain"], "bgnbd": scores["bgnbd"][:-1]})
    with pytest.raises(RetainInputError, match=r"probabilities\['retain'\] has 1 missing"):
        plot_calibration(y, {"retain": np.where(np.arange(N) == 3, np.nan, 0.5)})
    with pytest.raises(RetainInputError, match="scores must be a non-empty dict"):
        plot_lift(y, {})
    with pytest.raises(RetainInputError, match="importance must be a pandas Series"):
        plot_feature_importance([1.0, 2.0])  # type: ignore[arg-type]
    with pytest.raises(RetainInputError, match="ax must be a matplotlib Axes"):
        plot_gains(y, scores, ax="left")  # type: ignore[arg-type]
    assert plt.get_fignums() == []  # nothing drawn before the inputs were checked


def test_cumulative_errors() -> None:
    dates, actual, expected = cumulative_data()
    weekly = actual.diff().fillna(actual.iloc[0])
    with pytest.raises(RetainInputError, match=r"actual must be cumulative \(a running total\)"):
        plot_cumulative_repeat_transactions(dates, weekly, expected)
    with pytest.raises(RetainInputError, match="dates must be strictly increasing"):
        plot_cumulative_repeat_transactions(dates[::-1], actual, expected)
    with pytest.raises(RetainInputError, match="dates has 77 values but actual has 78"):
        plot_cumulative_repeat_transactions(dates[1:], actual, expected)
    with pytest.raises(RetainInputError, match="calibration_end: cannot read 'soon' as a date"):
        plot_cumulative_repeat_transactions(dates, actual, expected, calibration_end="soon")
    shifted = {"bgnbd": expected["bgnbd"].set_axis(range(78))}
    with pytest.raises(RetainInputError, match="are Series with different indexes"):
        plot_cumulative_repeat_transactions(dates, actual, shifted)
