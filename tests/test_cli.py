"""The command line as a user runs it: a real process, its exit status, its output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

RETAIN = [sys.executable, "-m", "retain.cli"]


def run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``retain ARGS`` in a fresh process; MLflow's own variables are cleared so that a tracking
    URI set around the test suite never reaches the command (tests pass ``env`` to set one)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    return subprocess.run(
        [*RETAIN, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean | (env or {}),
        timeout=600,
    )


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A small store export with its own column names and a few bad rows."""
    path = tmp_path / "export.csv"
    path.write_text(
        "Customer ID,InvoiceDate,Amount,Invoice\n"
        "00017,2021-01-03 10:00,20.00,A1\n"
        "00017,2021-02-03 10:00,35.50,A2\n"
        "00017,2021-03-01 09:00,-5.00,C3\n"
        "00018,2021-01-10 12:00,12.00,A4\n"
        ",2021-01-11 12:00,9.00,A5\n"
        "00019,not a date,9.00,A6\n"
        "00019,2021-02-20 08:00,abc,A7\n"
        "00019,2021-02-21 08:00,14.00,A8\n"
    )
    return path


COLUMNS = "customer_id=Customer ID,timestamp=InvoiceDate,amount=Amount,order_id=Invoice"


def test_features_command_writes_the_table_and_counts_bad_rows(
    export: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(
        "features",
        "--transactions",
        export,
        "--as-of",
        "2021-03-31",
        "--out",
        out,
        "--columns",
        COLUMNS,
        "--quarantine",
        tmp_path / "bad.csv",
    )
    assert result.returncode == 0, result.stderr
    assert "8 rows read, 5 usable, 3 set aside; 3 customers" in result.stdout
    assert "1 row with missing customer_id" in result.stdout
    assert "1 row with unparseable timestamp" in result.stdout
    assert "1 row with non-numeric amount" in result.stdout
    table = pd.read_parquet(out / "features.parquet")
    assert table["customer_id"].tolist() == ["00017", "00018", "00019"]
    assert table.set_index("customer_id").loc["00017", "frequency"] == 1
    bad = pd.read_csv(tmp_path / "bad.csv")
    assert sorted(bad["reason"]) == [
        "missing customer_id",
        "non-numeric amount",
        "unparseable timestamp",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--columns", "customer_id=Nope"], "the column mapping names 'Nope' (for customer_id)"),
        ([], "required column 'customer_id' is missing"),
        (
            ["--columns", COLUMNS, "--as-of", "1999-01-01"],
            "no customer has a purchase on or before 1999-01-01",
        ),
        (["--columns", COLUMNS, "--as-of", "someday"], "as-of date: cannot read 'someday'"),
        (["--columns", COLUMNS, "--timezone", "Nowhere/City"], "unknown time zone 'Nowhere/City'"),
    ],
)
def test_user_mistakes_are_one_clear_line(
    export: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    if "--as-of" not in args:
        args = [*args, "--as-of", "2021-03-31"]
    result = run("features", "--transactions", export, "--out", tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_missing_and_empty_files(tmp_path: Path) -> None:
    result = run("validate", "--transactions", tmp_path / "none.csv")
    assert result.returncode == 2 and "no file at" in result.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = run("validate", "--transactions", empty)
    assert result.returncode == 2 and "is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_non_zero_without_traceback(tmp_path: Path) -> None:
    result = run("features", "--as-of", "2021-01-01")
    assert result.returncode == 2
    assert "Missing option '--transactions'" in result.stderr
    assert "Traceback" not in result.stderr


def test_kpis_command(export: Path, tmp_path: Path) -> None:
    result = run("kpis", "--transactions", export, "--columns", COLUMNS, "--out", tmp_path / "k")
    assert result.returncode == 0, result.stderr
    kpis = pd.read_csv(tmp_path / "k" / "kpis.csv")
    assert kpis["period"].tolist() == ["2021-01", "2021-02", "2021-03"]
    assert kpis["new_customers"].tolist() == [2, 1, 0]
    assert (tmp_path / "k" / "cohorts.csv").exists()
    # The data stop on 1 March: March is said to be partial, February is not.
    assert "note: 2021-03 is partial: the data end on 2021-03-01, the period on 2021-03-31." in (
        result.stdout
    )
    assert "2021-02 is partial" not in result.stdout


def test_demo_runs_on_bundled_data(tmp_path: Path) -> None:
    result = run("demo", "--out", tmp_path / "demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "23,570 customers" in result.stdout
    assert "Champions" in result.stdout and "crr" in result.stdout
    assert "is partial" not in result.stdout  # CDNOW ends on 1998-06-30, with its quarter
    assert len(pd.read_parquet(tmp_path / "demo" / "features.parquet")) == 23_570
    assert "registered retain version 1 as champion" in result.stdout
    assert len(pd.read_parquet(tmp_path / "demo" / "scores" / "scores.parquet")) == 23_570
    # The run in the local store holds the model's and the baselines' holdout metrics, and the
    # champion loads with plain MLflow and scores raw transactions.
    import mlflow
    from mlflow import MlflowClient

    from retain.data.datasets import load_cdnow
    from retain.tracking import to_model_input

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    champion = client.get_model_version_by_alias("retain", "champion")
    metrics = client.get_run(champion.run_id).data.metrics
    for contender in ("retain", "bgnbd", "naive"):
        assert 0.5 < metrics[f"churn_roc_auc/{contender}"] < 1.0
    mlflow.set_tracking_uri(uri)
    pyfunc = mlflow.pyfunc.load_model("models:/retain@champion")
    tx = load_cdnow("master").transactions.frame
    some = tx[tx["customer_id"].isin(["1", "2", "3"])]
    scores = pyfunc.predict(to_model_input(some), params={"as_of": "1998-06-30"})
    assert scores["customer_id"].tolist() == ["1", "2", "3"]
    assert scores["churn_probability"].between(0, 1).all()


GOLD = {
    # Fader, Hardie & Lee (2005) and the Pareto/NBD, MBG/NBD and Gamma-Gamma notes, on
    # CDNOW_sample.txt calibrated to 1997-09-30, in weeks.
    "bgnbd": ({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, -9582.4),
    "pareto": ({"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, -9595.0),
    "mbgnbd": ({"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}, None),
    "gamma-gamma": ({"p": 6.25, "q": 3.74, "gamma": 15.44}, None),
}


@pytest.mark.parametrize("model", list(GOLD))
def test_btyd_command_reproduces_the_literature(model: str, tmp_path: Path) -> None:
    import json

    from retain.data.datasets import load_cdnow

    path = tmp_path / "cdnow_sample.csv"
    load_cdnow("sample").transactions.frame.to_csv(path, index=False)
    result = run(
        "btyd",
        "--transactions",
        path,
        "--as-of",
        "1997-09-30",
        "--model",
        model,
        "--time-unit",
        "weeks",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    params, log_likelihood = GOLD[model]
    assert printed["model"] == model
    for name, value in params.items():
        assert printed["params"][name] == pytest.approx(value, rel=2e-3, abs=6e-3), name
    if log_likelihood is not None:
        assert printed["log_likelihood"] == pytest.approx(log_likelihood, abs=0.1)


def test_btyd_command_says_in_one_line_when_a_fit_does_not_converge(tmp_path: Path) -> None:
    """Nobody buys twice: the Pareto/NBD cannot converge. The JSON says so, stderr says why in
    one line (no Python file and line), and the suggested penalty is an option of the command."""
    import json

    path = tmp_path / "once.csv"
    rows = [f"c{i},2024-01-{1 + i % 28:02d} 10:00,{10 + i}" for i in range(60)]
    path.write_text("customer_id,timestamp,amount\n" + "\n".join(rows) + "\n")
    common = ("btyd", "--transactions", path, "--as-of", "2024-03-31", "--model", "pareto")
    plain = run(*common, "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["converged"] is False
    assert plain.stderr.startswith("warning: ParetoNBDModel did not converge: ")
    assert plain.stderr.count("\n") == 1 and ".py" not in plain.stderr
    assert "A small penalizer_coef (e.g. 0.001) usually helps." in plain.stderr
    penalized = run(*common, "--json", "--penalizer", "0.001")
    assert penalized.returncode == 0, penalized.stderr
    assert json.loads(penalized.stdout)["penalizer_coef"] == 0.001
    assert "penalizer_coef was 0.001." in penalized.stderr


def test_train_and_score_a_real_sample_through_the_cli(tmp_path: Path) -> None:
    """Train with tracking into the default local store (sqlite:///mlflow.db in the working
    directory), then score with the champion it registered, and with the saved folder."""
    from retain.data.datasets import load_cdnow

    path = tmp_path / "cdnow_sample.csv"
    load_cdnow("sample").transactions.frame.to_csv(path, index=False)
    common = ("--transactions", path, "--as-of", "1997-12-31")
    trained = run(
        "train", *common, "--horizon-days", "90", "--out", tmp_path / "model", cwd=tmp_path
    )
    assert trained.returncode == 0, trained.stderr
    assert "holdout: trained up to 1997-10-02, judged on the next 90 days" in trained.stdout
    assert " INFO mlflow" not in trained.stderr + trained.stdout  # the commands say it themselves
    assert "registered retain version 1 as champion: the first version" in trained.stdout
    assert (tmp_path / "mlflow.db").exists()
    from_registry = run("score", *common, "--out", tmp_path / "champion", cwd=tmp_path)
    assert from_registry.returncode == 0, from_registry.stderr
    from_file = run(
        "score", *common, "--model", tmp_path / "model" / "model", "--out", tmp_path / "file"
    )
    assert from_file.returncode == 0, from_file.stderr
    scores = pd.read_parquet(tmp_path / "champion" / "scores.parquet")
    assert len(scores) == 2_357
    assert scores["churn_probability"].between(0, 1).all()
    pd.testing.assert_frame_equal(scores, pd.read_parquet(tmp_path / "file" / "scores.parquet"))


def test_train_passes_the_penalizer_to_the_model_and_records_how_the_file_was_read(
    tmp_path: Path,
) -> None:
    """An export with its own column names and naive local days: the MLflow run records the
    mapping, the time zone, the timestamp format and the duplicates policy, and --penalizer is
    the penalty of the BG/NBD and Gamma-Gamma fits inside the model (and a run param)."""
    import json

    from mlflow import MlflowClient

    from retain.data.datasets import load_cdnow
    from retain.models.retention import RetentionModel

    frame = load_cdnow("sample").transactions.frame
    days = frame["timestamp"].dt.tz_localize(None).dt.strftime("%d/%m/%Y")
    path = tmp_path / "export.csv"
    pd.DataFrame(
        {"Customer ID": frame["customer_id"], "Day": days, "Revenue": frame["amount"]}
    ).to_csv(path, index=False)
    mapping = 'customer_id="Customer ID",timestamp=Day,amount=Revenue'
    trained = run(
        "train", "--transactions", path, "--as-of", "1997-12-31", "--horizon-days", "90",
        "--columns", mapping, "--timezone", "America/New_York", "--timestamp-format", "%d/%m/%Y",
        "--duplicates", "drop", "--penalizer", "0.01", "--out", tmp_path / "model", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    model = RetentionModel.load(tmp_path / "model" / "model")
    assert model.penalizer_coef == 0.01
    assert model.btyd_.transactions_.penalizer_coef == 0.01
    assert model.btyd_.spend_.penalizer_coef == 0.01
    store = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (found,) = store.search_runs(store.get_experiment_by_name("retain").experiment_id)
    params = found.data.params
    assert params["penalizer_coef"] == "0.01"
    assert json.loads(params["columns_transactions"]) == {
        "customer_id": "Customer ID",
        "timestamp": "Day",
        "amount": "Revenue",
    }
    assert params["timezone"] == "America/New_York"
    assert params["timestamp_format"] == "%d/%m/%Y"
    assert params["duplicates"] == "drop"


def test_train_refuses_a_negative_penalizer(tmp_path: Path) -> None:
    result = run(
        "train", "--transactions", tmp_path / "absent.csv", "--as-of", "1997-12-31",
        "--penalizer", "-0.1", "--no-tracking",
    )  # fmt: skip
    assert result.returncode == 2
    assert "Invalid value for '--penalizer'" in result.stderr
    assert "greater than or equal to 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_train_samples_customers_above_max_training_customers(tmp_path: Path) -> None:
    """Issue 18: --max-training-customers reaches the model (0: every customer); below 50 it is
    a usage error before anything is read."""
    from retain.data.datasets import load_cdnow
    from retain.models.retention import RetentionModel

    path = tmp_path / "tx.parquet"
    load_cdnow("sample").transactions.frame.to_parquet(path)
    common = ("train", "--transactions", path, "--as-of", "1997-12-31", "--horizon-days", "90",
              "--cutoffs", "2", "--no-tracking")  # fmt: skip
    trained = run(*common, "--max-training-customers", "1000", "--out", tmp_path / "m")
    assert trained.returncode == 0, trained.stderr
    model = RetentionModel.load(tmp_path / "m" / "model")
    assert model.max_training_customers == 1000
    assert model.training_sample_["customers"] == "2357"
    assert float(model.training_sample_["sample_rate"]) == pytest.approx(1000 / 2357, rel=1e-5)
    everyone = run(*common, "--max-training-customers", "0", "--out", tmp_path / "all")
    assert everyone.returncode == 0, everyone.stderr
    assert RetentionModel.load(tmp_path / "all" / "model").max_training_customers is None
    refused = run(*common, "--max-training-customers", "10", "--out", tmp_path / "x")
    assert refused.returncode == 2
    assert "Invalid value for '--max-training-customers'" in refused.stderr
    assert "give 50 or more, or 0 for all" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_train_on_ten_weeks_with_the_training_options(tmp_path: Path) -> None:
    """A ten-week export, a 44-day horizon, tracked: no error. The holdout is shortened (or
    skipped), and the run's tag and the console say so; --cutoffs, --step-days and
    --min-history-days reach the model and the run's params; the command prints what training
    chose (plan, and per output the model and its validation metrics); the version is registered."""
    from mlflow import MlflowClient

    from retain.data.datasets import load_cdnow
    from retain.models.retention import RetentionModel

    frame = load_cdnow("sample").transactions.frame
    path = tmp_path / "ten_weeks.csv"
    frame[frame["timestamp"] < "1997-03-13"].to_csv(path, index=False)  # 1997-01-01 to 03-12
    trained = run(
        "train", "--transactions", path, "--as-of", "1997-03-12", "--horizon-days", "44",
        "--cutoffs", "2", "--step-days", "7", "--min-history-days", "21",
        "--out", tmp_path / "model", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "Traceback" not in trained.stderr
    out = trained.stdout
    assert "registered retain version 1 as champion: the first version of the model" in out
    shortened = "holdout: fitting up to 1997-02-26, judging the 14 days after it (shortened: "
    assert shortened in out or "holdout skipped: " in out, out
    # The training options, as the model got them and as it used them.
    model = RetentionModel.load(tmp_path / "model" / "model")
    assert (model.n_cutoffs, model.step_days, model.min_history_days) == (2, 7, 21)
    assert (model.plan_.step_days, model.plan_.min_history_days) == (7, 21)
    assert "training plan: 1 labelled cutoff (1997-01-27), each with at least 21 days" in out
    assert "note: 1 of 2 cutoffs fit, 7 days apart" in out
    assert "outputs chosen on the internal validation (a random quarter of the customers" in out
    for output, choice in model.choices_.items():
        (line,) = [row for row in out.splitlines() if row.split()[:1] == [output]]
        assert choice.metric in line and f"{choice.scores['btyd']:.4f}" in line
    store = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (found,) = store.search_runs(store.get_experiment_by_name("retain").experiment_id)
    params, tags = found.data.params, found.data.tags
    assert (params["n_cutoffs"], params["step_days"], params["min_history_days"]) == (
        "2",
        "7",
        "21",
    )
    assert (params["plan_step_days"], params["plan_min_history_days"]) == ("7", "21")
    assert params["plan_cutoffs"] == "1997-01-27"
    assert tags["holdout"].startswith(("shortened: 70 days of history", "skipped: ")), tags
    assert params["holdout_horizon_days"] in ("14", "none")
    assert params["choice_clv"] == model.choices_["clv"].name


def test_train_refuses_training_options_out_of_range(tmp_path: Path) -> None:
    for option, value, bound in (
        ("--cutoffs", "0", 1),
        ("--step-days", "0", 1),
        ("--min-history-days", "-1", 0),
    ):
        result = run(
            "train", "--transactions", tmp_path / "absent.csv", "--as-of", "1997-12-31",
            option, value, "--no-tracking",
        )  # fmt: skip
        assert result.returncode == 2, option
        assert f"Invalid value for '{option}'" in result.stderr
        assert f"greater than or equal to {bound}" in result.stderr
        assert "Traceback" not in result.stderr


def test_every_help_is_whole_at_80_columns() -> None:
    """At the default terminal width no help line is cut ("…") or wider than the terminal, and
    the column mapping example is shown whole, and parses."""
    import re

    import typer.main
    from typer.testing import CliRunner

    from retain.cli import COLUMNS_EXAMPLE, app
    from retain.data.columns import ColumnMapping

    runner = CliRunner()
    commands = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert {"train", "score", "validate", "features", "audiences"} <= set(commands)
    for command in [None, *commands]:
        args = [command, "--help"] if command else ["--help"]
        result = runner.invoke(app, args, env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, (command, result.output)
        lines = result.output.splitlines()
        assert not [line for line in lines if "…" in line], (command, result.output)
        assert not [line for line in lines if len(line) > 80], (command, result.output)
        if command in ("validate", "features", "kpis", "btyd", "train", "score", "evaluate"):
            assert COLUMNS_EXAMPLE in re.sub(r"\s+", " ", result.output), command
    assert dict(ColumnMapping.parse(COLUMNS_EXAMPLE)) == {
        "customer_id": "Customer ID",
        "timestamp": "InvoiceDate",
        "amount": "Amount",
        "order_id": "Invoice",
    }


def test_train_reports_an_unreachable_tracking_server_before_reading(tmp_path: Path) -> None:
    env_uri = "http://127.0.0.1:9"  # the discard port: nothing listens there
    result = run(
        "train", "--transactions", tmp_path / "absent.csv", "--as-of", "1997-12-31",
        cwd=tmp_path, env={"MLFLOW_TRACKING_URI": env_uri},
    )  # fmt: skip
    assert result.returncode == 2
    assert f"tracking server {env_uri} is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_score_without_a_champion_is_one_clear_line(tmp_path: Path) -> None:
    tx = tmp_path / "x.csv"
    tx.write_text("customer_id,timestamp,amount\n1,1997-01-01,10\n")
    out = tmp_path / "out"
    result = run("score", "--transactions", tx, "--as-of", "1997-12-31", "--out", out, cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot load model models:/retain@champion from sqlite:///mlflow.db" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_evaluate_backtests_a_real_sample_and_writes_the_report(tmp_path: Path) -> None:
    import re

    from retain.data.datasets import load_cdnow
    from retain.evaluation import REPORT_PLOTS

    path = tmp_path / "cdnow_sample.csv"
    load_cdnow("sample").transactions.frame.to_csv(path, index=False)
    out = tmp_path / "evaluation"
    result = run(
        "evaluate",
        "--transactions",
        path,
        "--as-of",
        "1998-03-31",
        "--horizon-days",
        "90",
        "--cutoffs",
        "2",
        "--out",
        out,
    )
    assert result.returncode == 0, result.stderr
    assert "holdout 1 of 2: trained up to 1997-12-31, judged on the next 90 days" in result.stdout
    assert "holdout 2 of 2: trained up to 1998-03-31, judged on the next 90 days" in result.stdout
    assert result.stdout.count("* best of the contenders on that metric") == 2
    assert "summary over 2 cutoffs" in result.stdout
    assert f"report: {out / 'report.md'}" in result.stdout
    metrics = pd.read_csv(out / "metrics.csv")
    assert sorted(metrics["cutoff"].unique()) == ["1997-12-31", "1998-03-31"]
    assert set(metrics["contender"]) == {"retain", "bgnbd", "naive"}
    assert (out / "summary.csv").exists()
    report = (out / "report.md").read_text(encoding="utf-8")
    assert sorted(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)) == sorted(REPORT_PLOTS)
    for name in REPORT_PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"retain {version('retain')}"


def test_options_with_fixed_values_list_them_and_refuse_others(export: Path) -> None:
    for command, choices in (
        ("score", "--engine <local|spark>"),
        ("kpis", "--period <M|Q|Y>"),
        ("btyd", "--model <bgnbd|pareto|mbgnbd|gamma-gamma>"),
        ("btyd", "--time-unit <days|weeks>"),
        ("validate", "--duplicates <keep|drop|error>"),
    ):
        assert choices in run(command, "--help").stdout, (command, choices)
    result = run("kpis", "-t", export, "--columns", COLUMNS, "--period", "W")
    assert result.returncode == 2
    assert "Invalid value for '--period'" in result.stderr and "Traceback" not in result.stderr


def test_an_unexpected_error_is_one_line_with_status_1_and_debug_shows_it(
    export: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # --out names a file: making the folder fails, not the user's data
    args = ("kpis", "-t", export, "--columns", COLUMNS, "--out", blocker)
    result = run(*args)
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith("error: FileExistsError") and "Traceback" not in result.stderr
    assert errors[-1] == "(run `retain --debug ...` to see the traceback)"
    debug = run("--debug", *args)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_train_saves_a_model_folder_and_refuses_undeclared_customer_features(
    export: Path, tmp_path: Path
) -> None:
    result = run(
        "train", "-t", export, "--columns", COLUMNS, "--as-of", "2021-03-31", "--no-tracking",
        "--out", tmp_path, "--customers-features", "postcode", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--customers-features postcode needs a customers file" in result.stderr
