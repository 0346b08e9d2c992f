"""Request and response models of the HTTP service.

Requests are strict: unknown fields are refused (a typo in a field name must not be silently ignored),
amounts are numbers (JSON integers are fine), timestamps are ISO 8601 with or without a zone (naive ones
are read in the request's ``timezone``, default UTC, as ``--timezone`` does for a file). The sizes of a request are checked by the service against its limits (HTTP 413), not here, so
that a too-large request is told so rather than given a list of 422 errors.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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


class Transaction(BaseModel):
    """One line of a customer's purchase history.

    No ``price``: a caller sends the line's net ``amount``; the contract's unit price only stands in
    for a file's missing amount column (amount = quantity x price), and no model reads it.
    """

    model_config = _STRICT

    timestamp: dt.datetime
    amount: float = Field(allow_inf_nan=False, description="net revenue; negative for a refund")
    order_id: Text | None = None
    product_id: Text | None = None
    category: Text | None = None
    quantity: float | None = Field(default=None, allow_inf_nan=False)
    discount: float | None = Field(default=None, allow_inf_nan=False)


class Event(BaseModel):
    """One web or email event (session, add_to_cart, email_open, ...)."""

    model_config = _STRICT

    timestamp: dt.datetime
    event_type: Text


class CustomerHistory(BaseModel):
    """A customer and everything they did up to the day scored."""

    model_config = _STRICT

    customer_id: Text
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


class Prediction(BaseModel):
    """One customer's scores, what to do about them, and the model that made them."""

    customer_id: str
    churn_probability: float
    p_alive: float
    expected_purchases: float
    p_purchase_30d: float
    # Null when no purchase is expected within the model's horizon (P(purchase within it) < 0.5):
    # the timing model knows nothing past the horizon (TimingModel.predict_days).
    days_to_next_purchase: float | None
    expected_next_purchase_date: dt.date | None
    clv: float
    segment: str
    reasons: list[str]
    action: str
    model_version: str


class PredictResponse(BaseModel):
    as_of: dt.date
    model_version: str
    predictions: list[Prediction]
