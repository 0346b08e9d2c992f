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

from pathlib import Path
from typing import Any, Final

import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PyFuncModel, PythonModel

from retain.data.contract import PYFUNC_INPUT_COLUMNS, SCORE_COLUMNS, mlflow_signature
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


def input_example(transactions: pd.DataFrame, customers: int = 3) -> pd.DataFrame:
    """A few customers' full histories, as the pyfunc takes them."""
    ids = transactions["customer_id"].drop_duplicates().head(customers)
    return to_model_input(transactions[transactions["customer_id"].isin(ids)])


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
