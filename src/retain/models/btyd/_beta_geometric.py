"""The beta-geometric dropout models: BG/NBD and MBG/NBD, written once.

Both models have purchases at rate ``lambda ~ Gamma(r, alpha)`` while alive and a dropout chance
``p ~ Beta(a, b)`` at purchases. They differ only in which purchases carry it:

- BG/NBD (Fader, Hardie & Lee 2005): the repeat purchases only, so a customer with ``x`` repeats
  has survived ``x - 1`` chances if dead after the last, ``x`` if still alive;
- MBG/NBD (Batislam, Denizel & Filiztekin 2007): the first purchase too, one chance more.

With ``k`` the number of dropout chances at the first purchase (0 or 1) every formula below is
the same for both: ``B(a, b + x + k)`` where the BG/NBD has ``B(a, b + x)``, ``a / (b + x + k - 1)``
where it has ``a / (b + x - 1)``, and the "died after the last purchase" term exists when
``x + k > 0``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln

from retain.models.btyd._base import Objective, RFMData
from retain.models.btyd._special import expected_purchases_while_alive

__all__ = [
    "expected_purchases",
    "log_likelihood_rows",
    "objective",
    "probability_alive",
    "unconditional_expected_purchases",
]


def _log_terms(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The two terms of the likelihood's bracket, in logs: alive at ``T``, dead after ``t_x``.

    FHL 2005's likelihood: ``L = B(a, b + x) / B(a, b) * Gamma(r + x) alpha^r / Gamma(r) *
    [(alpha + T)^-(r+x) + [x > 0] a / (b + x - 1) (alpha + t_x)^-(r+x)]`` (``k = 0``).
    """
    r, alpha, a, b = params
    alive = -(r + x) * np.log(alpha + T)
    can_die = (x + k) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        dead = np.where(
            can_die,
            np.log(a) - np.log(b + np.maximum(x + k, 1.0) - 1.0) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return alive, dead


def _log_constant(params: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    """``log[B(a, b + x + k) / B(a, b) * Gamma(r + x) alpha^r / Gamma(r)]``."""
    r, alpha, a, b = params
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + k)
        - gammaln(b)
        - gammaln(a + b + x + k)
    )


def log_likelihood_rows(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: int
) -> np.ndarray:
    """Each customer's log-likelihood (FHL 2005 for ``k = 0``; Batislam et al. 2007 for 1)."""
    alive, dead = _log_terms(params, x, t_x, T, k)
    return _log_constant(params, x, k) + np.logaddexp(alive, dead)


def objective(data: RFMData, k: int) -> Objective:
    """Weighted total log-likelihood and its analytic gradient, on compressed data.

    The parts that depend on ``x`` alone (gamma functions) are computed once per distinct ``x``.
    With ``P`` the share of the bracket due to "alive" (the probability of being alive) and
    ``Q = 1 - P``, the derivatives of the bracket's log are ``P`` and ``Q`` times those of its
    two terms; the rest is digamma functions.
    """
    xs, index = np.unique(data.x, return_inverse=True)
    weight_per_x = np.bincount(index, weights=data.weight)
    x, t_x, T, w = data.x, data.t_x, data.T, data.weight
    chances = np.maximum(x + k, 1.0) - 1.0  # dropout chances survived by a customer dead now

    def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
        r, alpha, a, b = params
        alive, dead = _log_terms(params, x, t_x, T, k)
        bracket = np.logaddexp(alive, dead)
        p_alive = np.exp(alive - bracket)
        p_dead = np.exp(dead - bracket)
        constant = _log_constant(params, xs, k)
        total = float(weight_per_x @ constant + w @ bracket)

        log_alive_age = np.log(alpha + T)
        log_dead_age = np.log(alpha + t_x)
        d_r = weight_per_x @ (digamma(r + xs) - digamma(r) + np.log(alpha)) - w @ (
            p_alive * log_alive_age + p_dead * log_dead_age
        )
        d_alpha = r / alpha * data.total_weight - w @ (
            (r + x) * (p_alive / (alpha + T) + p_dead / (alpha + t_x))
        )
        ab = digamma(a + b) - digamma(a + b + xs + k)
        d_a = weight_per_x @ ab + w @ p_dead / a
        d_b = weight_per_x @ (ab + digamma(b + xs + k) - digamma(b)) - w @ (p_dead / (b + chances))
        return total, np.array([d_r, d_alpha, d_a, d_b])

    return evaluate


def probability_alive(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: int
) -> np.ndarray:
    """P(alive at T): the "alive" share of the likelihood (Fader, Hardie & Lee 2008, note 021).

    ``1 / (1 + [x + k > 0] a / (b + x + k - 1) ((alpha + T) / (alpha + t_x)) ** (r + x))``, with
    the odds in logs and ``log((alpha + T) / (alpha + t_x))`` as ``log1p`` of the gap, so that
    thousands of purchases do not overflow.
    """
    r, alpha, a, b = params
    with np.errstate(divide="ignore"):
        log_odds_dead = (
            np.log(a)
            - np.log(b + np.maximum(x + k, 1.0) - 1.0)
            + (r + x) * np.log1p((T - t_x) / (alpha + t_x))
        )
    return np.where((x + k) > 0, expit(-log_odds_dead), 1.0)


def expected_purchases(
    params: np.ndarray, t: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, k: int
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] = P(alive) * E[purchases | alive] (FHL eq. 10).

    Alive at ``T``, the customer's rate has the posterior Gamma(r + x, alpha + T) and the dropout
    probability Beta(a, b + x + k) (``x + k`` chances survived); see
    :func:`~retain.models.btyd._special.expected_purchases_while_alive` for the stable form.
    """
    r, alpha, a, b = params
    alive = probability_alive(params, x, t_x, T, k)
    return alive * expected_purchases_while_alive(t, r + x, alpha + T, a, b + x + k)


def unconditional_expected_purchases(params: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """E[repeat purchases in (0, t]] of a new customer (FHL eq. 9 for ``k = 0``).

    With ``k = 1`` the customer may already have dropped out at the first purchase (probability
    ``E[p] = a / (a + b)``); if not, their ``p`` is Beta(a, b + 1).
    """
    r, alpha, a, b = params
    survived = b / (a + b) if k else 1.0
    return survived * expected_purchases_while_alive(t, r, alpha, a, b + k)
