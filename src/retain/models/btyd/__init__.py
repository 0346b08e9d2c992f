"""Probabilistic "buy till you die" models: BG/NBD, Pareto/NBD, MBG/NBD and Gamma-Gamma spend.

The models take the lifetimes-style RFM columns of the feature table (``frequency`` = repeat
purchase days, ``recency`` and ``T`` in days, ``monetary_value``), fit by maximum likelihood on the
customers compressed to their distinct histories, and predict per customer. They are saved as
their parameters (``to_dict`` / ``from_dict``), never as code.

    >>> from retain.models.btyd import BetaGeoModel, GammaGammaModel, rfm_in_unit
    >>> rfm = rfm_in_unit(features, "weeks")
    >>> bgnbd = BetaGeoModel(time_unit="weeks").fit(rfm["frequency"], rfm["recency"], rfm["T"])
    >>> bgnbd.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
"""

from __future__ import annotations

from typing import Any, Final, Literal

import pandas as pd

from retain.errors import RetainInputError
from retain.models.btyd._base import (
    UNIT_DAYS,
    ConvergenceWarning,
    ParametricModel,
    TransactionModel,
)
from retain.models.btyd.bgnbd import BetaGeoModel
from retain.models.btyd.gamma_gamma import GammaGammaModel
from retain.models.btyd.mbgnbd import ModifiedBetaGeoModel
from retain.models.btyd.pareto import ParetoNBDModel

__all__ = [
    "MODELS",
    "BetaGeoModel",
    "ConvergenceWarning",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "TransactionModel",
    "model_from_dict",
    "rfm_in_unit",
]

MODELS: Final[dict[str, type[ParametricModel]]] = {
    "bgnbd": BetaGeoModel,
    "pareto": ParetoNBDModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "gamma-gamma": GammaGammaModel,
}


def model_from_dict(data: dict[str, Any]) -> ParametricModel:
    """Any BTYD model from its :meth:`to_dict` output, by its ``model`` key."""
    key = data.get("model") if isinstance(data, dict) else None
    if key not in MODELS:
        raise RetainInputError(f"unknown BTYD model {key!r}; known: {', '.join(MODELS)}")
    return MODELS[key].from_dict(data)


def rfm_in_unit(features: pd.DataFrame, unit: Literal["days", "weeks"] = "days") -> pd.DataFrame:
    """A copy of a feature table with ``recency`` and ``T`` in ``unit`` (they come in days).

    The literature fits CDNOW in weeks (days / 7); ``frequency`` and ``monetary_value`` do not
    depend on the unit. Fit the model with the same ``time_unit``.
    """
    if unit not in UNIT_DAYS:
        raise RetainInputError(f"unit must be one of {', '.join(UNIT_DAYS)}, not {unit!r}")
    missing = [c for c in ("recency", "T") if c not in features.columns]
    if missing:
        raise RetainInputError(f"features: missing column(s) {', '.join(missing)}")
    converted = features.copy()
    for column in ("recency", "T"):
        converted[column] = converted[column] / UNIT_DAYS[unit]
    return converted
