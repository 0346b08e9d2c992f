"""LightGBM plumbing shared by the supervised models: parameters, training, checks and state.

Every supervised model of retain trains the same way, so the way lives here once:

1. **Early stopping out of time.** Training tables stack several cutoffs. The most recent cutoff is
   held out and the booster stops when its loss there stops improving, which is how the model will
   be used: trained on the past, applied to a later cutoff. Rows of one cutoff are strongly
   correlated with each other (the same customers, the same season), so a random split would pick
   too many rounds. With a single cutoff (or none given) a seeded random 10% is held out instead.
2. **Refit on everything.** The held-out cutoff is the closest to scoring time, too valuable to
   leave out of the final model, so a second booster is trained on all rows for the number of
   rounds the first one found. The first booster's predictions on the held-out rows are kept: they
   are out-of-time predictions, the right material for calibration (see :mod:`.churn`).
3. **Bit-identical results.** ``deterministic=True``, ``force_row_wise=True``, a fixed thread count
   and seeds derived from ``random_state``: the same data and seed give the same trees, to the bit.
4. **Pickles that travel.** A ``lightgbm.Booster`` wraps a C++ object; the estimators keep it as its
   model string in their pickled state (``model_to_string`` writes every threshold and leaf value
   exactly) and rebuild it on load, so a model trained here loads in another process or machine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import special
from sklearn.base import BaseEstimator

from retain.errors import RetainInputError, check_fitted
from retain.models.trees import (
    FAST_ROWS,
    checked_trees,
    table_contributions,
    tree_contributions,
    warmed,
)

__all__ = [
    "MIN_EXAMPLES",
    "BoosterFit",
    "check_cutoff",
    "check_features",
    "check_label",
    "check_weights",
    "contributions",
    "default_params",
    "feature_importance",
    "fit_booster",
    "holdout_mask",
    "min_data_in_leaf",
    "predict_booster",
    "training_features",
]

# Fewer examples than this cannot support a held-out split and a booster worth its name.
MIN_EXAMPLES: Final = 50

# Characters LightGBM refuses in feature names (they would break its JSON model dump).
_BAD_NAME: Final = re.compile(r'[",:\[\]{}]')


def min_data_in_leaf(n_rows: int) -> int:
    """Smallest leaf: 20 rows for small tables, 0.1% of the rows for large ones, at most 1,000.

    A fixed 20 lets a booster on millions of rows carve leaves out of noise; a share of the rows
    keeps every leaf an estimate of something. The cap stops it from flattening the trees.
    """
    return int(np.clip(round(n_rows / 1000), 20, 1000))


def default_params(n_rows: int, random_state: int = 0, n_jobs: int = 1) -> dict[str, Any]:
    """The project's LightGBM parameters for a training table of ``n_rows`` rows.

    Small trees with a modest learning rate and row and feature subsampling: customer tables are
    noisy and the signal (recency, frequency, spend) is low-dimensional, so many shallow trees beat
    a few deep ones. ``seed`` fixes every random stream LightGBM derives from it (bagging, feature
    fraction, data sampling); with ``deterministic`` and ``force_row_wise`` and a fixed thread count
    the trees are bit-identical from run to run.
    """
    return {
        "learning_rate": 0.05,
        "num_leaves": 15,
        "max_depth": -1,
        "min_data_in_leaf": min_data_in_leaf(n_rows),
        "min_sum_hessian_in_leaf": 1e-3,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "seed": int(random_state),
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": int(n_jobs),
        "verbosity": -1,
    }


# -- input checks ---------------------------------------------------------------------------------


def check_features(X: object, *, min_rows: int = 1) -> pd.DataFrame:
    """``X`` as a DataFrame of float64 columns, or a RetainInputError that says what is wrong.

    NaN is allowed (LightGBM sends missing values down the side that fits best); infinities are
    not, because they come from a division by zero upstream rather than from missing data.
    """
    if not isinstance(X, pd.DataFrame):
        raise RetainInputError(f"X must be a pandas DataFrame of features, not {type(X).__name__}")
    names = [str(c) for c in X.columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RetainInputError(f"X has duplicated columns: {', '.join(duplicated)}")
    bad_names = [n for n in names if _BAD_NAME.search(n)]
    if bad_names:
        raise RetainInputError(
            f'X has column names LightGBM cannot store (no " , : [ ] {{ }}): {", ".join(bad_names)}'
        )
    non_numeric = [
        f"{c} ({dtype})"
        for c, dtype in X.dtypes.items()
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
    ]
    if non_numeric:
        raise RetainInputError(
            f"X has {len(non_numeric)} non-numeric columns: {', '.join(non_numeric)}; "
            "pass numeric features only (encode categories, drop identifiers)"
        )
    if len(X) < min_rows:
        raise RetainInputError(f"X has {len(X)} rows: at least {min_rows} examples are needed")
    # Scoring passes float64 tables already: casting them again costs a copy per column block.
    # A table of float32 columns stays float32: a large training table, half the memory (see
    # RetentionModel's training_float32).
    already = all(dtype == np.float64 for dtype in X.dtypes) or all(
        dtype == np.float32 for dtype in X.dtypes
    )
    frame = (X if already else X.astype("float64")).set_axis(pd.Index(names), axis=1)
    _check_finite(frame)
    return frame


def _check_finite(frame: pd.DataFrame) -> None:
    _check_finite_values(frame.to_numpy(), frame.columns.tolist())


def _check_finite_values(values: np.ndarray, names: Sequence[str]) -> None:
    infinite = np.isinf(values).sum(axis=0)
    if infinite.any():
        listed = ", ".join(f"{n} ({k} rows)" for n, k in zip(names, infinite, strict=True) if k)
        raise RetainInputError(f"X has infinite values in {listed}; use NaN for unknown values")


def check_label(y: object, n_rows: int, name: str) -> np.ndarray:
    """A label as a float64 array of ``n_rows`` values without NaN; ``name`` is used in errors.

    A named Series is reported under its own name, so the message names the column the user passed.
    """
    if isinstance(y, pd.Series):
        name = name if y.name is None else str(y.name)
        values = y.reset_index(drop=True)
    else:
        array = np.asarray(y)
        if array.ndim != 1:
            raise RetainInputError(f"{name} must be one-dimensional, not of shape {array.shape}")
        values = pd.Series(array)
    if len(values) != n_rows:
        raise RetainInputError(f"{name} has {len(values)} rows but X has {n_rows}")
    if not (
        pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype)
    ):
        raise RetainInputError(f"{name} must be numeric or boolean, not {values.dtype}")
    result = values.astype("float64").to_numpy()
    missing = int(np.isnan(result).sum())
    if missing:
        raise RetainInputError(f"{name} has {missing} missing values (NaN) in {n_rows} rows")
    infinite = int(np.isinf(result).sum())
    if infinite:
        raise RetainInputError(f"{name} has {infinite} infinite values in {n_rows} rows")
    return result


def check_weights(sample_weight: object, n_rows: int) -> np.ndarray | None:
    """Sample weights as a float64 array (finite, non-negative, not all zero), or None."""
    if sample_weight is None:
        return None
    weights = check_label(sample_weight, n_rows, "sample_weight")
    negative = int((weights < 0).sum())
    if negative:
        raise RetainInputError(f"sample_weight has {negative} negative values in {n_rows} rows")
    if not weights.sum() > 0:
        raise RetainInputError("sample_weight is zero for every row")
    return weights


def check_cutoff(cutoff: object, n_rows: int) -> pd.Series | None:
    """The cutoff of each row as datetimes, or None; one per row of X and none missing."""
    if cutoff is None:
        return None
    values = pd.Series(cutoff.to_numpy() if isinstance(cutoff, pd.Series) else np.asarray(cutoff))
    if len(values) != n_rows:
        raise RetainInputError(f"cutoff has {len(values)} rows but X has {n_rows}")
    try:
        stamps = pd.to_datetime(values)
    except (ValueError, TypeError) as error:
        raise RetainInputError(f"cutoff: cannot read the values as dates ({error})") from error
    missing = int(stamps.isna().sum())
    if missing:
        raise RetainInputError(f"cutoff has {missing} missing values in {n_rows} rows")
    return stamps


# -- training -------------------------------------------------------------------------------------


def holdout_mask(
    cutoff: pd.Series | None, n_rows: int, fraction: float = 0.1, random_state: int = 0
) -> tuple[np.ndarray, str]:
    """Rows held out for early stopping, and a description of the split.

    The most recent cutoff when there are several (out of time, as in production); otherwise a
    seeded random ``fraction`` of the rows.
    """
    if cutoff is not None and cutoff.nunique() > 1:
        latest = cutoff.max()
        return (cutoff == latest).to_numpy(), f"latest cutoff {latest:%Y-%m-%d}"
    rng = np.random.default_rng(random_state)
    n_valid = max(1, round(fraction * n_rows))
    mask = np.zeros(n_rows, dtype=bool)
    mask[rng.choice(n_rows, size=n_valid, replace=False)] = True
    return mask, f"random {fraction:.0%}"


@dataclass(frozen=True)
class BoosterFit:
    """What :func:`fit_booster` learned.

    ``booster`` is the final model (refitted on all rows when there was a held-out split);
    ``valid`` the held-out mask (None without early stopping); ``valid_pred`` the early-stopping
    booster's predictions on the held-out rows, in the objective's output scale (probabilities for
    ``binary``), i.e. out-of-sample predictions; ``best_score`` the held-out loss at the best round.
    """

    booster: lgb.Booster
    best_iteration: int
    valid: np.ndarray | None
    valid_pred: np.ndarray | None
    metric: str | None
    best_score: float | None


def fit_booster(
    X: pd.DataFrame | np.ndarray,
    y: np.ndarray,
    objective: str,
    params: Mapping[str, Any] | None = None,
    weights: np.ndarray | None = None,
    valid: np.ndarray | None = None,
    early_stopping: bool = True,
    *,
    num_boost_round: int = 1000,
    early_stopping_rounds: int = 50,
    feature_names: Sequence[str] | None = None,
    init_score: np.ndarray | None = None,
    held_out_predictions: bool = True,
) -> BoosterFit:
    """Train a LightGBM booster with early stopping on held-out rows, then refit on all rows.

    ``params`` are laid over :func:`default_params` (``objective`` always wins). ``valid`` is a
    boolean mask of the rows to hold out (see :func:`holdout_mask`); without it a random 10% is
    drawn from the ``seed`` in the parameters. With ``early_stopping=False`` the booster is trained
    on all rows for ``num_boost_round`` rounds and nothing is held out.

    The refit keeps the number of rounds found on the smaller training part: the extra rows make
    each tree a little better rather than calling for many more of them.

    ``init_score`` is a per-row offset on the raw (link) scale that boosting starts from, e.g. a
    baseline model's log-odds; the booster then learns only the correction, and its raw output
    must be added to the same offset when predicting (``valid_pred`` already includes it).

    ``held_out_predictions=False`` leaves ``valid_pred`` None: predicting the held-out rows is a
    pass over them with every tree, which only the churn model's calibration reads. Float32
    features are trained on as they are (LightGBM bins them; half the memory of float64).
    """
    data = _training_matrix(X)
    names = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else feature_names
    n_rows = data.shape[0]
    merged = default_params(n_rows) | dict(params or {}) | {"objective": objective}
    if not early_stopping:
        full = lgb.Dataset(
            data, label=y, weight=weights, init_score=init_score, feature_name=_names(names)
        )
        booster = lgb.train(merged, full, num_boost_round=num_boost_round)
        return BoosterFit(booster, num_boost_round, None, None, None, None)

    valid = _checked_holdout(valid, n_rows, int(merged.get("seed", 0)))
    # One binned dataset for all rows; the training and held-out parts are subsets of it, so the
    # features are binned once and never copied (the timing model's tables are large).
    full = lgb.Dataset(
        data,
        label=y,
        weight=weights,
        init_score=init_score,
        feature_name=_names(names),
        params=merged,
        free_raw_data=True,
    ).construct()
    stopper = _early_stopped(
        merged, full, valid, init_score, num_boost_round, early_stopping_rounds
    )
    best_iteration = max(1, int(stopper.best_iteration or stopper.current_iteration()))
    scores = stopper.best_score.get("holdout", {})
    metric, best_score = next(iter(scores.items()), (None, None))
    if not held_out_predictions:
        valid_pred = None
    elif init_score is None:
        valid_pred = np.asarray(stopper.predict(data[valid], num_iteration=best_iteration))
    else:
        raw = stopper.predict(data[valid], num_iteration=best_iteration, raw_score=True)
        valid_pred = _inverse_link(objective, np.asarray(raw) + init_score[valid])
    booster = lgb.train(merged, full, num_boost_round=best_iteration)
    return BoosterFit(
        booster,
        best_iteration,
        valid,
        valid_pred,
        metric,
        None if best_score is None else float(best_score),
    )


def _training_matrix(X: pd.DataFrame | np.ndarray) -> np.ndarray:
    """The features as one float32 or float64 matrix (float64 unless all are float32)."""
    values = X.to_numpy() if isinstance(X, pd.DataFrame) else np.asarray(X)
    if values.dtype in (np.float32, np.float64):
        return values
    return values.astype(np.float64)


def _checked_holdout(valid: np.ndarray | None, n_rows: int, seed: int) -> np.ndarray:
    """The held-out mask (a seeded random 10% when none is given), checked to split the rows."""
    if valid is None:
        valid, _ = holdout_mask(None, n_rows, random_state=seed)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != (n_rows,) or valid.all() or not valid.any():
        raise RetainInputError(
            f"the held-out mask must mark some but not all of the {n_rows} rows "
            f"(it marks {int(valid.sum())})"
        )
    return valid


def _early_stopped(
    params: dict[str, Any],
    full: lgb.Dataset,
    valid: np.ndarray,
    init_score: np.ndarray | None,
    num_boost_round: int,
    early_stopping_rounds: int,
) -> lgb.Booster:
    """The booster trained on the rows not held out, stopped early on the held-out ones."""
    train_set = full.subset(np.flatnonzero(~valid).tolist(), params=params)
    valid_set = full.subset(np.flatnonzero(valid).tolist(), params=params)
    if init_score is not None:  # subsets do not carry the offset over
        train_set.set_init_score(init_score[~valid])
        valid_set.set_init_score(init_score[valid])
    return lgb.train(
        params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        valid_names=["holdout"],
        callbacks=[
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
        ],
    )


def _inverse_link(objective: str, raw: np.ndarray) -> np.ndarray:
    """From the raw score to the objective's output: log-odds for binary, log for the rest."""
    if objective == "binary":
        return np.asarray(special.expit(raw))
    if objective in ("poisson", "tweedie", "gamma"):
        return np.exp(raw)
    return raw


# Below this many rows a prediction runs on one thread: waking LightGBM's OpenMP pool costs
# milliseconds (8 ms for 26 rows on a busy 2-core machine, against 0.1 ms on one thread), which
# is the whole latency budget of scoring one customer.
SINGLE_THREAD_ROWS: Final = 20_000


def predict_booster(booster: lgb.Booster, data: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``booster.predict`` with one thread for small inputs (see ``SINGLE_THREAD_ROWS``)."""
    if data.shape[0] < SINGLE_THREAD_ROWS:
        kwargs.setdefault("num_threads", 1)
    return np.asarray(booster.predict(data, **kwargs), dtype=np.float64)


def _names(names: Sequence[str] | None) -> list[str] | Literal["auto"]:
    return list(names) if names is not None else "auto"


def contributions(
    booster: lgb.Booster, X: pd.DataFrame | np.ndarray, feature_names: Sequence[str] | None = None
) -> pd.DataFrame:
    """Per-row SHAP contributions (TreeSHAP), in the booster's raw score units, plus ``bias``.

    Each row sums to the raw score (log-odds for ``binary``, log of the mean for ``poisson`` and
    ``tweedie``); ``bias`` is the expected raw score. Columns: the features, then ``bias``.
    """
    data = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
    names = list(feature_names) if feature_names is not None else booster.feature_name()
    # The same numbers from compiled code (see trees.py): on many rows once per decision pattern
    # of each tree; on a few, from leaf tables, when a service prepared them (trees.warm).
    trees = checked_trees(booster) if data.shape[0] >= FAST_ROWS else None
    prepared = warmed(booster)
    if trees is not None:
        values = tree_contributions(booster, trees, data)
    elif prepared is not None and prepared.tables is not None:
        values = table_contributions(prepared.trees, prepared.tables, data)
    else:
        values = predict_booster(booster, data, pred_contrib=True)
    index = X.index if isinstance(X, pd.DataFrame) else None
    return pd.DataFrame(values, columns=[*names, "bias"], index=index)


def training_features(X: object, names: Sequence[str], what: str = "the model") -> pd.DataFrame:
    """The columns ``names`` of ``X`` (a feature table), checked, in that order; other columns are
    ignored; a missing one is an error naming ``what`` was trained on them."""
    if not isinstance(X, pd.DataFrame):
        raise RetainInputError(f"X must be a pandas DataFrame of features, not {type(X).__name__}")
    columns = [str(c) for c in X.columns.tolist()]  # tolist: a text Index iterates slowly
    if len(X) and columns == list(names):
        # Already the model's matrix (RetentionModel scores all its models from one)? Then only
        # the infinities remain to check: selecting the columns again would cost more than
        # scoring one customer. A float64 array out of to_numpy means numeric columns only
        # (bool, text or nullable columns come out as objects).
        values = X.to_numpy()
        if values.dtype == np.float64:
            _check_finite_values(values, columns)
            return X
    missing = [c for c in names if c not in columns]
    if missing:
        raise RetainInputError(
            f"X lacks {len(missing)} of the features {what} was trained on: {', '.join(missing)}"
        )
    return check_features(X.set_axis(columns, axis=1)[list(names)])


def feature_importance(booster: lgb.Booster, importance_type: str = "gain") -> pd.Series:
    """Total gain (or split count) of each feature, largest first."""
    if importance_type not in ("gain", "split"):
        raise RetainInputError(
            f"importance_type must be 'gain' or 'split', not {importance_type!r}"
        )
    values = booster.feature_importance(importance_type=importance_type)
    series = pd.Series(values.astype("float64"), index=booster.feature_name(), name=importance_type)
    return series.sort_values(ascending=False, kind="stable")


# -- the shared estimator -------------------------------------------------------------------------


class _LGBMEstimator(BaseEstimator):
    """Base of the LightGBM estimators: parameters, checks, training, explanations and pickling.

    Subclasses set ``_objective`` and ``_label`` (the label's name in error messages), define
    ``__init__`` with their hyper-parameters (scikit-learn reads them from its signature) and call
    :meth:`_fit_lgbm` from ``fit``.
    """

    _objective: ClassVar[str]
    _label: ClassVar[str]
    # Whether fitting keeps the early-stopping booster's predictions on the held-out rows
    # (``BoosterFit.valid_pred``): only a model that calibrates on them needs the extra pass.
    _held_out_predictions: ClassVar[bool] = False

    n_estimators: int
    learning_rate: float
    num_leaves: int
    early_stopping_rounds: int | None
    params: Mapping[str, Any] | None
    random_state: int
    n_jobs: int

    booster_: lgb.Booster
    feature_names_: list[str]
    n_features_in_: int
    best_iteration_: int
    validation_: dict[str, Any]

    def _lgb_params(self, n_rows: int) -> dict[str, Any]:
        """Project defaults, then this estimator's hyper-parameters, then ``params`` overrides."""
        own = {"learning_rate": self.learning_rate, "num_leaves": self.num_leaves}
        base = default_params(n_rows, self.random_state, self.n_jobs)
        return base | own | self._extra_params() | dict(self.params or {})

    def _extra_params(self) -> dict[str, Any]:
        """Objective-specific LightGBM parameters (e.g. the Tweedie variance power)."""
        return {}

    def _check_fit(
        self, X: object, y: object, cutoff: object, sample_weight: object
    ) -> tuple[pd.DataFrame, np.ndarray, pd.Series | None, np.ndarray | None]:
        frame = check_features(X, min_rows=MIN_EXAMPLES)
        n = len(frame)
        return (
            frame,
            check_label(y, n, self._label),
            check_cutoff(cutoff, n),
            check_weights(sample_weight, n),
        )

    def _train(
        self,
        data: pd.DataFrame | np.ndarray,
        y: np.ndarray,
        *,
        valid: np.ndarray | None,
        split: str,
        weights: np.ndarray | None,
        feature_names: Sequence[str] | None = None,
        init_score: np.ndarray | None = None,
    ) -> BoosterFit:
        """Fit the booster and set the fitted attributes every estimator shares."""
        n_rows = data.shape[0]
        result = fit_booster(
            data,
            y,
            self._objective,
            self._lgb_params(n_rows),
            weights=weights,
            valid=valid,
            early_stopping=self.early_stopping_rounds is not None,
            num_boost_round=int(self.n_estimators),
            early_stopping_rounds=int(self.early_stopping_rounds or 0),
            feature_names=feature_names,
            init_score=init_score,
            held_out_predictions=self._held_out_predictions,
        )
        self.booster_ = result.booster
        self.best_iteration_ = result.best_iteration
        self.validation_ = {
            "split": split if result.valid is not None else "none",
            "n_rows": 0 if result.valid is None else int(result.valid.sum()),
            "metric": result.metric,
            "best_score": result.best_score,
            "best_iteration": result.best_iteration,
        }
        return result

    def _fit_lgbm(
        self,
        X: object,
        y: object,
        cutoff: object = None,
        sample_weight: object = None,
        init_score: np.ndarray | None = None,
    ) -> tuple[BoosterFit, pd.DataFrame, np.ndarray, np.ndarray | None]:
        """Check the inputs and train with a temporal hold-out (from ``init_score``, if given).

        Returns the fit, the checked features, the booster's target and the sample weights.
        """
        frame, label, stamps, weights = self._check_fit(X, y, cutoff, sample_weight)
        self._set_features(frame)
        valid, split = holdout_mask(stamps, len(frame), random_state=self.random_state)
        target = self._transform_label(label)
        result = self._train(
            frame, target, valid=valid, split=split, weights=weights, init_score=init_score
        )
        return result, frame, target, weights

    def _transform_label(self, label: np.ndarray) -> np.ndarray:
        """Turn the checked label into the booster's target (checks specific to the objective)."""
        return label

    def _set_features(self, frame: pd.DataFrame) -> None:
        self.feature_names_ = list(frame.columns)
        self.n_features_in_ = len(self.feature_names_)

    def _matrix(self, X: object) -> pd.DataFrame:
        """The training features of ``X`` as float64, in training order; other columns are ignored.

        Extra columns (identifiers, labels) are ignored so that a whole feature table can be passed
        at scoring time; a missing training feature is an error.
        """
        check_fitted(self, "booster_")
        return training_features(X, self.feature_names_)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-row feature contributions to the raw score (see :func:`contributions`)."""
        data = self._matrix(X)
        return contributions(self.booster_, data, self.feature_names_)

    def feature_importance(self, importance_type: str = "gain") -> pd.Series:
        """Total gain of each feature over the trees, largest first (``"split"``: split counts)."""
        check_fitted(self, "booster_")
        return feature_importance(self.booster_, importance_type)

    # Boosters travel as their model string: see the module docstring.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        if isinstance(state.get("booster_"), lgb.Booster):
            state["booster_"] = state["booster_"].model_to_string()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        if isinstance(state.get("booster_"), str):
            state["booster_"] = lgb.Booster(model_str=state["booster_"])
        super().__setstate__(state)
