"""train_tracked: one MLflow run per training, with what is needed to judge and reproduce it."""

from __future__ import annotations

import json
import math
import socket
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from tests.tracking.conftest import (
    AS_OF,
    CDNOW_COLUMNS,
    CDNOW_READING,
    HORIZON,
    Tracked,
    small_model,
    sqlite_settings,
)

from retain.data.datasets import Dataset
from retain.errors import RetainInputError
from retain.evaluation import REPORT_PLOTS
from retain.features import to_cutoff
from retain.models.retention import RetentionModel
from retain.models.training import up_to
from retain.tracking import (
    TrackingSettings,
    check_tracking_server,
    content_hash,
    metric_key,
    train_tracked,
)


@pytest.fixture(scope="module")
def transactions(cdnow_sample: Dataset) -> pd.DataFrame:
    return cdnow_sample.transactions.frame


def client(tracked: Tracked) -> MlflowClient:
    return MlflowClient(tracked.settings.resolved_uri())


def test_the_run_logs_the_configuration_and_the_data(
    tracked: Tracked, transactions: pd.DataFrame
) -> None:
    params = client(tracked).get_run(tracked.result.run_id).data.params
    history = up_to(transactions, to_cutoff(AS_OF))
    assert len(history) == 5_728 < len(transactions)  # the run saw the data up to as_of only
    assert params["as_of"] == AS_OF
    assert params["horizon_days"] == str(HORIZON)
    assert params["n_cutoffs"] == "2"
    assert params["random_state"] == "0"
    assert params["n_jobs"] == "1"
    assert params["windows"] == "(30, 90, 180, 365)"
    assert params["dataset"] == "transactions"
    model = tracked.result.model
    assert params["plan_cutoffs"] == ", ".join(f"{c:%Y-%m-%d}" for c in model.cutoffs_)
    assert params["plan_cutoffs"] == "1997-08-18, 1997-10-02"
    assert {k: params[f"plan_{k}"] for k in model.plan_.as_params()} == model.plan_.as_params()
    assert params["plan_training_horizon_days"] == str(HORIZON)
    assert params["training_rows"] == str(model.training_rows_)
    assert params["reference_cutoff"] == "1997-10-02"
    # Asked (None: chosen from the data) beside chosen.
    assert (params["step_days"], params["min_history_days"]) == ("None", "None")
    assert params["plan_step_days"] == str(model.plan_.step_days)
    assert params["data_rows"] == "5728"
    assert params["data_customers"] == "2357"
    assert (params["data_first_day"], params["data_last_day"]) == ("1997-01-01", "1997-12-31")
    assert params["data_content_hash"] == content_hash(history)
    assert params["penalizer_coef"] == "0.001"
    # The lean training path's settings and what they did (issue 18).
    assert (params["max_training_customers"], params["timing_max_rows"]) == ("50000", "1500000")
    assert params["training_float32"] == "True"
    assert (params["path_training_customers"], params["path_training_sample_rate"]) == ("2357", "1")
    assert model.timing_ is not None and model.churn_ is not None
    assert params["path_timing_rows"] == str(model.timing_.n_rows_)
    assert params["path_timing_subsample_rate"] == "1.0"
    assert params["path_rounds_churn"] == str(model.churn_.best_iteration_)


def test_the_run_records_how_the_files_were_read(tracked: Tracked, tmp_path: Path) -> None:
    """The column mapping and the validation options, as params and as inputs.json: the same
    export read with another mapping or time zone is other data."""
    mlflow_client = client(tracked)
    run_id = tracked.result.run_id
    params = mlflow_client.get_run(run_id).data.params
    assert json.loads(params["columns_transactions"]) == {"timestamp": "date"}
    assert "columns_events" not in params and "columns_customers" not in params  # none given
    assert (params["timezone"], params["timestamp_format"], params["duplicates"]) == (
        "UTC",
        "%Y%m%d",
        "keep",
    )
    path = mlflow_client.download_artifacts(run_id, "inputs.json", str(tmp_path))
    inputs = json.loads(Path(path).read_text(encoding="utf-8"))
    assert inputs["columns"] == {
        "transactions": {"timestamp": "date"},
        "events": None,
        "customers": None,
    }
    assert inputs["validation"] == CDNOW_READING.model_dump()
    assert inputs["validation"]["strict"] is True


def test_the_data_is_a_dataset_input_whose_digest_is_the_content_hash(
    tracked: Tracked, transactions: pd.DataFrame
) -> None:
    inputs = client(tracked).get_run(tracked.result.run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    assert dataset.digest == content_hash(up_to(transactions, to_cutoff(AS_OF)))
    assert dataset.name == "transactions"
    assert {tag.key: tag.value for tag in inputs[0].tags}["mlflow.data.context"] == "training"
    assert '"retain.source": "transactions"' in dataset.source


def test_holdout_metrics_are_logged_per_contender(tracked: Tracked) -> None:
    logged = client(tracked).get_run(tracked.result.run_id).data.metrics
    holdout = tracked.result.evaluation.latest
    assert holdout.as_of == pd.Timestamp("1997-10-02")  # as_of - horizon
    assert set(holdout.metrics) == {"retain", "bgnbd", "naive"}
    expected = {
        metric_key(metric, contender): value
        for contender, values in holdout.metrics.items()
        for metric, value in values.items()
        if not math.isnan(value)
    }
    holdout_metrics = {k: v for k, v in logged.items() if not k.startswith("validation/")}
    assert holdout_metrics == pytest.approx(expected, rel=1e-12)
    for contender in ("retain", "bgnbd", "naive"):
        assert 0.5 < logged[f"churn_roc_auc/{contender}"] < 1.0
        assert f"clv_normalized_gini/{contender}" in logged
        assert f"purchases_total_error/{contender}" in logged
    assert "churn_brier/retain" in logged
    assert "churn_brier/naive" not in logged  # a rule's scores are not probabilities


def test_a_whole_holdout_is_tagged_full(tracked: Tracked) -> None:
    run = client(tracked).get_run(tracked.result.run_id)
    assert run.data.tags["holdout"] == "full"
    assert run.data.params["holdout_horizon_days"] == str(HORIZON)
    assert run.data.params["holdout_cutoff"] == "1997-10-02"
    assert tracked.result.holdout.status == "full"
    assert "fallback" not in run.data.tags


def test_the_choice_of_each_output_is_logged(tracked: Tracked, tmp_path: Path) -> None:
    """choice_<output> params, validation/<output>/<candidate> metrics and choices.json, as the
    model holds them."""
    mlflow_client = client(tracked)
    run = mlflow_client.get_run(tracked.result.run_id)
    model = tracked.result.model
    for output, choice in model.choices_.items():
        assert run.data.params[f"choice_{output}"] == choice.name
        for candidate, value in choice.scores.items():
            assert run.data.metrics[f"validation/{output}/{candidate}"] == pytest.approx(value)
        assert f"validation/{output}/chosen" in run.data.metrics
    assert set(model.choices_) == {
        "churn_probability",
        "p_purchase_30d",
        "days_to_next_purchase",
        "expected_purchases",
        "clv",
    }
    path = mlflow_client.download_artifacts(run.info.run_id, "choices.json", str(tmp_path))
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    assert record["choices"] == {o: c.name for o, c in model.choices_.items()}
    assert record["weights"] == {o: c.weights for o, c in model.choices_.items()}
    assert record["validation"] == model.validation_
    assert record["plan"]["cutoffs"] == "1997-08-18, 1997-10-02"
    assert record["fallback"] is None
    assert record["training_path"]["training_customers"] == "2357"
    assert model.timing_ is not None
    assert record["training_path"]["rounds_timing"] == model.timing_.best_iteration_
    for output, scores in record["validation_metrics"].items():
        assert scores == pytest.approx(model.choices_[output].scores, nan_ok=True)


def test_the_evaluation_report_is_logged_as_artefacts(tracked: Tracked, tmp_path: Path) -> None:
    mlflow_client = client(tracked)
    listed = {a.path for a in mlflow_client.list_artifacts(tracked.result.run_id, "evaluation")}
    expected = {"report.md", "metrics.csv", "summary.csv", *REPORT_PLOTS}
    assert listed == {f"evaluation/{name}" for name in expected}
    folder = Path(
        mlflow_client.download_artifacts(tracked.result.run_id, "evaluation", str(tmp_path))
    )
    for name in REPORT_PLOTS:
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (folder / "report.md").read_text(encoding="utf-8")
    for name in REPORT_PLOTS:
        assert f"({name})" in report
    metrics = pd.read_csv(folder / "metrics.csv")
    assert set(metrics["contender"]) == {"retain", "bgnbd", "naive"}


def test_the_model_is_logged_registered_and_tagged(tracked: Tracked) -> None:
    result = tracked.result
    mlflow_client = client(tracked)
    run = mlflow_client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == result.experiment_id
    assert mlflow_client.get_experiment(result.experiment_id).name == "retain"
    assert result.registration is not None
    assert (result.registration.version, result.registration.champion) == ("1", True)
    assert run.data.tags["registered_version"] == "1"
    assert run.data.tags["champion"] == "True"
    champion = mlflow_client.get_model_version_by_alias("retain", "champion")
    assert champion.run_id == result.run_id
    assert champion.source == result.model_uri


def test_the_same_data_and_seed_give_identical_metrics(
    tracked: Tracked, transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = sqlite_settings(tmp_path)
    again = train_tracked(
        transactions,
        AS_OF,
        HORIZON,
        settings=settings,
        model_factory=small_model,
        register=False,
        columns=CDNOW_COLUMNS,
        validation=CDNOW_READING,
    )
    assert again.registration is None
    mlflow_client = MlflowClient(settings.resolved_uri())
    assert mlflow_client.search_registered_models() == []
    first = client(tracked).get_run(tracked.result.run_id).data
    second = mlflow_client.get_run(again.run_id).data
    assert second.params == first.params
    assert second.metrics.keys() == first.metrics.keys()
    # Exactly equal, with fixed seeds and threads; except the value metrics: spend is summed by
    # DuckDB in parallel, in no fixed order, so a customer's spend can differ in the last bit
    # (1e-13) between runs, which breaks ties of the rank metrics differently (clv_spearman moves
    # by up to a few 1e-6 relative).
    exact = {key for key in first.metrics if "clv" not in key}
    assert {k: second.metrics[k] for k in exact} == {k: first.metrics[k] for k in exact}
    value = {key: first.metrics[key] for key in first.metrics.keys() - exact}
    assert {k: second.metrics[k] for k in value} == pytest.approx(value, rel=1e-4)
    pd.testing.assert_frame_equal(
        again.model.predict(transactions, AS_OF),
        tracked.result.model.predict(transactions, AS_OF),
        check_exact=False,
        rtol=1e-9,
    )


def test_content_hash_follows_the_content_and_its_order(transactions: pd.DataFrame) -> None:
    digest = content_hash(transactions)
    assert len(digest) == 16 and int(digest, 16) >= 0
    assert content_hash(transactions.copy()) == digest
    assert content_hash(transactions.set_axis(range(7, 7 + len(transactions)))) == digest
    assert content_hash(transactions.iloc[::-1]) != digest
    changed = transactions.copy()
    changed.loc[changed.index[10], "amount"] += 0.01
    assert content_hash(changed) != digest
    assert content_hash(transactions.iloc[:-1]) != digest


def _closed_port() -> int:
    """A local port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_server_is_reported_before_any_training(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    uri = f"http://127.0.0.1:{_closed_port()}"
    settings = TrackingSettings(tracking_uri=uri)
    with pytest.raises(RetainInputError, match=f"tracking server {uri} is unreachable"):
        check_tracking_server(settings)

    built: list[int] = []

    def factory(horizon_days: int) -> RetentionModel:
        built.append(horizon_days)
        return small_model(horizon_days)

    started = time.perf_counter()
    with pytest.raises(RetainInputError, match=f"tracking server {uri} is unreachable"):
        train_tracked(transactions, AS_OF, HORIZON, settings=settings, model_factory=factory)
    elapsed = time.perf_counter() - started
    assert built == []  # no model was even made
    assert elapsed < 3.0, f"{elapsed:.1f} s to report an unreachable server"
    assert list(tmp_path.iterdir()) == []  # and nothing was written


def test_the_server_check_names_a_missing_sqlite_folder_and_passes_a_good_store(
    tmp_path: Path,
) -> None:
    missing = f"sqlite:///{tmp_path / 'absent' / 'mlflow.db'}"
    with pytest.raises(RetainInputError, match=f"tracking store {missing}: the folder .* does"):
        check_tracking_server(TrackingSettings(tracking_uri=missing))
    good = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert check_tracking_server(TrackingSettings(tracking_uri=good)) == good


def test_an_unknown_promotion_metric_is_reported_before_any_training(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = sqlite_settings(tmp_path, promotion_metrics=["churn_auc_roc"])

    def factory(horizon_days: int) -> RetentionModel:
        raise AssertionError("no model should be made")

    with pytest.raises(RetainInputError, match="promotion metric 'churn_auc_roc'"):
        train_tracked(transactions, AS_OF, HORIZON, settings=settings, model_factory=factory)


def test_no_history_before_as_of_is_an_input_error(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RetainInputError, match="no transactions on or before 1996-06-30"):
        train_tracked(transactions, "1996-06-30", HORIZON, settings=sqlite_settings(tmp_path))


def test_a_mapping_of_an_unknown_table_is_reported_before_any_training(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def factory(horizon_days: int) -> RetentionModel:
        raise AssertionError("no model should be made")

    with pytest.raises(RetainInputError, match=r"columns: mappings of unknown tables \['event'\]"):
        train_tracked(
            transactions,
            AS_OF,
            HORIZON,
            settings=sqlite_settings(tmp_path),
            model_factory=factory,
            columns={"event": {"event_type": "kind"}},
        )
