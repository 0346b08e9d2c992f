"""MBG/NBD: the CDNOW estimates of Batislam et al., lifetimes' numbers, heavy buyers where lifetimes
gives NaN, and recovery of known parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit
from tests.models.btyd.helpers import (
    HORIZONS,
    RFM,
    assert_predictions_equal_lifetimes,
    expected_purchases_while_alive_by_quadrature,
    lifetimes_fitter,
    lifetimes_log_likelihood,
    simulate_beta_geometric,
)

from retain.models.btyd import ModifiedBetaGeoModel, TransactionModel

# The MBG/NBD on the CDNOW sample, calibration to 1997-09-30, weeks (lifetimes' documented fit).
GOLD = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
NAMES = list(GOLD)


def probability_alive(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Batislam et al.: ``1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x)) ** (r + x))``, the
    power taken in logs so that heavy buyers do not overflow."""
    r, alpha, a, b = (params[k] for k in NAMES)
    log_odds = np.log(a / (b + x)) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return expit(-log_odds)


def test_cdnow_estimates_match_the_literature(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["mbgnbd"]
    assert model.converged_
    for name, value in GOLD.items():
        assert model.params_[name] == pytest.approx(value, abs=5e-4), name
    # The BG/NBD's -9582.4 is the benchmark; the extra dropout chance fits about as well.
    assert model.log_likelihood_ == pytest.approx(-9582.1, abs=0.1)


def test_log_likelihood_equals_lifetimes_at_each_optimum(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    from lifetimes import ModifiedBetaGeoFitter

    theirs = ModifiedBetaGeoFitter().fit(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
    ours = cdnow_fitted["mbgnbd"]
    assert lifetimes_log_likelihood("mbgnbd", theirs, cdnow_weeks) == pytest.approx(
        ours.log_likelihood_, rel=1e-6
    )
    for name in NAMES:
        assert theirs.params_[name] == pytest.approx(ours.params_[name], rel=1e-5), name


def test_log_likelihood_equals_lifetimes_formula_at_any_parameters(cdnow_weeks: RFM) -> None:
    from lifetimes import ModifiedBetaGeoFitter

    rng = np.random.default_rng(4)
    weights = np.ones_like(cdnow_weeks.x)
    for _ in range(5):
        params = np.exp(rng.uniform(-2.0, 2.0, 4))
        model = ModifiedBetaGeoModel.from_dict({"params": dict(zip(NAMES, params, strict=True))})
        ours = model.individual_log_likelihood(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
        theirs = -ModifiedBetaGeoFitter._negative_log_likelihood(
            np.log(params), cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T, weights, 0.0
        )
        assert np.sum(ours) == pytest.approx(theirs * weights.size, rel=1e-9)


def test_predictions_equal_lifetimes(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """Same parameters, same numbers: P(alive), conditional and unconditional expectations."""
    model = cdnow_fitted["mbgnbd"]
    assert_predictions_equal_lifetimes(
        model,
        lifetimes_fitter("mbgnbd", model.params_),
        cdnow_weeks,
        alive_rtol=1e-10,
    )


def test_one_time_buyers_can_be_dead(cdnow_fitted: dict[str, TransactionModel]) -> None:
    """Unlike the BG/NBD, the first purchase carries a dropout chance too."""
    model = cdnow_fitted["mbgnbd"]
    params = model.params_
    alive = np.asarray(model.conditional_probability_alive([0, 0], [0, 0], [1.0, 38.0]))
    np.testing.assert_allclose(
        alive, probability_alive(params, np.zeros(2), np.zeros(2), np.array([1.0, 38.0]))
    )
    assert 0 < alive[1] < alive[0] < 1  # and the longer the silence, the likelier dead


def test_probability_of_no_purchase_is_the_closed_form(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    model = cdnow_fitted["mbgnbd"]
    params = model.params_
    x, t_x, T = cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T
    alive = probability_alive(params, x, t_x, T)
    for t in HORIZONS:
        quiet = ((params["alpha"] + T) / (params["alpha"] + T + t)) ** (params["r"] + x)
        np.testing.assert_allclose(
            model.probability_of_no_purchase(t, x, t_x, T), 1 - alive + alive * quiet, rtol=1e-9
        )


def test_heavy_buyers_are_finite_where_lifetimes_gives_nan() -> None:
    params = {"r": 0.52, "alpha": 43.0, "a": 0.89, "b": 1.6}
    x = np.array([7018.0, 3378.0, 5720.0, 2889.0, 345.0])
    t_x = np.array([254.66, 398.43, 1698.41, 117.63, 300.0])
    T = np.array([275.59, 1340.42, 2623.13, 815.53, 310.0])
    fitter = lifetimes_fitter("mbgnbd", params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T)
        )
    assert np.isnan(theirs[:4]).all()
    model = ModifiedBetaGeoModel.from_dict({"params": params})
    ours = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T))
    assert ours[4] == pytest.approx(theirs[4], rel=1e-9)
    alive = probability_alive(params, x, t_x, T)
    for i in range(x.size):  # alive, the dropout probability is Beta(a, b + x + 1)
        while_alive = expected_purchases_while_alive_by_quadrature(
            365.0, params["r"] + x[i], params["alpha"] + T[i], params["a"], params["b"] + x[i] + 1
        )
        assert ours[i] == pytest.approx(alive[i] * while_alive, rel=1e-7, abs=1e-300)


def test_recovers_known_parameters() -> None:
    truth = {"r": 0.52, "alpha": 6.2, "a": 0.89, "b": 1.61}
    frame = simulate_beta_geometric(20_000, **truth, modified=True, max_T=78, seed=0)
    x, t_x, T = (frame[c].to_numpy() for c in ("frequency", "recency", "T"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ModifiedBetaGeoModel(time_unit="weeks").fit(x, t_x, T)
    for name, value in truth.items():
        assert model.params_[name] == pytest.approx(value, rel=0.1), name
    at_truth = model._log_likelihood_rows(np.array(list(truth.values())), x, t_x, T).sum()
    assert model.log_likelihood_ is not None
    assert 0 <= model.log_likelihood_ - at_truth < 11.7  # chi2(4) / 2, 1e-4 quantile
