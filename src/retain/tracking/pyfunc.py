"""The RetentionModel as an MLflow pyfunc: raw transactions in, the scores table out.

Whoever loads ``models:/retain@champion`` with plain ``mlflow.pyfunc.load_model`` gets the whole
pipeline (validation, features, BTYD, LightGBM, reasons), so the service, the batch job and a
notebook score exactly as training did. The model is stored as one artefact, the RetentionModel's
folder (JSON and LightGBM text with a hashed manifest: :mod:`retain.models.persistence`).

The input is the transactions table of the data contract with timestamps as ISO 8601 strings (what
JSON carries); zoned strings are converted to UTC, naive ones are read as UTC. Parameters:
``as_of`` (a day, default: the last transaction's day) and ``n_reasons``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PyFuncModel, PythonModel

from retain.data.contract import (
    PYFUNC_INPUT_COLUMNS,
    SCORE_COLUMNS,
    TIMESTAMP_DTYPE,
    mlflow_signature,
)
from retain.data.validation import validate_transactions
from retain.models.retention import RetentionModel

__all__ = [
    "INPUT_COLUMNS",
    "RetentionPyfunc",
    "input_example",
    "signature",
    "to_model_input",
    "unwrap",
]

MODEL_ARTIFACT: Final = "retention_model"

# The contract's transaction columns as the pyfunc takes them: (name, MLflow type, required).
INPUT_COLUMNS: Final = PYFUNC_INPUT_COLUMNS


def signature() -> ModelSignature:
    """Transactions in, scores out; ``as_of`` and ``n_reasons`` as parameters (derived from the
    contract's tables: :func:`retain.data.contract.mlflow_signature`)."""
    return mlflow_signature()


def to_model_input(transactions: pd.DataFrame) -> pd.DataFrame:
    """A validated transactions frame in the pyfunc's input form (ISO strings for timestamps)."""
    known = [name for name, _, _ in INPUT_COLUMNS if name in transactions.columns]
    frame = transactions[known].copy()
    stamps = frame["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        frame["timestamp"] = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S%z").astype("str")
    for name, kind, _ in INPUT_COLUMNS:
        if name in frame.columns:
            frame[name] = frame[name].astype("str" if kind == "string" else "float64")
    return frame


# The made-up example's customers: (id, days before the scoring day, amount) of each purchase.
_EXAMPLE_PURCHASES: Final = (
    ("example-customer-a", 84, 23.456),
    ("example-customer-a", 41, 57.891),
    ("example-customer-a", 6, 18.234),
    ("example-customer-b", 63, 102.347),
    ("example-customer-c", 27, 9.871),
    ("example-customer-c", 13, 31.619),
)
# Values of the optional contract columns in the example (same for every row).
_EXAMPLE_OPTIONAL: Final = {
    "order_id": None,  # one made-up order per row: filled below
    "product_id": "example-product",
    "category": "example-category",
    "quantity": 1.0,
    "discount": 0.0,
}


def input_example(columns: Sequence[str], as_of: pd.Timestamp) -> pd.DataFrame:
    """A made-up history of three customers, as the pyfunc takes them, scoreable as of ``as_of``.

    MLflow stores the example beside the model (``input_example.json``,
    ``serving_input_example.json``) where anyone who may load the model can read it, so it holds
    no training data: made-up ids, amounts and times shaped like the contract, with the optional
    contract columns among ``columns`` (the training table's) so the example exercises them too.
    """
    day = pd.Timestamp(as_of).normalize()
    day = day.tz_localize("UTC") if day.tzinfo is None else day.tz_convert("UTC")
    rows: dict[str, list[Any]] = {
        "customer_id": [c for c, _, _ in _EXAMPLE_PURCHASES],
        "timestamp": [day - pd.Timedelta(days=d, hours=-10) for _, d, _ in _EXAMPLE_PURCHASES],
        "amount": [a for _, _, a in _EXAMPLE_PURCHASES],
    }
    for name, value in _EXAMPLE_OPTIONAL.items():
        if name in columns:
            rows[name] = [
                f"example-order-{i}" if value is None else value
                for i in range(1, len(_EXAMPLE_PURCHASES) + 1)
            ]
    frame = pd.DataFrame(rows)
    frame["timestamp"] = frame["timestamp"].astype(TIMESTAMP_DTYPE)
    return to_model_input(frame)


class RetentionPyfunc(PythonModel):
    """Scores raw transactions with the RetentionModel saved beside it."""

    def load_context(self, context: Any) -> None:
        self.model = RetentionModel.load(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        params = params or {}
        tx = validate_transactions(model_input).frame
        as_of = params.get("as_of") or tx["timestamp"].max().strftime("%Y-%m-%d")
        scores = self.model.predict(tx, as_of, n_reasons=int(params.get("n_reasons", 3)))
        # Reasons are lists of sentences: one string per customer keeps the output tabular.
        return scores.assign(reasons=scores["reasons"].map("; ".join))[SCORE_COLUMNS]


def unwrap(pyfunc_model: PyFuncModel) -> RetentionModel:
    """The RetentionModel inside a loaded pyfunc (for callers who already hold validated data)."""
    python_model = pyfunc_model.unwrap_python_model()
    if not isinstance(python_model, RetentionPyfunc):
        raise TypeError(f"not a retain model: {type(python_model).__name__}")
    return python_model.model
