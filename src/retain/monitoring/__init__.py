"""Watching a model in use: how far the scored population has moved from the training one."""

from retain.monitoring.drift import (
    DRIFT_FEATURES,
    DRIFT_PREDICTIONS,
    DriftProfile,
    add_counts,
    population_stability_index,
)

__all__ = [
    "DRIFT_FEATURES",
    "DRIFT_PREDICTIONS",
    "DriftProfile",
    "add_counts",
    "population_stability_index",
]
