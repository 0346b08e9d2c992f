"""Retention KPIs: CRR, churn, buyers, orders and revenue per calendar period, and cohort tables.

Definitions are in :mod:`retain.kpis.retention`; the expected CRR of the period the models look
into is :func:`forecast_crr` (:mod:`retain.kpis.forecast`).
"""

from retain.kpis.forecast import CRRForecast, forecast_crr
from retain.kpis.retention import (
    KPI_COLUMNS,
    PERIODS,
    cohort_retention,
    retention_kpis,
    summarize_kpis,
)

__all__ = [
    "KPI_COLUMNS",
    "PERIODS",
    "CRRForecast",
    "cohort_retention",
    "forecast_crr",
    "retention_kpis",
    "summarize_kpis",
]
