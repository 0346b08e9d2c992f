"""Pareto/NBD: the CDNOW estimates, lifetimes' likelihood and predictions, direct integration
where lifetimes has no answer, and recovery of known parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln
from tests.models.btyd.helpers import (
    RFM,
    assert_predictions_equal_lifetimes,
    lifetimes_fitter,
    lifetimes_log_likelihood,
    pareto_posterior_mean,
)

from retain.models.btyd import ParetoNBDModel, TransactionModel
from retain.models.btyd.simulation import simulate_pareto_nbd

# Fader & Hardie's Pareto/NBD estimates on the CDNOW sample (note 008 and FHL 2005), weeks.
GOLD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
GOLD_LOG_LIKELIHOOD = -9595.0
NAMES = list(GOLD)
# Parameter points on both sides of alpha = beta (the likelihood's two branches) and far apart.
POINTS = [
    (0.553, 10.578, 0.606, 11.669),
    (0.553, 11.669, 0.606, 10.578),
    (0.2, 1.0, 2.5, 40.0),
    (3.0, 80.0, 0.3, 0.7),
    (1.0, 5.0, 1.0, 5.0),
    (0.05, 0.5, 0.05, 300.0),
]


def direct_log_likelihood(params: tuple[float, ...], x: float, t_x: float, T: float) -> float:
    """Note 009 eq. 18 with the dying term ``s * integral_{t_x}^{T} (alpha + y)^-(r+x)
    (beta + y)^-(s+1) dy`` taken by adaptive quadrature (factored by its value at ``t_x``)."""
    r, alpha, s, beta = params
    constant = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    if t_x >= T:
        return float(constant + alive)

    def relative(y: float) -> float:
        gap = y - t_x
        return float(
            np.exp(
                -(r + x) * np.log1p(gap / (alpha + t_x)) - (s + 1) * np.log1p(gap / (beta + t_x))
            )
        )

    width = min(T, t_x + 50.0 * (alpha + t_x) / (r + x))  # the integrand's bulk
    near, _ = integrate.quad(relative, t_x, width, epsabs=0.0, epsrel=1e-12, limit=200)
    far = 0.0
    if width < T:  # the tail, a power law: small but not negligible when r + x is small
        far = integrate.quad(relative, width, T, epsabs=1e-14 * near, epsrel=1e-12, limit=200)[0]
    at_t_x = -(r + x) * np.log(alpha + t_x) - (s + 1) * np.log(beta + t_x)
    dead = np.log(s) + at_t_x + np.log(near + far)
    return float(constant + np.logaddexp(alive, dead))


def test_cdnow_estimates_match_the_literature(cdnow_fitted: dict[str, TransactionModel]) -> None:
    model = cdnow_fitted["pareto"]
    assert model.converged_
    for name, value in GOLD.items():
        assert model.params_[name] == pytest.approx(value, abs=5e-4), name
    assert model.log_likelihood_ == pytest.approx(GOLD_LOG_LIKELIHOOD, abs=0.1)


def test_log_likelihood_equals_lifetimes_at_each_optimum(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """lifetimes' own fit (Nelder-Mead) stops with parameters 1e-4 from ours, at the same maximum."""
    from lifetimes import ParetoNBDFitter

    # lifetimes starts from a random draw around 1; its mean, for a deterministic test.
    theirs = ParetoNBDFitter().fit(
        cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T, initial_params=np.ones(4)
    )
    ours = cdnow_fitted["pareto"]
    their_ll = lifetimes_log_likelihood("pareto", theirs, cdnow_weeks)
    assert their_ll == pytest.approx(ours.log_likelihood_, rel=1e-6)
    assert ours.log_likelihood_ is not None and ours.log_likelihood_ >= their_ll - 1e-6
    for name in NAMES:
        assert theirs.params_[name] == pytest.approx(ours.params_[name], rel=1e-3), name


@pytest.mark.parametrize("point", POINTS)
def test_vectorised_likelihood_equals_lifetimes(point: tuple[float, ...], cdnow_weeks: RFM) -> None:
    """Our per-customer likelihood (and its total) is lifetimes' ``_negative_log_likelihood``."""
    from lifetimes import ParetoNBDFitter

    x, t_x, T = cdnow_weeks.x, cdnow_weeks.t_x, cdnow_weeks.T
    model = ParetoNBDModel.from_dict({"params": dict(zip(NAMES, point, strict=True))})
    ours = np.asarray(model.individual_log_likelihood(x, t_x, T))
    theirs = ParetoNBDFitter._conditional_log_likelihood(point, x, t_x, T)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)
    total = -ParetoNBDFitter._negative_log_likelihood(point, x, t_x, T, np.ones_like(x), 0.0)
    assert ours.sum() == pytest.approx(total, rel=1e-10)


def test_predictions_equal_lifetimes(
    cdnow_fitted: dict[str, TransactionModel], cdnow_weeks: RFM
) -> None:
    """Same parameters, same numbers: P(alive), conditional and unconditional expectations."""
    model = cdnow_fitted["pareto"]
    assert_predictions_equal_lifetimes(
        model,
        lifetimes_fitter("pareto", model.params_),
        cdnow_weeks,
        alive_rtol=1e-9,
    )


def test_heavy_buyers_where_lifetimes_gives_nan() -> None:
    """Thousands of purchases: lifetimes' hypergeometric function returns NaN, ours is checked
    against direct integration of the likelihood."""
    from lifetimes import ParetoNBDFitter

    point = (0.55, 1.0, 0.61, 300.0)
    x = np.array([5908.0, 7018.0, 1384.0, 8607.0, 10_000.0])
    t_x = np.array([156.58, 254.66, 311.28, 2029.79, 9000.0])
    T = np.array([4233.26, 275.59, 7535.13, 4534.98, 10_000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ParetoNBDFitter._conditional_log_likelihood(point, x, t_x, T)
    assert np.isnan(theirs[:4]).all()
    model = ParetoNBDModel.from_dict({"params": dict(zip(NAMES, point, strict=True))})
    ours = np.asarray(model.individual_log_likelihood(x, t_x, T))
    direct = [direct_log_likelihood(point, *row) for row in zip(x, t_x, T, strict=True)]
    np.testing.assert_allclose(ours, direct, rtol=1e-10)


@pytest.mark.parametrize("point", POINTS[:4])
def test_likelihood_equals_direct_integration(point: tuple[float, ...]) -> None:
    cases = [
        (0, 0, 30),
        (1, 5, 30),
        (10, 20, 39),
        (10, 39, 39),
        (500, 200, 300),
        (5000, 2000, 10_000),
    ]
    x, t_x, T = (np.array(column, dtype=np.float64) for column in zip(*cases, strict=True))
    model = ParetoNBDModel.from_dict({"params": dict(zip(NAMES, point, strict=True))})
    direct = [direct_log_likelihood(point, *case) for case in cases]
    np.testing.assert_allclose(model.individual_log_likelihood(x, t_x, T), direct, rtol=1e-10)


CUSTOMERS = [(0, 0.0, 30.0), (2, 10.0, 30.0), (5, 35.0, 38.0), (1, 1.0, 30.0), (29, 38.0, 38.5)]


@pytest.mark.parametrize("t", [1.0, 10.0, 52.0])
def test_conditional_predictions_equal_direct_integration(
    cdnow_fitted: dict[str, TransactionModel], t: float
) -> None:
    """Alive at T, a customer with rates (lam, mu) buys lam / mu (1 - exp(-mu t)) times in the
    next t, and not at all with probability mu / (lam + mu) + lam / (lam + mu) e^-(lam + mu) t."""
    model = cdnow_fitted["pareto"]
    params = model.params_
    x, t_x, T = (np.array(column) for column in zip(*CUSTOMERS, strict=True))
    alive = np.asarray(model.conditional_probability_alive(x, t_x, T))
    expected = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T))
    no_purchase = np.asarray(model.probability_of_no_purchase(t, x, t_x, T))
    for i, (xi, _, Ti) in enumerate(CUSTOMERS):
        buys = pareto_posterior_mean(params, xi, Ti, lambda lam, mu: lam / mu * -np.expm1(-mu * t))
        assert expected[i] == pytest.approx(alive[i] * buys, rel=1e-8)
        quiet = pareto_posterior_mean(
            params,
            xi,
            Ti,
            lambda lam, mu: (mu + lam * np.exp(-(lam + mu) * t)) / (lam + mu),
        )
        assert no_purchase[i] == pytest.approx(1 - alive[i] + alive[i] * quiet, rel=1e-9)


def test_s_equal_to_one_is_continuous() -> None:
    """The expectations divide by s - 1 in the textbook form; at s = 1 they are the limit."""
    models = [
        ParetoNBDModel.from_dict({"params": {"r": 0.5, "alpha": 10.0, "s": s, "beta": 12.0}})
        for s in (1.0 - 1e-7, 1.0, 1.0 + 1e-7)
    ]
    for t in (1.0, 52.0):
        values = [m.expected_number_of_purchases_up_to_time(t) for m in models]
        conditional = [
            m.conditional_expected_number_of_purchases_up_to_time(t, 3, 20.0, 30.0) for m in models
        ]
        assert np.all(np.isfinite(values)) and np.all(np.isfinite(conditional))
        assert values[1] == pytest.approx(values[0], rel=1e-6)
        assert values[1] == pytest.approx(values[2], rel=1e-6)
        assert conditional[1] == pytest.approx(conditional[0], rel=1e-6)
        # s = 1: r beta / alpha * log(1 + t / beta)
        assert values[1] == pytest.approx(0.5 * 12.0 / 10.0 * np.log1p(t / 12.0), rel=1e-12)


def test_recovers_known_parameters() -> None:
    truth = {"r": 0.55, "alpha": 75.0, "s": 0.6, "beta": 80.0}
    data = simulate_pareto_nbd(20_000, **truth, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ParetoNBDModel().fit(data["frequency"], data["recency"], data["T"])
    for name in ("r", "alpha", "s"):
        assert model.params_[name] == pytest.approx(truth[name], rel=0.1), name
    assert model.params_["beta"] == pytest.approx(truth["beta"], rel=0.2)  # the least determined
    # The survival of each customer is known: P(alive) is right on average.
    alive = np.asarray(
        model.conditional_probability_alive(data["frequency"], data["recency"], data["T"])
    )
    true_alive = np.exp(-data["mu"] * data["T"])  # E[alive | mu]: the death time is exponential
    assert alive.mean() == pytest.approx(true_alive.mean(), abs=0.01)
