"""Small builders of test tables, and the fixture every plot test uses."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

# The predictions that are floats, compared to a tolerance across engines and entry points.
PREDICTED_FLOATS = [
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "p_purchase_30d",
    "days_to_next_purchase",
    "clv",
]


def transactions(rows: list[tuple[str, str, float]], **extra: list[object]) -> pd.DataFrame:
    """A validated-looking transactions frame from (customer, ISO timestamp, amount) rows."""
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount"])
    frame["customer_id"] = frame["customer_id"].astype("str")
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601").astype(
        "datetime64[us, UTC]"
    )
    frame["amount"] = frame["amount"].astype("float64")
    for name, values in extra.items():
        frame[name] = pd.Series(
            values, dtype="float64" if name in ("quantity", "discount") else "str"
        )
    return frame


@pytest.fixture
def no_shown_figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails a test whose plot function calls ``plt.show()``, and closes its figures after it."""

    def refuse_show(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plot function called plt.show()")

    monkeypatch.setattr(plt, "show", refuse_show)
    yield
    plt.close("all")
