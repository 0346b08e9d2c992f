"""Where runs and models go, and how a new model earns the ``champion`` alias.

Nothing configured means everything local: MLflow 3's own default store, ``sqlite:///mlflow.db`` in
the working directory, with run artefacts beside it in ``./mlruns``. ``MLFLOW_TRACKING_URI`` (MLflow's
own variable) or ``RETAIN_TRACKING_URI`` points it at a shared ``mlflow server``.
"""

from __future__ import annotations

import os
from typing import Any, Final

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from retain.errors import RetainInputError

__all__ = ["DEFAULT_TRACKING_URI", "TrackingSettings"]

DEFAULT_TRACKING_URI: Final = "sqlite:///mlflow.db"


class TrackingSettings(BaseSettings):
    """MLflow settings; each field can be set by an environment variable ``RETAIN_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="RETAIN_")

    tracking_uri: str | None = None
    """The tracking server or store; default ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``."""
    experiment: str = "retain"
    """The MLflow experiment every training run is logged in."""
    model_name: str = "retain"
    """The registered model; the service and the batch job load ``models:/<name>@champion``."""
    promotion_metrics: list[str] = Field(
        default=["churn_roc_auc", "repurchase_30d_auc", "clv_normalized_gini"]
    )
    """Holdout metrics a new version must beat the champion on, every one of them, to replace it."""
    min_improvement: float = 0.0
    """How much better than the champion each promotion metric must be (in the metric's units)."""
    connect_timeout_s: float = 10.0
    """How long to wait for a remote tracking server before giving up, in seconds."""

    def __init__(self, **values: Any) -> None:
        """Settings from the arguments, then ``RETAIN_<FIELD>`` variables; a bad value is a
        :class:`RetainInputError` naming the field and its variable (not a pydantic traceback)."""
        try:
            super().__init__(**values)
        except SettingsError as error:  # a list field whose variable is not JSON
            raise RetainInputError(
                f"tracking settings: {error}; list settings take JSON, e.g. "
                'RETAIN_PROMOTION_METRICS=\'["churn_roc_auc", "clv_normalized_gini"]\''
            ) from error
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, loc))} (RETAIN_{str(loc[0]).upper()}): "
                f"{problem['msg']}, not {problem['input']!r}"
                for problem in error.errors()
                for loc in [problem["loc"] or ("settings",)]
            )
            raise RetainInputError(f"tracking settings: {problems}") from error

    def resolved_uri(self) -> str:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI

    def champion_uri(self) -> str:
        return f"models:/{self.model_name}@champion"
