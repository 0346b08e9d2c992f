"""The scoring job's actions step: OUT/actions (plan, audiences, report) published with the scores,
off with --no-actions, a bad settings file refused before any scoring, the command's options."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from tests.batch.conftest import AS_OF, N_CUSTOMERS, Fitted, Run, leftovers, run_cli, score

from retain.actions import PLAN_COLUMNS
from retain.batch import BatchSettings
from retain.errors import RetainInputError
from retain.jobs import ScoreJob

ACTION_FILES = [
    "actions.json",
    "actions.parquet",
    "discounts.csv",
    "outreach.csv",
    "report.html",
    "retargeting.csv",
]


def test_the_job_publishes_the_actions_with_the_scores(scored: Run) -> None:
    actions = scored.out / "actions"
    assert sorted(p.name for p in actions.iterdir()) == ACTION_FILES
    plan = pd.read_parquet(actions / "actions.parquet")
    assert plan["customer_id"].tolist() == scored.scores["customer_id"].tolist()
    assert set(PLAN_COLUMNS) <= set(plan.columns)
    report = (actions / "report.html").read_text(encoding="utf-8")
    assert scored.manifest.model.version in report
    assert f"Scores as of <strong>{AS_OF}</strong>" in report
    # The KPIs come from the job's own transactions file; the log names the published folder.
    assert 'alt="CRR per period"' in report and 'alt="Cohort retention heatmap"' in report
    assert f"actions for {N_CUSTOMERS:,} customers as of {AS_OF} -> {actions}" in scored.log
    summary = json.loads((actions / "actions.json").read_text())
    assert summary["budget"] is None  # no --budget: the discount settings' budget, no cap


def test_no_actions_writes_the_scores_only(fitted: Fitted, tmp_path: Path) -> None:
    run = score(fitted, tmp_path / "out", actions=False, n_reasons=0)
    assert sorted(p.name for p in run.out.iterdir()) == ["manifest.json", "scores.parquet"]
    assert not any(line.startswith("actions for") for line in run.log)


def test_a_bad_action_settings_file_is_refused_before_scoring(
    fitted: Fitted, tmp_path: Path
) -> None:
    bad = tmp_path / "actions.toml"
    bad.write_text("[tiers]\nnames = ['Only']\n")
    out = tmp_path / "out"
    log: list[str] = []
    with pytest.raises(RetainInputError, match="tiers"):
        ScoreJob.of(
            BatchSettings(
                transactions=fitted.path,
                as_of=AS_OF,
                out=out,
                model=str(fitted.model_path),
                progress=False,
            ),
            action_settings=bad,
        ).run(log=log.append)
    assert not out.exists() and leftovers(out) == []
    assert not any("scoring" in line for line in log)


def test_the_command_takes_a_budget_and_settings(fitted: Fitted, tmp_path: Path) -> None:
    settings = tmp_path / "actions.toml"
    settings.write_text("[outreach]\nlead_days = 7\n\n[discounts]\nlevels = [0.05, 0.1]\n")
    out = tmp_path / "out"
    result = run_cli(
        "score", "-t", fitted.path, "--as-of", AS_OF, "--model", fitted.model_path,
        "--out", out, "--no-progress", "--reasons", "0", "--budget", "150",
        "--action-settings", settings, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "actions" / "actions.json").read_text())
    assert summary["budget"] == 150.0
    assert summary["discounts"]["expected_cost"] <= 150.0 + 1e-6
    assert set(summary["discounts"]["customers_per_level"]) == {"0.0", "0.05", "0.1"}
    for audience in summary["audiences"]:
        assert f"  {audience['name']}: {audience['customers']:,} customers" in result.stdout
    assert f"report: {out / 'actions' / 'report.html'}" in result.stdout
