"""The data contract: canonical tables, their columns and their types after validation.

Raw files come with their own column names; a :class:`~retain.data.columns.ColumnMapping` maps them
onto these names and :mod:`retain.data.validation` turns them into frames that satisfy the schemas
below. Everything downstream (features, models, the service, the batch job) reads only validated
frames.

Types after validation:
- ``customer_id``: string (pandas ``str``). Integer-valued ids (``12345`` or ``12345.0``) become
  ``"12345"`` so that one customer is one key whatever the source file's type.
- ``timestamp``: ``datetime64[us, UTC]``.
- ``amount``: float64, net revenue; a negative amount is a refund or a return. Line-item exports
  that carry a unit ``price`` and a ``quantity`` but no line total get ``amount = quantity x price``
  (:attr:`TableContract.derived`).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import pandas as pd

from retain.errors import RetainError

__all__ = [
    "CUSTOMERS",
    "EVENTS",
    "EVENT_TYPES",
    "MANIFEST_FILE",
    "SCORES_FILE",
    "TIMESTAMP_DTYPE",
    "TRANSACTIONS",
    "TableContract",
]

TIMESTAMP_DTYPE: Final = pd.DatetimeTZDtype(unit="us", tz="UTC")

SCORES_FILE: Final = "scores.parquet"
"""The scores table of a scoring output folder (a file, or a folder of part files with Spark)."""
MANIFEST_FILE: Final = "manifest.json"
"""What a scoring run read, which model it used and what it wrote, beside ``SCORES_FILE``."""

# Event types with a meaning in the feature builder; other types are kept and counted as "other".
EVENT_TYPES: Final = (
    "session",
    "product_view",
    "add_to_cart",
    "cart_abandon",
    "wishlist_add",
    "email_open",
    "email_click",
    "support_ticket",
)


class TableContract:
    """Names and kinds of one table's columns.

    ``kinds`` maps a column to one of ``id``, ``timestamp``, ``number``, ``text``, ``date``: the
    validator parses each kind its own way.
    """

    def __init__(
        self,
        name: str,
        required: dict[str, str],
        optional: dict[str, str],
        derived: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.name = name
        self.required = required
        self.optional = optional
        self.derived = derived or {}
        """Required columns that, when the file has none, are the product of two optional ones:
        a line-item export has a unit price and a quantity, and no line total."""

    @property
    def kinds(self) -> dict[str, str]:
        return {**self.required, **self.optional}

    @property
    def columns(self) -> list[str]:
        return list(self.kinds)

    def dtypes(self) -> dict[str, Any]:
        """The dtype of every column of a validated frame of this table."""
        return {name: _DTYPES[kind] for name, kind in self.kinds.items()}

    def check(self, frame: pd.DataFrame) -> None:
        """Raise if ``frame`` is not a validated frame of this table (a programming error, not a user's).

        A plain dtype check rather than pandera: it runs on every request of the service, and
        pandera's import alone costs more than a second.
        """
        columns = frame.columns.tolist()
        missing = [c for c in self.required if c not in columns]
        extra = [c for c in columns if c not in self.kinds]
        given = dict(zip(columns, frame.dtypes.tolist(), strict=True))
        wrong = {
            c: str(given[c])
            for c, dtype in self.dtypes().items()
            if c in given and given[c] != dtype
        }
        if missing or extra or wrong:
            raise RetainError(
                f"{self.name} frame breaks the contract: missing={missing}, unexpected={extra}, "
                f"wrong dtypes={wrong}"
            )


_DTYPES: Final[dict[str, object]] = {
    "id": pd.StringDtype(na_value=float("nan")),
    "text": pd.StringDtype(na_value=float("nan")),
    "timestamp": TIMESTAMP_DTYPE,
    "date": TIMESTAMP_DTYPE,
    "number": np.dtype("float64"),
}


TRANSACTIONS: Final = TableContract(
    "transactions",
    required={"customer_id": "id", "timestamp": "timestamp", "amount": "number"},
    optional={
        "order_id": "text",
        "quantity": "number",
        "price": "number",
        "product_id": "text",
        "category": "text",
        "discount": "number",
        "channel": "text",
    },
    # price is the unit price of a line; without an amount, the line's revenue is quantity x price.
    derived={"amount": ("quantity", "price")},
)

EVENTS: Final = TableContract(
    "events",
    required={"customer_id": "id", "timestamp": "timestamp", "event_type": "text"},
    optional={},
)

CUSTOMERS: Final = TableContract(
    "customers",
    required={"customer_id": "id"},
    optional={
        "signup_date": "date",
        "country": "text",
        "acquisition_channel": "text",
        "email": "text",
    },
)
