"""The model-versus-baselines table: directions, ties, missing values, and the terminal text."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from retain.errors import RetainInputError
from retain.evaluation import BEST_COLUMN, compare, format_comparison

RESULTS = {
    "retain": {"roc_auc": 0.81, "brier": 0.15, "total_error": -0.02, "base_rate": 0.3},
    "bgnbd": {"roc_auc": 0.74, "brier": 0.14, "total_error": 0.05, "base_rate": 0.3},
    "naive": {"roc_auc": 0.66, "brier": 0.19, "total_error": 0.01, "base_rate": 0.3},
}


def test_compare_layout_and_best_by_direction() -> None:
    table = compare(RESULTS)
    assert list(table.columns) == ["retain", "bgnbd", "naive", BEST_COLUMN]
    assert table.index.tolist() == ["roc_auc", "brier", "total_error", "base_rate"]
    assert table.index.name == "metric"
    assert table.loc["brier", "bgnbd"] == 0.14
    assert table[BEST_COLUMN].to_dict() == {
        "roc_auc": "retain",  # higher is better
        "brier": "bgnbd",  # lower is better
        "total_error": "naive",  # closest to zero, not the lowest (-0.02)
        "base_rate": "",  # descriptive: no best
    }


def test_higher_is_better_overrides_and_extends() -> None:
    table = compare(RESULTS, higher_is_better={"roc_auc": False, "base_rate": True})
    assert table.loc["roc_auc", BEST_COLUMN] == "naive"
    assert table.loc["base_rate", BEST_COLUMN] == "retain, bgnbd, naive"  # an exact tie


def test_prefixed_metric_names_keep_their_direction() -> None:
    table = compare(
        {
            "retain": {"clv_spearman": 0.6, "purchases.total_error": 0.2, "clv_mae": 3.0, "x": 1},
            "bgnbd": {"clv_spearman": 0.5, "purchases.total_error": -0.1, "clv_mae": 2.0, "x": 2},
        }
    )
    assert table[BEST_COLUMN].tolist() == ["retain", "bgnbd", "bgnbd", ""]


def test_missing_values_are_nan_and_skipped() -> None:
    table = compare(
        {
            "retain": {"roc_auc": 0.7, "spearman": float("nan")},
            "bgnbd": {"roc_auc": 0.8},
            "naive": {"roc_auc": 0.6, "spearman": 0.2},
        }
    )
    assert math.isnan(table.loc["spearman", "bgnbd"])
    assert table.loc["roc_auc", BEST_COLUMN] == "bgnbd"
    assert table.loc["spearman", BEST_COLUMN] == ""  # one value left: nothing to beat


def test_compare_errors() -> None:
    with pytest.raises(RetainInputError, match="results must be a non-empty dict"):
        compare({})
    with pytest.raises(RetainInputError, match="'best' cannot be a contender name"):
        compare({"best": {"roc_auc": 0.5}})
    with pytest.raises(RetainInputError, match=r"results\['naive'\]\['mae'\] must be a number"):
        compare({"naive": {"mae": "3.2"}})  # type: ignore[dict-item]
    with pytest.raises(RetainInputError, match=r"higher_is_better\['mae'\] must be True or False"):
        compare({"a": {"mae": 1.0}}, higher_is_better={"mae": "yes"})  # type: ignore[dict-item]


def test_format_comparison_exact_text() -> None:
    table = compare(
        {
            "retain": {"roc_auc": 0.81234, "total_actual": 12345.6},
            "naive": {"roc_auc": 0.7, "total_actual": float("nan")},
        }
    )
    assert format_comparison(table) == (
        "metric            retain   naive\n"
        "roc_auc            0.812*  0.700\n"
        "total_actual  12,345.600       -\n"
        "* best of the contenders on that metric"
    )


def test_format_comparison_aligns_decimal_points_and_stars() -> None:
    assert format_comparison(compare(RESULTS)) == (
        "metric       retain   bgnbd   naive\n"
        "roc_auc       0.810*  0.740   0.660\n"
        "brier         0.150   0.140*  0.190\n"
        "total_error  -0.020   0.050   0.010*\n"
        "base_rate     0.300   0.300   0.300\n"
        "* best of the contenders on that metric"
    )


def test_format_comparison_needs_a_compare_table() -> None:
    with pytest.raises(RetainInputError, match="df must be the table returned by compare"):
        format_comparison(pd.DataFrame({"retain": [0.5]}))


def test_timing_metric_directions() -> None:
    table = compare(
        {
            "retain": {"timing_cindex": 0.77, "integrated_brier": 0.091},
            "bgnbd": {"timing_cindex": 0.76, "integrated_brier": 0.090},
            "naive": {"timing_cindex": 0.75},
        }
    )
    assert table.loc["timing_cindex", BEST_COLUMN] == "retain"  # higher is better
    assert table.loc["integrated_brier", BEST_COLUMN] == "bgnbd"  # lower is better
    assert math.isnan(table.loc["integrated_brier", "naive"])
