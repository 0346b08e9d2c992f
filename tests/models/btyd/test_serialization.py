"""Saving and loading BTYD models: to_dict / from_dict / model_from_dict through JSON, and pickle."""

from __future__ import annotations

import json
import pickle
from typing import Any

import numpy as np
import pytest
from tests.models.btyd.helpers import RFM

from retain.errors import NotFittedError, RetainInputError
from retain.models.btyd import (
    MODELS,
    BetaGeoModel,
    GammaGammaModel,
    ParetoNBDModel,
    TransactionModel,
    model_from_dict,
)
from retain.models.btyd._base import ParametricModel


def predictions(model: ParametricModel, data: RFM) -> list[np.ndarray]:
    """Every prediction the model makes, on the CDNOW calibration customers."""
    if isinstance(model, GammaGammaModel):
        clv_model = BetaGeoModel.from_dict(
            {"params": {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, "time_unit": "weeks"}
        )
        return [
            np.asarray(model.conditional_expected_average_profit(data.x, data.m)),
            np.asarray(model.customer_lifetime_value(clv_model, data.x, data.t_x, data.T, data.m)),
        ]
    assert isinstance(model, TransactionModel)
    args = (data.x, data.t_x, data.T)
    return [
        np.asarray(model.conditional_probability_alive(*args)),
        np.asarray(model.conditional_expected_number_of_purchases_up_to_time(13.0, *args)),
        np.asarray(model.probability_of_no_purchase(13.0, *args)),
        np.asarray(model.individual_log_likelihood(*args)),
        np.asarray(model.expected_number_of_purchases_up_to_time(np.arange(0.0, 80.0, 4.0))),
    ]


@pytest.fixture(scope="module")
def fitted(
    cdnow_fitted: dict[str, TransactionModel], cdnow_spend: GammaGammaModel
) -> dict[str, ParametricModel]:
    return {**cdnow_fitted, "gamma-gamma": cdnow_spend}


@pytest.mark.parametrize("key", list(MODELS))
def test_json_round_trip_gives_identical_predictions(
    key: str, fitted: dict[str, ParametricModel], cdnow_weeks: RFM
) -> None:
    model = fitted[key]
    saved = json.dumps(model.to_dict())  # plain JSON: no numpy types, no NaN
    data = json.loads(saved)
    assert data["model"] == key
    assert data["params"] == model.params_
    assert set(data) == {"model", "params", "log_likelihood", "n_customers", "time_unit"}
    loaded = model_from_dict(data)
    assert type(loaded) is type(model) is MODELS[key]
    assert loaded.params_ == model.params_
    assert loaded.log_likelihood_ == model.log_likelihood_
    assert loaded.n_customers_ == model.n_customers_
    assert loaded.time_unit_ == model.time_unit_
    assert repr(loaded) == repr(model)
    for before, after in zip(
        predictions(model, cdnow_weeks), predictions(loaded, cdnow_weeks), strict=True
    ):
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("key", list(MODELS))
def test_pickle_round_trip(key: str, fitted: dict[str, ParametricModel], cdnow_weeks: RFM) -> None:
    model = fitted[key]
    saved = pickle.dumps(model)
    assert len(saved) < 1_000  # parameters only: no data, no closures
    loaded = pickle.loads(saved)
    assert loaded.params_ == model.params_
    for before, after in zip(
        predictions(model, cdnow_weeks), predictions(loaded, cdnow_weeks), strict=True
    ):
        np.testing.assert_array_equal(before, after)


def test_minimal_dict_and_defaults() -> None:
    model = model_from_dict({"model": "pareto", "params": {"r": 1, "alpha": 2, "s": 3, "beta": 4}})
    assert isinstance(model, ParetoNBDModel)
    assert (
        model.time_unit_ == "days" and model.log_likelihood_ is None and model.n_customers_ is None
    )
    assert repr(model) == "ParetoNBDModel(r=1, alpha=2, s=3, beta=4; time unit: days)"
    assert repr(ParetoNBDModel()) == "ParetoNBDModel(not fitted)"
    # A class's own from_dict does not need the key.
    assert (
        BetaGeoModel.from_dict({"params": {"r": 1, "alpha": 2, "a": 3, "b": 4}}).params_["b"] == 4.0
    )


VALID = {"model": "bgnbd", "params": {"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"model": "bg-nbd", "params": VALID["params"]}, "unknown BTYD model 'bg-nbd'"),
        ({"params": VALID["params"]}, "unknown BTYD model None"),
        ([VALID], "unknown BTYD model None"),
        ({"model": "bgnbd"}, "expected a dict with 'params'"),
        ({**VALID, "params": {"r": 0.2, "alpha": 4.0, "a": 0.8}}, "params must be r, alpha, a, b"),
        ({**VALID, "params": {**VALID["params"], "s": 1.0}}, "params must be r, alpha, a, b"),
        ({**VALID, "params": [0.2, 4.0, 0.8, 2.4]}, "params must be"),
        ({**VALID, "params": {**VALID["params"], "a": -0.8}}, "a must be positive finite"),
        ({**VALID, "params": {**VALID["params"], "b": float("inf")}}, "b must be positive finite"),
        ({**VALID, "params": {**VALID["params"], "r": "fast"}}, "r must be positive finite"),
        ({**VALID, "params": {**VALID["params"], "r": None}}, "r must be positive finite"),
        ({**VALID, "params": {**VALID["params"], "r": True}}, "r must be positive finite"),
        ({**VALID, "log_likelihood": "high"}, "log_likelihood must be a number"),
        ({**VALID, "n_customers": -3}, "n_customers must be a whole number"),
        ({**VALID, "n_customers": 2.5}, "n_customers must be a whole number"),
        ({**VALID, "time_unit": 7}, "time_unit must be a non-empty string"),
        ({**VALID, "time_unit": ""}, "time_unit must be a non-empty string"),
    ],
)
def test_bad_saved_models_raise_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(RetainInputError, match=message):
        model_from_dict(data)


def test_a_class_refuses_another_models_dict() -> None:
    with pytest.raises(RetainInputError, match="this is a 'bgnbd' model, not 'pareto'"):
        ParetoNBDModel.from_dict(VALID)


def test_unfitted_models_cannot_be_saved() -> None:
    for model in (BetaGeoModel(), GammaGammaModel()):
        with pytest.raises(NotFittedError, match="is not fitted"):
            model.to_dict()


def test_numeric_strings_and_numpy_numbers_are_read() -> None:
    """What float() reads is a number (a hand-edited file); numpy scalars come from code."""
    model = model_from_dict(
        {
            **VALID,
            "params": {"r": "0.2", "alpha": np.float32(4.0), "a": np.int64(1), "b": 2.4},
            "n_customers": 12.0,
            "log_likelihood": "-10.5",
        }
    )
    assert model.params_ == {"r": 0.2, "alpha": 4.0, "a": 1.0, "b": 2.4}
    assert model.n_customers_ == 12 and model.log_likelihood_ == -10.5
    assert all(type(v) is float for v in model.params_.values())
