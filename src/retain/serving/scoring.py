"""What the service does with a request, apart from HTTP: limits, conversion, scoring, actions.

Scoring goes through the same validation, feature builder and RetentionModel as the batch job
(``RetentionModel.predict``), so the service and ``retain score`` give the same numbers for the same
histories.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

import numpy as np
import pandas as pd

from retain.actions import recommend_actions
from retain.batch.schema import HISTORY_COLUMNS
from retain.data.contract import EVENTS, TRANSACTIONS, customer_id_text
from retain.errors import RetainInputError
from retain.features.builder import to_cutoff
from retain.models.retention import SEGMENT_COLUMNS, RetentionModel
from retain.models.training import on_or_before
from retain.serving.schemas import (
    FeatureRequest,
    Prediction,
    PredictRequest,
    PredictResponse,
)
from retain.serving.settings import ServingSettings

__all__ = ["EXPORT_MODEL", "BadRequest", "RequestTooLarge", "Scorer", "export_model"]

# ``retain export`` writes the model folder and a note of its version into the service's folder.
EXPORT_MODEL = "retain-model"
_EXPORT_META = "retain.json"
# The optional transaction columns a request may carry, in the validated frame's order.
_OPTIONAL_REQUEST_COLUMNS: Final = [
    c
    for c in TRANSACTIONS.columns
    if c in {s.name for s in TRANSACTIONS.served() if not s.required}
]
# What retain 0.1 exported: a pickle, refused by the loader with how to replace it.
_OLD_EXPORT = "retain.pkl"
log = logging.getLogger("retain.serving")
# The expected next purchase date is at most the model's horizon after as_of (null beyond it,
# TimingModel.predict_days) and must still be a date: ten years of margin cover any horizon used.
_LATEST_AS_OF = dt.date.max - dt.timedelta(days=3651)
# The longest customer id, as the request schema's Text allows in /predict.
_MAX_ID: Final = 200


class BadRequest(RetainInputError):
    """A request the schema would have refused had it known the model (HTTP 400)."""


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
        exported = settings.model_dir / EXPORT_MODEL
        if not exported.exists() and (settings.model_dir / _OLD_EXPORT).exists():
            exported = settings.model_dir / _OLD_EXPORT  # refused by the loader, which says why
        if settings.model_uri is None and exported.exists():
            model = RetentionModel.load(exported)  # checked before its version note is read
            meta = json.loads((settings.model_dir / _EXPORT_META).read_text(encoding="utf-8"))
            version, source = str(meta["version"]), str(exported)
        else:
            tracking = TrackingSettings()
            uri = settings.model_uri or tracking.champion_uri()
            with _one_loader_at_a_time(settings):
                model, version, source = (
                    load_model(uri, tracking),
                    model_version(uri, tracking),
                    uri,
                )
        # Compiled trees serve a single customer in a fraction of LightGBM's time per call. They
        # are an optimisation: if they cannot be built here (numba's compiler or its cache folder
        # unavailable in an image), LightGBM serves the same numbers, slower.
        try:
            model.warm()
        except Exception:  # any failure only costs speed
            log.warning("retain: compiled trees unavailable; scoring with LightGBM", exc_info=True)
        return cls(model, version, source, settings)

    # -- requests ---------------------------------------------------------------------------------

    def predict(self, request: PredictRequest) -> PredictResponse:
        self._check_size(request)
        as_of = _check_as_of(request.as_of or dt.datetime.now(dt.UTC).date())
        asked = [c.customer_id for c in request.customers]
        _check_unique(asked)
        tx, ev = _frames(request)
        # A customer is scored from their purchases (amount >= 0) on or before as_of: name those
        # without one rather than let the feature builder say that nobody has any.
        purchase = (tx["amount"].to_numpy() >= 0) & on_or_before(tx["timestamp"], to_cutoff(as_of))
        _check_scorable(asked, set(tx["customer_id"].to_numpy()[purchase]), as_of)
        day = to_cutoff(as_of)
        table = self.model.features(tx, day, events=ev)
        scores = _with_history(
            self.model.score_features(table, day, n_reasons=request.n_reasons), table
        )
        scored = scores["customer_id"].tolist()
        _check_scorable(asked, set(scored), as_of)
        if scored != asked:  # the builder orders customers by id; answer in the request's order
            position = {customer: i for i, customer in enumerate(scored)}
            scores = scores.take([position[c] for c in asked]).reset_index(drop=True)
        return self._response(scores, as_of)

    def predict_features(self, request: FeatureRequest) -> PredictResponse:
        """The scores of feature rows. The rows are checked before any table is built, each key
        once: their ids (text, each once, as ``/predict`` wants them) and their keys (the model's
        features and ``retain features``' segment columns only), so a typo is named rather than
        scored as a missing feature, and the work grows with the request's size, not with rows
        times distinct keys."""
        rows = request.rows
        if len(rows) > self.settings.max_customers:
            raise RequestTooLarge(
                f"rows: {len(rows):,} feature rows, more than the limit of "
                f"{self.settings.max_customers:,} per request"
            )
        as_of = _check_as_of(request.as_of)
        ids = _feature_row_ids(rows)
        _check_unique(ids, "rows")
        _check_keys(rows, {"customer_id", *self.model.feature_names_, *SEGMENT_COLUMNS})
        table = self.model.complete_features(_feature_table(rows, ids))
        scores = _with_history(
            self.model.score_features(table, as_of, n_reasons=request.n_reasons), table
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
        columns = {
            name: scores[name].tolist() for name in Prediction.model_fields if name in scores
        }
        columns["action"] = recommend_actions(scores).tolist()
        # Null (None, not NaN or NaT) where no purchase is expected within the horizon.
        columns["days_to_next_purchase"] = [
            None if np.isnan(days) else days for days in columns["days_to_next_purchase"]
        ]
        columns["expected_next_purchase_date"] = [
            None if pd.isna(stamp) else stamp.date()
            for stamp in scores["expected_next_purchase_date"]
        ]
        columns["segment"] = [str(segment) for segment in scores["segment"]]
        columns["model_version"] = [self.version] * len(scores)
        # Built without re-validation: every value comes typed from the scores table.
        predictions = [
            Prediction.model_construct(**dict(zip(columns, row, strict=True)))
            for row in zip(*columns.values(), strict=True)
        ]
        return PredictResponse(as_of=as_of, model_version=self.version, predictions=predictions)


@contextlib.contextmanager
def _one_loader_at_a_time(settings: ServingSettings) -> Iterator[None]:
    """The service's workers load from the registry in turn: two creating one fresh MLflow store at
    once collide on its schema ("duplicate column name"), and two downloading the same artefacts
    race too. (An exported model is a file read: the workers load it side by side.)

    The lock is in the service's own folder, not the shared temporary one, where any local user
    could create and hold it and so stall loading."""
    path = _state_dir(settings) / "load.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _state_dir(settings: ServingSettings) -> Path:
    """The service's folder, created private (0700); one that another user owns or that others may
    write to is refused, since its lock could then be held by them."""
    folder = settings.state_dir
    if folder is None:
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        folder = Path(cache) / "retain-serve"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise RetainInputError(
            f"serving state folder {folder} (RETAIN_SERVE_STATE_DIR): owned by uid "
            f"{info.st_uid} with mode {stat.S_IMODE(info.st_mode):04o}; it must be this user's "
            f"(uid {os.getuid()}) and not writable by others (e.g. mode 0700)"
        )
    return folder


def _with_history(scores: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The scores with the history columns the recommended action reads (as the batch job's
    scores carry them), from the feature table they were computed from (same rows, same order)."""
    for column in HISTORY_COLUMNS:
        scores[column] = table[column].to_numpy(dtype="float64")
    return scores


def _check_as_of(as_of: dt.date) -> dt.date:
    if as_of > _LATEST_AS_OF:
        raise RetainInputError(
            f"as_of: {as_of} is too late; the latest day that can be scored is {_LATEST_AS_OF} "
            "(the expected next purchase date must be a date)"
        )
    return as_of


def _check_unique(asked: list[str], where: str = "customers") -> None:
    """Each customer once: two histories (or feature rows) under one id would be scored as one,
    twice."""
    seen: dict[str, int] = {}
    for i, customer_id in enumerate(asked):
        if customer_id in seen:
            raise RetainInputError(
                f"{where}[{i}].customer_id: {customer_id!r} is also {where}[{seen[customer_id]}]"
                "; send each customer once, with their whole history"
            )
        seen[customer_id] = i


def _feature_row_ids(rows: list[dict[str, float | str | None]]) -> list[str]:
    """Each row's customer id, which must be text as in ``/predict``: a JSON number or boolean is
    refused (400), not read as ``"12346.0"`` or ``"1.0"``; a row without one is a 422. Text ids are
    read as the contract reads a file's: ``"12346.0"`` is customer ``"12346"``."""
    without_id = [i for i, row in enumerate(rows) if row.get("customer_id") is None]
    if without_id:
        raise RetainInputError(
            f"rows: every feature row needs a customer_id; {len(without_id):,} have none: "
            + ", ".join(f"rows[{i}]" for i in without_id[:5])
        )
    ids = [row["customer_id"] for row in rows]
    bad = [
        i
        for i, customer_id in enumerate(ids)
        if not isinstance(customer_id, str) or not 1 <= len(customer_id.strip()) <= _MAX_ID
    ]
    if bad:
        raise BadRequest(
            f"rows: {len(bad):,} customer_id(s) are not text of 1 to {_MAX_ID} characters (send "
            "ids as JSON strings, as /predict wants them): "
            + ", ".join(f"rows[{i}].customer_id is {ids[i]!r}"[:80] for i in bad[:5])
        )
    return [customer_id_text(str(customer_id)) for customer_id in ids]


def _check_keys(rows: list[dict[str, float | str | None]], known: set[str]) -> None:
    """Only keys the model knows (400 otherwise, naming them): a misspelt feature would otherwise
    be scored as missing (NaN) without a word. Each key of the request is looked at once."""
    unknown: dict[str, int] = {}
    for i, row in enumerate(rows):
        for key in row:
            if key not in known and key not in unknown:
                unknown[key] = i
    if unknown:
        named = sorted(unknown)[:5]
        raise BadRequest(
            f"rows: {len(unknown):,} unknown key(s), which the model does not read: "
            + ", ".join(f"{key[:40]!r} (rows[{unknown[key]}])" for key in named)
            + "; a row holds customer_id and the model's features, as `retain features` writes "
            "them"
        )


def _check_scorable(asked: list[str], scorable: set[str], as_of: dt.date) -> None:
    missing = [c for c in asked if c not in scorable]
    if missing:
        raise RetainInputError(
            f"customers: {len(missing):,} have no purchase (a transaction with amount >= 0) on or "
            f"before {as_of} (as_of), so there is nothing to score: "
            + ", ".join(repr(c) for c in missing[:5])
        )


def _frames(request: PredictRequest) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The request's histories as validated frames: the transactions table (and the events table,
    if any) with the data contract's columns and dtypes.

    The request schema enforces, field by field, what validation checks row by row in a file (an
    id and text present and trimmed, a timestamp, a finite amount), and says which field of which
    customer breaks it; so the frames are built straight in the contract's types, which are then
    checked. (Running the file validator on an already valid request cost 3 ms of a 15 ms request.)
    Timestamps without an offset are read in the request's ``timezone``.
    """
    customers = request.customers
    zone = request.timezone
    lines = [line for customer in customers for line in customer.transactions]
    dtypes = TRANSACTIONS.dtypes()
    columns = {
        "customer_id": pd.array(
            [c.customer_id for c in customers for _ in c.transactions], dtype=dtypes["customer_id"]
        ),
        "timestamp": _utc(
            [line.timestamp for line in lines],
            zone,
            lambda: [
                f"customers[{i}].transactions[{j}].timestamp"
                for i, c in enumerate(customers)
                for j in range(len(c.transactions))
            ],
        ),
        "amount": np.fromiter((line.amount for line in lines), np.float64, len(lines)),
    }
    for name in _OPTIONAL_REQUEST_COLUMNS:
        values = [getattr(line, name) for line in lines]
        if any(v is not None for v in values):
            columns[name] = pd.array(values, dtype=dtypes[name])
    transactions = pd.DataFrame(columns)  # arrays, not Series: no index to align
    TRANSACTIONS.check(transactions)
    if not any(customer.events for customer in customers):
        return transactions, None
    events = [(c.customer_id, e) for c in customers for e in c.events or ()]
    dtypes = EVENTS.dtypes()
    event_frame = pd.DataFrame(
        {
            "customer_id": pd.array([c for c, _ in events], dtype=dtypes["customer_id"]),
            "timestamp": _utc(
                [e.timestamp for _, e in events],
                zone,
                lambda: [
                    f"customers[{i}].events[{j}].timestamp"
                    for i, c in enumerate(customers)
                    for j in range(len(c.events or ()))
                ],
            ),
            "event_type": pd.array([e.event_type for _, e in events], dtype=dtypes["event_type"]),
        }
    )
    EVENTS.check(event_frame)
    return transactions, event_frame


def _feature_table(rows: list[dict[str, float | str | None]], ids: list[str]) -> pd.DataFrame:
    """Feature rows (their keys checked) as a table: the ids as text, every other column as
    float64, a null or a column missing from a row as NaN.

    The RFM scores and segment of ``retain features`` rows (the segment is text) were scored
    against that table's population; they are left out, and the model adds its own.
    """
    names = [
        name
        for name in dict.fromkeys(key for row in rows for key in row)
        if name != "customer_id" and name not in SEGMENT_COLUMNS
    ]
    cells = [[row.get(name) for name in names] for row in rows]
    try:  # NumPy reads None as NaN
        values = np.array(cells, dtype=np.float64).reshape(len(rows), len(names))
    except (TypeError, ValueError):
        raise RetainInputError(_not_numbers(cells, names)) from None
    table = pd.DataFrame(values, columns=names)
    table.insert(0, "customer_id", pd.Series(ids, dtype="str"))
    return table


def _not_numbers(cells: list[list[float | str | None]], names: list[str]) -> str:
    """Which feature columns hold values that are not numbers, how many, and an example of each."""
    found: dict[str, list[tuple[int, object]]] = {}
    for i, row in enumerate(cells):
        for name, value in zip(names, row, strict=True):
            if value is None:
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                found.setdefault(name, []).append((i, value))
    listed = "; ".join(
        f"{name} in {len(bad):,} row{'' if len(bad) == 1 else 's'} "
        f"(rows[{bad[0][0]}] is {bad[0][1]!r})"
        for name, bad in found.items()
    )
    return f"rows: feature values must be numbers or null: {listed}"


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)


def _utc(
    stamps: list[dt.datetime], zone: str = "UTC", paths: Callable[[], list[str]] | None = None
) -> pd.DatetimeIndex:
    """Timestamps in UTC, in the contract's dtype; naive ones are read in ``zone``.

    As validation reads a file's naive timestamps in ``--timezone`` with its default
    ``--ambiguous-times refuse``: a wall time the clocks skip (spring forward) does not exist and
    one they repeat (fall back) is ambiguous. A file sets such rows aside with their own reasons;
    here the request is refused, naming each timestamp by its path (``paths()`` lists them, built
    only then), since a caller can add the offset.
    """
    micros = np.fromiter(
        ((s - (_NAIVE_EPOCH if s.tzinfo is None else _EPOCH)) // _MICROSECOND for s in stamps),
        np.int64,
        len(stamps),
    )
    naive = (
        np.zeros(0, bool)
        if zone == "UTC"  # the common case: naive ones are UTC already
        else np.fromiter((s.tzinfo is None for s in stamps), bool, len(stamps))
    )
    if not naive.any():
        return pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC")
    wall = pd.DatetimeIndex(micros[naive].view("datetime64[us]"))
    local = wall.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    if local.hasnans:
        _refuse_local_times(stamps, np.flatnonzero(naive)[np.asarray(local.isna())], zone, paths)
    micros[naive] = local.as_unit("us").asi8
    return pd.DatetimeIndex(micros.view("datetime64[us]")).tz_localize("UTC")


def _refuse_local_times(
    stamps: list[dt.datetime],
    where: np.ndarray,
    zone: str,
    paths: Callable[[], list[str]] | None,
) -> NoReturn:
    """Refuse naive times that name no single instant in ``zone``, each kind said apart."""
    named = paths() if paths else [f"[{i}]" for i in range(len(stamps))]
    wall = pd.DatetimeIndex([stamps[i] for i in where])
    # With the ambiguity settled (any way), only the times the clocks skip are left without one.
    nonexistent = np.asarray(
        wall.tz_localize(zone, ambiguous=np.ones(len(wall), bool), nonexistent="NaT").isna()
    )
    parts = []
    for label, mask in (
        ("do not exist (the clocks go forward over them)", nonexistent),
        ("are ambiguous (the clocks go back and that time happens twice)", ~nonexistent),
    ):
        if mask.any():
            listed = ", ".join(f"{named[i]} ({stamps[i].isoformat()})" for i in where[mask][:5])
            parts.append(f"{int(mask.sum()):,} {label}: {listed}")
    raise RetainInputError(
        f"timestamps: some without an offset name no single instant in {zone}: "
        + "; ".join(parts)
        + "; give them an offset"
    )


def export_model(uri: str | None = None, out: Path = Path("models")) -> Path:
    """Write the model at ``uri`` (default: the champion) to ``out`` for a registry-less service."""
    from retain.tracking import TrackingSettings, load_model, model_version

    tracking = TrackingSettings()
    source = uri or tracking.champion_uri()
    model = load_model(source, tracking)
    out.mkdir(parents=True, exist_ok=True)
    path = model.save(out / EXPORT_MODEL)
    meta = {"version": model_version(source, tracking), "source": source}
    (out / _EXPORT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return path
