"""BG/NBD: the beta-geometric / negative binomial distribution model of repeat purchases.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy Way: An
Alternative to the Pareto/NBD Model", Marketing Science 24 (2), 275-284 (FHL below).

While alive, a customer buys at rate ``lambda ~ Gamma(r, alpha)``; after each repeat purchase they
drop out for good with probability ``p ~ Beta(a, b)``. The formulas live in
:mod:`retain.models.btyd._beta_geometric`, shared with the MBG/NBD.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from retain.models.btyd import _beta_geometric as bg
from retain.models.btyd._base import (
    Objective,
    RFMData,
    TransactionModel,
    check_rfm,
    check_times,
    like_input,
)

__all__ = ["BetaGeoModel"]

# Dropout chances at the first purchase: none in the BG/NBD.
_K = 0


class BetaGeoModel(TransactionModel):
    """BG/NBD model (FHL 2005); parameters ``r, alpha`` (purchase rate), ``a, b`` (dropout).

    Example
    -------
    >>> model = BetaGeoModel(time_unit="weeks").fit(frequency, recency_weeks, T_weeks)
    >>> model.conditional_expected_number_of_purchases_up_to_time(52, frequency, recency, T)
    """

    model_key: ClassVar[str] = "bgnbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    time_params: ClassVar[tuple[str, ...]] = ("alpha",)

    def _objective(self, data: RFMData) -> Objective:
        return bg.objective(data, _K)

    @staticmethod
    def _log_likelihood_rows(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        return bg.log_likelihood_rows(params, x, t_x, T, _K)

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """P(alive at T | x, t_x, T); 1 for customers without repeat purchases (they cannot
        have dropped out yet)."""
        params = np.array(self._require_fitted())
        x, t_x, age = check_rfm(frequency, recency, T)
        values = bg.probability_alive(params, x, t_x, age, _K)
        return like_input(values, "p_alive", frequency, recency, T)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL eq. 10), finite for all parameters.

        lifetimes returns NaN for ``x = 0`` when ``a + b < 1`` (its hypergeometric function gets
        a negative third argument); the form used here has none (see
        :func:`~retain.models.btyd._special.expected_purchases_while_alive`).
        """
        params = np.array(self._require_fitted())
        horizon = check_times("t", t)
        x, t_x, age = check_rfm(frequency, recency, T)
        values = bg.expected_purchases(params, horizon, x, t_x, age, _K)
        return like_input(values, "expected_purchases", frequency, recency, T, t)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> np.ndarray:
        """E[repeat purchases in (0, t]] for a customer just acquired (FHL eq. 9)."""
        params = np.array(self._require_fitted())
        return bg.unconditional_expected_purchases(params, check_times("t", t), _K)
