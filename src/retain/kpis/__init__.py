"""Retention KPIs: CRR, churn, buyers, orders and revenue per calendar period, and cohort tables.

Definitions are in :mod:`retain.kpis.retention`.
"""

from retain.kpis.retention import (
    KPI_COLUMNS,
    PERIODS,
    cohort_retention,
    retention_kpis,
    summarize_kpis,
)

__all__ = ["KPI_COLUMNS", "PERIODS", "cohort_retention", "retention_kpis", "summarize_kpis"]
