"""BTYD plots: what each draws (lines, image data, labels), into a given ax or a new figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: set by the tests, never by the library

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from tests.helpers import no_shown_figures  # noqa: F401  (the fixture, used by pytestmark)
from tests.models.btyd.helpers import CALIBRATION_END, HOLDOUT_END

from retain.errors import RetainInputError
from retain.models.btyd import TransactionModel
from retain.models.btyd.plots import (
    plot_cumulative_transactions,
    plot_frequency_recency_matrix,
    plot_probability_alive_matrix,
)
from retain.models.btyd.tracking import cumulative_repeat_transactions

pytestmark = pytest.mark.usefixtures("no_shown_figures")


def test_cumulative_transactions_plot(
    cdnow_fitted: dict[str, TransactionModel], cdnow_transactions: pd.DataFrame
) -> None:
    model = cdnow_fitted["bgnbd"]
    ax = plot_cumulative_transactions(
        model, cdnow_transactions, end=HOLDOUT_END, calibration_end=CALIBRATION_END
    )
    assert isinstance(ax, Axes)
    actual, expected, cutoff = ax.get_lines()
    table = cumulative_repeat_transactions(model, cdnow_transactions, end=HOLDOUT_END)
    np.testing.assert_array_equal(actual.get_xdata(), np.arange(1, 79))
    np.testing.assert_array_equal(actual.get_ydata(), table["actual"])
    np.testing.assert_allclose(expected.get_ydata(), table["expected"])
    assert np.asarray(cutoff.get_xdata()).tolist() == [39, 39]  # the calibration week
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["actual", "BetaGeoModel", "end of calibration"]
    assert ax.get_xlabel() == "period (7 days)"


def test_cumulative_transactions_plot_draws_into_a_given_ax(
    cdnow_fitted: dict[str, TransactionModel], cdnow_transactions: pd.DataFrame
) -> None:
    _, axes = plt.subplots(1, 2)
    ax = plot_cumulative_transactions(
        cdnow_fitted["pareto"], cdnow_transactions, end=CALIBRATION_END, ax=axes[1]
    )
    assert ax is axes[1]
    assert len(ax.get_lines()) == 2  # no calibration line without calibration_end
    assert len(axes[0].get_lines()) == 0
    assert len(ax.get_lines()[0].get_xdata()) == 39


def test_frequency_recency_matrix(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["bgnbd"]
    ax = plot_frequency_recency_matrix(model, T=39.0, max_frequency=20, t=4.0)
    assert isinstance(ax, Axes)
    (image,) = ax.get_images()
    matrix = np.ma.getdata(image.get_array())
    assert matrix.shape == (40, 21)  # recency 0..39 (rows) x frequency 0..20 (columns)
    # frequency 0 has recency 0 only: the rest of that column is blank
    assert np.isnan(matrix[1:, 0]).all() and np.isfinite(matrix[:, 1:]).all()
    expected = model.conditional_expected_number_of_purchases_up_to_time(
        4.0, [0, 5, 20], [0, 30, 39], 39.0
    )
    np.testing.assert_allclose([matrix[0, 0], matrix[30, 5], matrix[39, 20]], expected)
    assert matrix[39, 20] > matrix[0, 20]  # frequent and recent buys the most
    assert len(ax.figure.axes) == 2  # the plot and its colorbar
    assert "next 4 weeks" in ax.get_title()


def test_probability_alive_matrix(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["pareto"]
    _, ax = plt.subplots()
    returned = plot_probability_alive_matrix(model, T=30.0, max_frequency=10, max_recency=20, ax=ax)
    assert returned is ax
    matrix = np.ma.getdata(ax.get_images()[0].get_array())
    assert matrix.shape == (21, 11)
    values = matrix[np.isfinite(matrix)]
    assert values.size == 21 * 10 + 1 and ((values >= 0) & (values <= 1)).all()
    assert matrix[20, 10] == pytest.approx(
        float(model.conditional_probability_alive([10], [20.0], [30.0])[0])
    )
    assert "T = 30 weeks" in ax.get_title()


def test_matrix_arguments_are_checked(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["bgnbd"]
    with pytest.raises(RetainInputError, match="max_frequency"):
        plot_probability_alive_matrix(model, T=30.0, max_frequency=-1)
    with pytest.raises(RetainInputError, match="T must be a positive number"):
        plot_frequency_recency_matrix(model, T=0.0, max_frequency=5)
    with pytest.raises(RetainInputError, match="max_recency must be between 0 and T"):
        plot_frequency_recency_matrix(model, T=10.0, max_frequency=5, max_recency=11.0)
