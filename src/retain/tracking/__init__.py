"""Experiment tracking and the model registry with MLflow.

>>> from retain.tracking import TrackingSettings, train_tracked
>>> result = train_tracked(transactions, "1997-12-31", 181)   # one MLflow run, one version
>>> result.registration.champion
True
>>> scorer = load_model()                                     # models:/retain@champion
"""

from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import load_model as load_pyfunc

from retain.errors import RetainInputError
from retain.models.retention import RetentionModel
from retain.tracking.pyfunc import RetentionPyfunc, signature, to_model_input, unwrap
from retain.tracking.registry import (
    Registration,
    metric_key,
    model_version,
    promote,
    register_version,
)
from retain.tracking.settings import DEFAULT_TRACKING_URI, TrackingSettings
from retain.tracking.training import (
    HoldoutPlan,
    TrackedTraining,
    check_tracking_server,
    content_hash,
    plan_holdout,
    train_tracked,
    training_choices,
)

__all__ = [
    "DEFAULT_TRACKING_URI",
    "HoldoutPlan",
    "Registration",
    "RetentionPyfunc",
    "TrackedTraining",
    "TrackingSettings",
    "check_tracking_server",
    "content_hash",
    "load_model",
    "metric_key",
    "model_version",
    "plan_holdout",
    "promote",
    "register_version",
    "signature",
    "to_model_input",
    "train_tracked",
    "training_choices",
    "unwrap",
]


def load_model(uri: str | None = None, settings: TrackingSettings | None = None) -> RetentionModel:
    """The RetentionModel at a model URI (default: ``models:/<name>@champion``) or a saved path."""
    settings = settings or TrackingSettings()
    target = uri or settings.champion_uri()
    is_uri = target.startswith(("models:/", "runs:/"))
    if not is_uri and (Path(target).exists() or target.endswith(".pkl")):
        return RetentionModel.load(target)  # a missing .pkl: "no saved model at ..."
    mlflow.set_tracking_uri(settings.resolved_uri())
    try:
        return unwrap(load_pyfunc(target))
    except MlflowException as error:
        raise RetainInputError(
            f"cannot load model {target} from {settings.resolved_uri()}: {error.message}"
        ) from error
