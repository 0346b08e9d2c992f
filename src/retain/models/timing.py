"""Repurchase timing: P(next purchase within d days), and when it is expected.

A discrete-time hazard model. The horizon is cut into bins of ``bin_days`` days (the last one may
be shorter) and each example becomes one row per bin it was *at risk* in: the target is 1 in the
bin of its next purchase and 0 in the bins before it. An example without a purchase in the horizon
(censored) contributes a 0 for every bin and no 1: it is known to have survived the whole horizon
and nothing is known after it. A classifier on these rows estimates the hazard
``h_k(x) = P(buy in bin k | no purchase before bin k, x)``, and the survival curve is the product
``S_k = prod_{j <= k} (1 - h_j)``.

Why not a classifier per day count (buy within 30 days? within 60?): one model gives every day
count at once, curves that can never cross (P(within 60) >= P(within 30) by construction), and
uses the censored examples correctly instead of reading "no purchase yet" as "never".

The bin's start (``bin_start``, in days after the cutoff) is a feature, so LightGBM learns how the
hazard changes with time since the cutoff and how that depends on the customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
from scipy import special

from retain.errors import RetainInputError
from retain.models.lgbm import (
    MIN_EXAMPLES,
    _LGBMEstimator,
    check_cutoff,
    check_features,
    check_label,
    check_weights,
    contributions,
    holdout_mask,
    predict_booster,
)
from retain.models.trees import FAST_ROWS, checked_trees, predict_over_bins, warmed_over_bins

__all__ = [
    "BIN_FEATURE",
    "TimingModel",
    "bin_edges",
    "cdf_from_hazards",
    "days_from_hazards",
    "log_survival",
]

BIN_FEATURE: Final = "bin_start"

# A hazard of exactly 1 would make log(1 - h) infinite; LightGBM never gets there in practice.
# Baseline hazards are kept inside [_MIN_HAZARD, _MAX_HAZARD] so that their log-odds are finite.
_MAX_HAZARD: Final = 1.0 - 1e-12
_MIN_HAZARD: Final = 1e-12

# Rows (customers x bins) per booster call when predicting hazards: about 0.5 GB of features.
_PREDICT_ROWS: Final = 1_000_000


def bin_edges(horizon_days: int, bin_days: int) -> np.ndarray:
    """Bin edges ``[0, b, 2b, ..., horizon]`` in days (the last bin shorter when b does not divide)."""
    for name, value in (("horizon_days", horizon_days), ("bin_days", bin_days)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            raise RetainInputError(f"{name} must be a positive whole number of days, not {value!r}")
    if bin_days > horizon_days:
        raise RetainInputError(
            f"bin_days ({bin_days}) must not exceed horizon_days ({horizon_days})"
        )
    return np.append(np.arange(0, horizon_days, bin_days), horizon_days).astype(np.float64)


def log_survival(hazards: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per bin, log of the daily survival ``log(1 - h_k) / length_k`` (constant daily hazard
    within a bin), and log S at every bin edge, shapes ``(n, n_bins)`` and ``(n, n_bins + 1)``;
    ``hazards`` are P(purchase in bin k | none before it) for the bins between ``edges``."""
    lengths = np.diff(edges)
    daily = np.log1p(-hazards) / lengths
    at_edges = np.zeros((hazards.shape[0], lengths.size + 1))
    at_edges[:, 1:] = np.cumsum(daily * lengths, axis=1)
    return daily, at_edges


def cdf_from_hazards(
    hazards: np.ndarray, edges: np.ndarray, days: float | Sequence[float]
) -> np.ndarray:
    """P(next purchase within ``days``) from bin hazards (see :meth:`TimingModel.predict_cdf`)."""
    scalar = np.ndim(days) == 0
    wanted = np.atleast_1d(np.asarray(days, dtype=np.float64))
    if wanted.ndim != 1 or not np.isfinite(wanted).all() or (wanted < 0).any():
        raise RetainInputError(f"days must be non-negative day counts, not {days!r}")
    daily, at_edges = log_survival(hazards, edges)
    n_bins = edges.size - 1
    k = np.clip(np.searchsorted(edges[1:], wanted, side="left"), 0, n_bins - 1)
    log_s = at_edges[:, k] + daily[:, k] * (wanted - edges[k])
    cdf = np.clip(-np.expm1(log_s), 0.0, 1.0)
    return cdf[:, 0] if scalar else cdf


def days_from_hazards(hazards: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The median day of the next purchase from bin hazards, NaN past the horizon (see
    :meth:`TimingModel.predict_days`)."""
    daily, at_edges = log_survival(hazards, edges)
    n_bins = edges.size - 1
    half = np.log(0.5)
    # First bin whose end is at or past the median; n_bins when it lies beyond the horizon.
    k = (at_edges[:, 1:] > half).sum(axis=1)
    inside = k < n_bins
    k = np.minimum(k, n_bins - 1)
    rows = np.arange(k.size)
    # Inside, log S falls from above log(1/2) at the bin's start to at most log(1/2) at its
    # end, so the slope is negative there; elsewhere the quotient is discarded.
    slope = daily[rows, k]
    with np.errstate(divide="ignore", invalid="ignore"):
        day = edges[k] + (half - at_edges[rows, k]) / slope
    return np.where(inside, np.minimum(day, edges[k + 1]), np.nan)


class TimingModel(_LGBMEstimator):
    """Discrete-time hazard model of the days from the cutoff to the next purchase.

    Parameters
    ----------
    horizon_days:
        The label horizon: ``days_to_next_purchase`` is censored there.
    bin_days:
        Width of a time bin. Each example is expanded into up to ``ceil(horizon / bin_days)``
        rows, so wider bins use less memory; within a bin the daily hazard is taken as constant.
    max_rows:
        Most expanded rows to train on. Above it, rows with target 0 (the bulk of them) are
        subsampled at a common rate ``r`` and the kept ones get weight ``1 / r``, so the weighted
        likelihood, and therefore the fitted hazards, stay unbiased. Every row with a purchase is
        kept. The default (5 million rows of about 60 features) needs some 2.5 GB in float64,
        half in float32.
    Other parameters as :class:`~retain.models.churn.ChurnModel`.

    Fitted attributes: ``booster_`` (features + ``bin_start`` -> hazard), ``bin_edges_``
    (``[0, bin_days, ..., horizon_days]``), ``n_bins_``, ``n_rows_`` (expanded rows trained on),
    ``subsample_rate_`` (1.0 without subsampling), ``feature_names_``, ``n_features_in_``,
    ``best_iteration_`` and ``validation_``.
    """

    _objective: ClassVar[str] = "binary"
    _label: ClassVar[str] = "days_to_next_purchase"

    bin_edges_: np.ndarray
    n_bins_: int
    n_rows_: int
    subsample_rate_: float

    def __init__(
        self,
        horizon_days: int,
        bin_days: int = 7,
        *,
        max_rows: int = 5_000_000,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        early_stopping_rounds: int | None = 50,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.horizon_days = horizon_days
        self.bin_days = bin_days
        self.max_rows = max_rows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.early_stopping_rounds = early_stopping_rounds
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- training ---------------------------------------------------------------------------------

    def fit(
        self,
        X: pd.DataFrame,
        days_to_next_purchase: pd.Series | np.ndarray,
        purchased: pd.Series | np.ndarray,
        *,
        cutoff: pd.Series | None = None,
        sample_weight: pd.Series | np.ndarray | None = None,
        base_hazard: np.ndarray | None = None,
    ) -> TimingModel:
        """Fit on features ``X``, the days to the next purchase and whether it happened.

        ``purchased`` False means censored: ``days_to_next_purchase`` is then how long the example
        was observed without a purchase (the horizon, in the feature table); only the bins it was
        observed through entirely count. A purchase after the horizon counts as censored at the
        horizon. ``cutoff`` lets the most recent cutoff be held out for early stopping.

        ``base_hazard``, shape ``(n, n_bins)`` (see :func:`bin_edges`), is a baseline model's
        hazard per bin, e.g. BG/NBD's: boosting starts from its log-odds and learns a correction
        to it, which carries what the baseline knows (how a customer's chances fall with time
        away) into cutoffs and seasons the trees never saw. The same baseline must then be given
        to every ``predict_*`` call.
        """
        edges = self._edges()
        frame = check_features(X, min_rows=MIN_EXAMPLES)
        if BIN_FEATURE in frame.columns:
            raise RetainInputError(f"X must not have a column named {BIN_FEATURE!r}: it is added")
        n = len(frame)
        days = check_label(days_to_next_purchase, n, "days_to_next_purchase")
        bought = check_label(purchased, n, "purchased")
        stamps = check_cutoff(cutoff, n)
        weights = check_weights(sample_weight, n)
        not_bool = int(((bought != 0) & (bought != 1)).sum())
        if not_bool:
            raise RetainInputError(f"purchased has {not_bool} values other than 0/1 in {n} rows")
        negative = int((days < 0).sum())
        if negative:
            raise RetainInputError(
                f"days_to_next_purchase has {negative} negative values in {n} rows"
            )
        event = (bought == 1) & (days <= self.horizon_days)
        if not event.any() or event.all():
            raise RetainInputError(
                f"purchased needs both outcomes within {self.horizon_days} days: "
                f"{int(event.sum())} of {n} rows bought"
            )

        self._set_features(frame)
        base = self._check_base(base_hazard, n)
        self.offset_ = base is not None
        valid, split = holdout_mask(stamps, n, random_state=self.random_state)
        example, bin_index, target, row_weight = self._expand(days, event, weights, edges)
        values = frame.to_numpy()
        # float32 in, float32 out (see RetentionModel's training_float32): the expanded matrix is
        # the largest object of a fit.
        data = np.empty((example.size, self.n_features_in_ + 1), dtype=values.dtype)
        for k in range(self.n_bins_):  # bin by bin: no second full-size copy of the rows
            rows = np.flatnonzero(bin_index == k)
            if rows.size:
                data[rows[0] : rows[-1] + 1, :-1] = values[example[rows]]
                data[rows[0] : rows[-1] + 1, -1] = edges[k]
        del values
        self.n_rows_ = int(example.size)
        self._train(
            data,
            target,
            valid=valid[example],
            split=split,
            weights=row_weight,
            feature_names=[*self.feature_names_, BIN_FEATURE],
            init_score=None if base is None else special.logit(base[example, bin_index]),
        )
        return self

    def _check_base(self, base_hazard: np.ndarray | None, n: int) -> np.ndarray | None:
        """The baseline hazards as floats in (0, 1), or None; shape ``(n, n_bins_)`` enforced."""
        if base_hazard is None:
            return None
        base = np.asarray(base_hazard, dtype=np.float64)
        if base.shape != (n, self.n_bins_):
            raise RetainInputError(
                f"base_hazard must have shape ({n}, {self.n_bins_}) (rows x bins), not {base.shape}"
            )
        bad = int((~np.isfinite(base)).any(axis=1).sum())
        if bad:
            raise RetainInputError(f"base_hazard has {bad} rows with NaN or infinite values")
        return np.clip(base, _MIN_HAZARD, _MAX_HAZARD)

    def _edges(self) -> np.ndarray:
        """Bin edges ``[0, b, 2b, ..., horizon]`` (the last bin shorter when b does not divide)."""
        if self.max_rows < 1:
            raise RetainInputError(f"max_rows must be positive, not {self.max_rows}")
        edges = bin_edges(self.horizon_days, self.bin_days)
        self.bin_edges_ = edges
        self.n_bins_ = edges.size - 1
        return edges

    def _expand(
        self, days: np.ndarray, event: np.ndarray, weights: np.ndarray | None, edges: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The person-period rows: (example, bin, target, weight), ordered bin by bin.

        Bin k covers days ``(edges[k], edges[k + 1]]`` after the cutoff (day 1 is the first day
        after it). An example that bought on day d is at risk in bins 0..k(d), with target 1 in
        k(d); a censored one is at risk in every bin it was observed through to the end.
        """
        n_bins = edges.size - 1
        event_bin = np.clip(np.searchsorted(edges[1:], days, side="left"), 0, n_bins - 1)
        observed_bins = np.searchsorted(edges[1:], days, side="right")  # bins fully survived
        n_rows = np.where(event, event_bin + 1, observed_bins)
        total, n_events = int(n_rows.sum()), int(event.sum())
        rate = 1.0
        if total > self.max_rows:
            if self.max_rows <= n_events:
                raise RetainInputError(
                    f"max_rows ({self.max_rows:,}) must exceed the {n_events:,} purchase rows, "
                    "which are always kept"
                )
            rate = (self.max_rows - n_events) / (total - n_events)
        self.subsample_rate_ = rate
        rng = np.random.default_rng(self.random_state)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for k in range(n_bins):
            at_risk = np.flatnonzero(n_rows > k)
            target = event[at_risk] & (event_bin[at_risk] == k)
            row_weight = np.ones(at_risk.size)
            if rate < 1.0:
                keep = target | (rng.random(at_risk.size) < rate)
                row_weight = np.where(target, 1.0, 1.0 / rate)[keep]
                at_risk, target = at_risk[keep], target[keep]
            parts.append((at_risk, target, row_weight))
        example = np.concatenate([p[0] for p in parts])
        bin_index = np.repeat(np.arange(n_bins), [p[0].size for p in parts])
        target = np.concatenate([p[1] for p in parts]).astype(np.float64)
        row_weight = np.concatenate([p[2] for p in parts])
        if weights is not None:
            row_weight = row_weight * weights[example]
        elif rate == 1.0:
            return example, bin_index, target, None
        return example, bin_index, target, row_weight

    # -- prediction -------------------------------------------------------------------------------

    def predict_hazard(self, X: pd.DataFrame, base_hazard: np.ndarray | None = None) -> np.ndarray:
        """P(purchase in bin k | none before it), shape ``(n, n_bins_)``.

        Customers are predicted in chunks, each as one ``(chunk x n_bins) x (features + 1)``
        matrix in one booster call: one call per chunk rather than per bin keeps scoring one
        customer fast, and the chunks keep memory flat on millions. ``base_hazard`` is the
        baseline the model was fitted on, if it was (see :meth:`fit`).
        """
        values = self._matrix(X).to_numpy()
        n = values.shape[0]
        base = self._check_base(base_hazard, n)
        if (base is not None) != self.offset_:
            raise RetainInputError(
                "base_hazard must be given exactly when the model was fitted with one "
                f"(fitted {'with' if self.offset_ else 'without'})"
            )
        starts = self.bin_edges_[:-1]
        # On many rows: one walk per tree and customer for all bins at once (see trees.py).
        trees = (
            checked_trees(self.booster_, starts)
            if n >= FAST_ROWS
            else warmed_over_bins(self.booster_, starts)
        )
        if trees is not None:
            raw = predict_over_bins(trees, values, starts)
            if base is None:
                return np.clip(special.expit(raw), 0.0, _MAX_HAZARD)
            return np.clip(special.expit(raw + special.logit(base)), 0.0, _MAX_HAZARD)
        hazards = np.empty((n, self.n_bins_), dtype=np.float64)
        chunk = max(1, _PREDICT_ROWS // self.n_bins_)
        for first in range(0, n, chunk):
            rows = values[first : first + chunk]
            data = np.empty((rows.shape[0] * self.n_bins_, rows.shape[1] + 1), dtype=np.float64)
            data[:, :-1] = np.repeat(rows, self.n_bins_, axis=0)  # customer-major: bins inner
            data[:, -1] = np.tile(starts, rows.shape[0])
            if base is None:
                block = predict_booster(self.booster_, data)
            else:
                raw = predict_booster(self.booster_, data, raw_score=True)
                block = special.expit(raw + special.logit(base[first : first + chunk].ravel()))
            hazards[first : first + chunk] = block.reshape(rows.shape[0], self.n_bins_)
        return np.clip(hazards, 0.0, _MAX_HAZARD)

    def _daily_log_survival(
        self, X: pd.DataFrame, base_hazard: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._log_survival(self.predict_hazard(X, base_hazard))

    def _log_survival(self, hazards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return log_survival(hazards, self.bin_edges_)

    def predict_survival(
        self, X: pd.DataFrame, base_hazard: np.ndarray | None = None
    ) -> np.ndarray:
        """P(no purchase by the end of each bin), shape ``(n, n_bins_)``; ends in ``bin_edges_[1:]``."""
        _, at_edges = self._daily_log_survival(X, base_hazard)
        return np.exp(at_edges[:, 1:])

    def predict_cdf(
        self,
        X: pd.DataFrame,
        days: float | Sequence[float],
        base_hazard: np.ndarray | None = None,
    ) -> np.ndarray:
        """P(next purchase within ``days`` days of the cutoff): shape ``(n,)`` for one day count,
        ``(n, len(days))`` for several. ``predict_cdf(X, 30)`` is the 30-day repurchase probability.

        Within a bin the daily hazard is constant (survival decays geometrically), so day counts
        between bin edges are interpolated; beyond the horizon the last bin's daily hazard is held
        constant. Non-decreasing in ``days`` and within [0, 1] by construction.
        """
        return self.cdf_from_hazards(self.predict_hazard(X, base_hazard), days)

    def cdf_from_hazards(self, hazards: np.ndarray, days: float | Sequence[float]) -> np.ndarray:
        """:meth:`predict_cdf` from hazards already predicted (:meth:`predict_hazard`)."""
        return cdf_from_hazards(hazards, self.bin_edges_, days)

    def predict_days(self, X: pd.DataFrame, base_hazard: np.ndarray | None = None) -> np.ndarray:
        """Expected days from the cutoff to the next purchase, shape ``(n,)``: the median of the
        predicted distribution (the day count where P(purchase within it) reaches 0.5), or NaN
        when that median lies beyond the horizon, i.e. when P(purchase within the horizon) < 0.5.

        Why the horizon bounds it: the model is trained on days censored at the horizon, so its
        hazards exist for the bins inside it and nothing past it is learned. A median past the
        horizon could only come from an assumption the data cannot check (holding the last bin's
        hazard constant put Online Retail II's medians as far as 36,500 days, and the dates a
        century away); NaN says what the model does know: "no purchase expected within the
        horizon". Inside the horizon the median is read off the survival curve, interpolated
        within a bin (constant daily hazard). NaN exactly where ``predict_cdf(X, horizon_days)``
        is below 0.5; otherwise a value in (0, horizon_days].
        """
        return self.days_from_hazards(self.predict_hazard(X, base_hazard))

    def days_from_hazards(self, hazards: np.ndarray) -> np.ndarray:
        """:meth:`predict_days` from hazards already predicted (:meth:`predict_hazard`)."""
        return days_from_hazards(hazards, self.bin_edges_)

    def contributions(self, X: pd.DataFrame, day: float = 1.0) -> pd.DataFrame:
        """Contributions to the log-odds of the hazard in the bin holding ``day``, plus ``bias``.

        Positive means "makes a purchase in that bin more likely". The ``bin_start`` column is the
        part due to the time since the cutoff. The default, day 1, explains the first bin.
        """
        values = self._matrix(X)
        k = int(
            np.clip(np.searchsorted(self.bin_edges_[1:], day, side="left"), 0, self.n_bins_ - 1)
        )
        data = values.assign(**{BIN_FEATURE: self.bin_edges_[k]})
        return contributions(self.booster_, data, [*self.feature_names_, BIN_FEATURE])
