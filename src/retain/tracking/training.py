"""One training = one MLflow run: holdout against the baselines, the final model, its registration.

:func:`train_tracked` does what ``retain train`` does:

1. checks the tracking server answers (before any training: an unreachable server is reported
   with its URI, not after minutes of work);
2. judges the configuration on a temporal holdout: a RetentionModel fitted up to
   ``as_of - horizon`` beside BG/NBD + Gamma-Gamma and the naive rule, all scored on the last
   horizon before ``as_of`` (metrics ``<metric>/<contender>``, plots and tables as artefacts).
   The holdout model needs 8 weeks of history before its cutoff: when the data are too short for
   that and a whole horizon after it, the holdout is shortened to the days after those 8 weeks
   (at least 14), else skipped (:func:`plan_holdout`); the run says which and why (tag
   ``holdout``, param ``holdout_horizon_days``) and is trained and registered either way;
3. fits the RetentionModel that is registered on everything up to ``as_of``, and logs what its
   training chose (:func:`log_training_choices`): the plan of training cutoffs, the model chosen
   for each output with the internal validation's metrics, and why it fell back to BTYD alone
   if it did;
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
import math
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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

__all__ = [
    "HoldoutPlan",
    "TrackedTraining",
    "check_tracking_server",
    "content_hash",
    "log_training_choices",
    "plan_holdout",
    "train_tracked",
    "training_choices",
    "training_path",
]


@dataclass
class TrackedTraining:
    """What one tracked training produced."""

    run_id: str
    experiment_id: str
    model: RetentionModel
    evaluation: BacktestResult | None  # None when the holdout was skipped
    registration: Registration | None
    model_uri: str
    holdout: HoldoutPlan


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
    uri = _check_arguments(settings, register, columns)
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

        holdout, evaluation = _tracked_holdout(history, day, horizon_days, factory, say)
        say(f"final model: fitting on everything up to {day:%Y-%m-%d}")
        model = factory(horizon_days).fit(history, day)
        log_training_choices(model)
        info = _log_model(model, history, day)
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
            holdout,
        )


def _check_arguments(
    settings: TrackingSettings, register: bool, columns: Mapping[str, object] | None
) -> str:
    """The tracking URI, once the server answers; the promotion metrics and the mappings' tables
    checked now, so that a typo fails before the training, not after it."""
    uri = check_tracking_server(settings)
    if register:
        check_promotion_metrics(settings)
    unknown = sorted(set(columns or {}) - set(_TABLES))
    if unknown:
        raise RetainInputError(
            f"columns: mappings of unknown tables {unknown}; the tables are {', '.join(_TABLES)}"
        )
    return uri


def _tracked_holdout(
    history: pd.DataFrame,
    day: pd.Timestamp,
    horizon_days: int,
    factory: Callable[[int], RetentionModel],
    say: Callable[[str], None],
) -> tuple[HoldoutPlan, BacktestResult | None]:
    """Plan and run the holdout (shortened or skipped on a short history) and log it: its tag
    and parameters, its metrics and its report."""
    holdout = plan_holdout(history, day, horizon_days)
    evaluation = None
    if holdout.cutoff is not None and holdout.horizon_days is not None:
        say(
            f"holdout: fitting up to {holdout.cutoff:%Y-%m-%d}, judging the "
            f"{holdout.horizon_days} days after it"
            + (f" (shortened: {holdout.reason})" if holdout.reason else "")
        )
        try:
            evaluation = _holdout(history, holdout, factory)
        except RetainInputError as error:
            holdout = HoldoutPlan("skipped", None, None, f"it could not be formed ({error})")
    if evaluation is None:
        say(f"holdout skipped: {holdout.reason}")
    mlflow.set_tag("holdout", holdout.tag)
    mlflow.log_params(
        {
            "holdout_horizon_days": holdout.horizon_days or "none",
            "holdout_cutoff": "none" if holdout.cutoff is None else f"{holdout.cutoff:%Y-%m-%d}",
        }
    )
    if evaluation is not None:
        mlflow.log_metrics(
            {
                metric_key(metric, contender): value
                for contender, values in evaluation.latest.metrics.items()
                for metric, value in values.items()
                if pd.notna(value)
            }
        )
        with tempfile.TemporaryDirectory(prefix="retain-report-") as folder:
            write_report(evaluation, folder)
            mlflow.log_artifacts(folder, artifact_path="evaluation")
    return holdout, evaluation


def _log_model(model: RetentionModel, history: pd.DataFrame, day: pd.Timestamp) -> Any:
    """Log the model as a pyfunc from code whose one artefact is the model folder."""
    with tempfile.TemporaryDirectory(prefix="retain-model-") as folder:
        path = model.save(Path(folder) / MODEL_ARTIFACT)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=str(Path(__file__).with_name("model_code.py")),
            artifacts={MODEL_ARTIFACT: str(path)},
            signature=signature(),
            input_example=(input_example(list(history.columns), day), {"as_of": f"{day:%Y-%m-%d}"}),
            pip_requirements=_requirements(),
        )


# The holdout model's history and horizon, at the least: 8 weeks of buying for its features, and
# two weeks of outcomes to judge.
HOLDOUT_MIN_HISTORY_DAYS: Final = 56
HOLDOUT_MIN_HORIZON_DAYS: Final = 14


@dataclass(frozen=True)
class HoldoutPlan:
    """Where the tracked run's holdout is judged (see :func:`plan_holdout`).

    ``status`` is ``full`` (the last ``horizon_days`` before ``as_of``), ``shortened`` (the days
    after the first 8 weeks of the data: fewer than ``horizon_days``, so its metrics are not
    comparable with a full holdout's) or ``skipped`` (no holdout: ``cutoff`` and ``horizon_days``
    are None). ``reason`` says why it is not ``full``.
    """

    status: str
    cutoff: pd.Timestamp | None
    horizon_days: int | None
    reason: str | None = None

    @property
    def tag(self) -> str:
        """The run's ``holdout`` tag: ``full``, ``shortened: <why>`` or ``skipped: <why>``."""
        return self.status if self.reason is None else f"{self.status}: {self.reason}"


def plan_holdout(history: pd.DataFrame, as_of: DateLike, horizon_days: int) -> HoldoutPlan:
    """The tracked run's holdout: the model fitted up to ``as_of - horizon_days`` and judged on
    the horizon after it, when that leaves it 8 weeks (56 days) of history; else fitted on the
    first 8 weeks and judged on the rest up to ``as_of`` when that rest is at least 14 days; else
    none. The holdout only judges: the model registered is trained on everything either way."""
    day = to_cutoff(as_of)
    first = history["timestamp"].min().tz_convert("UTC").tz_localize(None).normalize()
    days = (day - first).days
    full = day - pd.Timedelta(days=horizon_days)
    if (full - first).days >= HOLDOUT_MIN_HISTORY_DAYS:
        return HoldoutPlan("full", full, horizon_days)
    cutoff = first + pd.Timedelta(days=HOLDOUT_MIN_HISTORY_DAYS)
    rest = (day - cutoff).days
    short = (
        f"{days} days of history hold no {horizon_days}-day holdout after the "
        f"{HOLDOUT_MIN_HISTORY_DAYS} days of history its model needs"
    )
    if rest >= HOLDOUT_MIN_HORIZON_DAYS:
        return HoldoutPlan(
            "shortened",
            cutoff,
            rest,
            f"{short}; {rest} days judged, not comparable with a {horizon_days}-day holdout",
        )
    return HoldoutPlan(
        "skipped",
        None,
        None,
        f"{short}, nor one of {HOLDOUT_MIN_HORIZON_DAYS} days ({max(rest, 0)} left after them)",
    )


def _holdout(
    history: pd.DataFrame, holdout: HoldoutPlan, factory: Callable[[int], RetentionModel]
) -> BacktestResult:
    """The holdout's backtest, its model's warnings said to be the holdout's (the final model
    warns of the same things in its own words, and two identical lines would read as one twice).
    Other libraries' warnings pass as they came."""
    assert holdout.cutoff is not None and holdout.horizon_days is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluation = backtest(
            history,
            horizon_days=holdout.horizon_days,
            n_cutoffs=1,
            last_cutoff=holdout.cutoff,
            model_factory=factory,
        )
    seen: dict[Any, Any] = {}  # the filters' "once per place" among the re-issued ones
    for warning in caught:
        if Path(warning.filename).resolve().is_relative_to(_PACKAGE):
            warnings.warn(f"holdout: {warning.message}", warning.category, stacklevel=2)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno, registry=seen
            )
    return evaluation


_PACKAGE = Path(__file__).resolve().parents[1]


def training_choices(model: RetentionModel) -> dict[str, Any]:
    """What the fitted model's training chose, as plain data (``choices.json`` of the run).

    ``choices``: output -> the model that makes it (``lgbm``, ``btyd``, ``naive`` or ``blend``);
    ``weights``: output -> candidate -> weight; ``validation_metrics``: output -> candidate (and
    ``blend``, ``chosen``) -> the validation metric; ``metrics``: output -> that metric's name;
    ``reasons``: output -> why it was chosen without validation (none when validated);
    ``validation``: how the choice was validated; ``plan`` and ``fallback`` as on the model.
    """
    found = model.choices_
    plan = model.plan_
    return {
        "choices": {o: c.name for o, c in found.items()},
        "weights": {o: dict(c.weights) for o, c in found.items()},
        "validation_metrics": {
            o: {k: float(v) for k, v in c.scores.items()} for o, c in found.items()
        },
        "metrics": {o: c.metric for o, c in found.items()},
        "reasons": {o: c.reason for o, c in found.items()},
        "validation": dict(model.validation_),
        "plan": {**plan.as_params(), "notes": list(plan.notes)},
        "fallback": model.fallback_,
        "training_path": training_path(model),
    }


def training_path(model: RetentionModel) -> dict[str, Any]:
    """How the lean training path went (issue 18): the customer sample, the timing model's
    rows and subsampling, the feature precision and each booster's rounds (early-stopped on the
    latest cutoff)."""
    sample = getattr(model, "training_sample_", None) or {}
    found: dict[str, Any] = {
        "training_customers": sample.get("customers", "unknown"),
        "training_sample_rate": sample.get("sample_rate", "1"),
        "training_float32": bool(model.training_float32),
    }
    timing = model.timing_
    if timing is not None:
        found |= {
            "timing_rows": int(timing.n_rows_),
            "timing_subsample_rate": float(timing.subsample_rate_),
        }
    for name in ("churn", "timing", "spend", "purchases"):
        booster = getattr(model, f"{name}_")
        if booster is not None:
            found[f"rounds_{name}"] = int(booster.best_iteration_)
    return found


def log_training_choices(model: RetentionModel) -> None:
    """Log what the final model's training chose on the active run.

    Params: the plan (``plan_cutoffs``, ``plan_training_horizon_days``, ``plan_step_days``,
    ``plan_min_history_days``, ``plan_history_days``: prefixed, as ``step_days`` and
    ``min_history_days`` are also the arguments asked for, ``None`` for "from the data"),
    ``training_rows``, ``reference_cutoff`` (``none`` in a fallback), ``choice_<output>`` and
    ``path_<choice>`` (:func:`training_path`: the sample, the timing rows, the rounds).
    Metrics ``validation/<output>/<candidate>`` (NaN left out). Tag ``fallback`` with the reason
    when the predictions are BTYD's alone. Artefact ``choices.json``
    (:func:`training_choices`).
    """
    record = training_choices(model)
    reference = model.reference_cutoff_
    params: dict[str, Any] = {
        "training_rows": model.training_rows_,
        "reference_cutoff": "none" if reference is None else f"{reference:%Y-%m-%d}",
        **{f"plan_{k}": v for k, v in model.plan_.as_params().items()},
    }
    params |= {f"choice_{o}": name for o, name in record["choices"].items()}
    params |= {f"path_{k}": v for k, v in record["training_path"].items()}
    mlflow.log_params(params)
    metrics = {
        f"validation/{o}/{candidate}": value
        for o, scores in record["validation_metrics"].items()
        for candidate, value in scores.items()
        if math.isfinite(value)
    }
    if metrics:
        mlflow.log_metrics(metrics)
    if record["fallback"]:
        mlflow.set_tag("fallback", record["fallback"])
    mlflow.log_dict(record, "choices.json")


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
            "numba",
        )
    ]
