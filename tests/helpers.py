"""Small builders of test tables, and the fixture every plot test uses."""

from __future__ import annotations

from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
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


def customer_records(truth: pd.DataFrame, seed: int, *, channels: bool = False) -> pd.DataFrame:
    """A customers file for simulated customers (``simulate(...).truth``): a signup 0-59 days
    before the first purchase, a country and (``channels``) an acquisition channel, drawn from
    ``seed``; dates as text, as a file holds them."""
    rng = np.random.default_rng(seed)
    lead = pd.Series(pd.to_timedelta(rng.integers(0, 60, len(truth)), unit="D"), index=truth.index)
    records = {
        "customer_id": truth["customer_id"],
        "signup_date": (truth["acquired_at"] - lead).dt.strftime("%Y-%m-%d"),
        "country": rng.choice(["GB", "FR", "DE"], len(truth)),
    }
    if channels:
        records["acquisition_channel"] = rng.choice(["search", "social", "email"], len(truth))
    return pd.DataFrame(records)


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
