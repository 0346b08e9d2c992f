"""The contract: each table declared once, and what derives from it equal to what was written by
hand before (the service's API, the MLflow signature and the scores file must not move)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from retain.data.contract import (
    CUSTOMERS,
    EVENTS,
    MANIFEST_FILE,
    PYFUNC_INPUT_COLUMNS,
    SCORE_COLUMNS,
    SCORES,
    SCORES_FILE,
    TRANSACTIONS,
    Column,
    TableContract,
    customers_with,
    mlflow_signature,
    scores_arrow_schema,
)
from retain.data.validation import validate_customers, validate_table
from retain.errors import RetainError, RetainInputError

# The definitions as they were written by hand before the contract derived them.
INPUT_COLUMNS = [
    ("customer_id", "string", True),
    ("timestamp", "string", True),
    ("amount", "double", True),
    ("order_id", "string", False),
    ("product_id", "string", False),
    ("category", "string", False),
    ("quantity", "double", False),
    ("discount", "double", False),
]
OUTPUT_TYPES = {
    "customer_id": "string",
    "churn_probability": "double",
    "p_alive": "double",
    "expected_purchases": "double",
    "p_purchase_30d": "double",
    "days_to_next_purchase": "double",
    "expected_next_purchase_date": "datetime",
    "clv": "double",
    "segment": "string",
    "reasons": "string",
}
OPTIONAL_OUTPUTS = {"days_to_next_purchase", "expected_next_purchase_date"}
SCORES_SCHEMA = pa.schema(
    [
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("churn_probability", pa.float64()),
        pa.field("p_alive", pa.float64()),
        pa.field("expected_purchases", pa.float64()),
        pa.field("p_purchase_30d", pa.float64()),
        pa.field("days_to_next_purchase", pa.float64()),
        pa.field("expected_next_purchase_date", pa.date32()),
        pa.field("clv", pa.float64()),
        pa.field("segment", pa.string()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("action", pa.string()),
        pa.field("frequency", pa.float64()),
        pa.field("T", pa.float64()),
        pa.field("days_since_last_purchase", pa.float64()),
        pa.field("orders_total", pa.float64()),
        pa.field("spend_total", pa.float64()),
    ]
)


def test_the_mlflow_signature_is_the_one_models_were_registered_with() -> None:
    expected = ModelSignature(
        inputs=Schema([ColSpec(kind, name, required=req) for name, kind, req in INPUT_COLUMNS]),
        outputs=Schema(
            [
                ColSpec(kind, name, required=name not in OPTIONAL_OUTPUTS)
                for name, kind in OUTPUT_TYPES.items()
            ]
        ),
        params=ParamSchema([ParamSpec("as_of", "string", ""), ParamSpec("n_reasons", "long", 3)]),
    )
    assert mlflow_signature() == expected
    assert mlflow_signature().to_dict() == expected.to_dict()
    assert PYFUNC_INPUT_COLUMNS == INPUT_COLUMNS
    assert list(OUTPUT_TYPES) == SCORE_COLUMNS


def test_the_scores_file_schema_is_unchanged() -> None:
    assert scores_arrow_schema().equals(SCORES_SCHEMA, check_metadata=True)
    assert [f.nullable for f in scores_arrow_schema()] == [f.nullable for f in SCORES_SCHEMA]
    assert (SCORES_FILE, MANIFEST_FILE) == ("scores.parquet", "manifest.json")


def test_validation_reads_the_same_columns_and_kinds() -> None:
    assert TRANSACTIONS.required == {
        "customer_id": "id",
        "timestamp": "timestamp",
        "amount": "number",
    }
    assert TRANSACTIONS.optional == {
        "order_id": "text",
        "quantity": "number",
        "price": "number",
        "product_id": "text",
        "category": "text",
        "discount": "number",
        "channel": "text",
    }
    assert TRANSACTIONS.derived == {"amount": ("quantity", "price")}
    assert EVENTS.kinds == {"customer_id": "id", "timestamp": "timestamp", "event_type": "text"}
    assert list(EVENTS.required) == EVENTS.columns
    assert CUSTOMERS.required == {"customer_id": "id"}
    assert CUSTOMERS.columns == [
        "customer_id",
        "signup_date",
        "country",
        "acquisition_channel",
        "email",
    ]


def test_the_served_columns_leave_out_what_no_model_reads() -> None:
    served = [c.name for c in TRANSACTIONS.served()]
    assert "price" not in served and "channel" not in served
    assert served[:3] == ["customer_id", "timestamp", "amount"]
    assert [c.name for c in SCORES.served()] == [*SCORE_COLUMNS, "action"]


def test_every_column_says_what_it_means() -> None:
    for table in (TRANSACTIONS, EVENTS, CUSTOMERS, SCORES):
        for column in table.specs:
            assert column.meaning and "\n" not in column.meaning, (table.name, column.name)


def test_a_column_declared_twice_is_refused() -> None:
    twice = [Column("a", "text", "one"), Column("a", "number", "two")]
    with pytest.raises(RetainError, match="declared twice"):
        TableContract("t", twice)
    with pytest.raises(KeyError, match="no column 'nope'"):
        TRANSACTIONS.column("nope")


def test_a_declared_customers_feature_survives_validation_as_a_number() -> None:
    raw = pd.DataFrame(
        {
            "id": ["1", "2", "2", "3"],
            "Post Code": ["1000", "2000", "2000", "n/a"],
            "country": ["UK", "FR", "FR", "DE"],
        }
    )
    columns = {"customer_id": "id", "postcode": "Post Code"}
    validated = validate_table(raw, customers_with(["postcode"]), columns)
    assert validated.frame.columns.tolist() == ["customer_id", "country", "postcode"]
    assert validated.frame["postcode"].tolist() == [1000.0, 2000.0]
    assert validated.report.quarantined == {"non-numeric postcode": 1, "repeated customer_id": 1}
    # Undeclared, the column is not the contract's: the mapping naming it is refused, and the
    # file's column is left out.
    with pytest.raises(RetainInputError, match="postcode"):
        validate_customers(raw, columns)
    plain = validate_customers(raw.rename(columns={"id": "customer_id"}))
    assert "Post Code" not in plain.frame and "postcode" not in plain.frame
    with pytest.raises(RetainInputError, match="already"):
        customers_with(["country"])
    with pytest.raises(RetainInputError, match="more than once"):
        customers_with(["postcode", "postcode"])
