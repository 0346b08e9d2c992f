"""What every BTYD model shares: input checks, compression, fitting, persistence.

Fitting
-------
Customers with the same ``(x, t_x, T)`` have the same likelihood, so the data are compressed to
the unique triples with their counts as weights before the optimiser sees them (Fader, Hardie &
Lee 2005 fit CDNOW this way). Day-level data has few distinct triples: a million customers shrink
to a few hundred thousand rows, and the per-``x`` parts of the likelihood to a few hundred.

The optimiser (L-BFGS-B) works on the logarithms of the parameters, so they stay positive without
constraints, and on time rescaled so that the oldest customer has ``T = 1``, as lifetimes does:
the time-scale parameters (``alpha``, ``beta``) are then of order one whatever the unit. The
objective is the mean negative log-likelihood per customer plus ``penalizer_coef`` times the sum
of squared parameters in that rescaled time, which is lifetimes' L2 penalty for the BG/NBD and
MBG/NBD; being unit-free, a penalty means the same in days and in weeks.

Log-likelihood
--------------
``log_likelihood_`` is the total log-likelihood of the data in the caller's time unit, the number
the literature reports (-9,582.4 for the BG/NBD on CDNOW in weeks). It depends on the unit: the
likelihood is a density in the purchase times, so the same customers in days have a total lower by
``sum(x) * log(7)``. lifetimes reports ``_negative_log_likelihood_``, a mean per customer in its
rescaled time (the Pareto/NBD a total divided by the mean weight), which matches neither.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize

from retain.errors import NotFittedError, RetainInputError

__all__ = [
    "UNIT_DAYS",
    "ConvergenceWarning",
    "ParametricModel",
    "RFMData",
    "TransactionModel",
    "check_penalizer",
    "check_rfm",
    "check_spend",
    "check_times",
    "convergence_noted",
    "convergence_warning",
    "factorize_rows",
    "like_input",
    "maximize_log_likelihood",
    "warn_not_converged",
]

# Up to this many (customer, time) pairs, log_probability_of_no_purchase makes one call.
_ONE_CALL_VALUES = 100_000

# Length of the time units the models know, in days (CLV and the tracking plot convert with it).
UNIT_DAYS: Final[dict[str, float]] = {"days": 1.0, "weeks": 7.0}

# Log-parameters are kept in [-_LOG_BOUND, _LOG_BOUND] (about 1e-11 to 1e11): a parameter that
# reaches the bound means the data cannot pin it down, and the fit says so.
_LOG_BOUND: Final = 25.0
# A fit whose largest gradient component (per customer, in log-parameters) is below this has
# converged even if the line search could not make further progress.
_GRADIENT_TOLERANCE: Final = 1e-6

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def _as_float_array(name: str, values: ArrayLike) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise RetainInputError(f"{name}: expected numbers ({error})") from None
    if array.ndim > 2:
        raise RetainInputError(f"{name}: expected a scalar or a 1-D array, got {array.ndim} dims")
    return array


def _count(name: str, bad: np.ndarray, total: int, problem: str) -> None:
    n_bad = int(np.count_nonzero(bad))
    if n_bad:
        raise RetainInputError(f"{name}: {n_bad:,} of {total:,} rows {problem}")


def _broadcast(named: dict[str, np.ndarray]) -> list[np.ndarray]:
    try:
        return list(np.broadcast_arrays(*named.values()))
    except ValueError:
        lengths = ", ".join(
            f"{name} {np.shape(v)[0] if np.ndim(v) else 1:,}" for name, v in named.items()
        )
        raise RetainInputError(
            f"{', '.join(named)} must have the same number of rows, got {lengths}"
        ) from None


def check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float arrays of ``(x, t_x, T)``, broadcast together.

    Raises :class:`RetainInputError` naming the argument and counting the bad rows: values that
    are not finite, negative, ``frequency`` that is not a whole number, ``recency`` greater than
    ``T``, and ``recency`` other than 0 where ``frequency`` is 0 (a customer without repeat
    purchases has no last repeat purchase: lifetimes' convention, which the likelihoods assume).
    """
    arrays = {
        "frequency": _as_float_array("frequency", frequency),
        "recency": _as_float_array("recency", recency),
        "T": _as_float_array("T", T),
    }
    x, t_x, age = _broadcast(arrays)
    total = x.size
    for name, values in zip(arrays, (x, t_x, age), strict=True):
        _count(name, ~np.isfinite(values), total, "are not finite numbers (NaN or infinite)")
        _count(name, values < 0, total, "are negative")
    _count("frequency", x != np.floor(x), total, "are not whole numbers")
    _count("recency", t_x > age, total, "are greater than T")
    _count("recency", (x == 0) & (t_x != 0), total, "have frequency 0 but a recency other than 0")
    return x, t_x, age


def check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(x, m)`` for the spend model, broadcast together.

    ``frequency`` as in :func:`check_rfm`; ``monetary_value`` finite, and positive for repeat
    customers (``frequency > 0``): the Gamma-Gamma model describes positive amounts. A repeat
    customer with a mean of 0 or less (refunds outweighing purchases) has to be left out or
    given a value by the caller; the model cannot guess it.
    """
    arrays = {
        "frequency": _as_float_array("frequency", frequency),
        "monetary_value": _as_float_array("monetary_value", monetary_value),
    }
    x, m = _broadcast(arrays)
    total = x.size
    for name, values in zip(arrays, (x, m), strict=True):
        _count(name, ~np.isfinite(values), total, "are not finite numbers (NaN or infinite)")
    _count("frequency", x < 0, total, "are negative")
    _count("frequency", x != np.floor(x), total, "are not whole numbers")
    repeat = x > 0
    n_bad = int(np.count_nonzero(repeat & (m <= 0)))
    if n_bad:
        raise RetainInputError(
            f"monetary_value: {n_bad:,} of {int(np.count_nonzero(repeat)):,} repeat customers "
            "(frequency > 0) have a monetary value <= 0; the Gamma-Gamma model needs positive "
            "spend: leave these customers out or give them a positive value"
        )
    return x, m


def check_times(name: str, values: ArrayLike) -> np.ndarray:
    """A finite, non-negative horizon (``t``) as a float array."""
    array = _as_float_array(name, values)
    total = array.size
    _count(name, ~np.isfinite(array), total, "are not finite numbers (NaN or infinite)")
    _count(name, array < 0, total, "are negative")
    return array


def like_input(values: np.ndarray, name: str, *inputs: object) -> np.ndarray | pd.Series:
    """``values`` as a Series on the index of the first Series among ``inputs`` of its length.

    Predictions keep customer ids when they are given Series (columns of a feature table), and are
    plain arrays otherwise.
    """
    for item in inputs:
        if isinstance(item, pd.Series) and values.ndim == 1 and len(item) == values.size:
            return pd.Series(values, index=item.index, name=name)
    return values


def factorize_rows(*columns: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Codes of the distinct rows of ``columns`` (exact float equality) and those rows' values.

    Each column is factorised alone and the integer codes combined pairwise: ten times faster
    than a group-by on float columns, and exact, unlike a combined float key.
    """
    codes, first = pd.factorize(columns[0])
    uniques = [np.asarray(first, dtype=np.float64)]
    rows = np.arange(uniques[0].size)  # for each distinct row so far: its index in each column
    index = [rows]
    for column in columns[1:]:
        column_codes, values = pd.factorize(column)
        combined, distinct = pd.factorize(codes.astype(np.int64) * values.size + column_codes)
        previous, current = np.divmod(np.asarray(distinct), values.size)
        index = [i[previous] for i in index] + [current]
        uniques.append(np.asarray(values, dtype=np.float64))
        codes = combined
    return codes, tuple(u[i] for u, i in zip(uniques, index, strict=True))


@dataclass(frozen=True)
class RFMData:
    """Unique ``(x, t_x, T)`` triples and how many customers (or how much weight) each has."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray
    weight: np.ndarray

    @classmethod
    def from_inputs(
        cls,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> RFMData:
        """Check the inputs (see :func:`check_rfm`) and compress them."""
        x, t_x, age = check_rfm(frequency, recency, T)
        if x.ndim != 1 or x.size == 0:
            raise RetainInputError(
                "frequency, recency and T must be 1-D arrays with at least one customer"
            )
        if weights is None:
            weight = np.ones(x.size)
        else:
            weight = _as_float_array("weights", weights)
            if weight.shape != x.shape:
                raise RetainInputError(
                    f"weights must have one value per customer: got {weight.size:,} for "
                    f"{x.size:,} customers"
                )
            _count("weights", ~np.isfinite(weight), x.size, "are not finite numbers")
            _count("weights", weight < 0, x.size, "are negative")
            if not weight.sum() > 0:
                raise RetainInputError("weights: all weights are 0, there is nothing to fit")
        if not age.max() > 0:
            raise RetainInputError(
                f"T: all {x.size:,} customers have T = 0; the models need customers observed for "
                "some time after their first purchase"
            )
        codes, (xs, recencies, ages) = factorize_rows(x, t_x, age)
        counts = np.bincount(codes, weights=weight)
        kept = counts > 0
        return cls(xs[kept], recencies[kept], ages[kept], counts[kept])

    @property
    def total_weight(self) -> float:
        return float(self.weight.sum())

    def rescaled(self, scale: float) -> RFMData:
        """The same customers with times multiplied by ``scale``."""
        return RFMData(self.x, self.t_x * scale, self.T * scale, self.weight)


class ParametricModel:
    """Parameters, persistence as a plain dict, and a readable repr.

    A fitted model holds only numbers and strings, so plain :mod:`pickle` saves it; ``to_dict``
    gives the same as JSON-able data, which is what should be stored (it survives code changes).
    """

    model_key: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]

    params_: dict[str, float]
    log_likelihood_: float | None
    n_customers_: int | None
    time_unit_: str | None

    def __repr__(self) -> str:
        name = type(self).__name__
        if not hasattr(self, "params_"):
            return f"{name}(not fitted)"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        unit = f"; time unit: {self.time_unit_}" if self.time_unit_ else ""
        return f"{name}({params}{unit})"

    def _require_fitted(self) -> tuple[float, ...]:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted: call fit() or from_dict() first"
            )
        return tuple(self.params_[name] for name in self.param_names)

    def to_dict(self) -> dict[str, Any]:
        """The fitted model as JSON-able data: model key, parameters, log-likelihood, time unit."""
        self._require_fitted()
        return {
            "model": self.model_key,
            "params": dict(self.params_),
            "log_likelihood": self.log_likelihood_,
            "n_customers": self.n_customers_,
            "time_unit": self.time_unit_,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """A model from :meth:`to_dict` output (only ``model`` and ``params`` are required)."""
        if not isinstance(data, Mapping) or "params" not in data:
            raise RetainInputError(f"{cls.__name__}.from_dict: expected a dict with 'params'")
        key = data.get("model", cls.model_key)
        if key != cls.model_key:
            raise RetainInputError(
                f"{cls.__name__}.from_dict: this is a {key!r} model, not {cls.model_key!r}"
            )
        params = data["params"]
        if not isinstance(params, Mapping) or set(params) != set(cls.param_names):
            given = sorted(map(str, params)) if isinstance(params, Mapping) else params
            raise RetainInputError(
                f"{cls.__name__}.from_dict: params must be {', '.join(cls.param_names)}; "
                f"got {given}"
            )
        values = {name: _number(params[name]) for name in cls.param_names}
        bad = [name for name, v in values.items() if not (math.isfinite(v) and v > 0)]
        if bad:
            raise RetainInputError(
                f"{cls.__name__}.from_dict: {', '.join(bad)} must be positive finite numbers"
            )
        ll = data.get("log_likelihood")
        n = data.get("n_customers")
        unit = data.get("time_unit")
        if ll is not None and math.isnan(_number(ll)):
            raise RetainInputError(f"{cls.__name__}.from_dict: log_likelihood must be a number")
        n_customers = None if n is None else _number(n)
        if n_customers is not None and not (
            math.isfinite(n_customers) and n_customers >= 0 and n_customers == int(n_customers)
        ):
            raise RetainInputError(
                f"{cls.__name__}.from_dict: n_customers must be a whole number >= 0, got {n!r}"
            )
        if unit is not None and not (isinstance(unit, str) and unit):
            raise RetainInputError(
                f"{cls.__name__}.from_dict: time_unit must be a non-empty string, got {unit!r}"
            )
        model = cls()
        model.params_ = values
        model.log_likelihood_ = None if ll is None else _number(ll)
        model.n_customers_ = None if n_customers is None else int(n_customers)
        model._restore_time_unit(unit)
        return model

    def _restore_time_unit(self, unit: str | None) -> None:
        self.time_unit_ = unit


def _number(value: Any) -> float:
    """``value`` as a float (as ``float()`` reads it), or NaN if it is not a number.

    ``bool`` counts as not a number: ``True`` in a saved model is a mistake, not 1.
    """
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def check_penalizer(penalizer_coef: float) -> None:
    if not (isinstance(penalizer_coef, int | float) and math.isfinite(penalizer_coef)):
        raise RetainInputError(f"penalizer_coef must be a finite number, got {penalizer_coef!r}")
    if penalizer_coef < 0:
        raise RetainInputError(f"penalizer_coef must be >= 0, got {penalizer_coef!r}")


def maximize_log_likelihood(
    objective: Objective,
    total_weight: float,
    n_params: int,
    penalizer_coef: float,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, bool, str, np.ndarray]:
    """Log-parameters that maximise the penalised log-likelihood; whether the fit converged, the
    optimiser's message, and which parameters run to an edge (:func:`runs_to_edge`).

    ``objective(params)`` returns the weighted total log-likelihood and its gradient with respect
    to the (natural, not log) parameters. The optimiser minimises the mean per customer, so its
    tolerances mean the same for a hundred customers or a million.
    """

    def negative(log_params: np.ndarray) -> tuple[float, np.ndarray]:
        params = np.exp(log_params)
        ll, grad = objective(params)
        value = -ll / total_weight + penalizer_coef * float(np.sum(params**2))
        gradient = (-grad / total_weight + 2.0 * penalizer_coef * params) * params
        if not np.isfinite(value):
            return np.inf, np.zeros(n_params)
        return value, gradient

    x0 = np.zeros(n_params) if start is None else start
    result = minimize(
        negative,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * n_params,
        options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-10, "maxcor": 20},
    )
    edges = runs_to_edge(negative, result.x)
    converged = bool(
        np.isfinite(result.fun)
        and not edges.any()
        and (result.success or np.max(np.abs(result.jac)) < _GRADIENT_TOLERANCE)
    )
    return result.x, converged, str(result.message), edges


def at_bound(log_params: np.ndarray) -> np.ndarray:
    """Which log-parameters the optimiser left at the edge of their range."""
    return np.abs(log_params) >= _LOG_BOUND - 1e-9


# How far (in log-parameters: a factor of e^5, about 150) a parameter is pushed outward to see
# whether the likelihood still rises or stays flat that way.
_EDGE_PROBE: Final = 5.0


def runs_to_edge(
    negative: Callable[[np.ndarray], tuple[float, np.ndarray]], log_params: np.ndarray
) -> np.ndarray:
    """Which log-parameters run to 0 or infinity: at the bound, or where pushing the parameter
    further out (by ``_EDGE_PROBE``) leaves the objective no worse.

    The optimiser alone does not say it: on a flat ridge L-BFGS-B stops wherever the relative
    change of the objective falls below its tolerance, and where that is depends on the
    processor's floating-point kernels (customers without a repeat purchase left a Pareto/NBD's
    ``r`` at the bound on one machine and at ``exp(-7)``, "converged", on another). A probe of
    the objective is the same everywhere: a parameter the data pin down makes the fit clearly
    worse when it is pushed 150-fold outward.
    """
    edges = at_bound(log_params)
    value = negative(log_params)[0]
    tolerance = 1e-10 * max(1.0, abs(value))
    for i, x in enumerate(log_params):
        if edges[i] or x == 0:
            continue
        probe = log_params.copy()
        probe[i] = np.clip(x + np.sign(x) * _EDGE_PROBE, -_LOG_BOUND, _LOG_BOUND)
        edges[i] = negative(probe)[0] <= value + tolerance
    return edges


class ConvergenceWarning(RuntimeWarning):
    """A maximum-likelihood fit stopped short of a proper optimum; its parameters are the best
    found. ``model`` and ``reason`` let a caller that fits many times summarise them."""

    def __init__(self, message: str, model: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.model, self.reason = model, reason


def convergence_warning(
    model: str,
    names: tuple[str, ...],
    log_params: np.ndarray,
    message: str,
    penalizer_coef: float,
    edges: np.ndarray | None = None,
) -> None:
    """Warn that ``model`` did not converge, naming the parameters that ran to an edge
    (``edges``, default: those at the bound).

    A parameter at an edge is one the data do not pin down (for a BG/NBD, ``a`` near 0 means
    hardly any customer drops out); the advice depends on whether a penalty is already in use.
    """
    flags = at_bound(log_params) if edges is None else edges
    ran = [
        f"{name} ran to {'infinity' if value > 0 else '0'}, the edge of its range"
        for name, value, edge in zip(names, log_params, flags, strict=True)
        if edge
    ]
    advice = (
        "A small penalizer_coef (e.g. 0.001) usually helps."
        if penalizer_coef == 0
        else f"penalizer_coef was {penalizer_coef:g}."
    )
    reason = "; ".join(ran) if ran else message
    message = f"{model} did not converge: {reason}; the parameters are the best found. {advice}"
    warnings.warn(ConvergenceWarning(message, model, reason), stacklevel=3)


@contextmanager
def convergence_noted(notes: dict[str, list[ConvergenceWarning]], fit: str) -> Iterator[None]:
    """Keep the convergence warnings of the fits inside in ``notes[fit]`` rather than showing
    each one, for a caller that fits many times and says it once; other warnings pass through."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    for warning in caught:
        if isinstance(warning.message, ConvergenceWarning):
            notes.setdefault(fit, []).append(warning.message)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


def warn_not_converged(
    notes: dict[str, list[ConvergenceWarning]], subject: str, consequence: str
) -> None:
    """One warning for the fits in ``notes`` (see :func:`convergence_noted`), none when every fit
    converged: ``subject``, then which models did not converge on which fits and why, then
    ``consequence``."""
    if not notes:
        return
    fits: dict[str, dict[str, None]] = {}
    reasons: dict[str, dict[str, None]] = {}
    for fit, found in notes.items():
        for warning in found:
            fits.setdefault(warning.model, {})[fit] = None
            reasons.setdefault(warning.model, {})[warning.reason] = None
    summary = "; ".join(
        f"{model} did not converge on the customers of {_listed(list(fits[model]))} "
        f"({'; '.join(reasons[model])})"
        for model in fits
    )
    warnings.warn(f"{subject}: {summary}; {consequence}", ConvergenceWarning, stacklevel=3)


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


class TransactionModel(ParametricModel, ABC):
    """A BTYD model of repeat purchases (BG/NBD, Pareto/NBD, MBG/NBD).

    Parameters
    ----------
    penalizer_coef:
        L2 penalty on the parameters (in time rescaled so that the oldest customer has T = 1),
        added to the mean negative log-likelihood per customer. 0 (the default) is plain
        maximum likelihood, which is what the literature reports.
    time_unit:
        The unit of ``recency``, ``T`` and every horizon ``t`` given to the model ("days" as the
        feature table has them, or "weeks" after :func:`retain.models.btyd.rfm_in_unit`). It is
        recorded with the parameters, which are meaningless without it.
    """

    # Parameters measured in units of time (scaled with the data while fitting).
    time_params: ClassVar[tuple[str, ...]]

    converged_: bool
    time_unit_: str

    def __init__(self, penalizer_coef: float = 0.0, time_unit: str = "days") -> None:
        self.penalizer_coef = penalizer_coef
        self.time_unit = time_unit

    def _restore_time_unit(self, unit: str | None) -> None:
        self.time_unit = unit or "days"
        self.time_unit_ = self.time_unit

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Maximum-likelihood fit on customers' ``(frequency, recency, T)``.

        ``frequency`` is the number of repeat purchases (repeat purchase days in a feature table),
        ``recency`` the time from the first to the last purchase, ``T`` the time from the first
        purchase to the end of the calibration period, both in ``time_unit``. ``weights``
        (optional) counts customers per row, as in lifetimes.
        """
        check_penalizer(self.penalizer_coef)
        if not isinstance(self.time_unit, str) or not self.time_unit:
            raise RetainInputError(f"time_unit must be a non-empty string, got {self.time_unit!r}")
        data = RFMData.from_inputs(frequency, recency, T, weights)
        scale = 1.0 / float(data.T.max())
        log_params, converged, message, edges = maximize_log_likelihood(
            self._objective(data.rescaled(scale)),
            data.total_weight,
            len(self.param_names),
            float(self.penalizer_coef),
        )
        params = np.exp(log_params)
        for i, name in enumerate(self.param_names):
            if name in self.time_params:
                params[i] /= scale
        self.params_ = {name: float(v) for name, v in zip(self.param_names, params, strict=True)}
        self.log_likelihood_ = float(
            np.dot(data.weight, self._log_likelihood_rows(params, data.x, data.t_x, data.T))
        )
        self.n_customers_ = round(data.total_weight)
        self.time_unit_ = self.time_unit
        self.converged_ = converged
        if not converged:
            convergence_warning(
                type(self).__name__,
                self.param_names,
                log_params,
                message,
                float(self.penalizer_coef),
                edges,
            )
        return self

    @abstractmethod
    def _objective(self, data: RFMData) -> Objective:
        """``params -> (weighted total log-likelihood, its gradient)`` on compressed data."""

    @staticmethod
    @abstractmethod
    def _log_likelihood_rows(
        params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
    ) -> np.ndarray:
        """The log-likelihood of each customer, at ``params`` in the data's time unit."""

    # -- predictions -----------------------------------------------------------------------------

    def individual_log_likelihood(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """Each customer's log-likelihood at the fitted parameters (sum: ``log_likelihood_``)."""
        params = np.array(self._require_fitted())
        x, t_x, age = check_rfm(frequency, recency, T)
        values = self._log_likelihood_rows(params, x, t_x, age)
        return like_input(values, "log_likelihood", frequency, recency, T)

    def probability_of_no_purchase(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """P(no purchase in ``(T, T + t]``) given the history ``(x, t_x, T)``.

        Observing no purchase in ``(T, T + t]`` after the history is exactly the history observed
        to ``T + t`` instead of ``T``, so the probability is a ratio of two likelihoods:

            P = L(x, t_x, T + t) / L(x, t_x, T).

        For the BG/NBD and MBG/NBD this is ``(1 - P(alive)) + P(alive) * ((alpha + T) /
        (alpha + T + t)) ** (r + x)``: a dead customer never buys again, and a live one's rate
        has the posterior Gamma(r + x, alpha + T). For the Pareto/NBD it also counts customers
        who die in ``(T, T + t]`` before buying. Computed as a difference of log-likelihoods.
        """
        params = np.array(self._require_fitted())
        horizon = check_times("t", t)
        x, t_x, age = check_rfm(frequency, recency, T)
        horizon, x, t_x, age = np.broadcast_arrays(horizon, x, t_x, age)
        later = self._log_likelihood_rows(params, x, t_x, age + horizon)
        now = self._log_likelihood_rows(params, x, t_x, age)
        values = np.clip(np.exp(later - now), 0.0, 1.0)
        return like_input(values, "p_no_purchase", frequency, recency, T, t)

    def log_probability_of_no_purchase(
        self, times: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray:
        """``log P(no purchase in (T, T + t])`` for every customer (rows) and each of ``times``
        (columns): :meth:`probability_of_no_purchase` on the log scale, with the likelihood at
        ``T`` computed once for all the times."""
        params = np.array(self._require_fitted())
        horizons = np.atleast_1d(check_times("t", times)).astype(np.float64)
        x, t_x, age = (np.asarray(v, dtype=np.float64) for v in check_rfm(frequency, recency, T))
        now = self._log_likelihood_rows(params, x, t_x, age)
        out = np.zeros((x.shape[0], horizons.shape[0]), dtype=np.float64)
        if x.shape[0] * horizons.shape[0] <= _ONE_CALL_VALUES:
            # A few customers (a request): all times in one call, customer-major.
            k = horizons.shape[0]
            later = self._log_likelihood_rows(
                params, np.repeat(x, k), np.repeat(t_x, k), (age[:, None] + horizons).ravel()
            ).reshape(-1, k)
            return np.where(horizons > 0, np.minimum(later - now[:, None], 0.0), 0.0)
        for j, t in enumerate(horizons):  # many: one time at a time keeps memory flat
            if t > 0:
                later = self._log_likelihood_rows(params, x, t_x, age + t)
                out[:, j] = np.minimum(later - now, 0.0)
        return out

    @abstractmethod
    def conditional_probability_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """P(alive at ``T``) given the history ``(x, t_x, T)``."""

    @abstractmethod
    def conditional_expected_number_of_purchases_up_to_time(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> np.ndarray | pd.Series:
        """Expected purchases in ``(T, T + t]`` given the history ``(x, t_x, T)``."""

    @abstractmethod
    def expected_number_of_purchases_up_to_time(self, t: ArrayLike) -> np.ndarray:
        """Expected repeat purchases in ``(0, t]`` of a new customer (no history)."""
