"""RFM scores (1-5) and named segments.

Scores
------
Each of recency, frequency and monetary value gets a score from 1 (worst) to 5 (best), by quintile
edges learned with :meth:`RFMSegmenter.fit` on a population of customers. The edges are kept, so a
single customer scored later (by the HTTP service, say) is placed against the population the model
was trained on, not against itself.

- R: days since the last purchase (fewer is better);
- F: purchase days (``frequency + 1``);
- M: net spend over the whole history (``spend_total``).

A value's score is 1 + the number of edges strictly below it, so customers tied on an edge share the
lower score: with 60% one-time buyers, every one-time buyer gets F = 1.

Segments
--------
From R and FM = round((F + M) / 2), as in the usual RFM grid (R rows, FM columns):

======  ==================  ==================  ==================  ============  ============
R \\ FM  1                   2                   3                   4             5
======  ==================  ==================  ==================  ============  ============
5       New                 Potential loyalist  Potential loyalist  Champions     Champions
4       Promising           Potential loyalist  Potential loyalist  Loyal         Loyal
3       Need attention      Need attention      Need attention      Loyal         Loyal
2       Hibernating         Hibernating         At risk             At risk       Can't lose
1       Lost                Lost                At risk             At risk       Can't lose
======  ==================  ==================  ==================  ============  ============
"""

from __future__ import annotations

from typing import Final, Self

import numpy as np
import pandas as pd

from retain.errors import RetainInputError

__all__ = ["SEGMENTS", "RFMSegmenter", "segment_of"]

SEGMENTS: Final = (
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Need attention",
    "At risk",
    "Can't lose",
    "Hibernating",
    "Lost",
)

# _GRID[r - 1][fm - 1] is the segment of recency score r and frequency-monetary score fm.
_GRID: Final = (
    ("Lost", "Lost", "At risk", "At risk", "Can't lose"),
    ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"),
    ("Need attention", "Need attention", "Need attention", "Loyal", "Loyal"),
    ("Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"),
    ("New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"),
)

_QUANTILES: Final = (0.2, 0.4, 0.6, 0.8)
# The grid as codes into SEGMENTS, so scoring picks categories without comparing text.
_GRID_CODES: Final = np.array([[SEGMENTS.index(name) for name in row] for row in _GRID])
_SEGMENT_DTYPE: Final = pd.CategoricalDtype(list(SEGMENTS))


def segment_of(r_score: int, fm_score: int) -> str:
    """The named segment of one (R, FM) pair of scores."""
    return _GRID[r_score - 1][fm_score - 1]


class RFMSegmenter:
    """Learns quintile edges of R, F and M on a population; scores and names any customer."""

    def fit(self, features: pd.DataFrame) -> Self:
        """Learn the quintile edges from a feature table (``days_since_last_purchase``,
        ``frequency``, ``spend_total`` columns)."""
        _require(features)
        if features.empty:
            raise RetainInputError("RFM segments: cannot learn score edges from zero customers")
        # Recency is negated so that for all three a higher value is better.
        self.recency_edges_ = _edges(-features["days_since_last_purchase"])
        self.frequency_edges_ = _edges(features["frequency"] + 1)
        self.monetary_edges_ = _edges(features["spend_total"])
        return self

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """``features`` with ``r_score``, ``f_score``, ``m_score``, ``rfm_score`` and ``segment``."""
        scores = self.scores(features)
        # One concatenation rather than five insertions into a wide table (a request's latency).
        present = set(features.columns.tolist())
        stale = [c for c in scores.columns.tolist() if c in present]
        return pd.concat([features.drop(columns=stale) if stale else features, scores], axis=1)

    def scores(self, features: pd.DataFrame) -> pd.DataFrame:
        """The five segment columns alone, on the index of ``features``."""
        if not hasattr(self, "recency_edges_"):
            raise RetainInputError("RFM segments: call fit before transform")
        _require(features)
        r = _score(-features["days_since_last_purchase"], self.recency_edges_)
        f = _score(features["frequency"] + 1, self.frequency_edges_)
        m = _score(features["spend_total"], self.monetary_edges_)
        # Round half up: (F + M) / 2 = 2.5 counts as 3.
        fm = np.floor((f + m) / 2 + 0.5).astype(int)
        segment = pd.Categorical.from_codes(_GRID_CODES[r - 1, fm - 1], dtype=_SEGMENT_DTYPE)
        return pd.DataFrame(
            {
                "r_score": r,
                "f_score": f,
                "m_score": m,
                "rfm_score": r * 100 + f * 10 + m,
                "segment": segment,
            },
            index=features.index,
        )

    def fit_transform(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.fit(features).transform(features)

    def edges(self) -> dict[str, list[float]]:
        """The learned edges, as plain lists (recency in days since the last purchase)."""
        return {
            "recency_days": sorted((-self.recency_edges_).tolist()),
            "frequency": self.frequency_edges_.tolist(),
            "monetary": self.monetary_edges_.tolist(),
        }


def _edges(values: pd.Series) -> np.ndarray:
    return np.quantile(values.to_numpy(dtype=float), _QUANTILES)


def _score(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, values.to_numpy(dtype=float), side="left") + 1


def _require(features: pd.DataFrame) -> None:
    missing = [
        c for c in ("days_since_last_purchase", "frequency", "spend_total") if c not in features
    ]
    if missing:
        raise RetainInputError(f"RFM segments: the feature table lacks {missing}")
