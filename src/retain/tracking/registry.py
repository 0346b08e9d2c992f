"""The model registry: versions of ``retain``, the ``challenger`` and the ``champion``.

A new version always becomes the ``challenger``. It also becomes the ``champion`` when there is
none yet, or when it beats the current champion on every promotion metric of the settings, each
compared on the holdout metrics the two runs logged (``<metric>/retain``). Otherwise a person
decides: ``retain promote VERSION``.

Only like is compared with like. A run whose holdout was skipped (too short a history: its
``holdout`` tag, see :func:`~retain.tracking.training.plan_holdout`) has no metrics to compare and
stays the challenger, unless it is the first version. A shortened holdout is judged over fewer
days than the horizon: its metrics are compared with the champion's only when the champion's
holdout covered as many days (param ``holdout_horizon_days``; runs from before that param judged
the whole ``horizon_days``); when the two differ, the version stays the challenger. A metric over
14 days and one over 90 do not measure the same thing (a churn AUC over a short window mostly
ranks who buys soon), so a difference between them says nothing about which model is better.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from retain.errors import RetainInputError
from retain.evaluation.comparison import metric_direction
from retain.tracking.settings import TrackingSettings

__all__ = [
    "Registration",
    "check_promotion_metrics",
    "metric_key",
    "model_version",
    "promote",
    "register_version",
]


def metric_key(metric: str, contender: str) -> str:
    """The run metric of one contender: ``churn_roc_auc/retain`` groups contenders in the UI."""
    return f"{metric}/{contender}"


@dataclass(frozen=True)
class Registration:
    """A registered version and what became of it."""

    name: str
    version: str
    champion: bool
    reason: str


def check_promotion_metrics(settings: TrackingSettings) -> None:
    """Every promotion metric must have a known direction (a typo would otherwise surface only
    when a second version is compared with the first, after its training)."""
    for metric in settings.promotion_metrics:
        if metric_direction(metric) is None:
            raise RetainInputError(
                f"promotion metric {metric!r}: no known direction (better when?); promotion "
                "metrics are holdout metrics such as churn_roc_auc or clv_normalized_gini"
            )


def register_version(
    client: MlflowClient,
    run_id: str,
    model_uri: str,
    settings: TrackingSettings,
    *,
    model_id: str | None = None,
) -> Registration:
    """Register the run's model, make it the challenger, and the champion if it earns it.

    The comparison with the champion comes first: if it fails (a promotion metric the run did not
    log), nothing is registered. ``model_id`` is the logged model's id (MLflow 3); a tracking
    server needs it to register a ``models:/<model_id>`` URI, and it is read from such a URI when
    not given.
    """
    check_promotion_metrics(settings)
    name = settings.model_name
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="retain: churn, next purchase and CLV from transactions"
        )
    champion = _champion(client, name)
    new = client.get_run(run_id).data
    skipped = _skipped_holdout(new.tags)
    if champion is None or champion.run_id is None:
        promote_to_champion = True
        reason = "the first version of the model"
        if skipped:
            reason += f", though without holdout metrics ({skipped})"
    elif skipped:
        promote_to_champion = False
        reason = (
            f"no holdout metrics to compare with version {champion.version} ({skipped}); a "
            "person decides: retain promote VERSION"
        )
    else:
        old = client.get_run(champion.run_id).data
        new_days, old_days = _holdout_days(new.params), _holdout_days(old.params)
        if new_days is not None and old_days is not None and new_days != old_days:
            promote_to_champion = False
            reason = (
                f"its holdout judged {new_days} days and version {champion.version}'s "
                f"{old_days}: metrics over different horizons are not comparable; a person "
                "decides: retain promote VERSION"
            )
        else:
            promote_to_champion, reason = _beats(
                new.metrics, old.metrics, settings, champion.version
            )
    version = client.create_model_version(
        name, model_uri, run_id=run_id, model_id=model_id or _logged_model_id(model_uri)
    ).version
    client.set_registered_model_alias(name, "challenger", version)
    if promote_to_champion:
        client.set_registered_model_alias(name, "champion", version)
    return Registration(name, str(version), promote_to_champion, reason)


def promote(version: str | int, settings: TrackingSettings | None = None) -> Registration:
    """Make a version the champion: the human decision, whatever its metrics."""
    settings = settings or TrackingSettings()
    client = MlflowClient(settings.resolved_uri())
    try:
        client.get_model_version(settings.model_name, str(version))
    except MlflowException as error:
        raise RetainInputError(
            f"model {settings.model_name!r} has no version {version} at {settings.resolved_uri()}"
        ) from error
    client.set_registered_model_alias(settings.model_name, "champion", str(version))
    return Registration(settings.model_name, str(version), True, "promoted by hand")


def _logged_model_id(model_uri: str) -> str | None:
    """The id in ``models:/<model_id>`` (not ``models:/<name>/<version>`` or ``@alias``)."""
    rest = model_uri.removeprefix("models:/")
    if rest == model_uri or "/" in rest or "@" in rest:
        return None
    return rest


def _champion(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def _skipped_holdout(tags: dict[str, str]) -> str | None:
    """``holdout skipped: <why>`` when the run's holdout was skipped, else None."""
    holdout = tags.get("holdout", "")
    return f"holdout {holdout}" if holdout.startswith("skipped") else None


def _holdout_days(params: dict[str, str]) -> int | None:
    """How many days the run's holdout judged: ``holdout_horizon_days``, or for a run from before
    that param, its whole ``horizon_days``; None when the run says neither (or had no holdout)."""
    value = params.get("holdout_horizon_days", params.get("horizon_days"))
    try:
        return None if value is None else int(value)
    except ValueError:  # "none": no holdout
        return None


def _beats(
    new: dict[str, float], old: dict[str, float], settings: TrackingSettings, old_version: str
) -> tuple[bool, str]:
    """Whether the new run beats the old on every promotion metric, and why (not)."""
    verdicts = []
    for metric in settings.promotion_metrics:
        key = metric_key(metric, "retain")
        if key not in new:
            raise RetainInputError(f"promotion metric {metric!r} was not logged by the new run")
        if key not in old:  # nothing to compare on this one: the others decide
            continue
        direction = metric_direction(metric)
        if direction is None:
            raise RetainInputError(
                f"promotion metric {metric!r}: no known direction (better when?)"
            )
        gain = {
            "higher": new[key] - old[key],
            "lower": old[key] - new[key],
            "closest_to_zero": abs(old[key]) - abs(new[key]),
        }[direction]
        better = gain > settings.min_improvement
        verdicts.append((metric, better, new[key], old[key]))
    if not verdicts:
        return True, f"the champion (version {old_version}) logged none of the promotion metrics"
    detail = ", ".join(f"{m} {n:.4f} vs {o:.4f}" for m, _, n, o in verdicts)
    if all(better for _, better, _, _ in verdicts):
        return True, f"beats version {old_version} on every promotion metric ({detail})"
    return False, f"does not beat version {old_version} on every promotion metric ({detail})"


def model_version(uri: str, settings: TrackingSettings) -> str:
    """The registry version behind a ``models:/name@alias`` or ``models:/name/version`` URI (any
    other URI or a path is its own version)."""
    if not uri.startswith("models:/"):
        return uri
    name_and_rest = uri.removeprefix("models:/")
    if "@" not in name_and_rest:
        return name_and_rest.rsplit("/", 1)[-1]
    name, alias = name_and_rest.split("@", 1)
    client = MlflowClient(settings.resolved_uri())
    return str(client.get_model_version_by_alias(name, alias).version)
