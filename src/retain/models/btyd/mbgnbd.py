"""MBG/NBD: the modified BG/NBD, where the first purchase also carries a dropout chance.

Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and comparison of
models for customer base analysis", International Journal of Research in Marketing 24 (3),
201-209. lifetimes' ``ModifiedBetaGeoFitter`` implements the same formulas.

In the BG/NBD nobody drops out before their first repeat purchase, so every one-time buyer is
alive; here they drop out with probability ``p`` right after the first purchase as well, which
lets one-time buyers be dead. The formulas live in :mod:`retain.models.btyd._beta_geometric`.
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

__all__ = ["ModifiedBetaGeoModel"]

# Dropout chances at the first purchase: one in the MBG/NBD.
_K = 1


class ModifiedBetaGeoModel(TransactionModel):
    """MBG/NBD model; parameters ``r, alpha`` (purchase rate), ``a, b`` (dropout)."""

    model_key: ClassVar[str] = "mbgnbd"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    time_params: ClassVar[tuple[str, ...]] = ("alpha",)

    def _objective(self, data: RFMData) -> Objective:
        return bg.objective(data, _K)

    @staticmethod
    def _log_likelihood_rows(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """``B(a, b + x + 1) / B(a, b) Gamma(r + x) alpha^r / Gamma(r) [(alpha + T)^-(r+x)
        + a / (b + x) (alpha + t_x)^-(r+x)]``, in logs."""
        return bg.log_likelihood_rows(params, x, t_x, T, _K)

    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """P(alive at T | x, t_x, T) = 1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r+x))."""
        params = np.array(self._require_fitted())
        x, t_x, age = check_rfm(frequency, recency, T)
        values = bg.probability_alive(params, x, t_x, age, _K)
        return like_input(values, "p_alive", frequency, recency, T)

    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """E[purchases in (T, T + t] | x, t_x, T]: P(alive) times the BG/NBD expectation of a live
        customer with dropout probability Beta(a, b + x + 1)."""
        params = np.array(self._require_fitted())
        horizon = check_times("t", t)
        x, t_x, age = check_rfm(frequency, recency, T)
        values = bg.expected_purchases(params, horizon, x, t_x, age, _K)
        return like_input(values, "expected_purchases", frequency, recency, T, t)

    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> np.ndarray:
        """E[repeat purchases in (0, t]] for a customer just acquired: ``b / (a - 1) [1 -
        (alpha / (alpha + t))^r 2F1(r, b + 1; a + b; t / (alpha + t))]`` in stable form."""
        params = np.array(self._require_fitted())
        return bg.unconditional_expected_purchases(params, check_times("t", t), _K)
