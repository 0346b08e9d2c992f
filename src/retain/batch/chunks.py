"""Scoring one chunk of customers: the unit of work of both engines.

A chunk holds every row of its customers (transactions, and events and customer records when
given), so its features are exactly the features those customers get in a whole-base run: every
feature is per customer. The local engine loops over chunks; the Spark engine runs the same
function on each hash partition of customers. Both hash the *validated* customer id (trimmed text),
so rows that differ only in white space around the id land in the same chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from retain.actions import recommend_actions
from retain.batch.schema import HISTORY_COLUMNS, SCORES_SCHEMA
from retain.features.builder import to_cutoff
from retain.models.retention import RetentionModel
from retain.models.training import up_to
from retain.monitoring import DRIFT_FEATURES, DRIFT_PREDICTIONS, add_counts

__all__ = ["ChunkResult", "chunk_of", "score_chunk"]


def chunk_of(customer_ids: pd.Series, n_chunks: int) -> np.ndarray:
    """The chunk (0 to ``n_chunks - 1``) of each validated customer id, stable across runs and
    machines (pandas' fixed-key SipHash of the text, not Python's salted ``hash``)."""
    codes = pd.util.hash_array(customer_ids.astype("str").to_numpy(dtype=object))
    return (codes % np.uint64(n_chunks)).astype(np.int64)


@dataclass
class ChunkResult:
    """The scores of a chunk's customers and what the manifest needs to know about them."""

    scores: pd.DataFrame
    customers_without_purchase: int = 0
    rows_after_as_of: int = 0
    drift_counts: dict[str, list[int]] = field(default_factory=dict)

    def merge_counts(self, other: ChunkResult) -> None:
        """Add another chunk's counts into this one (scores are written, not merged)."""
        self.customers_without_purchase += other.customers_without_purchase
        self.rows_after_as_of += other.rows_after_as_of
        add_counts(self.drift_counts, other.drift_counts)


def score_chunk(
    model: RetentionModel,
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    *,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    n_reasons: int = 3,
) -> ChunkResult:
    """Scores and recommended actions of the customers in validated frames, as of a day.

    Customers whose first purchase comes after ``as_of`` (or who only ever refunded) have no
    features yet: they are counted, not scored.
    """
    day = to_cutoff(as_of)
    history = up_to(transactions, day)
    known = transactions["customer_id"].nunique()
    purchases = history.loc[history["amount"] >= 0]
    if purchases.empty:
        return ChunkResult(
            _empty_scores(),
            customers_without_purchase=known,
            rows_after_as_of=len(transactions) - len(history),
        )
    table = model.features(history, day, events=events, customers=customers)
    scores = model.score_features(table, day, n_reasons=n_reasons)
    for column in HISTORY_COLUMNS:
        scores[column] = table[column].to_numpy(dtype="float64")
    scores["action"] = recommend_actions(scores).to_numpy()  # reads the history columns too
    counts = model.drift_profile_.count(
        pd.concat(
            [
                table[[c for c in DRIFT_FEATURES if c in table]].reset_index(drop=True),
                scores[list(DRIFT_PREDICTIONS)],
            ],
            axis=1,
        )
    )
    return ChunkResult(
        scores,
        customers_without_purchase=known - len(scores),
        rows_after_as_of=len(transactions) - len(history),
        drift_counts=counts,
    )


def _empty_scores() -> pd.DataFrame:
    return SCORES_SCHEMA.empty_table().to_pandas()
