"""The registry: challenger and champion aliases, promotion on the configured holdout metrics.

Runs are real MLflow runs in a sqlite store in a temporary folder; each logs the holdout metrics it
is given (``<metric>/retain``) and a tiny pyfunc as its model, so the comparison is exercised
without training anything.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.pyfunc import PythonModel
from tests.tracking.conftest import sqlite_settings

from retain.errors import RetainInputError
from retain.tracking import Registration, TrackingSettings, metric_key, promote, register_version

GOOD = {"churn_roc_auc": 0.80, "repurchase_30d_auc": 0.78, "clv_normalized_gini": 0.60}


class Echo(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input  # (no type hints: MLflow would read them as the model's schema)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sqlite store for the module (creating one takes seconds); each test registers its own
    model name in it."""
    return tmp_path_factory.mktemp("registry")


@pytest.fixture
def settings(store: Path, monkeypatch: pytest.MonkeyPatch) -> TrackingSettings:
    monkeypatch.chdir(store)  # the sqlite store's artefacts go to ./mlruns
    return sqlite_settings(store, model_name=f"retain-{uuid.uuid4().hex[:8]}")


def logged(
    settings: TrackingSettings,
    metrics: dict[str, float],
    *,
    holdout: str | None = None,
    holdout_days: str | None = None,
) -> tuple[str, str, str]:
    """A run with these holdout metrics of retain (and a baseline's, which must not count) and a
    logged model: (run id, model URI, model id). ``holdout`` and ``holdout_days``: the run's
    ``holdout`` tag and ``holdout_horizon_days`` param, as a tracked training logs them."""
    mlflow.set_tracking_uri(settings.resolved_uri())
    experiment = mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        if metrics:
            mlflow.log_metrics({metric_key(m, "retain"): v for m, v in metrics.items()})
            mlflow.log_metrics({metric_key(m, "bgnbd"): 0.99 for m in metrics})
        if holdout is not None:
            mlflow.set_tag("holdout", holdout)
        if holdout_days is not None:
            mlflow.log_param("holdout_horizon_days", holdout_days)
        info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=[])
    return run.info.run_id, info.model_uri, info.model_id


def register(
    settings: TrackingSettings,
    metrics: dict[str, float],
    *,
    holdout: str | None = None,
    holdout_days: str | None = None,
) -> Registration:
    run_id, model_uri, model_id = logged(
        settings, metrics, holdout=holdout, holdout_days=holdout_days
    )
    client = MlflowClient(settings.resolved_uri())
    return register_version(client, run_id, model_uri, settings, model_id=model_id)


def aliases(settings: TrackingSettings) -> dict[str, str]:
    client = MlflowClient(settings.resolved_uri())
    found = client.get_registered_model(settings.model_name).aliases
    return {alias: str(version) for alias, version in found.items()}


def versions(settings: TrackingSettings) -> list[str]:
    client = MlflowClient(settings.resolved_uri())
    found = client.search_model_versions(f"name = '{settings.model_name}'")
    return sorted(str(v.version) for v in found)


def test_metric_key_groups_contenders() -> None:
    assert metric_key("churn_roc_auc", "retain") == "churn_roc_auc/retain"
    assert metric_key("clv_total_error", "naive") == "clv_total_error/naive"


def test_the_first_version_becomes_champion(settings: TrackingSettings) -> None:
    run_id, model_uri, model_id = logged(settings, GOOD)
    client = MlflowClient(settings.resolved_uri())
    registration = register_version(client, run_id, model_uri, settings, model_id=model_id)
    name = settings.model_name
    assert registration == Registration(name, "1", True, "the first version of the model")
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    version = client.get_model_version(name, "1")
    assert version.run_id == run_id
    assert version.source == model_uri == f"models:/{model_id}"


def test_a_worse_version_stays_challenger_and_the_reason_names_the_metrics(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD)
    worse = register(settings, GOOD | {"churn_roc_auc": 0.75})
    assert (worse.version, worse.champion) == ("2", False)
    assert aliases(settings) == {"champion": "1", "challenger": "2"}
    assert worse.reason.startswith("does not beat version 1 on every promotion metric")
    for metric, value in (GOOD | {"churn_roc_auc": 0.75}).items():
        assert f"{metric} {value:.4f} vs {GOOD[metric]:.4f}" in worse.reason


def test_a_better_version_becomes_champion(settings: TrackingSettings) -> None:
    register(settings, GOOD)
    better = register(settings, {metric: value + 0.01 for metric, value in GOOD.items()})
    assert (better.version, better.champion) == ("2", True)
    assert better.reason.startswith("beats version 1 on every promotion metric")
    assert aliases(settings) == {"champion": "2", "challenger": "2"}
    # The next one is compared with the new champion, not the first version.
    third = register(settings, {metric: value + 0.005 for metric, value in GOOD.items()})
    assert not third.champion
    assert "does not beat version 2" in third.reason
    assert aliases(settings) == {"champion": "2", "challenger": "3"}


def test_it_must_beat_the_champion_on_every_promotion_metric(settings: TrackingSettings) -> None:
    register(settings, GOOD)
    mixed = register(settings, GOOD | {"churn_roc_auc": 0.90, "clv_normalized_gini": 0.59})
    assert not mixed.champion
    assert aliases(settings)["champion"] == "1"


def test_a_tie_does_not_promote_and_min_improvement_sets_the_margin(
    settings: TrackingSettings,
) -> None:
    strict = settings.model_copy(
        update={"promotion_metrics": ["churn_roc_auc"], "min_improvement": 0.01}
    )
    register(strict, {"churn_roc_auc": 0.80})
    assert not register(strict, {"churn_roc_auc": 0.80}).champion
    assert not register(strict, {"churn_roc_auc": 0.805}).champion  # better, not by 0.01
    assert register(strict, {"churn_roc_auc": 0.815}).champion


def test_lower_is_better_metrics_promote_on_a_lower_value(settings: TrackingSettings) -> None:
    brier = settings.model_copy(update={"promotion_metrics": ["churn_brier"]})
    register(brier, {"churn_brier": 0.12})
    assert not register(brier, {"churn_brier": 0.13}).champion
    assert register(brier, {"churn_brier": 0.11}).champion


@pytest.mark.parametrize(
    ("champion", "challenger", "promoted"),
    [
        (-0.10, 0.05, True),  # "lower is better" would refuse this one
        (0.05, -0.10, False),  # "lower is better" would take this one
        (0.10, -0.05, True),
        (-0.05, 0.10, False),  # "higher is better" would take this one
    ],
)
def test_total_errors_compare_by_distance_from_zero(
    settings: TrackingSettings,
    champion: float,
    challenger: float,
    promoted: bool,
) -> None:
    totals = settings.model_copy(update={"promotion_metrics": ["purchases_total_error"]})
    register(totals, {"purchases_total_error": champion})
    assert register(totals, {"purchases_total_error": challenger}).champion is promoted


def test_an_unknown_promotion_metric_is_refused_before_anything_is_registered(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD)
    typo = settings.model_copy(update={"promotion_metrics": ["churn_auc_roc"]})
    run_id, model_uri, model_id = logged(typo, GOOD)
    client = MlflowClient(settings.resolved_uri())
    with pytest.raises(RetainInputError, match="promotion metric 'churn_auc_roc': no known direc"):
        register_version(client, run_id, model_uri, typo, model_id=model_id)
    assert versions(settings) == ["1"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}


def test_an_unknown_promotion_metric_is_refused_for_the_first_version_too(
    settings: TrackingSettings,
) -> None:
    typo = settings.model_copy(update={"promotion_metrics": ["churn_roc_auc", "gini"]})
    run_id, model_uri, model_id = logged(typo, GOOD)
    client = MlflowClient(settings.resolved_uri())
    with pytest.raises(RetainInputError, match="'gini'"):
        register_version(client, run_id, model_uri, typo, model_id=model_id)
    assert client.search_model_versions(f"name = '{settings.model_name}'") == []


def test_a_promotion_metric_the_run_did_not_log_registers_nothing(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD)
    run_id, model_uri, model_id = logged(settings, {"churn_roc_auc": 0.9})
    client = MlflowClient(settings.resolved_uri())
    with pytest.raises(RetainInputError, match="'repurchase_30d_auc' was not logged by the new"):
        register_version(client, run_id, model_uri, settings, model_id=model_id)
    assert versions(settings) == ["1"]
    assert aliases(settings)["challenger"] == "1"


def test_promote_moves_the_champion_alias_whatever_the_metrics(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD)
    register(settings, GOOD | {"churn_roc_auc": 0.5})
    registration = promote("2", settings)
    assert registration == Registration(settings.model_name, "2", True, "promoted by hand")
    assert aliases(settings) == {"champion": "2", "challenger": "2"}
    promote(1, settings)  # an int works as well
    assert aliases(settings)["champion"] == "1"
    # The champion is what models:/retain@champion loads.
    client = MlflowClient(settings.resolved_uri())
    assert str(client.get_model_version_by_alias(settings.model_name, "champion").version) == "1"


def test_promoting_a_missing_version_names_it_and_the_store(settings: TrackingSettings) -> None:
    register(settings, GOOD)
    with pytest.raises(RetainInputError) as caught:
        promote("7", settings)
    assert str(caught.value) == (
        f"model {settings.model_name!r} has no version 7 at {settings.resolved_uri()}"
    )
    assert aliases(settings)["champion"] == "1"


def test_promoting_in_an_empty_store_is_an_input_error(settings: TrackingSettings) -> None:
    with pytest.raises(RetainInputError, match=f"model '{settings.model_name}' has no version 1"):
        promote(1, settings)


SKIPPED = "skipped: 63 days of history hold no 44-day holdout after the 56 days of history its model needs"


def test_a_version_without_a_holdout_stays_challenger_while_a_champion_exists(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD, holdout="full", holdout_days="90")
    blind = register(settings, {}, holdout=SKIPPED, holdout_days="none")
    assert (blind.version, blind.champion) == ("2", False)
    assert aliases(settings) == {"champion": "1", "challenger": "2"}
    assert blind.reason.startswith("no holdout metrics to compare with version 1 (holdout skipped")
    assert "63 days of history" in blind.reason and "retain promote VERSION" in blind.reason


def test_the_first_version_is_champion_even_without_a_holdout(
    settings: TrackingSettings,
) -> None:
    first = register(settings, {}, holdout=SKIPPED, holdout_days="none")
    assert (first.version, first.champion) == ("1", True)
    assert first.reason.startswith("the first version of the model, though without holdout metrics")
    assert "holdout skipped: 63 days of history" in first.reason
    # A later version with a holdout has something the champion lacks: it takes over.
    later = register(settings, GOOD, holdout="full", holdout_days="90")
    assert later.champion
    assert later.reason == "the champion (version 1) logged none of the promotion metrics"


def test_a_holdout_over_other_days_than_the_champions_is_not_compared(
    settings: TrackingSettings,
) -> None:
    register(settings, GOOD, holdout="full", holdout_days="90")
    better = {metric: value + 0.05 for metric, value in GOOD.items()}
    shortened = register(settings, better, holdout="shortened: ...", holdout_days="14")
    assert not shortened.champion
    assert aliases(settings) == {"champion": "1", "challenger": "2"}
    assert shortened.reason.startswith(
        "its holdout judged 14 days and version 1's 90: metrics over different horizons are not "
        "comparable"
    )
    # Over the same days, the metrics decide.
    same = register(settings, better, holdout="full", holdout_days="90")
    assert same.champion and same.reason.startswith("beats version 1")


def test_shortened_holdouts_over_the_same_days_are_compared(settings: TrackingSettings) -> None:
    register(settings, GOOD, holdout="shortened: ...", holdout_days="14")
    worse = register(
        settings, GOOD | {"churn_roc_auc": 0.7}, holdout="shortened: ...", holdout_days="14"
    )
    assert not worse.champion and worse.reason.startswith("does not beat version 1")
    better = {metric: value + 0.05 for metric, value in GOOD.items()}
    assert register(settings, better, holdout="shortened: ...", holdout_days="14").champion
