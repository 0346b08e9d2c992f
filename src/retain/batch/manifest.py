"""``manifest.json``: what a scoring run read, which model it used, what it wrote, and how long it
took, so that any score can be traced back to its inputs and its model version."""

from __future__ import annotations

import hashlib
import importlib.metadata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from pydantic import BaseModel, Field

__all__ = [
    "DriftReport",
    "InputSummary",
    "Manifest",
    "ModelInfo",
    "file_digest",
    "package_versions",
]

_PACKAGES = (
    "retain",
    "numpy",
    "pandas",
    "pyarrow",
    "duckdb",
    "lightgbm",
    "scikit-learn",
    "lifetimes",
    "mlflow",
    "pyspark",
)


class InputSummary(BaseModel):
    """One input table: where it came from, its content hash and what validation made of it."""

    path: str
    sha256: str
    bytes: int
    rows_read: int = 0
    rows_valid: int = 0
    rows_rejected: dict[str, int] = Field(default_factory=dict)
    """Rows set aside, by reason (a parse failure, a missing id, a duplicate dropped...)."""
    duplicate_rows: int = 0
    refund_rows: int = 0
    normalised_ids: int = 0
    """Rows whose customer id was written as a decimal (12346.0) and read as 12346."""
    nonpositive_quantity_rows: int = 0
    shared_order_ids: int = 0
    """Order ids used by several customers. With Spark, the sum over the partitions of customers:
    an order id shared across two partitions is not seen."""
    currencies: dict[str, int] = Field(default_factory=dict)
    """Rows read in each code of the ``currency`` column, if the table has one."""
    warnings: list[str] = Field(default_factory=list)

    def add(self, counts: Mapping[str, Any]) -> Self:
        """Count in one part of the table (``report_counts`` of a chunk's or a partition's
        validation report)."""
        rejected = _summed(self.rows_rejected, counts["quarantined"])
        warnings = [*self.warnings, *(w for w in counts["warnings"] if w not in self.warnings)]
        return self.model_copy(
            update={
                "rows_read": self.rows_read + int(counts["rows_read"]),
                "rows_valid": self.rows_valid + int(counts["rows_valid"]),
                "rows_rejected": rejected,
                "duplicate_rows": self.duplicate_rows + int(counts["duplicate_rows"]),
                "refund_rows": self.refund_rows + int(counts["refund_rows"]),
                "normalised_ids": self.normalised_ids + int(counts["normalised_ids"]),
                "nonpositive_quantity_rows": self.nonpositive_quantity_rows
                + int(counts["nonpositive_quantity_rows"]),
                "shared_order_ids": self.shared_order_ids + int(counts["shared_order_ids"]),
                "currencies": _summed(self.currencies, counts["currencies"]),
                "warnings": warnings,
            }
        )


def _summed(counts: Mapping[str, int], more: Mapping[str, Any]) -> dict[str, int]:
    total = dict(counts)
    for key, n in more.items():
        total[key] = total.get(key, 0) + int(n)
    return total


class ModelInfo(BaseModel):
    name: str
    version: str
    uri: str
    trained_as_of: str
    horizon_days: int


class DriftReport(BaseModel):
    """Population stability of key features and of the predictions against the training data."""

    reference: str
    threshold: float
    features: dict[str, float] = Field(default_factory=dict)
    predictions: dict[str, float] = Field(default_factory=dict)
    drifted: list[str] = Field(default_factory=list)
    """Columns whose PSI is above the threshold (the job warns about each)."""


class Manifest(BaseModel):
    retain_version: str
    created_at: str
    engine: str
    as_of: str
    horizon_days: int
    model: ModelInfo
    inputs: dict[str, InputSummary]
    customers_scored: int
    customers_without_purchase: int
    """Customers in the input with no purchase on or before as_of: no features yet, not scored."""
    output: dict[str, str | int]
    durations_s: dict[str, float]
    drift: DriftReport | None
    packages: dict[str, str]

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path


def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, or of every file under a folder (a partitioned parquet
    dataset) in name order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    size = 0
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
                size += len(block)
    return digest.hexdigest(), size


def package_versions() -> dict[str, str]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
