"""Pareto/NBD: exponential lifetimes and Poisson purchases with gamma heterogeneity.

Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987), "Counting Your Customers: Who Are They
and What Will They Do Next?", Management Science 33 (1), 1-24; the expressions used are those of
Fader, P. S. and Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD Model and Related
Expressions", http://brucehardie.com/notes/009/ (note 009 below).

A customer buys at rate ``lambda ~ Gamma(r, alpha)`` until an unobserved death at an exponential
time of rate ``mu ~ Gamma(s, beta)``.

The likelihood (note 009, eq. 18) is

    L = Gamma(r + x) alpha^r beta^s / Gamma(r)
        * [(alpha + T)^-(r+x) (beta + T)^-s + s * (G_x(t_x) - G_x(T))],

    G_x(u) = integral from u to infinity of (alpha + y)^-(r+x) (beta + y)^-(s+1) dy,

where ``s (G_x(t_x) - G_x(T))`` is the chance of dying between the last purchase and ``T``
(note 009's ``s / (r + s + x) A_0``, eqs. 19-20). ``G_x(u)`` depends on ``x`` and one time only, so
fitting needs it once per distinct ``(x, t_x)`` and ``(x, T)`` pair, not per customer: a million
day-level customers have some twenty thousand such pairs, which makes the hypergeometric functions
nearly free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Final

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln, hyp2f1

from retain.models.btyd._base import (
    Objective,
    RFMData,
    TransactionModel,
    check_rfm,
    check_times,
    factorize_rows,
    like_input,
)
from retain.models.btyd._special import log_power_integral, one_minus_exp_over

__all__ = ["ParetoNBDModel"]

# Step, in log-parameters, of the central differences that give the derivatives of log G_x(u).
# Their error is about 1e-16 |log G| / h + h^2 / 6 |third derivative|, below 1e-9 relative.
_STEP: Final = 2e-5


def _log_tail_integral(params: np.ndarray, x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``log G_x(u)``, finite for any ``x`` and ``u``.

    With ``m = r + s + x`` and the larger of ``alpha, beta`` factored out, ``G`` is a Gauss
    hypergeometric function (note 009, eqs. 19-20, and lifetimes):

        G = (max + u)^-m / m * 2F1(m, c; m + 1; |alpha - beta| / (max + u)),

    ``c = s + 1`` if ``alpha >= beta``, else ``r + x``. That 2F1 grows like ``(1 - z)^-c`` and
    overflows for customers with thousands of purchases. Euler's transformation (DLMF 15.8.1)
    pulls the growth out as an explicit power, which goes into the logs:

        alpha >= beta: G = (alpha + u)^-(r+x)   (beta + u)^-s     / m * 2F1(1, r + x; m + 1; z)
        alpha <  beta: G = (alpha + u)^-(r+x-1) (beta + u)^-(s+1) / m * 2F1(1, s + 1; m + 1; z)

    and the remaining 2F1 lies between 1 and ``(1 - z)^-1``. scipy evaluates it to ~1e-10 or
    returns NaN (for ``m`` above about 50 and ``z`` near 1; lifetimes then returns NaN too); those
    elements are computed by quadrature instead (:func:`log_power_integral`, full precision).
    Measured against mpmath on 3,000 random cases with x up to 6,000: relative error below 1e-10.
    """
    r, alpha, s, beta = params
    x, u = np.broadcast_arrays(x, u)
    m = r + s + x
    with np.errstate(invalid="ignore", divide="ignore"):
        if alpha >= beta:
            z = (alpha - beta) / (alpha + u)
            powers = -(r + x) * np.log(alpha + u) - s * np.log(beta + u)
            series = hyp2f1(1.0, r + x, m + 1.0, z)
        else:
            z = (beta - alpha) / (beta + u)
            powers = -(r + x - 1.0) * np.log(alpha + u) - (s + 1.0) * np.log(beta + u)
            series = hyp2f1(1.0, s + 1.0, m + 1.0, z)
        log_tail = powers - np.log(m) + np.log(series)
    failed = ~(np.isfinite(series) & (series >= 1.0))
    if failed.any():
        log_tail = np.array(log_tail, dtype=np.float64, copy=True)
        log_tail[failed] = log_power_integral(
            r + x[failed], s + 1.0, alpha + u[failed], beta + u[failed]
        )
    return log_tail


def _log_alive_term(params: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``log[(alpha + T)^-(r+x) (beta + T)^-s]``: the bracket's "still alive at T" term."""
    r, alpha, s, beta = params
    return -(r + x) * np.log(alpha + T) - s * np.log(beta + T)


def _log_constant(params: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``log[Gamma(r + x) alpha^r beta^s / Gamma(r)]``."""
    r, alpha, s, beta = params
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)


@dataclass(frozen=True)
class _Bracket:
    """``log[e^A + s (G_x(t_x) - G_x(T))]`` and the shares of its parts.

    ``alive`` is ``e^A`` over the bracket (the probability of being alive at T), and
    ``at_recency``, ``at_age`` are ``s G_x(t_x)`` and ``s G_x(T)`` over it; the three shares give
    the derivatives of the log-bracket from those of ``A`` and ``log G`` without dividing by
    ``G_x(t_x) - G_x(T)``, which is 0 when ``t_x = T``.
    """

    log: np.ndarray
    alive: np.ndarray
    at_recency: np.ndarray
    at_age: np.ndarray


def _bracket(
    s: float, log_alive: np.ndarray, tail_recency: np.ndarray, tail_age: np.ndarray
) -> _Bracket:
    """The bracket from its logs, scaled by its largest term so that nothing overflows.

    ``G_x(t_x) - G_x(T)`` is a difference, but the sum stays accurate to a few ulps: where the
    two nearly cancel (``t_x`` close to ``T``) the alive term ``e^A`` dominates, because
    ``s G_x(T) <= e^A``.
    """
    top = np.maximum(log_alive, tail_recency)
    alive = np.exp(log_alive - top)
    recency = s * np.exp(tail_recency - top)
    age = s * np.exp(np.minimum(tail_age, tail_recency) - top)
    total = alive + (recency - age)
    return _Bracket(top + np.log(total), alive / total, recency / total, age / total)


def _log_likelihood_rows(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """Each customer's log-likelihood (note 009, eq. 18)."""
    bracket = _bracket(
        params[2],
        _log_alive_term(params, x, T),
        _log_tail_integral(params, x, t_x),
        _log_tail_integral(params, x, T),
    )
    return _log_constant(params, x) + bracket.log


class ParetoNBDModel(TransactionModel):
    """Pareto/NBD model; parameters ``r, alpha`` (purchase rate), ``s, beta`` (death rate)."""

    model_key: ClassVar[str] = "pareto"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    time_params: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    _log_likelihood_rows = staticmethod(_log_likelihood_rows)

    def _objective(self, data: RFMData) -> Objective:
        """Weighted total log-likelihood and gradient, on distinct ``x`` and ``(x, time)`` pairs.

        The gradient is analytic except for that of ``log G_x(u)`` in ``r`` and ``s`` (they sit
        inside the hypergeometric function), which is taken by central differences, per pair.
        Per customer, ``d log bracket = P dA + s G_x(t_x) / bracket * d log G_x(t_x)
        - s G_x(T) / bracket * d log G_x(T) + (share of the dead term) d log s``; the per-customer
        weights are summed onto the pairs (``bincount``) before the products with the
        derivatives.
        """
        xs, x_index = np.unique(data.x, return_inverse=True)
        weight_per_x = np.bincount(x_index, weights=data.weight)
        n = data.x.size
        codes, (pair_x, pair_u) = factorize_rows(
            np.concatenate([data.x, data.x]), np.concatenate([data.t_x, data.T])
        )
        at_recency, at_age = codes[:n], codes[n:]
        n_pairs = pair_x.size
        weight = data.weight

        def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
            r, alpha, s, beta = params
            log_tail = _log_tail_integral(params, pair_x, pair_u)
            d_log_tail = np.empty((n_pairs, 4))  # derivatives in log-parameters
            for i in range(4):
                step = np.exp(_STEP * np.eye(4)[i])
                d_log_tail[:, i] = (
                    _log_tail_integral(params * step, pair_x, pair_u)
                    - _log_tail_integral(params / step, pair_x, pair_u)
                ) / (2.0 * _STEP)
            log_alive = _log_alive_term(params, pair_x, pair_u)
            d_log_alive = np.column_stack(
                [
                    -r * np.log(alpha + pair_u),
                    -(r + pair_x) * alpha / (alpha + pair_u),
                    -s * np.log(beta + pair_u),
                    -s * beta / (beta + pair_u),
                ]
            )
            bracket = _bracket(s, log_alive[at_age], log_tail[at_recency], log_tail[at_age])
            total = float(weight_per_x @ _log_constant(params, xs) + weight @ bracket.log)

            d_constant = np.column_stack(
                [
                    r * (digamma(r + xs) - digamma(r) + np.log(alpha)),
                    np.full(xs.size, r),
                    np.full(xs.size, s * np.log(beta)),
                    np.full(xs.size, s),
                ]
            )
            on_alive = np.bincount(at_age, weight * bracket.alive, n_pairs)
            on_recency = np.bincount(at_recency, weight * bracket.at_recency, n_pairs)
            on_age = np.bincount(at_age, weight * bracket.at_age, n_pairs)
            gradient = (
                weight_per_x @ d_constant
                + on_alive @ d_log_alive
                + (on_recency - on_age) @ d_log_tail
            )
            gradient[2] += float(on_recency.sum() - on_age.sum())  # d log s / d log s = 1
            return total, gradient / params

        return evaluate

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """P(alive at T | x, t_x, T): the "alive" share of the likelihood (note 009, eq. 37)."""
        params = np.array(self._require_fitted())
        x, t_x, age = check_rfm(frequency, recency, T)
        values = self._probability_alive(params, x, t_x, age)
        return like_input(values, "p_alive", frequency, recency, T)

    @staticmethod
    def _probability_alive(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        bracket = _bracket(
            params[2],
            _log_alive_term(params, x, T),
            _log_tail_integral(params, x, t_x),
            _log_tail_integral(params, x, T),
        )
        return bracket.alive

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """E[purchases in (T, T + t] | x, t_x, T] (note 009, eq. 41):

            P(alive) * (r + x) (beta + T) / ((alpha + T) (s - 1))
                     * [1 - ((beta + T) / (beta + T + t))^(s-1)],

        with the last factor over ``s - 1`` computed by ``expm1`` (no 0/0 at ``s = 1``).
        """
        params = np.array(self._require_fitted())
        horizon = check_times("t", t)
        x, t_x, age = check_rfm(frequency, recency, T)
        r, alpha, s, beta = params
        alive = self._probability_alive(params, x, t_x, age)
        lifetime = (beta + age) * one_minus_exp_over(s - 1.0, np.log1p(horizon / (beta + age)))
        values = alive * (r + x) / (alpha + age) * lifetime
        return like_input(values, "expected_purchases", frequency, recency, T, t)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> np.ndarray:
        """E[repeat purchases in (0, t]] for a customer just acquired (note 009, eq. 27):
        ``r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s-1)]``."""
        r, alpha, s, beta = self._require_fitted()
        horizon = check_times("t", t)
        return r * beta / alpha * one_minus_exp_over(s - 1.0, np.log1p(horizon / beta))
