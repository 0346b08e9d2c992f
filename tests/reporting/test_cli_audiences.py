"""``retain audiences`` as a user runs it: a fresh process, the files it writes and its summary,
and bad input refused with one ``error:`` line, status 2 and nothing written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
from tests.batch.conftest import run_cli
from tests.reporting.conftest import Scored

from retain.cli import main


def run_main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str | Path
) -> tuple[int, str, str]:
    """``retain ARGS`` through the same entry point, in this process (faster than a process
    for refusals, which stop before any work): exit status, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["retain", *map(str, args)])
    with pytest.raises(SystemExit) as exit_:
        main()
    captured = capsys.readouterr()
    code = exit_.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def test_audiences_writes_every_output_and_a_summary(scored_output: Scored, tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    result = run_cli(
        "audiences", "--scores", scored_output.folder, "--budget", "250",
        "-t", scored_output.transactions, "--customers", scored_output.customers,
        "--campaign-history", scored_output.history, "--out", out, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "actions.json",
        "actions.parquet",
        "discounts.csv",
        "outreach.csv",
        "report.html",
        "retargeting.csv",
        "retargeting_customer_match.csv",
    ]
    summary = json.loads((out / "actions.json").read_text())
    assert summary["discounts"]["mode"] == "uplift"
    for audience in summary["audiences"]:
        assert f"  {audience['name']}: {audience['customers']:,} customers" in result.stdout
    assert "transactions:" in result.stdout  # the validation report of the file
    assert f"report: {out / 'report.html'}" in result.stdout
    assert "expected CRR 2024-07" in result.stdout


def test_by_default_the_actions_go_beside_the_scores(scored_output: Scored, tmp_path: Path) -> None:
    scores = Path(shutil.copytree(scored_output.folder, tmp_path / "scores"))
    result = run_cli("audiences", "--scores", scores, "--budget", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (scores / "actions" / "report.html").is_file()
    # A zero budget sends no discount; the other audiences are still built.
    assert pd.read_csv(scores / "actions" / "discounts.csv").empty
    assert len(pd.read_csv(scores / "actions" / "retargeting.csv")) > 0
    assert "No transactions were given" in (scores / "actions" / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "-5"], "--budget must be a number >= 0"),
        (["--budget", "10", "--settings", "{tmp}/nope.toml"], "settings: no file at"),
        (["--budget", "10", "--settings", "{tmp}/bad.toml"], "levls"),
        (["--budget", "10", "-t", "{tmp}/nope.csv"], "transactions: no file at"),
        (["--budget", "10", "--customers", "{tmp}/no_email.csv"], "has no email column"),
        (["--budget", "10", "--campaign-history", "{tmp}/nope.csv"], "campaign history: no file"),
        (["--budget", "10", "--campaign-history", "{tmp}/no_email.csv"], "treatment"),
    ],
)
def test_bad_input_is_one_error_line_status_2_and_nothing_written(
    scored_output: Scored,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "bad.toml").write_text("[discounts]\nlevls = [0.1]\n")
    pd.DataFrame({"customer_id": ["1"], "country": ["GB"]}).to_csv(
        tmp_path / "no_email.csv", index=False
    )
    out = tmp_path / "out"
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, stdout, stderr = run_main(
        capsys, monkeypatch, "audiences", "--scores", scored_output.folder, *arguments,
        "--out", out,
    )  # fmt: skip
    assert code == 2, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert message in lines[0]
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))


def test_a_value_outside_an_options_choices_is_a_usage_error(
    scored_output: Scored,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A fixed set of values is the option's type: click's usage error (status 2) names the
    option and its choices, before anything is read or written."""
    out = tmp_path / "out"
    code, stdout, stderr = run_main(
        capsys, monkeypatch, "audiences", "--scores", scored_output.folder, "--budget", "10",
        "--period", "W", "--out", out,
    )  # fmt: skip
    assert code == 2, stdout + stderr
    assert "Invalid value for '--period'" in stderr and "'M', 'Q', 'Y'" in stderr, stderr
    assert not out.exists()


def test_missing_scores_and_an_output_over_the_scores_are_refused(
    scored_output: Scored,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, stderr = run_main(
        capsys, monkeypatch, "audiences", "--scores", tmp_path / "none", "--budget", "1"
    )
    assert code == 2
    assert stderr.startswith("error: scores:")
    scores = Path(shutil.copytree(scored_output.folder, tmp_path / "scores"))
    before = sorted(p.name for p in scores.iterdir())
    # In a real process: the refusal is one line and status 2 there too.
    over = run_cli("audiences", "--scores", scores, "--budget", "1", "--out", scores, cwd=tmp_path)
    assert over.returncode == 2
    assert over.stderr.startswith("error: output:") and "is inside" in over.stderr
    assert len(over.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in scores.iterdir()) == before


def test_the_actions_job_is_what_the_command_runs(scored_output: Scored, tmp_path: Path) -> None:
    """``ActionsJob`` (the notebooks' way in) writes what ``retain audiences`` writes, and
    refuses a misspelt option by name before anything runs."""
    from pydantic import ValidationError

    from retain.jobs import ActionsJob, TableSource

    with pytest.raises(ValidationError, match="budjet"):
        ActionsJob(scores=scored_output.folder, budget=10, budjet=5)  # type: ignore[call-arg]
    lines: list[str] = []
    run = ActionsJob(
        scores=scored_output.folder,
        budget=10,
        transactions=TableSource(path=scored_output.transactions),
        out=tmp_path / "job",
    ).run(lines.append)
    cli = run_cli(
        "audiences", "--scores", scored_output.folder, "--budget", "10",
        "-t", scored_output.transactions, "--out", tmp_path / "cli", cwd=tmp_path,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert any(line.startswith("transactions:") for line in lines)  # its validation report
    for name in ("actions.parquet", "retargeting.csv", "discounts.csv", "outreach.csv"):
        assert (tmp_path / "job" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    assert run.folder == tmp_path / "job"
    assert json.loads((tmp_path / "job" / "actions.json").read_text())["budget"] == 10
