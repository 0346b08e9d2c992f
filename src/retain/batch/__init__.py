"""Batch scoring: the whole customer base, on one machine or on Spark, published atomically."""

from retain.batch.job import SCORES_FILE, ScoringJob
from retain.batch.manifest import Manifest
from retain.batch.publish import atomic_directory
from retain.batch.settings import BatchSettings

__all__ = ["SCORES_FILE", "BatchSettings", "Manifest", "ScoringJob", "atomic_directory"]
