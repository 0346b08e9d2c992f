"""RetentionModel: the feature settings, the BTYD models and the LightGBM models as one object.

``fit(transactions, as_of)`` learns from rolling origins inside the history up to ``as_of``;
``predict(transactions, as_of)`` scores every customer with a purchase by ``as_of``. The same
:class:`~retain.features.FeatureBuilder` serves both, so what is scored is what was trained.

BTYD outputs are features of the LightGBM models. At each training cutoff the BTYD models are
fitted on that cutoff's customers only (fitting is unsupervised and uses no data after the
cutoff); the models kept for scoring are fitted at ``as_of`` itself.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd

from retain.data.dates import DateLike
from retain.errors import RetainInputError
from retain.features import FeatureBuilder, RFMSegmenter, to_cutoff
from retain.models.btyd import BetaGeoModel, GammaGammaModel, TransactionModel
from retain.models.btyd._base import (
    ConvergenceWarning,
    convergence_noted,
    warn_not_converged,
)
from retain.models.churn import ChurnModel
from retain.models.reasons import churn_reasons
from retain.models.timing import TimingModel, bin_edges
from retain.models.training import rolling_cutoffs, training_table, up_to
from retain.models.trees import warm as warm_trees
from retain.models.value import PurchasesModel, SpendModel
from retain.monitoring import DRIFT_FEATURES, DRIFT_PREDICTIONS, DriftProfile

__all__ = [
    "LABEL_COLUMNS",
    "SCORE_COLUMNS",
    "SEGMENT_COLUMNS",
    "BTYDFeatures",
    "RetentionModel",
    "reference_cutoff",
]

LABEL_COLUMNS = [
    "churned",
    "purchased",
    "days_to_next_purchase",
    "purchases_in_horizon",
    "spend_in_horizon",
]
# The RFM scores and segment: text, and quintiles of one population (so not comparable across
# cutoffs); never model inputs, and replaced at scoring by the model's own.
SEGMENT_COLUMNS = {"r_score", "f_score", "m_score", "rfm_score", "segment"}
# Columns of the feature table that are not model inputs: keys, labels and the segments.
_NOT_FEATURES = {"customer_id", "cutoff", *SEGMENT_COLUMNS, *LABEL_COLUMNS}

SCORE_COLUMNS = [
    "customer_id",
    "churn_probability",
    "p_alive",
    "expected_purchases",
    "p_purchase_30d",
    "days_to_next_purchase",
    "expected_next_purchase_date",
    "clv",
    "segment",
    "reasons",
]


def _base(values: pd.Series) -> np.ndarray:
    """A BTYD expectation as the positive base of a value model (floored away from zero)."""
    return np.maximum(values.to_numpy(dtype="float64"), 1e-3)


def _days_after(day: pd.Timestamp, days: np.ndarray) -> np.ndarray:
    """The dates ``days`` (rounded) after ``day``, as datetime64[us]; NaT where ``days`` is NaN:
    the timing model expects no purchase within the horizon
    (:meth:`~retain.models.timing.TimingModel.predict_days`), so there is no date to give."""
    known = np.isfinite(days)
    offsets = np.round(np.where(known, days, 0.0)).astype("timedelta64[D]")
    dates = (np.datetime64(day.date(), "D") + offsets).astype("datetime64[us]")
    dates[~known] = np.datetime64("NaT")
    return dates


def reference_cutoff(cutoffs: list[pd.Timestamp], as_of: pd.Timestamp) -> pd.Timestamp:
    """The training cutoff whose horizon is most like the one after ``as_of``.

    Same season first: the cutoff closest to a whole number of years before ``as_of``, if one is
    within a month of it; otherwise the latest cutoff, the nearest in the life of the customer base.
    """
    year = 365.25
    off_season = [abs(((as_of - c).days + year / 2) % year - year / 2) for c in cutoffs]
    best = int(np.argmin(off_season))
    return cutoffs[best] if off_season[best] <= 31 else max(cutoffs)


# Built once: pandas makes a text Index from column names anew for every frame built from them.
_BTYD_COLUMNS: Final = pd.Index(
    [
        "btyd_p_alive",
        "btyd_p_no_purchase",
        "btyd_p_no_purchase_30d",
        "btyd_expected_purchases",
        "btyd_expected_spend",
        "btyd_clv",
    ]
)


class BTYDFeatures:
    """BG/NBD + Gamma-Gamma fitted on one population, turned into per-customer columns."""

    def __init__(self, horizon_days: int, penalizer_coef: float = 0.001) -> None:
        self.horizon_days = horizon_days
        self.penalizer_coef = penalizer_coef

    def fit(self, features: pd.DataFrame) -> Self:
        self.transactions_: TransactionModel = BetaGeoModel(penalizer_coef=self.penalizer_coef).fit(
            features["frequency"], features["recency"], features["T"]
        )
        repeat = features["frequency"] > 0
        # Gamma-Gamma needs positive mean spend; refund-heavy repeat customers are left out.
        usable = ~repeat | (features["monetary_value"] > 0)
        self.spend_ = GammaGammaModel(penalizer_coef=self.penalizer_coef).fit(
            features.loc[usable, "frequency"], features.loc[usable, "monetary_value"]
        )
        return self

    def hazards(self, features: pd.DataFrame, edges: np.ndarray) -> np.ndarray:
        """BG/NBD's P(purchase in bin k | none before it) for bins between ``edges`` (days).

        From the probability of no purchase up to each edge, ``S(t)``: ``h_k = 1 - S(e_k+1) /
        S(e_k)``, computed on the log scale so that tiny survival ratios stay exact.
        """
        x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        log_survival = np.maximum(
            self.transactions_.log_probability_of_no_purchase(edges, x, t_x, T), np.log(1e-300)
        )
        return -np.expm1(np.minimum(np.diff(log_survival, axis=1), 0.0))

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        model = self.transactions_
        h = self.horizon_days
        purchases = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(h, x, t_x, T)
        )
        monetary = np.where(x > 0, np.maximum(features["monetary_value"].to_numpy(float), 0.01), 0)
        spend = np.asarray(self.spend_.conditional_expected_average_profit(x, monetary))
        columns = [
            model.conditional_probability_alive(x, t_x, T),
            model.probability_of_no_purchase(h, x, t_x, T),
            model.probability_of_no_purchase(30, x, t_x, T),
            purchases,
            spend,
            purchases * spend,
        ]
        # One float block under a ready-made Index: a request's latency (see _BTYD_COLUMNS).
        values = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
        return pd.DataFrame(values, columns=_BTYD_COLUMNS, index=features.index)


class RetentionModel:
    """Churn risk, next-purchase timing and value in the horizon, for every customer.

    Parameters
    ----------
    horizon_days:
        The horizon predicted: churn = no purchase in it, value = spend in it.
    n_cutoffs, step_days:
        Rolling training origins: the last at ``as_of - horizon_days``, ``step_days`` apart
        (default: half the horizon).
    same_season:
        Also train on the cutoff a year before ``as_of`` when the history allows, so that the
        models, and the level of the value models, see the season of the horizon predicted
        (:func:`~retain.models.training.rolling_cutoffs`).
    windows:
        Trailing windows of the feature builder, in days.
    penalizer_coef:
        L2 penalty of the BG/NBD and Gamma-Gamma fits whose outputs are features (lifetimes'
        ``penalizer_coef``). A larger one steadies a fit that runs a parameter to an edge of its
        range (``retain train --penalizer``); 0 is the plain maximum likelihood.
    calibrate_churn:
        Map churn scores through the isotonic calibration fitted on the latest training cutoff.
        Off by default: when that cutoff's season differs from the scored one it miscalibrates
        (Online Retail II as of 2011-06-09, calibrated on the post-Christmas 2010-12-08 horizon:
        Brier 0.245 calibrated against 0.186 raw; CDNOW: 0.1297 either way). LightGBM's log-loss
        fit on every cutoff is the better-calibrated score until calibration spans all cutoffs.
    random_state, n_jobs:
        Seed and threads of every LightGBM model (fixed threads: bit-identical results).
    """

    def __init__(
        self,
        horizon_days: int = 180,
        *,
        n_cutoffs: int = 4,
        step_days: int | None = None,
        same_season: bool = True,
        windows: tuple[int, ...] = (30, 90, 180, 365),
        penalizer_coef: float = 0.001,
        calibrate_churn: bool = False,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.horizon_days = horizon_days
        self.n_cutoffs = n_cutoffs
        self.step_days = step_days
        self.same_season = same_season
        self.windows = windows
        self.penalizer_coef = penalizer_coef
        self.calibrate_churn = calibrate_churn
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- training ---------------------------------------------------------------------------------

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: DateLike,
        *,
        events: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> Self:
        """Learn from rolling origins inside the history up to ``as_of`` (nothing later is read)."""
        day = to_cutoff(as_of)
        self.builder_ = FeatureBuilder(windows=self.windows)
        self.cutoffs_ = rolling_cutoffs(
            transactions,
            day,
            self.horizon_days,
            self.n_cutoffs,
            self.step_days,
            same_season=self.same_season,
        )
        table = training_table(
            transactions,
            self.cutoffs_,
            self.horizon_days,
            as_of=day,
            events=events,
            customers=customers,
            builder=self.builder_,
        )
        timing = TimingModel(self.horizon_days, random_state=self.random_state, n_jobs=self.n_jobs)
        edges = bin_edges(timing.horizon_days, timing.bin_days)
        parts, hazards = [], []
        not_converged: dict[str, list[ConvergenceWarning]] = {}
        for cutoff_day, group in table.groupby("cutoff", sort=True):
            with convergence_noted(not_converged, f"{cutoff_day:%Y-%m-%d}"):
                btyd = BTYDFeatures(self.horizon_days, self.penalizer_coef).fit(group)
            parts.append(self._with_btyd(group, btyd))
            hazards.append(btyd.hazards(group, edges))
        table = pd.concat(parts, ignore_index=True)
        self.training_rows_ = len(table)
        self.feature_names_ = [
            c
            for c in table.columns
            if c not in _NOT_FEATURES and pd.api.types.is_numeric_dtype(table[c])
        ]
        X = table[self.feature_names_].astype("float64")
        common: dict[str, Any] = {"random_state": self.random_state, "n_jobs": self.n_jobs}
        cutoff = table["cutoff"]
        self.churn_ = ChurnModel(**common).fit(
            X, table["churned"], cutoff=cutoff, base_probability=table["btyd_p_no_purchase"]
        )
        # The timing model, too, learns a correction to BG/NBD: its hazards start from BG/NBD's.
        self.timing_ = timing.fit(
            X,
            table["days_to_next_purchase"],
            table["purchased"],
            cutoff=cutoff,
            base_hazard=np.vstack(hazards),
        )
        # Value models learn a correction to BG/NBD + Gamma-Gamma rather than the level itself:
        # the label is divided by the BTYD expectation and the row weighted by it, which for a
        # log link is the same as boosting from the BTYD prediction (an offset). Trees cannot
        # extrapolate a level that drifts between cutoffs (an ageing cohort buys less every
        # year); the BTYD models carry that drift structurally.
        spend_base = _base(table["btyd_clv"])
        self.spend_ = SpendModel(**common).fit(
            X,
            table["spend_in_horizon"].clip(lower=0) / spend_base,
            cutoff=cutoff,
            sample_weight=spend_base ** (2 - SpendModel().tweedie_variance_power),
        )
        purchases_base = _base(table["btyd_expected_purchases"])
        self.purchases_ = PurchasesModel(**common).fit(
            X,
            table["purchases_in_horizon"] / purchases_base,
            cutoff=cutoff,
            sample_weight=purchases_base,
        )
        # What scoring needs from the population at as_of: BTYD fits and RFM score edges.
        now = self.builder_.build(
            up_to(transactions, day), day, events=up_to(events, day), customers=customers
        )
        with convergence_noted(not_converged, f"{day:%Y-%m-%d}"):
            self.btyd_ = BTYDFeatures(self.horizon_days, self.penalizer_coef).fit(now)
        warn_not_converged(
            not_converged,
            f"BTYD features, {len(not_converged)} of {len(self.cutoffs_) + 1} fits",
            "their columns use the best parameters found.",
        )
        self.segmenter_ = RFMSegmenter().fit(now)
        self.as_of_ = day
        self._fit_levels(table, self._with_btyd(now, self.btyd_))
        self._fit_drift_profile(now)
        return self

    def _fit_drift_profile(self, now: pd.DataFrame) -> None:
        """Bins and counts of key features and of the predictions on the population at ``as_of``
        (``drift_profile_``): the reference a scoring run's population is compared with."""
        table = self.complete_features(now)
        scores = self.score_features(table, self.as_of_, n_reasons=0)
        reference = pd.concat(
            [
                table[[c for c in DRIFT_FEATURES if c in table]].reset_index(drop=True),
                scores[list(DRIFT_PREDICTIONS)],
            ],
            axis=1,
        )
        self.drift_profile_ = DriftProfile.fit(reference, reference.columns)

    def _fit_levels(self, table: pd.DataFrame, now: pd.DataFrame) -> None:
        """Set the level of the value models' predictions at ``as_of`` (``*_level_``).

        The value models' corrections to BTYD rank customers well, but their level is an average
        over the training cutoffs, whose horizons fall in other seasons and at other ages of the
        customer base than the one predicted. The BTYD models fitted at ``as_of`` carry the age of
        the base; what they cannot know is the season. So the predicted total is anchored on
        BTYD's total at ``as_of`` times the ratio of actual to BTYD totals at the reference cutoff
        (:func:`reference_cutoff`: a whole number of years before ``as_of`` when one was trained
        on, else the latest). A single factor per model, learnt at fit time: scoring one customer
        or a million gives the same scores.
        """
        self.reference_cutoff_ = reference_cutoff(self.cutoffs_, self.as_of_)
        past = table.loc[table["cutoff"] == self.reference_cutoff_]
        X = now[self.feature_names_].astype("float64")
        pairs = {
            "purchases": ("purchases_in_horizon", "btyd_expected_purchases", self.purchases_),
            "spend": ("spend_in_horizon", "btyd_clv", self.spend_),
        }
        self.levels_: dict[str, float] = {}
        for name, (label, base, model) in pairs.items():
            btyd_ratio = past[label].clip(lower=0).sum() / _base(past[base]).sum()
            predicted = float((model.predict(X) * _base(now[base])).sum())
            target = btyd_ratio * float(_base(now[base]).sum())
            self.levels_[name] = target / predicted if predicted > 0 else 1.0

    # -- scoring ----------------------------------------------------------------------------------

    def warm(self) -> RetentionModel:
        """Compile and check the churn and timing trees now, so that scoring a few customers runs
        in compiled code too (a service at start-up; batch runs compile on their own when large).
        A booster that cannot be compiled keeps being scored by LightGBM."""
        self._check_fitted()
        warm_trees(self.churn_.booster_)
        warm_trees(self.timing_.booster_, self.timing_.bin_edges_[:-1])
        return self

    def features(
        self,
        transactions: pd.DataFrame,
        as_of: DateLike | None = None,
        *,
        events: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The feature table the models score: builder features, BTYD columns and segments."""
        self._check_fitted()
        day = to_cutoff(as_of) if as_of is not None else self.as_of_
        table = self.builder_.build(
            up_to(transactions, day), day, events=up_to(events, day), customers=customers
        )
        return self.complete_features(table)

    def complete_features(self, table: pd.DataFrame) -> pd.DataFrame:
        """A feature table from the builder (``retain features``) with what the models also read:
        the BTYD columns and the RFM segments, both as fitted at ``as_of`` (any segment columns
        already in ``table``, scored against another population, are replaced)."""
        self._check_fitted()
        columns = table.columns.tolist()
        missing = [c for c in ("frequency", "recency", "T", "monetary_value") if c not in columns]
        if missing:
            raise RetainInputError(f"features: missing column(s) {', '.join(missing)}")
        replaced = [c for c in columns if c.startswith("btyd_") or c in SEGMENT_COLUMNS]
        own = table.drop(columns=replaced) if replaced else table
        # One concatenation: each one copies the wide table (a request's latency).
        parts = [own, self.btyd_.transform(own), self.segmenter_.scores(own)]
        return pd.concat(parts, axis=1)

    def predict(
        self,
        transactions: pd.DataFrame,
        as_of: DateLike | None = None,
        *,
        events: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
        n_reasons: int = 3,
    ) -> pd.DataFrame:
        """The scores table: one row per customer with a purchase by ``as_of`` (default: the
        training as-of date)."""
        self._check_fitted()
        day = to_cutoff(as_of) if as_of is not None else self.as_of_
        table = self.features(transactions, day, events=events, customers=customers)
        return self.score_features(table, day, n_reasons=n_reasons)

    def score_features(
        self, table: pd.DataFrame, as_of: DateLike, *, n_reasons: int = 3
    ) -> pd.DataFrame:
        """Scores from a feature table made by :meth:`features` (callers who hold features)."""
        self._check_fitted()
        present = set(table.columns.tolist())
        missing = [c for c in self.feature_names_ if c not in present]
        if missing:
            raise RetainInputError(
                f"scoring: the feature table lacks {len(missing)} model features: "
                f"{', '.join(missing[:10])}"
            )
        # reindex selects in half the time of table[names]; the models check and cast the values.
        X = table.reindex(columns=self.feature_names_)
        hazards = self._hazards(table, X)
        churn_base = (
            table["btyd_p_no_purchase"].to_numpy()
            if getattr(self.churn_, "offset_", False)
            else None
        )
        days = self.timing_.days_from_hazards(hazards)
        # The reasons need every feature's contribution; their sums are the churn log-odds.
        contributions = self.churn_.contributions(X, churn_base) if n_reasons > 0 else None
        churn = (
            self.churn_.probability_from_contributions(
                contributions, calibrated=self.calibrate_churn
            )
            if contributions is not None
            else self.churn_.predict_proba(
                X, calibrated=self.calibrate_churn, base_probability=churn_base
            )
        )
        scores = pd.DataFrame(
            {
                "customer_id": table["customer_id"].astype("str").array,
                "churn_probability": churn,
                "p_alive": table["btyd_p_alive"].to_numpy(),
                "expected_purchases": self.purchases_.predict(X)
                * _base(table["btyd_expected_purchases"])
                * self.levels_["purchases"],
                "p_purchase_30d": self.timing_.cdf_from_hazards(hazards, 30),
                "days_to_next_purchase": days,
                "expected_next_purchase_date": _days_after(to_cutoff(as_of), days),
                "clv": self.spend_.predict(X) * _base(table["btyd_clv"]) * self.levels_["spend"],
                "segment": table["segment"].to_numpy(),
                "reasons": churn_reasons(contributions, table, n_reasons=n_reasons)
                if contributions is not None
                else [[] for _ in range(len(table))],
            }
        )
        return scores

    def purchase_hazards(self, table: pd.DataFrame) -> np.ndarray:
        """The timing model's P(purchase in bin k | none before it) for each row of a feature table
        (:meth:`features`), shape ``(n, bins)``; ``timing_.cdf_from_hazards`` turns them into
        P(purchase by day t), as the scores' ``p_purchase_30d`` is made."""
        self._check_fitted()
        return self._hazards(table, table.reindex(columns=self.feature_names_))

    def _hazards(self, table: pd.DataFrame, X: pd.DataFrame) -> np.ndarray:
        base_hazard = (
            self.btyd_.hazards(table, self.timing_.bin_edges_)
            if getattr(self.timing_, "offset_", False)
            else None
        )
        return self.timing_.predict_hazard(X, base_hazard)

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Save as one file (every part pickles as plain data: booster strings, BTYD parameters)."""
        self._check_fitted()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            pickle.dump(self, file, protocol=pickle.HIGHEST_PROTOCOL)
        return path

    @classmethod
    def load(cls, path: str | Path) -> RetentionModel:
        path = Path(path)
        if not path.exists():
            raise RetainInputError(f"no saved model at {path}")
        with path.open("rb") as file:
            model = pickle.load(file)  # our own artefact: trusted like any code we run
        if not isinstance(model, cls):
            raise RetainInputError(f"{path} does not hold a RetentionModel")
        return model

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _with_btyd(table: pd.DataFrame, btyd: BTYDFeatures) -> pd.DataFrame:
        return pd.concat([table, btyd.transform(table)], axis=1)

    def _check_fitted(self) -> None:
        if not hasattr(self, "churn_"):
            raise RetainInputError("the RetentionModel is not fitted: call fit first")
