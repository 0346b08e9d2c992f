"""Population stability of features and predictions between training and a scoring run.

The population stability index (PSI) compares the share of a population in each bin of a
reference distribution: ``PSI = sum_k (a_k - e_k) * ln(a_k / e_k)`` with ``e`` the reference
shares and ``a`` the scored shares. Bins are the reference's deciles (fewer where values repeat)
plus one bin for missing values, so a feature that goes missing counts as drift too. Common reading:
under 0.1 stable, 0.1 to 0.25 a shift worth a look, above 0.25 a different population.

Counts are additive: a chunk of customers or a Spark partition counts its own rows, and the sums
give the PSI of the whole run without holding it in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Self

import numpy as np
import pandas as pd
from pydantic import BaseModel

__all__ = [
    "DRIFT_FEATURES",
    "DRIFT_PREDICTIONS",
    "DriftProfile",
    "add_counts",
    "population_stability_index",
]

DRIFT_FEATURES = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "orders_365d",
    "spend_365d",
)
DRIFT_PREDICTIONS = ("churn_probability", "p_purchase_30d", "expected_purchases", "clv")
_N_BINS = 10
# Shares are floored at this before the logarithm: an empty bin must not make the index infinite.
_FLOOR = 1e-4


def population_stability_index(
    expected: np.ndarray | Sequence[float], actual: np.ndarray | Sequence[float]
) -> float:
    """The PSI of two count (or share) vectors over the same bins."""
    e = np.maximum(np.asarray(expected, float) / max(float(np.sum(expected)), 1.0), _FLOOR)
    a = np.maximum(np.asarray(actual, float) / max(float(np.sum(actual)), 1.0), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftProfile(BaseModel):
    """Bin edges of some columns and the counts of a reference population in those bins.

    The last count of every column is its missing values.
    """

    edges: dict[str, list[float]]
    counts: dict[str, list[int]]

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: Iterable[str]) -> Self:
        """The reference profile: decile edges of each column present in ``frame``, and counts."""
        edges: dict[str, list[float]] = {}
        for column in columns:
            if column not in frame:
                continue
            values = frame[column].to_numpy(dtype="float64")
            finite = values[np.isfinite(values)]
            inner = (
                np.unique(np.quantile(finite, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
                if finite.size
                else np.array([])
            )
            edges[column] = [float(v) for v in inner]
        profile = cls(edges=edges, counts={})
        return profile.model_copy(update={"counts": profile.count(frame)})

    def count(self, frame: pd.DataFrame) -> dict[str, list[int]]:
        """Rows of ``frame`` in each bin of each profiled column (absent columns: all missing)."""
        counts: dict[str, list[int]] = {}
        for column, inner in self.edges.items():
            if column in frame:
                values = frame[column].to_numpy(dtype="float64")
            else:
                values = np.full(len(frame), np.nan)
            missing = ~np.isfinite(values)
            # Bin k holds edges[k-1] < v <= edges[k]; the first bin everything up to edges[0].
            bins = np.searchsorted(np.asarray(inner), values[~missing], side="left")
            tally = np.bincount(bins, minlength=len(inner) + 1)
            counts[column] = [*(int(n) for n in tally), int(missing.sum())]
        return counts

    def stability(self, counts: Mapping[str, list[int]]) -> dict[str, float]:
        """The PSI of each column, from counts made with :meth:`count` (summed over chunks)."""
        return {
            column: round(population_stability_index(self.counts[column], counts[column]), 6)
            for column in self.edges
            if column in counts
        }


def add_counts(total: dict[str, list[int]], part: Mapping[str, list[int]]) -> dict[str, list[int]]:
    """Sum two sets of bin counts (the result of :meth:`DriftProfile.count`)."""
    for column, values in part.items():
        if column in total:
            total[column] = [a + b for a, b in zip(total[column], values, strict=True)]
        else:
            total[column] = list(values)
    return total
