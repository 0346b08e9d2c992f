"""Request and response models of the HTTP service.

Requests are strict: unknown fields are refused (a typo in a field name must not be silently ignored),
amounts are numbers (JSON integers are fine), timestamps are ISO 8601 with or without a zone (naive ones
are read in the request's ``timezone``, default UTC, as ``--timezone`` does for a file). The sizes of a request are checked by the service against its limits (HTTP 413), not here, so
that a too-large request is told so rather than given a list of 422 errors.

A line of a customer's history (:class:`Transaction`, :class:`Event`) and a :class:`Prediction` are
made from the data contract (:mod:`retain.data.contract`): their fields are the served columns of
the transactions, events and scores tables, in the order of the MLflow signature, with each
column's meaning as the field's description.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, create_model

from retain.data.contract import (
    EVENTS,
    SCORES,
    TRANSACTIONS,
    Column,
    TableContract,
    customer_id_text,
)

__all__ = [
    "CustomerHistory",
    "Event",
    "FeatureRequest",
    "PredictRequest",
    "PredictResponse",
    "Prediction",
    "Transaction",
]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
Text = Annotated[str, Field(min_length=1, max_length=200)]
CustomerId = Annotated[Text, AfterValidator(customer_id_text)]
"""A customer id as text, read as the contract reads a file's ("12346.0" is customer "12346")."""


class _Request(BaseModel):
    """A part of a request made from the data contract: strict, like every request."""

    model_config = _STRICT

    if TYPE_CHECKING:  # the fields are made at import, from the contract: mypy sees them as Any

        def __getattr__(self, name: str) -> Any: ...


class _Response(BaseModel):
    """A part of a response made from the data contract."""

    if TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any: ...


def _request_field(column: Column) -> tuple[Any, Any]:
    """A request field: text present and at most 200 characters, finite numbers, an instant;
    an optional column is an optional field (default null)."""
    kind: Any = {"id": Text, "text": Text, "number": float, "timestamp": dt.datetime}[column.kind]
    finite: dict[str, Any] = {"allow_inf_nan": False} if column.kind == "number" else {}
    if column.required:
        return kind, Field(description=column.meaning, **finite)
    return kind | None, Field(default=None, description=column.meaning, **finite)


def _response_field(column: Column) -> tuple[Any, Any]:
    """A response field: always present, null where the contract allows it."""
    kind: Any = {
        "id": str,
        "text": str,
        "number": float,
        "date": dt.date,
        "text_list": list[str],
    }[column.kind]
    return (kind | None if column.nullable else kind), Field(description=column.meaning)


def _lines(table: TableContract) -> dict[str, Any]:
    """The fields of one line of a customer's history: the table's served columns but the
    customer id, which the customer's entry carries once."""
    return {c.name: _request_field(c) for c in table.served() if c.name != "customer_id"}


Transaction = create_model(
    "Transaction",
    __base__=_Request,
    __module__=__name__,
    __doc__="""One line of a customer's purchase history (the transactions contract's served
    columns).

    No ``price``: a caller sends the line's net ``amount``; the contract's unit price only stands in
    for a file's missing amount column (amount = quantity x price), and no model reads it.
    """,
    **_lines(TRANSACTIONS),
)

Event = create_model(
    "Event",
    __base__=_Request,
    __module__=__name__,
    __doc__="One web or email event (session, add_to_cart, email_open, ...).",
    **_lines(EVENTS),
)


class CustomerHistory(BaseModel):
    """A customer and everything they did up to the day scored."""

    model_config = _STRICT

    customer_id: CustomerId
    transactions: list[Transaction] = Field(min_length=1)
    events: list[Event] | None = None


def _known_zone(name: str) -> str:
    """An IANA time zone name that this machine's zone database has (a typo must not fall back to
    UTC: it would move purchases across days without a word). ``utc`` in any case is UTC, as the
    CLI's ``--timezone`` (pandas) reads it; other names are case-sensitive there too."""
    if name.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; give an IANA name such as 'Europe/London' or 'UTC'"
        ) from None
    return name


TimeZone = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_zone)]


class PredictRequest(BaseModel):
    """Customers to score as of a day (default: today, UTC)."""

    model_config = _STRICT

    customers: list[CustomerHistory] = Field(min_length=1)
    as_of: dt.date | None = None
    n_reasons: int = Field(default=3, ge=0, le=10)
    timezone: TimeZone = Field(
        default="UTC",
        description="IANA time zone of timestamps without an offset (e.g. 'Europe/London'), like "
        "the CLI's --timezone; timestamps with an offset keep it. as_of is a UTC day either way.",
    )


class FeatureRequest(BaseModel):
    """Feature rows as ``retain features`` writes them (one per customer), scored as of a day."""

    model_config = _STRICT

    rows: list[dict[str, float | str | None]] = Field(min_length=1)
    as_of: dt.date
    n_reasons: int = Field(default=3, ge=0, le=10)


_PREDICTION_FIELDS: dict[str, Any] = {
    **{c.name: _response_field(c) for c in SCORES.served()},
    "model_version": (str, Field(description="the version of the model that scored")),
}
Prediction = create_model(
    "Prediction",
    __base__=_Response,
    __module__=__name__,
    __doc__="One customer's scores, what to do about them, and the model that made them.",
    **_PREDICTION_FIELDS,
)


class PredictResponse(BaseModel):
    as_of: dt.date
    model_version: str
    predictions: list[Prediction]
