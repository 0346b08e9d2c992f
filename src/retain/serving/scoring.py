"""What the service does with a request, apart from HTTP: limits, conversion, scoring, actions.

Scoring goes through the same validation, feature builder and RetentionModel as the batch job
(``RetentionModel.predict``), so the service and ``retain score`` give the same numbers for the same
histories.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from retain.actions import recommend_actions
from retain.data.validation import ValidationOptions, validate_events, validate_transactions
from retain.errors import RetainInputError
from retain.features.builder import to_cutoff
from retain.models.retention import SEGMENT_COLUMNS, RetentionModel
from retain.models.training import up_to
from retain.serving.schemas import (
    FeatureRequest,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from retain.serving.settings import ServingSettings

__all__ = ["EXPORT_FILE", "RequestTooLarge", "Scorer", "export_model"]

EXPORT_FILE = "retain.pkl"
_EXPORT_META = "retain.json"
# The expected next purchase date is at most ten years after as_of (RetentionModel.score_features),
# and must still be a date: a later as_of cannot be answered.
_LATEST_AS_OF = dt.date.max - dt.timedelta(days=3651)


class RequestTooLarge(RetainInputError):
    """A request beyond the service's limits (HTTP 413)."""


@dataclass
class Scorer:
    """A loaded RetentionModel, the version it is, and the limits requests must keep."""

    model: RetentionModel
    version: str
    source: str
    settings: ServingSettings

    @classmethod
    def load(cls, settings: ServingSettings | None = None) -> Scorer:
        """The model named by the settings: ``model_uri``, else an export in ``model_dir``, else
        the champion of the tracking server."""
        from retain.tracking import TrackingSettings, load_model, model_version

        settings = settings or ServingSettings()
        exported = settings.model_dir / EXPORT_FILE
        if settings.model_uri is None and exported.exists():
            meta = json.loads((settings.model_dir / _EXPORT_META).read_text(encoding="utf-8"))
            model, version, source = (
                RetentionModel.load(exported),
                str(meta["version"]),
                str(exported),
            )
        else:
            tracking = TrackingSettings()
            uri = settings.model_uri or tracking.champion_uri()
            model, version, source = load_model(uri, tracking), model_version(uri, tracking), uri
        # Compiled trees serve a single customer in a fraction of LightGBM's time per call.
        return cls(model.warm(), version, source, settings)

    # -- requests ---------------------------------------------------------------------------------

    def predict(self, request: PredictRequest) -> PredictResponse:
        self._check_size(request)
        as_of = _check_as_of(request.as_of or dt.datetime.now(dt.UTC).date())
        asked = [c.customer_id for c in request.customers]
        _check_unique(asked)
        transactions, events = _frames(request)
        options = ValidationOptions(strict=True)
        tx = validate_transactions(transactions, options=options).frame
        ev = validate_events(events, options=options).frame if events is not None else None
        # A customer is scored from their purchases (amount >= 0) on or before as_of: name those
        # without one rather than let the feature builder say that nobody has any.
        kept = up_to(tx, to_cutoff(as_of))
        bought = set(kept.loc[kept["amount"] >= 0, "customer_id"])
        _check_scorable(asked, bought, as_of)
        scores = self.model.predict(tx, as_of, events=ev, n_reasons=request.n_reasons)
        _check_scorable(asked, set(scores["customer_id"]), as_of)
        return self._response(scores.set_index("customer_id").loc[asked].reset_index(), as_of)

    def predict_features(self, request: FeatureRequest) -> PredictResponse:
        if len(request.rows) > self.settings.max_customers:
            raise RequestTooLarge(
                f"rows: {len(request.rows):,} feature rows, more than the limit of "
                f"{self.settings.max_customers:,} per request"
            )
        as_of = _check_as_of(request.as_of)
        without_id = [i for i, row in enumerate(request.rows) if row.get("customer_id") is None]
        if without_id:
            raise RetainInputError(
                f"rows: every feature row needs a customer_id; {len(without_id):,} have none: "
                + ", ".join(f"rows[{i}]" for i in without_id[:5])
            )
        table = pd.DataFrame.from_records(request.rows)
        table["customer_id"] = table["customer_id"].astype("str")
        # The RFM scores and segment of `retain features` rows (the segment is text) were scored
        # against that table's population; the model replaces them with its own.
        table = table.drop(columns=[c for c in table.columns if c in SEGMENT_COLUMNS])
        numeric = table.columns.drop("customer_id")
        try:
            table[numeric] = table[numeric].astype("float64")
        except (TypeError, ValueError) as error:
            raise RetainInputError(f"rows: feature values must be numbers ({error})") from error
        scores = self.model.score_features(
            self.model.complete_features(table), as_of, n_reasons=request.n_reasons
        )
        return self._response(scores, as_of)

    # -- helpers ----------------------------------------------------------------------------------

    def _check_size(self, request: PredictRequest) -> None:
        limits = self.settings
        if len(request.customers) > limits.max_customers:
            raise RequestTooLarge(
                f"customers: {len(request.customers):,} customers, more than the limit of "
                f"{limits.max_customers:,} per request"
            )
        for i, customer in enumerate(request.customers):
            for name, rows in (
                ("transactions", customer.transactions),
                ("events", customer.events),
            ):
                if rows is not None and len(rows) > limits.max_transactions:
                    raise RequestTooLarge(
                        f"customers[{i}].{name}: {len(rows):,} rows for customer "
                        f"{customer.customer_id!r}, more than the limit of "
                        f"{limits.max_transactions:,} per customer"
                    )

    def _response(self, scores: pd.DataFrame, as_of: dt.date) -> PredictResponse:
        scores = scores.assign(
            action=recommend_actions(scores).to_numpy(),
            expected_next_purchase_date=scores["expected_next_purchase_date"].dt.date,
            segment=scores["segment"].astype("str"),
            model_version=self.version,
        )
        predictions = [Prediction.model_validate(row) for row in scores.to_dict("records")]
        return PredictResponse(as_of=as_of, model_version=self.version, predictions=predictions)


def _check_as_of(as_of: dt.date) -> dt.date:
    if as_of > _LATEST_AS_OF:
        raise RetainInputError(
            f"as_of: {as_of} is too late; the latest day that can be scored is {_LATEST_AS_OF} "
            "(the expected next purchase date must be a date)"
        )
    return as_of


def _check_unique(asked: list[str]) -> None:
    """Each customer once: two histories under one id would be scored as one, twice."""
    seen: dict[str, int] = {}
    for i, customer_id in enumerate(asked):
        if customer_id in seen:
            raise RetainInputError(
                f"customers[{i}].customer_id: {customer_id!r} is also customers[{seen[customer_id]}]"
                "; send each customer once, with their whole history"
            )
        seen[customer_id] = i


def _check_scorable(asked: list[str], scorable: set[str], as_of: dt.date) -> None:
    missing = [c for c in asked if c not in scorable]
    if missing:
        raise RetainInputError(
            f"customers: {len(missing):,} have no purchase (a transaction with amount >= 0) on or "
            f"before {as_of} (as_of), so there is nothing to score: "
            + ", ".join(repr(c) for c in missing[:5])
        )


def _frames(request: PredictRequest) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The request's histories as a transactions table (and an events table, if any)."""
    columns: dict[str, list[object]] = {"customer_id": [], "timestamp": []}
    optional = ("order_id", "product_id", "category", "quantity", "discount")
    amounts: list[float] = []
    extra: dict[str, list[object]] = {name: [] for name in optional}
    events: dict[str, list[object]] = {"customer_id": [], "timestamp": [], "event_type": []}
    for customer in request.customers:
        for line in customer.transactions:
            columns["customer_id"].append(customer.customer_id)
            columns["timestamp"].append(_utc(line.timestamp))
            amounts.append(line.amount)
            for name in optional:
                extra[name].append(getattr(line, name))
        for event in customer.events or ():
            events["customer_id"].append(customer.customer_id)
            events["timestamp"].append(_utc(event.timestamp))
            events["event_type"].append(event.event_type)
    frame = pd.DataFrame({**columns, "amount": amounts})
    for name, values in extra.items():
        if any(v is not None for v in values):
            frame[name] = pd.Series(values, index=frame.index)
    event_frame = pd.DataFrame(events) if events["customer_id"] else None
    return frame, event_frame


def _utc(stamp: dt.datetime) -> dt.datetime:
    """Naive timestamps are UTC; zoned ones are converted to it."""
    if stamp.tzinfo is None:
        return stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(dt.UTC)


def export_model(uri: str | None = None, out: Path = Path("models")) -> Path:
    """Write the model at ``uri`` (default: the champion) to ``out`` for a registry-less service."""
    from retain.tracking import TrackingSettings, load_model, model_version

    tracking = TrackingSettings()
    source = uri or tracking.champion_uri()
    model = load_model(source, tracking)
    out.mkdir(parents=True, exist_ok=True)
    path = model.save(out / EXPORT_FILE)
    meta = {"version": model_version(source, tracking), "source": source}
    (out / _EXPORT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path
