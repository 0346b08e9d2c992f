"""TrackingSettings: where runs go, which metrics promote, from arguments and the environment."""

from __future__ import annotations

import pytest

from retain.errors import RetainInputError
from retain.tracking import DEFAULT_TRACKING_URI, TrackingSettings


def test_defaults_track_locally_in_sqlite() -> None:
    settings = TrackingSettings()
    assert settings.tracking_uri is None
    assert DEFAULT_TRACKING_URI == "sqlite:///mlflow.db"
    assert settings.resolved_uri() == "sqlite:///mlflow.db"
    assert settings.experiment == "retain"
    assert settings.model_name == "retain"
    assert settings.promotion_metrics == [
        "churn_roc_auc",
        "repurchase_30d_auc",
        "clv_normalized_gini",
    ]
    assert settings.min_improvement == 0.0
    assert settings.champion_uri() == "models:/retain@champion"


def test_mlflow_tracking_uri_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert TrackingSettings().resolved_uri() == "http://tracking.example:5000"


def test_retain_tracking_uri_overrides_mlflows_and_an_argument_overrides_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    monkeypatch.setenv("RETAIN_TRACKING_URI", "http://retain.example:5000")
    assert TrackingSettings().resolved_uri() == "http://retain.example:5000"
    given = TrackingSettings(tracking_uri="sqlite:////tmp/elsewhere.db")
    assert given.resolved_uri() == "sqlite:////tmp/elsewhere.db"


def test_the_uri_is_read_when_resolved_not_when_the_settings_are_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # MLflow sets MLFLOW_TRACKING_URI itself (mlflow.set_tracking_uri); the settings follow it.
    settings = TrackingSettings()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://later.example:5000")
    assert settings.resolved_uri() == "http://later.example:5000"


def test_every_field_comes_from_its_retain_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_PROMOTION_METRICS", '["churn_brier", "purchases_total_error"]')
    monkeypatch.setenv("RETAIN_MIN_IMPROVEMENT", "0.005")
    monkeypatch.setenv("RETAIN_MODEL_NAME", "shop-retention")
    monkeypatch.setenv("RETAIN_EXPERIMENT", "nightly")
    monkeypatch.setenv("RETAIN_CONNECT_TIMEOUT_S", "2.5")
    settings = TrackingSettings()
    assert settings.promotion_metrics == ["churn_brier", "purchases_total_error"]
    assert settings.min_improvement == 0.005
    assert settings.experiment == "nightly"
    assert settings.connect_timeout_s == 2.5
    assert settings.champion_uri() == "models:/shop-retention@champion"


def test_arguments_win_over_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETAIN_PROMOTION_METRICS", '["churn_brier"]')
    settings = TrackingSettings(promotion_metrics=["clv_spearman"], model_name="other")
    assert settings.promotion_metrics == ["clv_spearman"]
    assert settings.champion_uri() == "models:/other@champion"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RETAIN_PROMOTION_METRICS", "churn_roc_auc", "list settings take JSON"),
        ("RETAIN_PROMOTION_METRICS", '["churn_roc_auc", 3]', "RETAIN_PROMOTION_METRICS"),
        ("RETAIN_MIN_IMPROVEMENT", "a little", "min_improvement (RETAIN_MIN_IMPROVEMENT)"),
    ],
)
def test_a_malformed_variable_is_a_clear_input_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    """The command line turns a RetainInputError into one line; a pydantic error would be a
    traceback."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(RetainInputError, match="tracking settings") as caught:
        TrackingSettings()
    assert message in str(caught.value)
