"""Point-in-time customer features, labels and RFM segments."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from retain.features.builder import RFM_COLUMNS, FeatureBuilder, to_cutoff
from retain.features.segments import SEGMENTS, RFMSegmenter, segment_of

__all__ = [
    "RFM_COLUMNS",
    "SEGMENTS",
    "FeatureBuilder",
    "RFMSegmenter",
    "build_features",
    "segment_of",
    "to_cutoff",
]


def build_features(
    transactions: pd.DataFrame,
    as_of: str | dt.date | pd.Timestamp,
    *,
    events: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    horizon_days: int | None = None,
    observed_until: str | dt.date | pd.Timestamp | None = None,
    builder: FeatureBuilder | None = None,
) -> pd.DataFrame:
    """Features of every customer as of ``as_of``, RFM segments scored on that population, and,
    with ``horizon_days``, the labels of the horizon after it."""
    builder = builder or FeatureBuilder()
    features = builder.build(transactions, as_of, events=events, customers=customers)
    features = RFMSegmenter().fit_transform(features)
    if horizon_days is not None:
        labels = builder.labels(transactions, as_of, horizon_days, observed_until)
        features = features.merge(labels, on="customer_id", how="left", validate="one_to_one")
    return features
