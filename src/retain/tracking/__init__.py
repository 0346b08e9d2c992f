"""Experiment tracking and the model registry with MLflow.

>>> from retain.tracking import TrackingSettings, train_tracked
>>> result = train_tracked(transactions, "1997-12-31", 181)   # one MLflow run, one version
>>> result.registration.champion
True
>>> scorer = load_model()                                     # models:/retain@champion
"""

import tempfile
from pathlib import Path

import mlflow
import yaml
from mlflow.exceptions import MlflowException

from retain.errors import RetainInputError
from retain.models.retention import RetentionModel
from retain.tracking.pyfunc import (
    MODEL_ARTIFACT,
    RetentionPyfunc,
    signature,
    to_model_input,
    unwrap,
)
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
    """The RetentionModel at a model URI (default: ``models:/<name>@champion``) or a model folder.

    A registered model is read as its model folder (downloaded, hashes checked), never through
    MLflow's pyfunc loader, which would run the code logged with the model.
    """
    settings = settings or TrackingSettings()
    target = uri or settings.champion_uri()
    if not target.startswith(("models:/", "runs:/")):
        return RetentionModel.load(target)
    mlflow.set_tracking_uri(settings.resolved_uri())
    with tempfile.TemporaryDirectory(prefix="retain-model-") as folder:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=target, dst_path=folder))
        except MlflowException as error:
            raise RetainInputError(
                f"cannot load model {target} from {settings.resolved_uri()}: {error.message}"
            ) from error
        return RetentionModel.load(local / _artifact_path(local, target))


def _artifact_path(model_dir: Path, target: str) -> str:
    """Where the pyfunc's MLmodel file says the model folder is, inside the logged model."""
    spec = model_dir / "MLmodel"
    flavor = {}
    if spec.is_file():
        flavor = (yaml.safe_load(spec.read_text(encoding="utf-8")) or {}).get("flavors", {})
    artifacts = flavor.get("python_function", {}).get("artifacts", {})
    path = artifacts.get(MODEL_ARTIFACT, {}).get("path")
    if not isinstance(path, str):
        raise RetainInputError(
            f"{target} is not a retain model: its MLmodel names no {MODEL_ARTIFACT}"
        )
    return path
