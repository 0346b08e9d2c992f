"""Churn risk: the calibrated probability that a customer makes no purchase in the horizon.

A LightGBM binary classifier on the ``churned`` label of the feature table, followed by isotonic
calibration. Marketing compares the probabilities with costs (is a discount worth it at a 40% risk?)
and sums them into expected counts, so they have to be probabilities, not just a ranking.

Why calibrate on out-of-time predictions: a booster's scores on its own training rows are too
confident (it has partly memorised them), and an isotonic map fitted on them would carry that
over-confidence into every prediction. The early-stopping booster never saw the held-out most
recent cutoff, so its scores there behave like scores on a future cutoff; the isotonic map is
fitted on those (see :mod:`retain.models.lgbm`) and then applied to the refitted booster's scores.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import numpy as np
import pandas as pd
from scipy import special
from sklearn.isotonic import IsotonicRegression

from retain.errors import RetainInputError, check_fitted
from retain.models.lgbm import MIN_EXAMPLES, _LGBMEstimator, predict_booster

__all__ = ["BASELINE_FEATURE", "ChurnModel"]

BASELINE_FEATURE: Final = "btyd_p_no_purchase"
_EPS: Final = 1e-9


class ChurnModel(_LGBMEstimator):
    """P(no purchase in the horizon), from LightGBM with out-of-time isotonic calibration.

    Parameters
    ----------
    n_estimators:
        Most boosting rounds; early stopping usually ends far sooner.
    learning_rate, num_leaves:
        LightGBM's; the other defaults are in :func:`retain.models.lgbm.default_params`.
    early_stopping_rounds:
        Rounds without improvement on the held-out rows before stopping. ``None`` trains
        ``n_estimators`` rounds on all rows and leaves the scores uncalibrated (nothing is held
        out to calibrate on).
    params:
        Other LightGBM parameters, laid over the defaults.
    random_state:
        Seed of every random choice (held-out rows, bagging, feature sampling).
    n_jobs:
        LightGBM threads. A fixed number, never "all cores": results are bit-identical only for
        the same thread count. One by default, because OpenMP threads that share a busy machine
        (tests in parallel, a notebook beside a job) slow down tenfold; raise it on a dedicated one.

    Fitted attributes: ``booster_`` (the refitted booster), ``calibrator_`` (an
    ``IsotonicRegression`` from raw probability to calibrated probability, or None),
    ``feature_names_``, ``n_features_in_``, ``best_iteration_``, ``validation_`` (the held-out
    split, its size and loss) and ``churn_rate_`` (the training rate).
    """

    _objective: ClassVar[str] = "binary"
    _label: ClassVar[str] = "churned"
    _held_out_predictions: ClassVar[bool] = True  # the isotonic calibration's material

    calibrator_: IsotonicRegression | None
    churn_rate_: float

    def __init__(
        self,
        *,
        n_estimators: int = 1000,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        early_stopping_rounds: int | None = 50,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int = 1,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.early_stopping_rounds = early_stopping_rounds
        self.params = params
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(
        self,
        X: pd.DataFrame,
        y: pd.Series | np.ndarray,
        *,
        cutoff: pd.Series | None = None,
        sample_weight: pd.Series | np.ndarray | None = None,
        base_probability: pd.Series | np.ndarray | None = None,
    ) -> ChurnModel:
        """Fit on features ``X`` and the ``churned`` label ``y`` (bool or 0/1).

        ``cutoff`` (the cutoff of each row) lets the most recent cutoff be held out for early
        stopping and calibration; without it a random 10% is held out. ``base_probability`` is a
        baseline model's P(churn) per row (BG/NBD's P(no purchase in the horizon)): boosting
        starts from its log-odds and learns a correction, so what the baseline knows about time
        away and age carries into seasons and cutoffs the trees never saw. The same baseline must
        then be given when predicting.
        """
        base = self._base_logit(base_probability, len(X))
        self.offset_ = base is not None
        result, _, label, weights = self._fit_lgbm(X, y, cutoff, sample_weight, init_score=base)
        self.churn_rate_ = float(np.average(label, weights=weights))
        self.calibrator_ = None
        if result.valid is None or result.valid_pred is None:
            return self
        held_out = label[result.valid]
        if held_out.min() == held_out.max():
            warnings.warn(
                f"churn calibration skipped: the {held_out.size} held-out rows are all "
                f"{'churned' if held_out[0] else 'active'}",
                stacklevel=2,
            )
            return self
        self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            result.valid_pred,
            held_out,
            sample_weight=None if weights is None else weights[result.valid],
        )
        return self

    def _transform_label(self, label: np.ndarray) -> np.ndarray:
        """Churn labels must be 0/1 with both classes present, enough of each to learn from."""
        n = label.size
        other = int(((label != 0) & (label != 1)).sum())
        if other:
            raise RetainInputError(f"{self._label} has {other} values other than 0/1 in {n} rows")
        churned = int(label.sum())
        if churned == 0 or churned == n:
            raise RetainInputError(
                f"{self._label} needs both classes: {churned} of {n} rows churned"
            )
        if min(churned, n - churned) < max(5, MIN_EXAMPLES // 10):
            raise RetainInputError(
                f"{self._label} has only {min(churned, n - churned)} rows of one class in {n}: "
                "too few to learn from"
            )
        return label

    def predict_proba(
        self,
        X: pd.DataFrame,
        *,
        calibrated: bool = True,
        base_probability: pd.Series | np.ndarray | None = None,
    ) -> np.ndarray:
        """P(churn) for each row of ``X``, shape ``(n,)``, in [0, 1].

        One column, the probability of churn, rather than scikit-learn's two: that is the number
        every caller wants. ``calibrated=False`` gives the booster's own probability.
        """
        data = self._matrix(X).to_numpy()
        base = self._base_logit(base_probability, data.shape[0])
        if (base is not None) != self.offset_:
            raise RetainInputError(
                "base_probability must be given exactly when the model was fitted with one"
            )
        if base is None:
            raw = predict_booster(self.booster_, data)
        else:
            raw = special.expit(predict_booster(self.booster_, data, raw_score=True) + base)
        if not calibrated or self.calibrator_ is None:
            return raw
        return np.clip(np.asarray(self.calibrator_.predict(raw), dtype=np.float64), 0.0, 1.0)

    def probability_from_contributions(
        self, contributions: pd.DataFrame, *, calibrated: bool = True
    ) -> np.ndarray:
        """P(churn) from :meth:`contributions` of the same rows (with their baseline): a row's
        sum is its log-odds, so a caller that needs both walks the trees once, not twice. Equal
        to :meth:`predict_proba` up to the rounding of the sum (1e-15)."""
        check_fitted(self, "booster_")
        raw = special.expit(contributions.to_numpy(dtype=np.float64).sum(axis=1))
        if not calibrated or self.calibrator_ is None:
            return raw
        return np.clip(np.asarray(self.calibrator_.predict(raw), dtype=np.float64), 0.0, 1.0)

    def contributions(
        self, X: pd.DataFrame, base_probability: pd.Series | np.ndarray | None = None
    ) -> pd.DataFrame:
        """Contributions of each feature to the log-odds of churn (uncalibrated booster), + bias.

        Positive means "raises the risk". Calibration is monotone, so the signs and the ranking of
        the features carry over to the calibrated probability; the sizes are in log-odds. With a
        baseline, its log-odds beyond the average churn rate's count as a contribution of the
        column named ``BASELINE_FEATURE`` (BG/NBD's P(no purchase)), so a row still sums to the
        full log-odds and the baseline's judgement can be a reason like any feature.
        """
        found = super().contributions(X)
        base = self._base_logit(base_probability, len(X))
        if base is None:
            return found
        centre = float(special.logit(np.clip(self.churn_rate_, _EPS, 1 - _EPS)))
        names = found.columns.tolist()
        values = found.to_numpy()
        if BASELINE_FEATURE not in names:
            names = [BASELINE_FEATURE, *names]
            values = np.column_stack([np.zeros(len(values)), values])
        else:
            values = values.copy()
        values[:, names.index(BASELINE_FEATURE)] += base - centre
        values[:, -1] += centre  # bias, always last
        return pd.DataFrame(values, columns=names, index=found.index)

    @staticmethod
    def _base_logit(base_probability: pd.Series | np.ndarray | None, n: int) -> np.ndarray | None:
        if base_probability is None:
            return None
        base = np.asarray(base_probability, dtype=np.float64)
        if base.shape != (n,):
            raise RetainInputError(f"base_probability must have {n} values, not {base.shape}")
        bad = int((~np.isfinite(base) | (base < 0) | (base > 1)).sum())
        if bad:
            raise RetainInputError(f"base_probability has {bad} values outside [0, 1]")
        return np.asarray(special.logit(np.clip(base, _EPS, 1 - _EPS)))
