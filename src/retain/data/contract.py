"""The data contract: every table retain reads or writes, each column declared once.

A table is a :class:`TableContract` of :class:`Column` declarations (name, kind, required or not,
nullable or not, what it means). Everything else is derived from them, never listed again by hand:

- the column lists and kinds that :mod:`retain.data.validation` checks a file against, and the
  dtypes of a validated frame (:meth:`TableContract.dtypes`, :meth:`TableContract.check`);
- the Arrow schema of ``scores.parquet`` (:func:`scores_arrow_schema`,
  ``retain.batch.schema.SCORES_SCHEMA``);
- the request and response models of the HTTP service (``retain.serving.schemas``) from the
  columns a table *serves* (:meth:`TableContract.served`);
- the MLflow pyfunc's signature (:func:`mlflow_signature`, :data:`PYFUNC_INPUT_COLUMNS`) and the
  model's score columns (:data:`SCORE_COLUMNS`);
- the file names of a scoring output (:data:`SCORES_FILE`, :data:`MANIFEST_FILE`).

The feature table has its own declaration, the feature registry (:mod:`retain.features.registry`).

Raw files come with their own column names; a :class:`~retain.data.columns.ColumnMapping` maps them
onto these names and :mod:`retain.data.validation` turns them into frames that satisfy the
contracts. Everything downstream (features, models, the service, the batch job) reads only
validated frames.

Types after validation:
- ``customer_id``: string (pandas ``str``). Integer-valued ids (``12345`` or ``12345.0``) become
  ``"12345"`` so that one customer is one key whatever the source file's type.
- ``timestamp``: ``datetime64[us, UTC]``.
- ``amount``: float64, net revenue; a negative amount is a refund or a return. Line-item exports
  that carry a unit ``price`` and a ``quantity`` but no line total get ``amount = quantity x price``
  (:attr:`TableContract.derived`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import pandas as pd

from retain.errors import RetainError, RetainInputError

if TYPE_CHECKING:
    import pyarrow as pa
    from mlflow.models import ModelSignature

__all__ = [
    "CUSTOMERS",
    "EVENTS",
    "EVENT_TYPES",
    "MANIFEST_FILE",
    "PYFUNC_INPUT_COLUMNS",
    "SCORES",
    "SCORES_FILE",
    "SCORE_COLUMNS",
    "TIMESTAMP_DTYPE",
    "TRANSACTIONS",
    "Column",
    "Kind",
    "TableContract",
    "arrow_type",
    "customer_id_text",
    "customers_with",
    "mlflow_signature",
    "scores_arrow_schema",
]

TIMESTAMP_DTYPE: Final = pd.DatetimeTZDtype(unit="us", tz="UTC")

SCORES_FILE: Final = "scores.parquet"
"""The scores table of a scoring output folder (a file, or a folder of part files with Spark)."""
MANIFEST_FILE: Final = "manifest.json"
"""What a scoring run read, which model it used and what it wrote, beside ``SCORES_FILE``."""

DECIMAL_ID: Final = re.compile(r"\d+\.0+")
"""An id written as a whole number with a decimal point ("12346.0", "00042.00"): a spreadsheet's or
a float column's spelling of the integer id. Other ids with a point ("A7.0", "1.5") are names."""


def customer_id_text(customer_id: str) -> str:
    """One customer id as the contract reads it: trimmed, and a whole number written as a decimal
    without its point ("12346.0" -> "12346"; leading zeros stay). Files go through the vectorised
    :func:`retain.data.validation.parse_customer_ids`; the HTTP requests through this, so an id is
    the same customer whichever way it arrives."""
    text = customer_id.strip()
    if DECIMAL_ID.fullmatch(text):
        return text.split(".", 1)[0]
    return text


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

Kind = Literal["id", "text", "timestamp", "date", "number", "text_list"]
"""How a column is parsed and typed: ``id`` (a customer key, text), ``text``, ``timestamp`` (an
instant), ``date`` (a day), ``number`` (float64), ``text_list`` (a list of sentences: the reasons
of a score)."""

Source = Literal["input", "model", "actions", "history"]
"""Who writes a column: the user's file (``input``); of the scores table, the RetentionModel
(``model``), the recommended action (``actions``) or the customer's history, copied from the
feature table (``history``)."""


@dataclass(frozen=True)
class Column:
    """One column of a table, declared once."""

    name: str
    kind: Kind
    meaning: str
    """One line: what the values are (the service's API documentation shows it)."""
    required: bool = False
    """A table without this column is refused (an optional column may be absent)."""
    nullable: bool = True
    """A row may lack a value. Rows of an input file without a required column's value are set
    aside by validation; the scores' non-nullable columns always have one."""
    served: bool = True
    """Carried by the HTTP service's request or response and the MLflow pyfunc: a file's unit
    ``price`` only stands in for a missing amount, and no model reads ``channel``."""
    source: Source = "input"
    """Who writes the column (:data:`Source`)."""


class TableContract:
    """The declared columns of one table, and what derives from them.

    ``kinds`` maps a column to its :data:`Kind`: the validator parses each kind its own way.
    """

    def __init__(
        self,
        name: str,
        columns: Sequence[Column],
        derived: dict[str, tuple[str, str]] | None = None,
        unique: str | None = None,
    ) -> None:
        self.name = name
        self.specs: tuple[Column, ...] = tuple(columns)
        self.derived = derived or {}
        """Required columns that, when the file has none, are the product of two optional ones:
        a line-item export has a unit price and a quantity, and no line total."""
        self.unique = unique
        """A column whose values are unique (one row per customer): validation sets aside a row
        that repeats an earlier row's value."""
        names = [c.name for c in self.specs]
        if len(set(names)) != len(names):
            raise RetainError(f"{name} contract: a column is declared twice in {names}")

    @cached_property
    def required(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.specs if c.required}

    @cached_property
    def optional(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.specs if not c.required}

    @cached_property
    def kinds(self) -> dict[str, str]:
        """Every column's kind, in declaration order (the order of a validated frame). Computed
        once, as ``required`` and ``optional``: the service checks a frame on every request."""
        return {c.name: c.kind for c in self.specs}

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.specs]

    def column(self, name: str) -> Column:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} has no column {name!r}; its columns are {self.columns}")

    def with_columns(self, columns: Sequence[Column]) -> TableContract:
        """This contract with more columns declared after its own (a user's own attributes)."""
        return TableContract(self.name, [*self.specs, *columns], self.derived, self.unique)

    def served(self) -> list[Column]:
        """The columns the service and the pyfunc carry, in the order of their API: the required
        ones, then the optional text, then the optional numbers (the service's request and the
        MLflow signature have had this order since their first version; a validated frame keeps
        the declaration order, which the MLflow dataset digest hashes)."""
        served = [c for c in self.specs if c.served]
        return sorted(served, key=_api_rank)  # a stable sort: declaration order within a rank

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


def _api_rank(column: Column) -> int:
    """Where a served column goes in the API: required (0), optional text (1), optional number (2)."""
    if column.required:
        return 0
    return 2 if column.kind == "number" else 1


_DTYPES: Final[dict[str, object]] = {
    "id": pd.StringDtype(na_value=float("nan")),
    "text": pd.StringDtype(na_value=float("nan")),
    "timestamp": TIMESTAMP_DTYPE,
    "date": TIMESTAMP_DTYPE,
    "number": np.dtype("float64"),
    "text_list": np.dtype("object"),
}

_CUSTOMER_ID: Final = Column("customer_id", "id", "the customer's key", required=True)

TRANSACTIONS: Final = TableContract(
    "transactions",
    [
        _CUSTOMER_ID,
        Column("timestamp", "timestamp", "when the line was bought or refunded", required=True),
        Column("amount", "number", "net revenue; negative for a refund", required=True),
        Column("order_id", "text", "the order the line belongs to"),
        Column("quantity", "number", "units on the line"),
        Column("price", "number", "unit price; stands in for a missing amount", served=False),
        Column("product_id", "text", "the product bought"),
        Column("category", "text", "the product's category"),
        Column("discount", "number", "amount taken off the list price (> 0: discounted)"),
        Column("channel", "text", "where the order was placed", served=False),
    ],
    # price is the unit price of a line; without an amount, the line's revenue is quantity x price.
    derived={"amount": ("quantity", "price")},
)

EVENTS: Final = TableContract(
    "events",
    [
        _CUSTOMER_ID,
        Column("timestamp", "timestamp", "when the event happened", required=True),
        Column(
            "event_type",
            "text",
            f"what happened: {', '.join(EVENT_TYPES)}, or any other type (counted as other)",
            required=True,
        ),
    ],
)

CUSTOMERS: Final = TableContract(
    "customers",
    [
        _CUSTOMER_ID,
        Column("signup_date", "date", "the day the customer signed up"),
        Column("country", "text", "the customer's country"),
        Column("acquisition_channel", "text", "how the customer was acquired"),
        Column("email", "text", "the customer's email address (never a model input)"),
    ],
    unique="customer_id",
)


def customers_with(features: Sequence[str]) -> TableContract:
    """The customers contract plus the numeric columns a user declares as model inputs
    (``retain train --customers-features``). Validation keeps them, parsed as numbers (a row
    whose value is not one is set aside, as for any number column), where it leaves out every
    column of the file that the contract does not name."""
    taken = [name for name in features if name in CUSTOMERS.columns]
    if taken:
        raise RetainInputError(
            f"customers features: {taken} are columns of the customers contract already "
            f"({', '.join(CUSTOMERS.columns)}); declare only your own numeric columns"
        )
    repeated = sorted({name for name in features if list(features).count(name) > 1})
    if repeated:
        raise RetainInputError(f"customers features: {repeated} declared more than once")
    declared = [
        Column(name, "number", "declared by the user as a model input") for name in features
    ]
    return CUSTOMERS.with_columns(declared)


def _score(name: str, kind: Kind, meaning: str, **options: Any) -> Column:
    return Column(name, kind, meaning, required=True, nullable=False, **options)


SCORES: Final = TableContract(
    "scores",
    [
        _score("customer_id", "id", "the customer's key", source="model"),
        _score("churn_probability", "number", "P(no purchase in the horizon)", source="model"),
        _score("p_alive", "number", "BG/NBD's P(the customer is still active)", source="model"),
        _score("expected_purchases", "number", "expected purchase days in the horizon", source="model"),
        _score("p_purchase_30d", "number", "P(a purchase within 30 days)", source="model"),
        # Null when no purchase is expected within the model's horizon (P(purchase within it) <
        # 0.5): the timing model knows nothing past the horizon (TimingModel.predict_days).
        Column(
            "days_to_next_purchase",
            "number",
            "expected days to the next purchase; null if none is expected within the horizon",
            required=True,
            source="model",
        ),
        Column(
            "expected_next_purchase_date",
            "date",
            "the as-of day plus days_to_next_purchase; null likewise",
            required=True,
            source="model",
        ),
        _score("clv", "number", "expected net spend in the horizon", source="model"),
        _score("segment", "text", "the RFM segment", source="model"),
        _score("reasons", "text_list", "the main reasons for the churn risk, in words", source="model"),
        _score("action", "text", "the recommended action", source="actions"),
        # What the customer did, beside what the models predict: what audiences and reports
        # (and people reading the file) need to know.
        _score("frequency", "number", "repeat purchase days", served=False, source="history"),
        _score("T", "number", "days from the first purchase day to the as-of day", served=False, source="history"),
        _score("days_since_last_purchase", "number", "days since the last purchase day", served=False, source="history"),
        _score("orders_total", "number", "orders up to the as-of day", served=False, source="history"),
        _score("spend_total", "number", "net spend up to the as-of day", served=False, source="history"),
    ],
)  # fmt: skip
"""``scores.parquet``: one row per customer. The model's columns are what
``RetentionModel.predict`` returns and the pyfunc outputs; the service's ``Prediction`` adds the
action (and the model version)."""

SCORE_COLUMNS: Final = [c.name for c in SCORES.specs if c.source == "model"]
"""The columns of ``RetentionModel.predict``'s scores, in order."""

# MLflow's column types: JSON carries instants as ISO 8601 strings, and the pyfunc joins a
# customer's reasons into one string ("; ") so that its output stays tabular.
_MLFLOW_TYPES: Final[dict[str, str]] = {
    "id": "string",
    "text": "string",
    "timestamp": "string",
    "date": "datetime",
    "number": "double",
    "text_list": "string",
}

PYFUNC_INPUT_COLUMNS: Final = [
    (c.name, _MLFLOW_TYPES[c.kind], c.required) for c in TRANSACTIONS.served()
]
"""The transaction columns as the MLflow pyfunc takes them: (name, MLflow type, required). Those
of the service's request: net amounts, no unit price."""


def mlflow_signature() -> ModelSignature:
    """The pyfunc's signature: transactions in (:data:`PYFUNC_INPUT_COLUMNS`), the model's scores
    out (:data:`SCORE_COLUMNS`; a nullable one is optional), ``as_of`` (a day, ``""``: the last
    transaction's) and ``n_reasons`` as parameters. MLflow is imported here, not at the module's
    import: the service and the batch job read this contract without it."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    inputs = Schema(
        [ColSpec(kind, name, required=required) for name, kind, required in PYFUNC_INPUT_COLUMNS]
    )
    outputs = Schema(
        [
            ColSpec(_MLFLOW_TYPES[c.kind], c.name, required=not c.nullable)
            for c in SCORES.specs
            if c.source == "model"
        ]
    )
    params = ParamSchema([ParamSpec("as_of", "string", ""), ParamSpec("n_reasons", "long", 3)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def arrow_type(kind: str) -> pa.DataType:
    """The Arrow type of a column kind (a day is a DATE: Parquet DATE, Spark ``DateType``)."""
    import pyarrow as pa

    types = {
        "id": pa.string(),
        "text": pa.string(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "number": pa.float64(),
        "text_list": pa.list_(pa.string()),
    }
    return types[kind]


def scores_arrow_schema() -> pa.Schema:
    """The Arrow schema of ``scores.parquet``. Only the key is declared non-null: the file has
    always left the other columns nullable (the models' outputs are never null by construction,
    which the MLflow signature states)."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(c.name, arrow_type(c.kind), nullable=c.kind != "id") for c in SCORES.specs]
    )
