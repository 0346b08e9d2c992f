"""Gamma-Gamma: the spend per transaction, and customer lifetime value.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis", Journal of Marketing Research 42 (4), 415-430; the expressions used are
those of Fader & Hardie, "The Gamma-Gamma Model of Monetary Value" (2013),
http://www.brucehardie.com/notes/025/ (note 025 below).

Each transaction of a customer is worth ``Gamma(p, nu)`` (shape ``p``, rate ``nu``) and ``nu`` varies
across customers as ``Gamma(q, gamma)``; spend is independent of the purchase process. The data
of a customer is ``x`` (repeat transactions) and ``m`` (their mean value). FHL (2005) fit CDNOW's
946 repeat customers on the mean of the *repeat* transactions (the first purchase excluded, as it
is in the feature table's ``monetary_value``), which reproduces their p, q, gamma = 6.25, 3.74,
15.44.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.special import digamma, gammaln

from retain.errors import RetainInputError
from retain.models.btyd._base import (
    UNIT_DAYS,
    ParametricModel,
    TransactionModel,
    _as_float_array,
    _count,
    check_penalizer,
    check_rfm,
    check_spend,
    convergence_warning,
    like_input,
    maximize_log_likelihood,
)

__all__ = ["GammaGammaModel"]

# lifetimes' month: 30 days (its "D" frequency).
_DAYS_PER_MONTH = 30.0


def _log_likelihood_rows(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Log-density of a repeat customer's mean spend ``m`` over ``x`` transactions (note 025, 1a).

    The sum of ``x`` amounts is Gamma(p x, nu), so ``m`` is Gamma(p x, x nu); integrating ``nu``
    over Gamma(q, gamma) gives the density below.
    """
    p, q, gamma = params
    px = p * x
    return (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * m)
    )


class GammaGammaModel(ParametricModel):
    """Gamma-Gamma spend model; parameters ``p``, ``q``, ``gamma``.

    Parameters
    ----------
    penalizer_coef:
        L2 penalty on ``(p, q, gamma)`` added to the mean negative log-likelihood per customer,
        with ``gamma`` measured in units of the mean spend (so the penalty does not depend on the
        currency; lifetimes penalises ``gamma`` in currency units).
    """

    model_key: ClassVar[str] = "gamma-gamma"
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")

    n_one_time_: int
    converged_: bool

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Maximum-likelihood fit on the repeat customers' mean spend.

        ``frequency`` is the number of repeat transactions and ``monetary_value`` their mean value
        (the feature table's columns). Customers with ``frequency = 0`` carry no information on
        repeat spend: they may be passed (a whole feature table) and are left out of the fit,
        their number kept in ``n_one_time_``. A repeat customer with a monetary value of 0 or
        less raises :class:`RetainInputError`.
        """
        check_penalizer(self.penalizer_coef)
        x, m = check_spend(frequency, monetary_value)
        if x.ndim != 1:
            raise RetainInputError("frequency and monetary_value must be 1-D arrays")
        weight = np.ones(x.size) if weights is None else _as_float_array("weights", weights)
        if weight.shape != x.shape:
            raise RetainInputError(
                f"weights must have one value per customer: got {weight.size:,} for "
                f"{x.size:,} customers"
            )
        _count("weights", ~np.isfinite(weight), x.size, "are not finite numbers")
        _count("weights", weight < 0, x.size, "are negative")
        repeat = (x > 0) & (weight > 0)
        if not repeat.any():
            raise RetainInputError(
                f"frequency: none of the {x.size:,} customers has a repeat purchase; the "
                "Gamma-Gamma model is fitted on repeat customers"
            )
        frame = pd.DataFrame({"x": x[repeat], "m": m[repeat], "w": weight[repeat]})
        unique = frame.groupby(["x", "m"], sort=False, as_index=False)["w"].sum()
        xs, ms, ws = (unique[c].to_numpy() for c in ("x", "m", "w"))
        total_weight = float(ws.sum())
        # Spend in units of its mean, so the optimiser starts near the answer in any currency.
        scale = float(ws @ ms) / total_weight
        log_params, converged, message, edges = maximize_log_likelihood(
            _objective(xs, ms / scale, ws),
            total_weight,
            3,
            float(self.penalizer_coef),
        )
        params = np.exp(log_params)
        params[2] *= scale
        self.params_ = {name: float(v) for name, v in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(ws @ _log_likelihood_rows(params, xs, ms))
        self.n_customers_ = round(total_weight)
        self.n_one_time_ = int(np.count_nonzero(x == 0))
        self.time_unit_ = None
        self.converged_ = converged
        if not converged:
            convergence_warning(
                "GammaGammaModel",
                self.param_names,
                log_params,
                message,
                float(self.penalizer_coef),
                edges,
            )
        return self

    def conditional_expected_average_profit(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> np.ndarray | pd.Series:
        """E[mean spend per transaction | x, m] (note 025, eq. 5), for any customer.

        ``p (gamma + x m) / (p x + q - 1)``: the posterior mean of ``p / nu``, a weighted average
        of the population mean ``p gamma / (q - 1)`` and the customer's own mean ``m``. One-time
        buyers (``x = 0``) get the population mean. Infinite where ``p x + q <= 1`` (the
        posterior mean does not exist; for ``x = 0`` that is ``q <= 1``).
        """
        p, q, gamma = self._require_fitted()
        x, m = check_spend(frequency, monetary_value)
        denominator = p * x + q - 1.0
        with np.errstate(divide="ignore"):
            values = np.where(
                denominator > 0, p * (gamma + x * np.where(x > 0, m, 0.0)) / denominator, np.inf
            )
        return like_input(values, "expected_spend", frequency, monetary_value)

    def customer_lifetime_value(
        self,
        transaction_model: TransactionModel,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        monetary_value: ArrayLike,
        time: int = 12,
        discount_rate: float = 0.01,
        freq_days: float | None = None,
    ) -> np.ndarray | pd.Series:
        """Discounted value of the next ``time`` months, as lifetimes computes it.

        ``sum over k = 1..time of spend * (N(k) - N(k - 1)) / (1 + discount_rate) ** k``, where
        ``N(k)`` is the transaction model's expected purchases in the first ``k`` months (a month
        is 30 days) and ``spend`` is :meth:`conditional_expected_average_profit`.
        ``discount_rate`` is per month. ``freq_days`` is the length of the transaction model's
        time unit in days; by default it comes from its ``time_unit_`` ("days" 1, "weeks" 7).
        (lifetimes' "W" uses 4.345 weeks per month, i.e. 30.4 days, not 30.)
        """
        transaction_model._require_fitted()
        if not (isinstance(time, int | np.integer) and time >= 1):
            raise RetainInputError(f"time must be a whole number of months >= 1, got {time!r}")
        if not (math.isfinite(discount_rate) and discount_rate > -1):
            raise RetainInputError(f"discount_rate must be > -1, got {discount_rate!r}")
        if freq_days is None:
            unit = transaction_model.time_unit_
            if unit not in UNIT_DAYS:
                raise RetainInputError(
                    f"the transaction model's time unit {unit!r} is not one of "
                    f"{', '.join(UNIT_DAYS)}: pass freq_days"
                )
            freq_days = UNIT_DAYS[unit]
        if not (math.isfinite(freq_days) and freq_days > 0):
            raise RetainInputError(f"freq_days must be a positive number, got {freq_days!r}")
        spend = np.asarray(self.conditional_expected_average_profit(frequency, monetary_value))
        x, t_x, age = check_rfm(frequency, recency, T)
        month = _DAYS_PER_MONTH / freq_days
        value = np.zeros(np.broadcast_shapes(spend.shape, x.shape))
        before = np.zeros_like(value)
        for k in range(1, int(time) + 1):
            upto = np.asarray(
                transaction_model.conditional_expected_number_of_purchases_up_to_time(
                    k * month, x, t_x, age
                )
            )
            value += (upto - before) / (1.0 + discount_rate) ** k
            before = upto
        values = spend * value
        return like_input(values, "clv", frequency, recency, T, monetary_value)


def _objective(
    x: np.ndarray, m: np.ndarray, weight: np.ndarray
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """Weighted total log-likelihood and its analytic gradient (digamma functions)."""
    log_x, log_m = np.log(x), np.log(m)

    def evaluate(params: np.ndarray) -> tuple[float, np.ndarray]:
        p, q, gamma = params
        px = p * x
        log_total = np.log(gamma + x * m)
        ll = _log_likelihood_rows(params, x, m)
        shared = digamma(px + q)
        d_p = weight @ (x * (shared - digamma(px) + log_m + log_x - log_total))
        d_q = weight @ (shared - digamma(q) + np.log(gamma) - log_total)
        d_gamma = weight @ (q / gamma - (px + q) / (gamma + x * m))
        return float(weight @ ll), np.array([d_p, d_q, d_gamma])

    return evaluate
