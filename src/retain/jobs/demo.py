"""The demo: the main job on bundled real data (CDNOW), from validation to the scores' actions."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from retain.jobs.inputs import Inputs, TableSource
from retain.jobs.lines import kpi_lines, last_day, segment_lines
from retain.jobs.score import ScoreJob
from retain.jobs.train import TrainingOptions, train_tracked_lines

__all__ = ["DemoJob"]


class DemoJob(BaseModel):
    """``retain demo``: validate CDNOW, build features, KPIs, train with tracking, register the
    champion and score every customer with it (the nightly job, actions included), into ``out``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    out: Path = Path("retain-demo")
    horizon_days: int = Field(default=181, ge=1)

    def run(self, log: Callable[[str], None], warn: Callable[[str], None] | None = None) -> None:
        """Run the five steps, logging what each did (the scoring job's warnings to ``warn``)."""
        from retain.data.datasets import load_cdnow
        from retain.features import build_features
        from retain.tracking import TrackingSettings, check_tracking_server

        out = self.out
        started = time.perf_counter()
        settings = TrackingSettings()
        check_tracking_server(settings)
        log("[1/5] loading CDNOW (bundled with lifetimes) and validating it")
        data = load_cdnow("master")
        for line in data.lines():
            log(line)
        tx = data.transactions.frame
        as_of = tx["timestamp"].max().strftime("%Y-%m-%d")
        log(f"[2/5] building features as of {as_of}")
        table = build_features(tx, as_of)
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "features.parquet", index=False)
        log(f"  {len(table):,} customers x {table.shape[1] - 1} columns -> {out}/features.parquet")
        for line in segment_lines(table):
            log(line)
        self._kpis(tx, log)
        log(
            f"[4/5] training with tracking: holdout against the baselines, then the final model "
            f"on everything up to {as_of} ({self.horizon_days}-day horizon)"
        )
        result = train_tracked_lines(
            tx,
            as_of,
            self.horizon_days,
            TrainingOptions(),
            settings,
            "lifetimes:CDNOW_master.txt",
            log,
        )
        log(f"[5/5] the nightly scoring job with {settings.champion_uri()}")
        self._score(tx, as_of, settings.champion_uri(), log, warn or log)
        log(f"done in {time.perf_counter() - started:.0f}s. Next:")
        log(f"  mlflow ui --backend-store-uri {settings.resolved_uri()}   # run {result.run_id}")
        log(
            f"  {out}/scores/ (scores.parquet, manifest.json), {out}/features.parquet, {out}/kpis.csv"
        )
        log(f"  {out}/scores/actions/report.html   # audiences, discounts, outreach, KPIs")

    def _kpis(self, tx: pd.DataFrame, log: Callable[[str], None]) -> None:
        from retain.kpis import retention_kpis, summarize_kpis

        log("[3/5] retention KPIs by quarter (active = a purchase in the last 365 days)")
        kpi_table = retention_kpis(tx, period="Q")
        kpi_table.to_csv(self.out / "kpis.csv", index=False)
        # The demo has no window option; the kpis command has.
        for line in kpi_lines(
            summarize_kpis(tx),
            kpi_table,
            last_day(tx),
            window_option="window (retain kpis --active-window-days)",
        ):
            log(line)

    def _score(
        self,
        tx: pd.DataFrame,
        as_of: str,
        model: str,
        log: Callable[[str], None],
        warn: Callable[[str], None],
    ) -> str:
        """The nightly job on the demo's transactions, written as a file as a user's would be."""
        from retain.data.contract import SCORES_FILE

        out = self.out
        tx.to_parquet(out / "transactions.parquet", index=False)
        manifest = ScoreJob(
            inputs=Inputs(transactions=TableSource(path=out / "transactions.parquet")),
            as_of=as_of,
            out=out / "scores",
            model=model,
        ).run(
            log=lambda line: log(f"  {line}"),
            warn=lambda line: warn(f"  warning: {line}"),
        )
        scores = pd.read_parquet(out / "scores" / SCORES_FILE)
        log(
            f"  {len(scores):,} customers; mean churn probability "
            f"{scores['churn_probability'].mean():.3f}, expected purchases "
            f"{scores['expected_purchases'].sum():,.0f}, CLV {scores['clv'].sum():,.0f} "
            f"in the next {self.horizon_days} days (model version {manifest.model.version})"
        )
        return manifest.model.version
