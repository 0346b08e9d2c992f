"""The feature registry: both engines return exactly its columns, and the model inputs it declares
are the ones the models read before it existed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retain.data.contract import CUSTOMERS
from retain.data.synthetic import SyntheticData, simulate
from retain.errors import RetainError
from retain.features import FeatureBuilder, build_features
from retain.features.registry import (
    FEATURES,
    customer_columns,
    expand,
    feature_columns,
    feature_dtypes,
    is_model_input,
    model_input_names,
)
from retain.models.retention import LABEL_COLUMNS, SEGMENT_COLUMNS, BTYDFeatures

CUTOFF = "2023-06-30"
DEFAULT = (30, 90, 180, 365)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return simulate(400, events=True, discounts=True, refund_rate=0.05, seed=11)


def customers_of(data: SyntheticData, columns: list[str]) -> pd.DataFrame:
    """A validated-looking customers table with the given columns (and a postcode if asked)."""
    ids = data.truth["customer_id"].astype("str")
    values = {
        "customer_id": ids,
        "signup_date": data.truth["acquired_at"],
        "country": pd.Series(np.where(np.arange(len(ids)) % 2, "UK", "FR"), dtype="str"),
        "acquisition_channel": pd.Series(["ads"] * len(ids), dtype="str"),
        "email": pd.Series(["a@b.c"] * len(ids), dtype="str"),
        "postcode": pd.Series(np.arange(len(ids), dtype="float64")),
    }
    return pd.DataFrame({c: values[c] for c in ["customer_id", *columns]})


@pytest.mark.parametrize("engine", ["duckdb", "numpy", "numba"])
@pytest.mark.parametrize("windows", [DEFAULT, (7,), (14, 60, 120)])
@pytest.mark.parametrize("with_events", [False, True])
@pytest.mark.parametrize(
    "customer_table",
    [None, ["signup_date", "country", "acquisition_channel", "email"], ["country"], ["postcode"]],
)
def test_each_engine_returns_exactly_the_registrys_columns_and_dtypes(
    data: SyntheticData,
    engine: str,
    windows: tuple[int, ...],
    with_events: bool,
    customer_table: list[str] | None,
) -> None:
    customers = customers_of(data, customer_table) if customer_table is not None else None
    built = FeatureBuilder(windows=windows, engine=engine).build(
        data.transactions,
        CUTOFF,
        events=data.events if with_events else None,
        customers=customers,
    )
    expected = feature_columns(
        windows,
        events=with_events,
        customers=customers.columns.tolist() if customers is not None else False,
    )
    assert built.columns.tolist() == expected
    dtypes = feature_dtypes(windows)
    declared = [c for c in expected if c in dtypes]
    assert {c: str(built[c].dtype) for c in declared} == {c: dtypes[c] for c in declared}
    # Only a user's own customers column is undeclared.
    assert [c for c in expected if c not in dtypes] == (
        ["postcode"] if customer_table == ["postcode"] else []
    )


def test_all_the_contracts_customers_columns_are_joined_but_the_email() -> None:
    assert feature_columns(DEFAULT, customers=True)[-3:] == [
        "country",
        "acquisition_channel",
        "days_since_signup",
    ]
    assert customer_columns(CUSTOMERS.columns) == feature_columns(DEFAULT, customers=True)[-3:]
    assert customer_columns(["customer_id", "email"]) == []
    assert feature_columns(DEFAULT, events=True) == feature_columns(DEFAULT, events=False)


def test_windows_expand_in_the_builders_order() -> None:
    names = feature_columns((30, 90, 180))
    at = names.index("orders_30d")
    assert names[at : at + 6] == [
        "orders_30d",
        "spend_30d",
        "orders_90d",
        "spend_90d",
        "orders_180d",
        "spend_180d",
    ]
    events = next(f for f in FEATURES if "{event}" in f.name)
    assert expand(events, (30, 90, 180))[:4] == [
        "sessions_30d",
        "sessions_90d",
        "product_views_30d",
        "product_views_90d",
    ]


def test_every_feature_is_declared_once_and_says_what_it_is() -> None:
    names = [name for f in FEATURES for name in expand(f, DEFAULT)]
    assert len(names) == len(set(names))
    for feature in FEATURES:
        assert feature.meaning and "\n" not in feature.meaning, feature.name
        assert feature.engines, feature.name
        assert feature.unit or feature.dtype != "float64", feature.name


def _inputs_by_elimination(table: pd.DataFrame) -> list[str]:
    """How the models chose their inputs before the registry: every numeric column but keys,
    labels and segments."""
    not_features = {"customer_id", "cutoff", *SEGMENT_COLUMNS, *LABEL_COLUMNS}
    return [
        c
        for c in table.columns
        if c not in not_features and pd.api.types.is_numeric_dtype(table[c])
    ]


def _training_table(
    data: SyntheticData, customers: pd.DataFrame | None, with_events: bool
) -> pd.DataFrame:
    table = build_features(
        data.transactions,
        CUTOFF,
        events=data.events if with_events else None,
        customers=customers,
        horizon_days=60,
    ).assign(cutoff=pd.Timestamp(CUTOFF))
    return pd.concat([table, BTYDFeatures(60).fit(table).transform(table)], axis=1)


@pytest.mark.parametrize("with_events", [False, True])
def test_the_declared_model_inputs_are_the_ones_read_before(
    data: SyntheticData, with_events: bool
) -> None:
    """Without a customers table (CDNOW, Online Retail II) the models read the same columns in
    the same order as when every numeric column was an input."""
    table = _training_table(data, None, with_events)
    inputs = model_input_names(DEFAULT)
    assert [c for c in table.columns if c in inputs] == _inputs_by_elimination(table)
    assert {f"btyd_{n}" for n in ("p_alive", "clv")} <= inputs


def test_a_numeric_customers_column_is_no_model_input_unless_declared(
    data: SyntheticData,
) -> None:
    table = _training_table(data, customers_of(data, ["signup_date", "postcode"]), False)
    assert "postcode" in _inputs_by_elimination(table)  # what the elimination did
    assert not is_model_input("postcode", DEFAULT)
    assert is_model_input("days_since_signup", DEFAULT)
    assert not is_model_input("country", DEFAULT) and not is_model_input("segment", DEFAULT)
    assert is_model_input("spend_365d", DEFAULT) and not is_model_input("spend_365d", (30,))


def test_a_build_whose_columns_are_not_the_registrys_is_refused(data: SyntheticData) -> None:
    """A customers column named like a feature would shadow it (pandas suffixes both)."""
    customers = customers_of(data, ["country"]).rename(columns={"country": "frequency"})
    with pytest.raises(RetainError, match=r"undeclared \['frequency_x'"):
        FeatureBuilder().build(data.transactions, CUTOFF, customers=customers)
