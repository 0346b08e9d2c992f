"""The backtest job: retain beside BG/NBD + Gamma-Gamma and a naive rule at one or more cutoffs."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from retain.jobs.inputs import Inputs

__all__ = ["EvaluateJob"]


class EvaluateJob(BaseModel):
    """``retain evaluate``: train up to each cutoff (the latest at ``as_of``), judge the
    ``horizon_days`` after it, and write the report (report.md, metrics.csv, summary.csv, PNGs)
    into ``out``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: Inputs
    as_of: str
    horizon_days: int = Field(default=180, ge=1)
    cutoffs: int = Field(default=1, ge=1)
    step_days: int | None = Field(default=None, ge=1)
    """Days between cutoffs (default: the horizon, so horizons do not overlap)."""
    out: Path = Path("evaluation")

    def run(self, log: Callable[[str], None]) -> Path:
        """Backtest, log each holdout's table and the summary; the report's path."""
        from retain.evaluation import (
            REPORT_PLOTS,
            backtest,
            format_comparison,
            format_summary,
            write_report,
        )

        transactions, _, _ = self.inputs.frames(log)
        started = time.perf_counter()
        result = backtest(
            transactions,
            horizon_days=self.horizon_days,
            n_cutoffs=self.cutoffs,
            step_days=self.step_days,
            last_cutoff=self.as_of,
        )
        for i, holdout in enumerate(result.holdouts, start=1):
            frame = holdout.frame
            log(
                f"holdout {i} of {len(result.holdouts)}: trained up to {holdout.as_of:%Y-%m-%d}, "
                f"judged on the next {result.horizon_days} days ({len(frame):,} customers, "
                f"{frame['churned'].mean():.1%} churned)"
            )
            log(format_comparison(holdout.table()))
        log(format_summary(result.summary, len(result.holdouts)))
        report = write_report(result, self.out)
        log(
            f"report: {report} (with metrics.csv, summary.csv and {len(REPORT_PLOTS)} plots) in "
            f"{time.perf_counter() - started:.0f}s"
        )
        return report
