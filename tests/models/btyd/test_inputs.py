"""User mistakes get a RetainInputError that names the column and counts the bad rows, from every
entry point: fit, each prediction, the spend model and the unit conversion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.models.btyd.helpers import TRANSACTION_MODELS

from retain.errors import NotFittedError, RetainInputError
from retain.models.btyd import (
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    TransactionModel,
    rfm_in_unit,
)

PARAMS = {
    "bgnbd": {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4},
    "pareto": {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7},
    "mbgnbd": {"r": 0.52, "alpha": 6.2, "a": 0.89, "b": 1.6},
}
GOOD = ([0.0, 2.0, 5.0], [0.0, 10.0, 30.0], [20.0, 30.0, 39.0])

# (frequency, recency, T) and the message expected
BAD_RFM = [
    (([-1.0, 2.0, 5.0], GOOD[1], GOOD[2]), r"frequency: 1 of 3 rows are negative"),
    ((GOOD[0], [0.0, 10.0, 40.0], GOOD[2]), r"recency: 1 of 3 rows are greater than T"),
    ((GOOD[0], [0.0, -1.0, 30.0], GOOD[2]), r"recency: 1 of 3 rows are negative"),
    (([np.nan, 2.0, np.nan], GOOD[1], GOOD[2]), r"frequency: 2 of 3 rows are not finite"),
    ((GOOD[0], GOOD[1], [20.0, np.inf, 39.0]), r"T: 1 of 3 rows are not finite"),
    (
        (GOOD[0], GOOD[1], [20.0, 30.0]),
        r"must have the same number of rows, got frequency 3, recency 3, T 2",
    ),
    (([0.0, 2.5, 5.0], GOOD[1], GOOD[2]), r"frequency: 1 of 3 rows are not whole numbers"),
    (([0.0, 0.0, 5.0], GOOD[1], GOOD[2]), r"recency: 1 of 3 rows have frequency 0 but a recency"),
    ((["0", "two", "5"], GOOD[1], GOOD[2]), r"frequency: expected numbers"),
    (
        (pd.Series([0, 2, None], dtype="Int64"), GOOD[1], GOOD[2]),
        r"frequency: 1 of 3 rows are not finite",
    ),
]


def entry_points(model: TransactionModel) -> dict[str, Callable[..., Any]]:
    return {
        "fit": model.fit,
        "conditional_probability_alive": model.conditional_probability_alive,
        "conditional_expected": lambda *rfm: (
            model.conditional_expected_number_of_purchases_up_to_time(10.0, *rfm)
        ),
        "probability_of_no_purchase": lambda *rfm: model.probability_of_no_purchase(10.0, *rfm),
        "individual_log_likelihood": model.individual_log_likelihood,
    }


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
@pytest.mark.parametrize(("rfm", "message"), BAD_RFM)
def test_bad_rfm_is_refused_everywhere(key: str, rfm: tuple[Any, ...], message: str) -> None:
    model = TRANSACTION_MODELS[key].from_dict({"params": PARAMS[key]})
    for call in entry_points(model).values():
        with pytest.raises(RetainInputError, match=message):
            call(*rfm)


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_predicting_before_fitting(key: str) -> None:
    model = TRANSACTION_MODELS[key]()
    calls = [call for name, call in entry_points(model).items() if name != "fit"]
    calls += [
        lambda *rfm: model.expected_number_of_purchases_up_to_time(10.0),
        lambda *rfm: model.to_dict(),
    ]
    for call in calls:
        with pytest.raises(NotFittedError, match=f"{type(model).__name__} is not fitted"):
            call(*GOOD)


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_bad_horizons(key: str) -> None:
    model = TRANSACTION_MODELS[key].from_dict({"params": PARAMS[key]})
    for t, message in (
        (-1.0, "t: 1 of 1 rows are negative"),
        (np.nan, "t: 1 of 1 rows are not finite"),
    ):
        with pytest.raises(RetainInputError, match=message):
            model.conditional_expected_number_of_purchases_up_to_time(t, *GOOD)
        with pytest.raises(RetainInputError, match=message):
            model.probability_of_no_purchase(t, *GOOD)
        with pytest.raises(RetainInputError, match=message):
            model.expected_number_of_purchases_up_to_time(t)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda: BetaGeoModel(), ([], [], []), "at least one customer"),
        (lambda: BetaGeoModel(), (np.ones((2, 2)), np.ones((2, 2)), np.ones((2, 2))), "1-D arrays"),
        (lambda: ParetoNBDModel(), ([0, 0], [0, 0], [0, 0]), "all 2 customers have T = 0"),
        (lambda: BetaGeoModel(penalizer_coef=-0.1), GOOD, "penalizer_coef must be >= 0"),
        (lambda: BetaGeoModel(penalizer_coef=np.nan), GOOD, "penalizer_coef must be a finite"),
        (lambda: ModifiedBetaGeoModel(time_unit=""), GOOD, "time_unit must be a non-empty string"),
    ],
)
def test_bad_fits(
    make: Callable[[], TransactionModel], args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(RetainInputError, match=message):
        make().fit(*args)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, 2.0], "weights must have one value per customer: got 2 for 3 customers"),
        ([1.0, -2.0, 1.0], "weights: 1 of 3 rows are negative"),
        ([1.0, np.nan, 1.0], "weights: 1 of 3 rows are not finite"),
        (["a", "b", "c"], "weights: expected numbers"),
        ([0.0, 0.0, 0.0], "all weights are 0"),
    ],
)
def test_bad_weights(weights: list[Any], message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        BetaGeoModel().fit(*GOOD, weights=weights)
    if "all weights" not in message:
        with pytest.raises(RetainInputError, match=message):
            GammaGammaModel().fit(GOOD[0], [0.0, 10.0, 20.0], weights=weights)


@pytest.mark.parametrize(
    ("frequency", "spend", "message"),
    [
        ([0, 0, 0], [0.0, 0.0, 0.0], "none of the 3 customers has a repeat purchase"),
        ([0, 2, 1], [0.0, 10.0, -5.0], "1 of 2 repeat customers .* monetary value <= 0"),
        ([0, 2, 1], [0.0, 10.0, 0.0], "1 of 2 repeat customers .* monetary value <= 0"),
        ([0, 2, 1], [0.0, np.nan, 5.0], "monetary_value: 1 of 3 rows are not finite"),
        ([0, -2, 1], [0.0, 10.0, 5.0], "frequency: 1 of 3 rows are negative"),
        ([0, 2.5, 1], [0.0, 10.0, 5.0], "frequency: 1 of 3 rows are not whole numbers"),
        ([0, 2, 1], [0.0, 10.0], "frequency, monetary_value must have the same number of rows"),
        ([0, 2, 1], ["0", "ten", "5"], "monetary_value: expected numbers"),
    ],
)
def test_bad_spend_data(frequency: list[Any], spend: list[Any], message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        GammaGammaModel().fit(frequency, spend)
    fitted = GammaGammaModel.from_dict({"params": {"p": 6.0, "q": 3.7, "gamma": 15.0}})
    if "none of the" not in message and "monetary value <= 0" not in message:
        with pytest.raises(RetainInputError, match=message):
            fitted.conditional_expected_average_profit(frequency, spend)


def test_spend_model_before_fitting() -> None:
    model = GammaGammaModel()
    with pytest.raises(NotFittedError, match="GammaGammaModel is not fitted"):
        model.conditional_expected_average_profit([1], [10.0])
    with pytest.raises(NotFittedError, match="GammaGammaModel is not fitted"):
        model.customer_lifetime_value(
            BetaGeoModel.from_dict({"params": PARAMS["bgnbd"]}), *GOOD, [0, 1, 2]
        )


def test_customer_lifetime_value_arguments() -> None:
    spend = GammaGammaModel.from_dict({"params": {"p": 6.0, "q": 3.7, "gamma": 15.0}})
    transactions = BetaGeoModel.from_dict({"params": PARAMS["bgnbd"], "time_unit": "weeks"})
    value = [0.0, 10.0, 20.0]
    with pytest.raises(NotFittedError, match="BetaGeoModel is not fitted"):
        spend.customer_lifetime_value(BetaGeoModel(), *GOOD, value)
    with pytest.raises(RetainInputError, match="time must be a whole number of months"):
        spend.customer_lifetime_value(transactions, *GOOD, value, time=0)
    with pytest.raises(RetainInputError, match="discount_rate must be > -1"):
        spend.customer_lifetime_value(transactions, *GOOD, value, discount_rate=-1.0)
    with pytest.raises(RetainInputError, match="freq_days must be a positive number"):
        spend.customer_lifetime_value(transactions, *GOOD, value, freq_days=0.0)
    monthly = BetaGeoModel.from_dict({"params": PARAMS["bgnbd"], "time_unit": "months"})
    with pytest.raises(RetainInputError, match="pass freq_days"):
        spend.customer_lifetime_value(monthly, *GOOD, value)
    with pytest.raises(RetainInputError, match="recency: 1 of 3 rows are greater than T"):
        spend.customer_lifetime_value(transactions, GOOD[0], [0.0, 10.0, 40.0], GOOD[2], value)


def test_rfm_in_unit() -> None:
    features = pd.DataFrame(
        {"customer_id": ["a", "b"], "frequency": [0, 3], "recency": [0.0, 14.0], "T": [7.0, 21.0]}
    )
    weeks = rfm_in_unit(features, "weeks")
    assert weeks["recency"].tolist() == [0.0, 2.0] and weeks["T"].tolist() == [1.0, 3.0]
    assert weeks["frequency"].tolist() == [0, 3] and weeks["customer_id"].tolist() == ["a", "b"]
    assert features["T"].tolist() == [7.0, 21.0]  # a copy: the input is unchanged
    assert rfm_in_unit(features, "days").equals(features)
    with pytest.raises(RetainInputError, match="unit must be one of days, weeks, not 'months'"):
        rfm_in_unit(features, "months")  # type: ignore[arg-type]
    with pytest.raises(RetainInputError, match=r"missing column\(s\) T"):
        rfm_in_unit(features.drop(columns="T"), "weeks")


def test_series_in_series_out() -> None:
    """Columns of a feature table in, predictions on the same index (customer ids) out."""
    index = pd.Index(["c1", "c2", "c3"], name="customer_id")
    rfm = [pd.Series(values, index=index) for values in GOOD]
    model = BetaGeoModel.from_dict({"params": PARAMS["bgnbd"]})
    alive = model.conditional_probability_alive(*rfm)
    assert isinstance(alive, pd.Series) and alive.index.equals(index) and alive.name == "p_alive"
    expected = model.conditional_expected_number_of_purchases_up_to_time(5.0, *rfm)
    assert isinstance(expected, pd.Series) and expected.name == "expected_purchases"
    np.testing.assert_array_equal(
        expected, model.conditional_expected_number_of_purchases_up_to_time(5.0, *GOOD)
    )
    assert isinstance(model.conditional_probability_alive(*GOOD), np.ndarray)
