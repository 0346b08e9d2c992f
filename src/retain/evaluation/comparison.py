"""The model beside its baselines: one table of metrics, one column per contender, the best marked.

Which value is best depends on the metric: higher for AUCs, the timing C-index, Gini and
Spearman, lower for errors and losses (Brier scores, the integrated Brier of the timing curves), closest to zero for the signed ``total_error``; descriptive figures (``base_rate``,
``mean_predicted``, totals) have no best. Metric names are matched exactly, or by their last part
after ``_``, ``.``, ``/`` or ``:``, so prefixed names from several metric groups in one table
(``clv_spearman``, ``purchases.total_error``) keep their direction.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

import numpy as np
import pandas as pd

from retain.errors import RetainInputError

__all__ = [
    "BEST_COLUMN",
    "METRIC_DIRECTIONS",
    "compare",
    "format_comparison",
    "metric_direction",
    "text_table",
]

Direction = Literal["higher", "lower", "closest_to_zero"]

METRIC_DIRECTIONS: Final[Mapping[str, Direction]] = MappingProxyType(
    {
        "auc": "higher",
        "roc_auc": "higher",
        "pr_auc": "higher",
        "repurchase_auc": "higher",
        "brier": "lower",
        "cindex": "higher",
        "integrated_brier": "lower",
        "log_loss": "lower",
        "spearman": "higher",
        "mae": "lower",
        "rmse": "lower",
        "total_error": "closest_to_zero",
        "normalized_gini": "higher",
        "top_decile_share": "higher",
    }
)
"""Which value wins for the metrics of :mod:`retain.evaluation.metrics` and
:mod:`retain.evaluation.timing_metrics`."""

BEST_COLUMN: Final = "best"
"""Name of the column of :func:`compare` that names the best contender(s) of each metric."""

_SEPARATORS: Final = re.compile(r"[_./:]")


def compare(
    results: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, bool] | None = None,
) -> pd.DataFrame:
    """One row per metric, one column per contender (in the given order), plus ``best``.

    ``results`` maps a contender ("retain", "bgnbd", "naive") to its metrics; a metric missing
    for a contender is NaN. ``higher_is_better`` adds or overrides directions (see
    :data:`METRIC_DIRECTIONS`); metrics with no known direction get no best. ``best`` names the
    contender with the best value, several joined by ", " on an exact tie, or is empty when fewer
    than two contenders have a value (a lone number wins nothing). NaN values are skipped.
    """
    if not isinstance(results, Mapping) or not results:
        raise RetainInputError("results must be a non-empty dict {contender: {metric: value}}")
    if BEST_COLUMN in results:
        raise RetainInputError(
            f"results: {BEST_COLUMN!r} cannot be a contender name (it is the column of winners)"
        )
    metrics: dict[str, None] = {}  # an ordered set: metrics in first-seen order
    for contender, values in results.items():
        if not isinstance(values, Mapping):
            raise RetainInputError(
                f"results[{contender!r}] must be a dict {{metric: value}}, not "
                f"{type(values).__name__}"
            )
        for metric, value in values.items():
            if not isinstance(value, numbers.Real):
                raise RetainInputError(
                    f"results[{contender!r}][{metric!r}] must be a number, not {value!r}"
                )
            metrics.setdefault(metric, None)
    directions = _directions(list(metrics), higher_is_better)
    table = pd.DataFrame(
        {
            contender: [float(values.get(metric, math.nan)) for metric in metrics]
            for contender, values in results.items()
        },
        index=pd.Index(list(metrics), name="metric", dtype=object),
    )
    table[BEST_COLUMN] = [
        _best(row, directions.get(str(metric))) for metric, row in table.iterrows()
    ]
    return table


def format_comparison(df: pd.DataFrame) -> str:
    """The table of :func:`compare` as aligned text for a terminal or a log.

    Values have 3 decimals (thousands separated); the best value of each metric carries a star,
    missing values print as ``-``. Numbers are right-aligned with a blank where others have a
    star, so decimal points line up.
    """
    if not isinstance(df, pd.DataFrame) or BEST_COLUMN not in df.columns:
        raise RetainInputError(
            f"df must be the table returned by compare() (with a {BEST_COLUMN!r} column)"
        )
    contenders = [str(c) for c in df.columns if c != BEST_COLUMN]
    header = ["metric", *(f"{name} " for name in contenders)]  # the blank: over the stars
    rows = [header]
    for metric, row in df.iterrows():
        winners = set(filter(None, str(row[BEST_COLUMN]).split(", ")))
        cells = [str(metric)]
        for contender in contenders:
            value = float(row[contender])
            text = "-" if math.isnan(value) else f"{value:,.3f}"
            cells.append(text + ("*" if contender in winners else " "))
        rows.append(cells)
    lines = text_table(rows)
    lines.append("* best of the contenders on that metric")
    return "\n".join(lines)


def _directions(
    metrics: list[str], higher_is_better: Mapping[str, bool] | None
) -> dict[str, Direction]:
    """The direction of each metric: the user's word first, then the known names."""
    overrides = dict(higher_is_better or {})
    for metric, flag in overrides.items():
        if not isinstance(flag, bool | np.bool_):
            raise RetainInputError(
                f"higher_is_better[{metric!r}] must be True or False, not {flag!r}"
            )
    directions: dict[str, Direction] = {}
    for metric in metrics:
        if metric in overrides:
            directions[metric] = "higher" if overrides[metric] else "lower"
            continue
        known = metric_direction(metric)
        if known is not None:
            directions[metric] = known
    return directions


def text_table(rows: list[list[str]]) -> list[str]:
    """Rows of cells as aligned text lines: the first column left-aligned, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def metric_direction(metric: str) -> Direction | None:
    """The direction of ``metric`` or of its longest known suffix after a separator (None when
    unknown): "higher", "lower" or "closest_to_zero" is better."""
    if metric in METRIC_DIRECTIONS:
        return METRIC_DIRECTIONS[metric]
    for match in _SEPARATORS.finditer(metric):  # left to right: longest suffix first
        suffix = metric[match.end() :]
        if suffix in METRIC_DIRECTIONS:
            return METRIC_DIRECTIONS[suffix]
    return None


def _best(values: pd.Series, direction: Direction | None) -> str:
    present = values.dropna()
    if direction is None or len(present) < 2:
        return ""
    if direction == "higher":
        winners = present[present == present.max()]
    elif direction == "lower":
        winners = present[present == present.min()]
    else:
        distance = present.abs()
        winners = present[distance == distance.min()]
    return ", ".join(str(name) for name in winners.index)
