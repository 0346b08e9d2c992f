"""Exact simulators of what the BTYD models see, for parameter recovery and direct checks.

They draw ``(x, t_x, T)`` in continuous time straight from each model's story, with no day
rounding, so a maximum-likelihood fit of the right model is consistent for their parameters.
(The package's own simulators, :func:`retain.data.synthetic.simulate` and
:func:`retain.models.btyd.simulation.simulate_pareto_nbd`, are day-level and tested separately.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from retain.models.btyd import (
    BetaGeoModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    TransactionModel,
)

CALIBRATION_END = "1997-09-30"
HOLDOUT_END = "1998-06-30"
TRANSACTION_MODELS: dict[str, type[TransactionModel]] = {
    "bgnbd": BetaGeoModel,
    "pareto": ParetoNBDModel,
    "mbgnbd": ModifiedBetaGeoModel,
}


@dataclass(frozen=True)
class RFM:
    """Float arrays of the calibration RFM, and the frame they come from."""

    frame: pd.DataFrame
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    m: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame) -> RFM:
        return cls(
            frame,
            *(frame[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T")),
            frame["monetary_value"].to_numpy(dtype=np.float64),
        )


def lifetimes_fitter(key: str, params: dict[str, float]) -> Any:
    """A lifetimes fitter of the same model, with ``params`` set (no fit)."""
    import lifetimes

    fitter = {
        "bgnbd": lifetimes.BetaGeoFitter,
        "pareto": lifetimes.ParetoNBDFitter,
        "mbgnbd": lifetimes.ModifiedBetaGeoFitter,
        "gamma-gamma": lifetimes.GammaGammaFitter,
    }[key]()
    names = list(params)
    values = list(params.values())
    if key == "gamma-gamma":
        names = ["p", "q", "v"]  # lifetimes calls gamma "v"
    fitter.params_ = pd.Series(values, index=names)
    return fitter


def simulate_beta_geometric(
    n: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    modified: bool = False,
    max_T: float = 52.0,
    seed: int = 0,
) -> pd.DataFrame:
    """BG/NBD (``modified=False``) or MBG/NBD customers: ``frequency``, ``recency``, ``T``.

    ``T`` is uniform on ``[max_T / 4, max_T]``. While alive a customer buys at rate
    ``lam ~ Gamma(r, alpha)``; after each repeat purchase (and, in the MBG/NBD, right after the
    first purchase too) they drop out with probability ``p ~ Beta(a, b)``. Given ``n_poisson``
    arrivals in ``[0, T]`` the k-th arrival time is ``T * Beta(k, n_poisson - k + 1)``.
    """
    rng = np.random.default_rng(seed)
    age = rng.uniform(max_T / 4.0, max_T, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    n_poisson = rng.poisson(lam * age)
    dies_at = rng.geometric(p)  # the repeat purchase after which the customer drops out
    x = np.minimum(dies_at, n_poisson)
    if modified:
        x = np.where(rng.random(n) < p, 0, x)  # dropped out at the first purchase
    last = age * rng.beta(np.maximum(x, 1), np.maximum(n_poisson - x, 0) + 1)
    recency = np.where(x > 0, last, 0.0)
    return pd.DataFrame({"frequency": x.astype(np.float64), "recency": recency, "T": age})


def simulate_spend(
    frequency: np.ndarray, *, p: float, q: float, gamma: float, seed: int = 0
) -> np.ndarray:
    """Gamma-Gamma mean spend of ``frequency`` repeat transactions (0 where there are none).

    ``nu ~ Gamma(q, rate gamma)``; the sum of ``x`` amounts of ``Gamma(p, rate nu)`` is
    ``Gamma(p x, rate nu)``.
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(frequency, dtype=np.float64)
    nu = rng.gamma(q, 1.0 / gamma, x.size)
    total = rng.gamma(np.maximum(p * x, 1e-300), 1.0 / nu)
    return np.where(x > 0, total / np.maximum(x, 1.0), 0.0)


def expected_purchases_while_alive_by_quadrature(
    t: float, R: float, A: float, a: float, B: float
) -> float:
    """E[purchases in the next ``t``] of a live BG/NBD-type customer, by direct integration.

    Given ``p``, averaging ``(1 - exp(-lam p t)) / p`` over ``lam ~ Gamma(R, A)`` gives
    ``(1 - (A / (A + p t)) ** R) / p``; that is integrated here against the Beta(a, B) density,
    no hypergeometric function. On ``[0, 1/2]`` the substitution ``p = u ** (1 / a)`` turns the
    density's ``p ** (a - 1) dp`` into ``du / a`` (smooth even for ``a < 1``), with breakpoints
    around the mass when ``B`` is in the thousands; on ``[1/2, 1]`` QUADPACK's algebraic weight
    takes ``(1 - p) ** (B - 1)`` (singular for ``B < 1``), and is skipped when it is below 1e-30.
    """

    def given_p(p: float) -> float:
        return R * t / A if p == 0.0 else float(-np.expm1(-R * np.log1p(p * t / A)) / p)

    log_norm = special.betaln(a, B)

    def low(u: float) -> float:
        p = u ** (1.0 / a)
        return given_p(p) * float(np.exp((B - 1.0) * np.log1p(-p) - log_norm)) / a

    top = 0.5**a
    centre = (a / (a + B)) ** a
    points = sorted({min(max(centre * k, 1e-12), top * (1 - 1e-9)) for k in (0.01, 0.1, 1, 10)})
    value = integrate.quad(low, 0.0, top, points=points, epsabs=0.0, epsrel=1e-11, limit=500)[0]
    if (B - 1.0) * np.log(0.5) > np.log(1e-30):

        def high(p: float) -> float:
            return given_p(p) * float(np.exp((a - 1.0) * np.log(p) - log_norm))

        value += integrate.quad(
            high, 0.5, 1.0, weight="alg", wvar=(0.0, B - 1.0), epsabs=0.0, epsrel=1e-11
        )[0]
    return float(value)


def bgnbd_probability_alive(
    params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """FHL's P(alive) in its textbook form (note 021): ``1 / (1 + [x > 0] a / (b + x - 1)
    ((alpha + T) / (alpha + t_x)) ** (r + x))``, for moderate inputs."""
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    odds = a / (b + np.maximum(x, 1) - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
    return np.where(x > 0, 1.0 / (1.0 + odds), 1.0)


def lifetimes_log_likelihood(key: str, fitter: Any, data: RFM) -> float:
    """lifetimes' reported maximum as a total log-likelihood in the data's time unit (ours).

    lifetimes fits in time rescaled so that the oldest customer has ``T = 1`` and reports
    ``_negative_log_likelihood_``: the mean per customer (the BG/NBD and MBG/NBD) or the total
    (the Pareto/NBD; weights of 1) in that time. Rescaling time by ``c`` multiplies each
    customer's likelihood, a density in the ``x`` purchase times, by ``c ** -x``, so the total in
    the data's unit is lifetimes' plus ``sum(x) * log(c)``.
    """
    reported = -float(fitter._negative_log_likelihood_)
    total = reported if key == "pareto" else reported * data.x.size
    return total + float(data.x.sum()) * float(np.log(1.0 / data.T.max()))


def pareto_posterior_mean(
    params: dict[str, float],
    x: float,
    T: float,
    f: Callable[[np.ndarray, np.ndarray], np.ndarray],
    nodes: int = 100,
) -> float:
    """E[f(lam, mu)] for a Pareto/NBD customer alive at ``T`` after ``x`` repeat purchases.

    Alive at ``T``, the posterior of the rates is independent: ``lam ~ Gamma(r + x, alpha + T)``,
    ``mu ~ Gamma(s, beta + T)``. The double integral is taken by generalized Gauss-Laguerre
    quadrature in each rate (exact for polynomials times the gamma densities), no special function
    of the model involved.
    """
    r, alpha, s, beta = (params[k] for k in ("r", "alpha", "s", "beta"))
    y_lam, w_lam = special.roots_genlaguerre(nodes, r + x - 1.0)
    y_mu, w_mu = special.roots_genlaguerre(nodes, s - 1.0)
    lam = y_lam[:, None] / (alpha + T)
    mu = y_mu[None, :] / (beta + T)
    total = w_lam @ f(lam, mu) @ w_mu
    return float(total * np.exp(-special.gammaln(r + x) - special.gammaln(s)))


HORIZONS = [0.5, 1.0, 10.0, 39.0, 104.0]


def assert_predictions_equal_lifetimes(
    model: Any,
    fitter: Any,
    data: RFM,
    *,
    alive_rtol: float,
    require_finite: bool = False,
) -> None:
    """Same parameters, same numbers: P(alive), and the conditional and unconditional expected
    purchases at every horizon of ``HORIZONS`` (``require_finite``: lifetimes must give numbers)."""
    x, t_x, T = data.x, data.t_x, data.T
    np.testing.assert_allclose(
        model.conditional_probability_alive(x, t_x, T),
        fitter.conditional_probability_alive(x, t_x, T),
        rtol=alive_rtol,
    )
    for t in HORIZONS:
        theirs = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)
        )
        if require_finite:
            assert np.isfinite(theirs).all()
        np.testing.assert_allclose(
            model.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T),
            theirs,
            rtol=1e-9,
        )
        assert model.expected_number_of_purchases_up_to_time(t) == pytest.approx(
            fitter.expected_number_of_purchases_up_to_time(t), rel=1e-9
        )
