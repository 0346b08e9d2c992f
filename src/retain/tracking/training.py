"""One training = one MLflow run: holdout against the baselines, the final model, its registration.

:func:`train_tracked` does what ``retain train`` does:

1. checks the tracking server answers (before any training: an unreachable server is reported
   with its URI, not after minutes of work);
2. judges the configuration on a temporal holdout: a RetentionModel fitted up to
   ``as_of - horizon`` beside BG/NBD + Gamma-Gamma and the naive rule, all scored on the last
   horizon before ``as_of`` (metrics ``<metric>/<contender>``, plots and tables as artefacts);
3. fits the RetentionModel that is registered on everything up to ``as_of``;
4. logs it as a pyfunc with a signature and an input example, and registers it (see
   :mod:`retain.tracking.registry`).

Parameters (as_of, horizon, cutoffs, feature windows, hyper-parameters, BTYD penalizer, seed), how
the files were read (column mappings, time zone, timestamp format, duplicates policy: params and
``inputs.json``, so the run can be reproduced from the raw export) and the data (rows, customers,
period, content hash via ``mlflow.log_input``) are logged with the run. LightGBM
autologging is not used: it would log each of the five boosters of a fit as a model of its own
and clutter the run; their feature importances are in the evaluation artefacts instead.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.pandas_dataset import from_pandas

from retain.data.dates import DateLike
from retain.data.validation import ValidationOptions
from retain.errors import RetainInputError
from retain.evaluation.backtest import BacktestResult, backtest
from retain.evaluation.report import write_report
from retain.features import to_cutoff
from retain.models.retention import RetentionModel
from retain.models.training import up_to
from retain.tracking.pyfunc import MODEL_ARTIFACT, input_example, signature
from retain.tracking.registry import (
    Registration,
    check_promotion_metrics,
    metric_key,
    register_version,
)
from retain.tracking.settings import TrackingSettings

__all__ = ["TrackedTraining", "check_tracking_server", "content_hash", "train_tracked"]


@dataclass
class TrackedTraining:
    """What one tracked training produced."""

    run_id: str
    experiment_id: str
    model: RetentionModel
    evaluation: BacktestResult
    registration: Registration | None
    model_uri: str


def check_tracking_server(settings: TrackingSettings) -> str:
    """The tracking URI, once it is known to answer; a clear error naming it otherwise."""
    uri = settings.resolved_uri()
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(
                f"{uri.rstrip('/')}/health", timeout=settings.connect_timeout_s
            ) as reply:
                if reply.status != 200:
                    raise RetainInputError(
                        f"tracking server {uri} answered /health with HTTP {reply.status}"
                    )
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RetainInputError(
                f"tracking server {uri} is unreachable ({reason}); start it, or unset "
                "MLFLOW_TRACKING_URI to track locally in sqlite:///mlflow.db"
            ) from error
    elif uri.startswith("sqlite:///"):
        folder = Path(uri.removeprefix("sqlite:///")).expanduser().resolve().parent
        if not folder.is_dir():
            raise RetainInputError(f"tracking store {uri}: the folder {folder} does not exist")
    return uri


def content_hash(transactions: pd.DataFrame) -> str:
    """A short, order-sensitive hash of the table's content (what MLflow shows as the digest)."""
    rows = pd.util.hash_pandas_object(transactions, index=False).to_numpy()
    return hashlib.sha256(rows.tobytes()).hexdigest()[:16]


def model_params(model: RetentionModel) -> dict[str, Any]:
    """The RetentionModel's constructor arguments, as stored on it."""
    names = [p for p in inspect.signature(RetentionModel.__init__).parameters if p != "self"]
    return {name: getattr(model, name) for name in names}


def train_tracked(
    transactions: pd.DataFrame,
    as_of: DateLike,
    horizon_days: int,
    *,
    settings: TrackingSettings | None = None,
    model_factory: Callable[[int], RetentionModel] | None = None,
    dataset_name: str = "transactions",
    dataset_source: str | None = None,
    register: bool = True,
    progress: Callable[[str], None] | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    validation: ValidationOptions | None = None,
) -> TrackedTraining:
    """Evaluate, fit, log and register a RetentionModel trained on data up to ``as_of``.

    ``columns`` (table name -> that file's column mapping: transactions, events, customers) and
    ``validation`` say how the raw files were read; when given they are logged with the run (see
    :func:`_log_reading`), since the same export read with another mapping or time zone is other
    data.
    """
    settings = settings or TrackingSettings()
    say = progress or (lambda _: None)
    uri = check_tracking_server(settings)
    if register:
        check_promotion_metrics(settings)  # a typo fails now, not after the training
    unknown = sorted(set(columns or {}) - set(_TABLES))
    if unknown:
        raise RetainInputError(
            f"columns: mappings of unknown tables {unknown}; the tables are {', '.join(_TABLES)}"
        )
    factory = model_factory or RetentionModel
    day = to_cutoff(as_of)
    history = up_to(transactions, day)
    if history.empty:
        raise RetainInputError(f"training: no transactions on or before {day:%Y-%m-%d}")

    mlflow.set_tracking_uri(uri)
    experiment = mlflow.set_experiment(settings.experiment)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        probe = factory(horizon_days)
        mlflow.log_params(
            {
                "as_of": f"{day:%Y-%m-%d}",
                "dataset": dataset_name,
                **{k: str(v) for k, v in model_params(probe).items()},
            }
        )
        _log_data(history, dataset_name, dataset_source)
        if columns is not None or validation is not None:
            _log_reading(columns or {}, validation)

        say(
            f"holdout: fitting up to {day - pd.Timedelta(days=horizon_days):%Y-%m-%d}, "
            f"judging the {horizon_days} days after it"
        )
        evaluation = backtest(
            history,
            horizon_days=horizon_days,
            n_cutoffs=1,
            last_cutoff=day - pd.Timedelta(days=horizon_days),
            model_factory=factory,
        )
        holdout = evaluation.latest
        mlflow.log_metrics(
            {
                metric_key(metric, contender): value
                for contender, values in holdout.metrics.items()
                for metric, value in values.items()
                if pd.notna(value)
            }
        )
        with tempfile.TemporaryDirectory(prefix="retain-report-") as folder:
            write_report(evaluation, folder)
            mlflow.log_artifacts(folder, artifact_path="evaluation")

        say(f"final model: fitting on everything up to {day:%Y-%m-%d}")
        model = factory(horizon_days).fit(history, day)
        mlflow.log_params(
            {
                "cutoffs": ", ".join(f"{c:%Y-%m-%d}" for c in model.cutoffs_),
                "training_rows": model.training_rows_,
                "reference_cutoff": f"{model.reference_cutoff_:%Y-%m-%d}",
            }
        )
        with tempfile.TemporaryDirectory(prefix="retain-model-") as folder:
            path = model.save(Path(folder) / "model.pkl")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("model_code.py")),
                artifacts={MODEL_ARTIFACT: str(path)},
                signature=signature(),
                input_example=(input_example(history), {"as_of": f"{day:%Y-%m-%d}"}),
                pip_requirements=_requirements(),
            )
        registration = None
        if register:
            registration = register_version(
                MlflowClient(uri), run.info.run_id, info.model_uri, settings, model_id=info.model_id
            )
            mlflow.set_tags(
                {"registered_version": registration.version, "champion": registration.champion}
            )
        return TrackedTraining(
            run.info.run_id,
            experiment.experiment_id,
            model,
            evaluation,
            registration,
            info.model_uri,
        )


def _log_data(history: pd.DataFrame, name: str, source: str | None) -> None:
    """Rows, customers, period and a content hash, as an MLflow dataset input."""
    digest = content_hash(history)
    profile = {
        "rows": len(history),
        "customers": int(history["customer_id"].nunique()),
        "first_day": f"{history['timestamp'].min():%Y-%m-%d}",
        "last_day": f"{history['timestamp'].max():%Y-%m-%d}",
        "content_hash": digest,
    }
    mlflow.log_params({f"data_{k}": v for k, v in profile.items()})
    # The dataset entry carries the schema and the digest; a small head keeps it from copying the
    # whole table into the tracking store.
    dataset = from_pandas(
        history.head(1000),
        source=CodeDatasetSource(tags={"retain.source": source or name}),
        name=name,
        digest=digest,
    )
    mlflow.log_input(dataset, context="training")


_TABLES = ("transactions", "events", "customers")


def _log_reading(
    columns: Mapping[str, Mapping[str, str]], validation: ValidationOptions | None
) -> None:
    """How the files were read: each table's column mapping and the validation options.

    As params (searchable, comparable across runs: ``columns_<table>`` as JSON, ``{}`` for a file
    read under the contract's own names; ``timezone``, ``timestamp_format``, ``duplicates``) and as
    ``inputs.json``, which also says which tables were not given (null).
    """
    mappings = {table: dict(columns[table]) for table in _TABLES if table in columns}
    params = {f"columns_{table}": json.dumps(mapping) for table, mapping in mappings.items()}
    if validation is not None:
        params |= {
            "timezone": validation.timezone,
            "timestamp_format": validation.timestamp_format or "ISO 8601",
            "duplicates": validation.duplicates,
        }
    mlflow.log_params(params)
    mlflow.log_dict(
        {
            "columns": {table: mappings.get(table) for table in _TABLES},
            "validation": None if validation is None else validation.model_dump(),
        },
        "inputs.json",
    )


def _requirements() -> list[str]:
    """What the pyfunc needs to load and score, at the installed versions."""
    from importlib.metadata import version

    return [
        f"{package}=={version(package)}"
        for package in (
            "lightgbm",
            "pandas",
            "numpy",
            "scipy",
            "scikit-learn",
            "duckdb",
            "pyarrow",
            "mlflow",
            "pydantic",
            "lifetimes",
        )
    ]
