"""Loyalty tiers by predicted CLV: reward customers for what they are expected to be worth.

The cuts between tiers come from :class:`~retain.actions.settings.TierSettings`: quantiles of the
scored base's CLV (default Bronze below the median, Silver from the median, Gold from the 80th
percentile, Platinum for the top 5%) or, when ``amounts`` is set, fixed CLV amounts. A customer is
in the highest tier whose cut their CLV is above; for amount cuts, at or above ("from 100 in
predicted value, Gold").

Quantile cuts are of the table given: tier the whole base at once. Customers on a quantile cut stay
below it, so when many share one CLV (zero, say) they stay together in the lower tier rather than
fill a higher one, and a tier between two equal cuts is empty; :func:`tier_cuts` shows the amounts
used and the tier sizes, so a report can print them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retain.actions.settings import ActionSettings
from retain.errors import RetainInputError

__all__ = ["loyalty_tiers", "tier_cuts"]


def _clv(clv: pd.Series | np.ndarray) -> np.ndarray:
    values = pd.to_numeric(pd.Series(np.asarray(clv)), errors="coerce").to_numpy(dtype="float64")
    bad = int(np.isnan(values).sum())
    if bad:
        raise RetainInputError(
            f"scores: column clv has {bad} missing or non-numeric values in {len(values)} rows"
        )
    return values


def _cuts(values: np.ndarray, settings: ActionSettings) -> np.ndarray:
    tiers = settings.tiers
    if tiers.amounts is not None:
        return np.asarray(tiers.amounts, dtype="float64")
    if not values.size:  # nothing to take quantiles of: every cut unknown
        return np.full(len(tiers.quantiles), np.nan)
    return np.quantile(values, tiers.quantiles)


def _codes(values: np.ndarray, cuts: np.ndarray, settings: ActionSettings) -> np.ndarray:
    """The tier number of each value: how many cuts it is above (or at, for amounts)."""
    if settings.tiers.amounts is not None:
        return np.searchsorted(cuts, values, side="right").astype(np.int64)
    return np.searchsorted(cuts, values, side="left").astype(np.int64)


def tier_cuts(clv: pd.Series | np.ndarray, settings: ActionSettings | None = None) -> pd.DataFrame:
    """The tiers of a CLV column, lowest first: their CLV range from ``min_clv`` to ``max_clv``
    (the lowest tier from minus infinity, the highest to infinity; quantile ranges hold their upper
    end, amount ranges their lower end), the quantile each starts from (NaN for amount cuts and the
    lowest tier), and how many customers each holds."""
    settings = settings or ActionSettings()
    values = _clv(clv)
    cuts = _cuts(values, settings)
    starts = np.concatenate([[-np.inf], cuts])
    ends = np.concatenate([cuts, [np.inf]])
    quantiles = (
        [np.nan] * len(starts)
        if settings.tiers.amounts is not None
        else [np.nan, *settings.tiers.quantiles]
    )
    codes = _codes(values, cuts, settings)
    return pd.DataFrame(
        {
            "min_clv": starts,
            "max_clv": ends,
            "from_quantile": np.asarray(quantiles, dtype="float64"),
            "customers": np.bincount(codes, minlength=len(starts)).astype("int64"),
        },
        index=pd.Index(settings.tiers.names, name="loyalty_tier"),
    )


def loyalty_tiers(clv: pd.Series | np.ndarray, settings: ActionSettings | None = None) -> pd.Series:
    """The loyalty tier of each customer: an ordered categorical (lowest tier first) named
    ``loyalty_tier``, with the index of ``clv`` when it is a Series."""
    settings = settings or ActionSettings()
    values = _clv(clv)
    codes = _codes(values, _cuts(values, settings), settings)
    index = clv.index if isinstance(clv, pd.Series) else None
    return pd.Series(
        pd.Categorical.from_codes(codes, categories=pd.Index(settings.tiers.names), ordered=True),
        index=index,
        name="loyalty_tier",
    )
