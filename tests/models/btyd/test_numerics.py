"""Numerical safety: a million customers with extreme histories give finite predictions, in range,
equal to lifetimes wherever lifetimes has an answer; the stable special functions equal direct
integration across their branches; the analytic gradients equal finite differences."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate
from tests.models.btyd.helpers import (
    RFM,
    TRANSACTION_MODELS,
    expected_purchases_while_alive_by_quadrature,
    lifetimes_fitter,
)

from retain.models.btyd import GammaGammaModel, TransactionModel
from retain.models.btyd._base import RFMData
from retain.models.btyd._special import (
    expected_purchases_while_alive,
    log1mexp,
    log_diff_exp,
    log_power_integral,
)
from retain.models.btyd.gamma_gamma import _objective as spend_objective

# Parameters in days: CDNOW's (alpha, beta x 7), and a BG/NBD with b < 1 and a + b < 1.
EXTREME_CASES = {
    "bgnbd": ("bgnbd", {"r": 0.24, "alpha": 30.9, "a": 0.79, "b": 2.43}),
    "bgnbd-small-b": ("bgnbd", {"r": 0.24, "alpha": 30.0, "a": 0.3, "b": 0.5}),
    "pareto": ("pareto", {"r": 0.55, "alpha": 74.0, "s": 0.61, "beta": 81.7}),
    "pareto-far-apart": ("pareto", {"r": 0.55, "alpha": 1.0, "s": 0.61, "beta": 300.0}),
    "mbgnbd": ("mbgnbd", {"r": 0.52, "alpha": 43.3, "a": 0.89, "b": 1.61}),
}
N_ROWS = 1_000_000


@pytest.fixture(scope="module")
def extreme_rfm() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A million random histories: frequency up to 10,000, T up to 10,000 days, every corner."""
    rng = np.random.default_rng(7)
    T = rng.uniform(0.0, 10_000.0, N_ROWS)
    x = np.floor(rng.random(N_ROWS) ** 3 * 10_001.0)
    t_x = np.where(x > 0, T * rng.random(N_ROWS), 0.0)
    corners = np.array(
        [
            (0, 0, 0),  # first purchase today
            (0, 0, 1e-9),
            (0, 0, 10_000),
            (1, 0, 10_000),  # one repeat on the first day, 27 years ago
            (10_000, 0, 10_000),
            (10_000, 10_000, 10_000),  # bought daily, still buying
            (10_000, 1e-6, 10_000),
            (10_000, 9_999.999, 10_000),
            (1, 1e-9, 1e-9),
        ]
    )
    x[: len(corners)], t_x[: len(corners)], T[: len(corners)] = corners.T
    return x, t_x, T


@pytest.mark.parametrize("case", list(EXTREME_CASES))
def test_a_million_extreme_histories(
    case: str, extreme_rfm: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    key, params = EXTREME_CASES[case]
    model = TRANSACTION_MODELS[key].from_dict({"params": params})
    x, t_x, T = extreme_rfm
    if case == "pareto-far-apart":  # quadrature on most rows: a tenth of them keeps it quick
        x, t_x, T = x[:100_000], t_x[:100_000], T[:100_000]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow, division or invalid-value warning either
        alive = np.asarray(model.conditional_probability_alive(x, t_x, T))
        expected = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T)
        )
        quiet = np.asarray(model.probability_of_no_purchase(365, x, t_x, T))
        log_likelihood = np.asarray(model.individual_log_likelihood(x, t_x, T))
    assert np.isfinite(alive).all() and ((alive >= 0) & (alive <= 1)).all()
    assert np.isfinite(quiet).all() and ((quiet >= 0) & (quiet <= 1)).all()
    assert np.isfinite(expected).all() and (expected >= 0).all()
    assert np.isfinite(log_likelihood).all()
    # Dropping out only lowers the count: at most the posterior mean rate of a live customer,
    # (r + x) / (alpha + T), times the horizon.
    assert (expected <= (params["r"] + x) / (params["alpha"] + T) * 365 * (1 + 1e-9)).all()
    # Bought daily for 27 years, last today: alive unless the last purchase was the last one
    # (BG/NBD), or dying before the next one (Pareto/NBD): quiet only if gone.
    assert alive[5] > 0.999
    assert 1 - alive[5] - 1e-12 <= quiet[5] < 1e-3


@pytest.mark.parametrize("case", list(EXTREME_CASES))
def test_extreme_histories_equal_lifetimes_where_it_is_finite(
    case: str, extreme_rfm: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> None:
    key, params = EXTREME_CASES[case]
    model = TRANSACTION_MODELS[key].from_dict({"params": params})
    fitter = lifetimes_fitter(key, params)
    x, t_x, T = (v[:100_000] for v in extreme_rfm)
    keep = T > 0  # lifetimes divides by T
    x, t_x, T = x[keep], t_x[keep], T[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        their_alive = np.asarray(fitter.conditional_probability_alive(x, t_x, T), dtype=float)
        their_expected = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T), dtype=float
        )
    for ours, theirs in (
        (model.conditional_probability_alive(x, t_x, T), their_alive),
        (model.conditional_expected_number_of_purchases_up_to_time(365, x, t_x, T), their_expected),
    ):
        finite = np.isfinite(theirs)
        assert finite.mean() > 0.5
        # Below 1e-290 lifetimes flushes to 0 where we keep subnormal digits.
        np.testing.assert_allclose(np.asarray(ours)[finite], theirs[finite], rtol=1e-6, atol=1e-290)


@pytest.mark.parametrize("case", ["bgnbd", "pareto", "mbgnbd"])
def test_predictions_move_the_right_way(case: str) -> None:
    key, params = EXTREME_CASES[case]
    model = TRANSACTION_MODELS[key].from_dict({"params": params})
    horizons = np.array([0.0, 1.0, 7.0, 30.0, 365.0, 3650.0, 1e6])
    for x, t_x, T in [(0, 0.0, 100.0), (3, 50.0, 100.0), (3, 99.0, 100.0)]:
        expected = model.conditional_expected_number_of_purchases_up_to_time(horizons, x, t_x, T)
        quiet = model.probability_of_no_purchase(horizons, x, t_x, T)
        assert expected[0] == 0 and quiet[0] == 1
        assert (np.diff(expected) > 0).all() and (np.diff(quiet) < 0).all()
    # 500 purchases in 90 days, then 10 silent days: almost surely gone (P(quiet) rounds to 1).
    expected = model.conditional_expected_number_of_purchases_up_to_time(horizons, 500, 90.0, 100.0)
    quiet = model.probability_of_no_purchase(horizons, 500, 90.0, 100.0)
    assert (np.diff(expected) >= 0).all() and (np.diff(quiet) <= 0).all()
    assert expected[-1] < 1e-5 and quiet[-1] > 1 - 1e-5
    # Longer silence since the last purchase: less likely alive.
    ages = np.array([100.0, 150.0, 300.0, 1000.0])
    assert (np.diff(model.conditional_probability_alive(5, 90.0, ages)) < 0).all()
    unconditional = model.expected_number_of_purchases_up_to_time(horizons)
    assert unconditional[0] == 0 and (np.diff(unconditional) > 0).all()


# Branches of expected_purchases_while_alive: (t, R, A, a, B)
BRANCHES = {
    "series (short horizon)": (1e-3, 0.5, 30.0, 0.8, 2.4),
    "closed form": (52.0, 2.5, 40.0, 0.8, 4.4),
    "a + B - 1 < 0 (x = 0, a + b < 1)": (365.0, 0.24, 30.0, 0.3, 0.5),
    "a + B - 1 = 0": (365.0, 0.24, 30.0, 0.4, 0.6),
    "a just below 1": (52.0, 1.5, 40.0, 1.0 - 4e-4, 3.0),
    "a = 1": (52.0, 1.5, 40.0, 1.0, 3.0),
    "a just above 1": (52.0, 1.5, 40.0, 1.0 + 4e-4, 3.0),
    "large a": (52.0, 1.5, 40.0, 15.0, 3.0),
    "thousands of purchases": (365.0, 6000.24, 330.0, 0.79, 6002.4),
    "a long horizon": (1e6, 3.24, 100.0, 0.79, 5.4),
    "a short history": (365.0, 50.0, 1e-3, 0.79, 50.0),
}


@pytest.mark.parametrize("branch", list(BRANCHES))
def test_expected_purchases_while_alive_equals_direct_integration(branch: str) -> None:
    t, R, A, a, B = BRANCHES[branch]
    ours = expected_purchases_while_alive(
        np.array([t]), np.array([R]), np.array([A]), a, np.array([B])
    )
    direct = expected_purchases_while_alive_by_quadrature(t, R, A, a, B)
    assert ours[0] == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize(
    ("p1", "p2", "a1", "a2"),
    [
        (0.6, 1.6, 10.0, 12.0),
        (5000.5, 1.6, 300.0, 301.0),
        (30.0, 40.0, 1.0, 1000.0),
        (0.3, 1.2, 1e-3, 50.0),
    ],
)
def test_log_power_integral_equals_direct_integration(
    p1: float, p2: float, a1: float, a2: float
) -> None:
    """log of the integral over w > 0 of (a1 + w)^-p1 (a2 + w)^-p2, in the variable xi = log w."""
    peak = float(
        np.asarray(
            log_power_integral(np.array([p1]), np.array([p2]), np.array([a1]), np.array([a2]))
        )[0]
    )

    def integrand(xi: float) -> float:
        return float(
            np.exp(
                xi - p1 * np.logaddexp(np.log(a1), xi) - p2 * np.logaddexp(np.log(a2), xi) - peak
            )
        )

    value, _ = integrate.quad(integrand, -60.0, 60.0, epsabs=0.0, epsrel=1e-12, limit=500)
    assert np.log(value) == pytest.approx(0.0, abs=1e-9)  # the integral is e^peak


def test_log_helpers_at_their_ends() -> None:
    d = np.array([0.0, -1e-20, -1e-5, -np.log(2), -1.0, -50.0, -800.0, 1e-17])
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        values = log1mexp(d)
    assert values[0] == -np.inf and values[-1] == -np.inf  # d >= 0: log 0
    assert values[1] == pytest.approx(np.log(1e-20))  # no cancellation near 0
    assert values[3] == pytest.approx(np.log(0.5))
    assert values[5] == pytest.approx(-np.exp(-50.0), rel=1e-12)
    assert values[6] == 0.0
    assert log_diff_exp(np.array([2.0]), np.array([2.0]))[0] == -np.inf
    assert log_diff_exp(np.array([2.0]), np.array([-np.inf]))[0] == 2.0
    assert log_diff_exp(np.array([3.0]), np.array([1.0]))[0] == pytest.approx(
        np.log(np.e**3 - np.e)
    )


def numerical_gradient(f, params: np.ndarray, step: float = 1e-6) -> np.ndarray:
    gradient = np.empty_like(params)
    for i in range(params.size):
        up, down = params.copy(), params.copy()
        up[i] *= 1 + step
        down[i] *= 1 - step
        gradient[i] = (f(up)[0] - f(down)[0]) / (2 * step * params[i])
    return gradient


@pytest.mark.parametrize("key", list(TRANSACTION_MODELS))
def test_transaction_gradients_equal_finite_differences(key: str, cdnow_weeks: RFM) -> None:
    """The optimiser trusts the analytic gradient: checked away from the optimum too, on both
    sides of alpha = beta for the Pareto/NBD."""
    model = TRANSACTION_MODELS[key]()
    data = RFMData.from_inputs(cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
    objective = model._objective(data)
    for params in ([0.24, 4.4, 0.79, 2.4], [1.3, 20.0, 0.3, 0.6], [0.5, 12.0, 2.0, 8.0]):
        point = np.array(params)
        analytic = objective(point)[1]
        np.testing.assert_allclose(
            analytic, numerical_gradient(objective, point), rtol=2e-5, atol=1e-3
        )


def test_spend_gradient_equals_finite_differences(cdnow_weeks: RFM) -> None:
    repeat = cdnow_weeks.x > 0
    objective = spend_objective(
        cdnow_weeks.x[repeat], cdnow_weeks.m[repeat], np.ones(int(repeat.sum()))
    )
    for params in ([6.25, 3.74, 15.44], [1.0, 10.0, 2.0]):
        point = np.array(params)
        np.testing.assert_allclose(
            objective(point)[1], numerical_gradient(objective, point), rtol=1e-5
        )


def test_spend_on_extreme_inputs() -> None:
    rng = np.random.default_rng(8)
    x = np.floor(rng.random(N_ROWS) ** 3 * 10_001.0)
    m = np.where(x > 0, np.exp(rng.uniform(-8.0, 12.0, N_ROWS)), 0.0)
    model = GammaGammaModel.from_dict({"params": {"p": 6.25, "q": 3.74, "gamma": 15.44}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spend = np.asarray(model.conditional_expected_average_profit(x, m))
    assert np.isfinite(spend).all() and (spend > 0).all()
    # The posterior mean p (gamma + x m) / (p x + q - 1), without cancellation or overflow.
    np.testing.assert_allclose(spend, 6.25 * (15.44 + x * m) / (6.25 * x + 3.74 - 1), rtol=1e-12)
    heavy = (x > 5_000) & (m > 100)  # heavy buyers' expected spend is their own mean
    np.testing.assert_allclose(spend[heavy], m[heavy], rtol=0.01)


def test_fitted_models_are_safe_on_their_own_data(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """Probabilities in [0, 1] and finite expectations on the data the model was fitted on, and
    their sums are the model's own log-likelihood."""
    for model in cdnow_fitted.values():
        args = (cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T)
        assert np.sum(model.individual_log_likelihood(*args)) == pytest.approx(
            model.log_likelihood_, rel=1e-12
        )
        alive = np.asarray(model.conditional_probability_alive(*args))
        assert ((alive > 0) & (alive <= 1)).all()
