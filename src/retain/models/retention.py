"""RetentionModel: the feature settings, the BTYD models and the LightGBM models as one object.

``fit(transactions, as_of)`` learns from rolling origins inside the history up to ``as_of``;
``predict(transactions, as_of)`` scores every customer with a purchase by ``as_of``. The same
:class:`~retain.features.FeatureBuilder` serves both, so what is scored is what was trained.

BTYD outputs are features of the LightGBM models. At each training cutoff the BTYD models are
fitted on that cutoff's customers only (fitting is unsupervised and uses no data after the
cutoff); the models kept for scoring are fitted at ``as_of`` itself.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import numpy as np
import pandas as pd
from scipy import special

from retain.data.contract import SCORE_COLUMNS
from retain.data.dates import DateLike
from retain.errors import NotFittedError, RetainInputError
from retain.features import FeatureBuilder, RFMSegmenter, to_cutoff
from retain.features.registry import model_input_names
from retain.models.btyd import BetaGeoModel, GammaGammaModel, TransactionModel
from retain.models.btyd._base import (
    ConvergenceWarning,
    convergence_noted,
    warn_not_converged,
)
from retain.models.choice import (
    OUTPUTS,
    OutputChoice,
    blend_log_odds,
    blend_values,
    choose_outputs,
    single,
    validation_metrics,
)
from retain.models.churn import ChurnModel
from retain.models.lgbm import MIN_EXAMPLES
from retain.models.reasons import churn_reasons
from retain.models.sampling import CustomerSample, customer_sample, in_sample
from retain.models.timing import TimingModel, bin_edges, cdf_from_hazards, days_from_hazards
from retain.models.training import plan_training, training_table, up_to
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


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(special.logit(np.clip(p, 1e-12, 1 - 1e-12)))


def _feature_names(
    table: pd.DataFrame, windows: Sequence[int], declared: Sequence[str]
) -> list[str]:
    """The model inputs of a training table, in its column order: the registry's model inputs
    (:mod:`retain.features.registry`) and the customers columns the user declared, nothing else
    (a numeric column is not an input for being numeric)."""
    missing = [c for c in declared if c not in table]
    if missing:
        raise RetainInputError(
            f"customers features: {missing} are not columns of the customers table given to fit"
        )
    text = [c for c in declared if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise RetainInputError(f"customers features: {text} are not numeric columns")
    inputs = model_input_names(windows) | set(declared)
    return [c for c in table.columns if c in inputs]


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

    def expectations(
        self, features: pd.DataFrame, horizon_days: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(no purchase), expected purchases and expected spend over ``horizon_days``."""
        p_no, purchases, spend = self._expectations(features, horizon_days)
        return p_no, purchases, purchases * spend

    def _expectations(
        self, features: pd.DataFrame, horizon_days: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(no purchase) and expected purchases over ``horizon_days``, spend per purchase."""
        x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        model = self.transactions_
        purchases = np.asarray(
            model.conditional_expected_number_of_purchases_up_to_time(horizon_days, x, t_x, T),
            dtype=np.float64,
        )
        monetary = np.where(x > 0, np.maximum(features["monetary_value"].to_numpy(float), 0.01), 0)
        spend = np.asarray(self.spend_.conditional_expected_average_profit(x, monetary))
        p_no = np.asarray(model.probability_of_no_purchase(horizon_days, x, t_x, T), np.float64)
        return p_no, purchases, spend

    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        x, t_x, T = (features[c].to_numpy(float) for c in ("frequency", "recency", "T"))
        model = self.transactions_
        p_no, purchases, spend = self._expectations(features, self.horizon_days)
        columns = [
            model.conditional_probability_alive(x, t_x, T),
            p_no,
            model.probability_of_no_purchase(30, x, t_x, T),
            purchases,
            spend,
            purchases * spend,
        ]
        # One float block under a ready-made Index: a request's latency (see _BTYD_COLUMNS).
        values = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
        return pd.DataFrame(values, columns=_BTYD_COLUMNS, index=features.index)


# Booster settings tried by the validation on small training tables, each booster keeping the
# one that scores best on its own output (default unless another does better): on a few thousand
# customers the risk is fitting noise, not missing signal, so the others are more regularised.
# A fixed grid rather than a search (Optuna): 3 settings x 4 boosters already doubles the
# training time of a small table, and a search would choose among many more on one validation.
BOOSTER_SETTINGS: Final[dict[str, dict[str, Any]]] = {
    "default": {},
    "regularised": {"num_leaves": 7, "params": {"lambda_l2": 10.0, "min_data_in_leaf": 50}},
    "strong": {"num_leaves": 3, "params": {"lambda_l2": 30.0, "min_data_in_leaf": 100}},
}
SMALL_TABLE_ROWS: Final = 60_000
# Each booster, and the outputs it makes (the first judges its settings).
BOOSTERS: Final = {
    "churn": ("churn_probability",),
    "timing": ("days_to_next_purchase", "p_purchase_30d"),
    "purchases": ("expected_purchases",),
    "spend": ("clv",),
}


@dataclass(frozen=True)
class _SampledInputs:
    """The validated frames, cut to the customers of a training sample."""

    transactions: pd.DataFrame
    events: pd.DataFrame | None
    customers: pd.DataFrame | None
    sample: CustomerSample

    @classmethod
    def of(
        cls,
        transactions: pd.DataFrame,
        events: pd.DataFrame | None,
        customers: pd.DataFrame | None,
        sample: CustomerSample,
    ) -> _SampledInputs:
        if not sample.sampled:
            return cls(transactions, events, customers, sample)

        def cut(frame: pd.DataFrame | None) -> pd.DataFrame | None:
            if frame is None:
                return None
            return frame.loc[in_sample(frame["customer_id"], sample)].reset_index(drop=True)

        kept = cut(transactions)
        assert kept is not None
        return cls(kept, cut(events), cut(customers), sample)

    def rows_of(self, table: pd.DataFrame) -> pd.DataFrame:
        """The rows of a per-customer table whose customer is in the sample."""
        if not self.sample.sampled:
            return table
        return table.loc[in_sample(table["customer_id"], self.sample)].reset_index(drop=True)


@dataclass
class _Boosters:
    """The four LightGBM models of one fit, each a correction to BTYD at ``horizon_days``."""

    churn: ChurnModel
    timing: TimingModel
    spend: SpendModel
    purchases: PurchasesModel
    feature_names: list[str]


@dataclass(frozen=True)
class _TrainingPath:
    """How the boosters are trained: the lean path's choices (see RetentionModel)."""

    float32: bool
    timing_max_rows: int


def _fit_boosters(
    table: pd.DataFrame,
    hazards: np.ndarray,
    horizon_days: int,
    feature_names: list[str],
    common: dict[str, Any],
    settings: Mapping[str, str] | None = None,
    path: _TrainingPath = _TrainingPath(float32=False, timing_max_rows=5_000_000),
) -> _Boosters:
    """Fit the churn, timing and value models on a training table (with its BTYD columns);
    ``settings`` names each booster's entry of :data:`BOOSTER_SETTINGS` (default: "default")."""
    X = table[feature_names].astype("float32" if path.float32 else "float64")
    cutoff = table["cutoff"]

    def kwargs(booster: str) -> dict[str, Any]:
        found = common | BOOSTER_SETTINGS[(settings or {}).get(booster, "default")]
        return found | {"max_rows": path.timing_max_rows} if booster == "timing" else found

    churn = ChurnModel(**kwargs("churn")).fit(
        X, table["churned"], cutoff=cutoff, base_probability=table["btyd_p_no_purchase"]
    )
    # The timing model, too, learns a correction to BG/NBD: its hazards start from BG/NBD's.
    timing = TimingModel(horizon_days, **kwargs("timing")).fit(
        X,
        table["days_to_next_purchase"],
        table["purchased"],
        cutoff=cutoff,
        base_hazard=hazards,
    )
    # Value models learn a correction to BG/NBD + Gamma-Gamma rather than the level itself:
    # the label is divided by the BTYD expectation and the row weighted by it, which for a
    # log link is the same as boosting from the BTYD prediction (an offset). Trees cannot
    # extrapolate a level that drifts between cutoffs (an ageing cohort buys less every
    # year); the BTYD models carry that drift structurally.
    spend_base = _base(table["btyd_clv"])
    spend = SpendModel(**kwargs("spend")).fit(
        X,
        table["spend_in_horizon"].clip(lower=0) / spend_base,
        cutoff=cutoff,
        sample_weight=spend_base ** (2 - SpendModel().tweedie_variance_power),
    )
    purchases_base = _base(table["btyd_expected_purchases"])
    purchases = PurchasesModel(**kwargs("purchases")).fit(
        X,
        table["purchases_in_horizon"] / purchases_base,
        cutoff=cutoff,
        sample_weight=purchases_base,
    )
    return _Boosters(churn, timing, spend, purchases, feature_names)


def _why_no_boosters(table: pd.DataFrame) -> str | None:
    """Why a training table cannot teach the LightGBM models anything, or None."""
    n = len(table)
    if n < MIN_EXAMPLES:
        return f"only {n} labelled examples (at least {MIN_EXAMPLES} are needed)"
    churned = int(table["churned"].sum())
    fewest = min(churned, n - churned)
    if fewest < max(5, MIN_EXAMPLES // 10):
        side = "churned" if churned < n - churned else "bought again"
        return f"only {fewest} of the {n} labelled examples {side}"
    return None


def naive_values(table: pd.DataFrame, horizon_days: int) -> dict[str, np.ndarray]:
    """The naive rule: each customer's rate in the trailing feature window nearest the horizon
    (log scale), carried over the horizon; a customer younger than the window is rated over
    the days since the first purchase. Orders stand for purchase days (same-day orders are rare;
    the level is set afterwards anyway)."""
    windows = [int(c.split("_")[1].removesuffix("d")) for c in table.columns if _WINDOW.match(c)]
    if not windows:
        raise RetainInputError("features: no orders_<days>d column for the naive rule")
    window = min(windows, key=lambda w: abs(np.log(w / horizon_days)))
    exposure = np.minimum(window, table["T"].to_numpy(float) + 1.0)
    orders = table[f"orders_{window}d"].to_numpy(float)
    spend = np.maximum(table[f"spend_{window}d"].to_numpy(float), 0.0)
    return {
        "expected_purchases": orders / exposure * horizon_days,
        "clv": spend / exposure * horizon_days,
    }


_WINDOW: Final = re.compile(r"^orders_\d+d$")


class RetentionModel:
    """Churn risk, next-purchase timing and value in the horizon, for every customer.

    Parameters
    ----------
    horizon_days:
        The horizon predicted: churn = no purchase in it, value = spend in it.
    n_cutoffs, step_days, min_history_days:
        Rolling training origins: up to ``n_cutoffs``, the last at ``as_of`` minus the training
        horizon, ``step_days`` apart, each with ``min_history_days`` of history before it.
        ``None`` (the default for the last two) chooses them from the data, and so is the
        training horizon when the history is too short for the one predicted
        (:func:`~retain.models.training.plan_training`; the plan is ``plan_``).
    same_season:
        Also train on the cutoff a year before ``as_of`` when the history allows, so that the
        models, and the level of the value models, see the season of the horizon predicted
        (:func:`~retain.models.training.rolling_cutoffs`).
    windows:
        Trailing windows of the feature builder, in days.
    customer_features:
        Numeric columns of the customers table that are model inputs (``retain train
        --customers-features``). Only declared columns are: a postcode in a customers file must
        not become a model input because it happens to be a number.
    penalizer_coef:
        L2 penalty of the BG/NBD and Gamma-Gamma fits whose outputs are features (lifetimes'
        ``penalizer_coef``). A larger one steadies a fit that runs a parameter to an edge of its
        range (``retain train --penalizer``); 0 is the plain maximum likelihood.
    choose_outputs:
        Choose, for each output, between the LightGBM model, BTYD, the naive rule and a blend, on
        the latest labelled cutoff scored by models fitted without it (:mod:`.choice`;
        ``choices_``). False: the LightGBM models make every output (the behaviour before).
    calibrate_churn:
        Map churn scores through the isotonic calibration fitted on the latest training cutoff.
        Off by default: when that cutoff's season differs from the scored one it miscalibrates
        (Online Retail II as of 2011-06-09, calibrated on the post-Christmas 2010-12-08 horizon:
        Brier 0.245 calibrated against 0.186 raw; CDNOW: 0.1297 either way). LightGBM's log-loss
        fit on every cutoff is the better-calibrated score until calibration spans all cutoffs.
    timing_max_rows:
        Most rows the timing model trains on (one per customer, cutoff and week at risk): above
        it, the quiet customer-periods are subsampled and reweighted (:class:`~.timing.
        TimingModel`'s ``max_rows``). Past a million or so rows the hazards barely move while
        the fit's time grows with them: 250,000 simulated examples expand to 3 million rows, 75
        quiet ones per purchase. Small histories never reach it: the subsampling's variance
        shows on a few thousand customers.
    training_float32:
        Train the boosters on float32 features (half the memory; LightGBM bins them anyway).
        With ``max_training_customers`` and ``timing_max_rows``, the lean path of a large fit;
        ``benchmarks/accuracy.py --full-path`` fits the full path (``None``, 5,000,000, False)
        beside it on every window.
    max_training_customers:
        Most customers the training table is built for. A history with more customers with a
        purchase by ``as_of`` trains on a seeded sample of about this many (by a hash of the id:
        :mod:`.sampling`), at every cutoff; the BTYD models kept for scoring, the segments and
        the level of the values still see every customer at ``as_of``. ``None``: all of them.
        The default (about 250,000 training rows over five cutoffs) fitted 1.6 million simulated
        customers in 208 s at a 4.6 GB peak on 2 cores (``benchmarks/training.py``); 100,000
        doubles the rows and came near the 10-minute mark on a busy machine. The accuracy
        benchmark's windows (up to 23,570 customers) are never sampled. Whether a larger sample
        ranks better at that scale is not measured yet.
    random_state, n_jobs:
        Seed and threads of every LightGBM model (fixed threads: bit-identical results), and
        the seed of the customer sample.

    Fitted attributes: ``plan_``, ``training_sample_`` (the customer sample's rule: population,
    rate, seed), ``cutoffs_``, ``training_horizon_``, ``fallback_`` (why the
    predictions are BTYD's alone, or None), ``choices_`` (output -> :class:`OutputChoice`),
    ``validation_`` (how the choice was validated), the models ``btyd_``, ``churn_``,
    ``timing_``, ``spend_``, ``purchases_`` (None in a fallback), ``levels_``.
    """

    def __init__(
        self,
        horizon_days: int = 180,
        *,
        n_cutoffs: int = 4,
        step_days: int | None = None,
        min_history_days: int | None = None,
        same_season: bool = True,
        windows: tuple[int, ...] = (30, 90, 180, 365),
        customer_features: tuple[str, ...] = (),
        penalizer_coef: float = 0.001,
        choose_outputs: bool = True,
        calibrate_churn: bool = False,
        max_training_customers: int | None = 50_000,
        timing_max_rows: int = 1_500_000,
        training_float32: bool = True,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.horizon_days = horizon_days
        self.n_cutoffs = n_cutoffs
        self.step_days = step_days
        self.min_history_days = min_history_days
        self.same_season = same_season
        self.windows = windows
        self.customer_features = tuple(customer_features)
        self.penalizer_coef = penalizer_coef
        self.choose_outputs = choose_outputs
        self.calibrate_churn = calibrate_churn
        self.max_training_customers = max_training_customers
        self.timing_max_rows = timing_max_rows
        self.training_float32 = training_float32
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
        """Learn from rolling origins inside the history up to ``as_of`` (nothing later is read).

        Never fails for lack of history: with no labelled cutoff to learn from, the predictions
        are BG/NBD + Gamma-Gamma's alone, and one warning says so and why (``fallback_``).
        """
        day = to_cutoff(as_of)
        history = up_to(transactions, day)
        if history.empty:
            raise RetainInputError(f"training: no transactions on or before {day:%Y-%m-%d}")
        events = up_to(events, day)
        purchases = history["amount"].to_numpy() >= 0
        buyers = int(pd.unique(history["customer_id"].to_numpy()[purchases]).size)
        sample = self.plan_fit(history, day, buyers)
        learn = _SampledInputs.of(history, events, customers, sample)
        training = (
            training_table(
                learn.transactions,
                self.cutoffs_,
                self.training_horizon_,
                as_of=day,
                events=learn.events,
                customers=learn.customers,
                builder=self.builder_,
            )
            if self.cutoffs_
            else pd.DataFrame(columns=["cutoff", "churned"])
        )
        now = self.builder_.build(history, day, events=events, customers=customers)
        return self.fit_tables(training, now, learn.rows_of(now))

    def plan_fit(self, history: pd.DataFrame, as_of: DateLike, customers: int) -> CustomerSample:
        """The first step of :meth:`fit`: the training plan from the history's first day
        (``history`` needs only its ``timestamp`` column: an engine may pass one row holding the
        earliest), and the rule of the customer sample for ``customers`` customers with a
        purchase. Sets ``plan_``, ``cutoffs_``, ``training_horizon_``, ``fallback_``,
        ``training_sample_`` and the feature builder; returns the sample rule.

        An engine that builds the tables itself (Spark) then builds, for the sampled customers,
        the features and labels at every one of ``cutoffs_`` over ``training_horizon_`` days, and
        hands them to :meth:`fit_tables`."""
        day = to_cutoff(as_of)
        if self.max_training_customers is not None and self.max_training_customers < MIN_EXAMPLES:
            raise RetainInputError(
                f"max_training_customers must be at least {MIN_EXAMPLES}, not "
                f"{self.max_training_customers}"
            )
        sample = customer_sample(customers, self.max_training_customers, self.random_state)
        self.training_sample_ = sample.as_params()
        self.builder_ = FeatureBuilder(windows=self.windows)
        self.plan_ = plan_training(
            history,
            day,
            self.horizon_days,
            self.n_cutoffs,
            self.step_days,
            self.min_history_days,
            same_season=self.same_season,
        )
        self.cutoffs_ = list(self.plan_.cutoffs)
        self.as_of_ = day
        self.fallback_: str | None = None if self.cutoffs_ else self.plan_.notes[-1]
        self.training_horizon_ = self.plan_.horizon_days if self.cutoffs_ else self.horizon_days
        return sample

    def fit_tables(
        self, training: pd.DataFrame, population: pd.DataFrame, now: pd.DataFrame
    ) -> Self:
        """The second step of :meth:`fit`, from tables made by the feature builder.

        ``training``: the sampled customers' features and labels at every cutoff of the plan,
        stacked, ordered by cutoff then customer id (:func:`~.training.training_table`);
        ``population``: every customer's features at ``as_of`` (the BTYD models kept for scoring
        and the segments are fitted on it: only ``frequency``, ``recency``, ``T``,
        ``monetary_value``, ``days_since_last_purchase`` and ``spend_total`` are read); ``now``: the sampled customers' features at ``as_of`` (the
        level of the values and the drift reference). Without a sample, ``now`` is
        ``population``.
        """
        if not hasattr(self, "plan_"):
            raise NotFittedError("fit_tables follows plan_fit: call plan_fit first")
        not_converged: dict[str, list[ConvergenceWarning]] = {}
        table, hazards = self._with_btyd_at_cutoffs(training, not_converged)
        if self.fallback_ is None:
            self.fallback_ = _why_no_boosters(table)
        with convergence_noted(not_converged, f"{self.as_of_:%Y-%m-%d}"):
            self.btyd_ = BTYDFeatures(self.training_horizon_, self.penalizer_coef).fit(population)
        warn_not_converged(
            not_converged,
            f"BTYD features, {len(not_converged)} of {len(self.cutoffs_) + 1} fits",
            "their columns use the best parameters found.",
        )
        self.segmenter_ = RFMSegmenter().fit(population)
        self._fit_outputs(table, hazards)
        # The level and the drift reference are sums and shares over the population at as_of:
        # the sample estimates them for a fraction of the scoring.
        now = self.complete_features(now)
        self._fit_levels(table, now)
        self._fit_drift_profile(now)
        return self

    def _fit_outputs(self, table: pd.DataFrame, hazards: np.ndarray) -> None:
        """Choose each output's model and fit the boosters on the training table; without
        boosters (no labelled cutoff, too few examples, a fit that fails), BTYD alone, and one
        warning that says why."""
        self.training_rows_ = 0 if self.fallback_ else len(table)
        self.feature_names_ = (
            [] if self.fallback_ else _feature_names(table, self.windows, self.customer_features)
        )
        self.booster_settings_ = dict.fromkeys(BOOSTERS, "default")
        self.choices_: dict[str, OutputChoice] = {}
        self.settings_scores_: dict[str, dict[str, float]] = {}
        if self.fallback_ is None:
            if self.choose_outputs:
                self._choose(table, hazards)  # sets choices_ and booster_settings_
            else:
                self.choices_ = {o: single(o, "lgbm", "choose_outputs=False") for o in OUTPUTS}
                self.validation_ = {"split": "none", "reason": "choose_outputs=False"}
        boosters = None
        if self.fallback_ is None:
            try:
                boosters = _fit_boosters(
                    table,
                    hazards,
                    self.training_horizon_,
                    self.feature_names_,
                    self._common(),
                    self.booster_settings_,
                    self._path(),
                )
            except RetainInputError as error:  # too little signal in a short history
                self.fallback_ = f"the LightGBM models cannot be fitted ({error})"
        self._set_boosters(boosters)
        if self.fallback_ is not None:
            warnings.warn(
                f"training: {self.fallback_}; the predictions are BG/NBD + Gamma-Gamma's alone",
                RuntimeWarning,
                stacklevel=3,
            )
            self.training_rows_, self.feature_names_ = 0, []
            self.choices_ = {o: single(o, "btyd", self.fallback_) for o in OUTPUTS}
            self.validation_ = {"split": "none", "reason": self.fallback_}

    def _common(self) -> dict[str, Any]:
        return {"random_state": self.random_state, "n_jobs": self.n_jobs}

    def _path(self) -> _TrainingPath:
        return _TrainingPath(self.training_float32, self.timing_max_rows)

    def _set_boosters(self, boosters: _Boosters | None) -> None:
        self.churn_ = None if boosters is None else boosters.churn
        self.timing_ = None if boosters is None else boosters.timing
        self.spend_ = None if boosters is None else boosters.spend
        self.purchases_ = None if boosters is None else boosters.purchases

    def _with_btyd_at_cutoffs(
        self, training: pd.DataFrame, not_converged: dict[str, list[ConvergenceWarning]]
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """The training table with each cutoff's BTYD columns (BTYD fitted on that cutoff's
        customers), and BG/NBD's hazards per bin."""
        if not self.cutoffs_:
            return pd.DataFrame(columns=["cutoff", "churned"]), np.empty((0, 0))
        horizon = self.training_horizon_
        edges = bin_edges(horizon, TimingModel(horizon).bin_days)
        parts, hazards = [], []
        for cutoff_day, group in training.groupby("cutoff", sort=True):
            with convergence_noted(not_converged, f"{cutoff_day:%Y-%m-%d}"):
                btyd = BTYDFeatures(horizon, self.penalizer_coef).fit(group)
            parts.append(self._with_btyd(group, btyd))
            hazards.append(btyd.hazards(group, edges))
        return pd.concat(parts, ignore_index=True), np.vstack(hazards)

    def _choose(self, table: pd.DataFrame, hazards: np.ndarray) -> None:
        """Choose each output's weights on the latest cutoff, scored by boosters fitted on the
        cutoffs whose labels end by it (without one: on a seeded quarter of the customers,
        scored by boosters fitted on the other customers). Sets ``choices_`` and
        ``validation_``.

        Why not the earlier cutoffs whose horizons overlap the validation's: on data simulated
        from BG/NBD, where no model can beat BG/NBD, boosters fitted on them beat it on the
        validation by 0.016 of churn AUC and tied it on the horizon after ``as_of``."""
        cutoff = table["cutoff"]
        latest = cutoff.max()
        valid = (cutoff == latest).to_numpy()
        # Training rows whose labels end by the validation cutoff: none of the validation's
        # horizon is seen, not even through the labels of an earlier cutoff.
        before = (cutoff + pd.Timedelta(days=self.training_horizon_) <= latest).to_numpy()
        if before.any():
            train_rows = before
            split = f"cutoff {latest:%Y-%m-%d}, models fitted on the cutoffs whose labels end by it"
        else:
            # One customer's rows stay on one side, at every cutoff.
            rng = np.random.default_rng(self.random_state)
            ids = table["customer_id"].astype(str)
            unique = ids.unique()
            held_ids = set(unique[rng.random(unique.size) < 0.25])
            held_customer = ids.isin(held_ids).to_numpy()
            valid = valid & held_customer
            train_rows = ~held_customer
            split = (
                f"a random quarter of the customers at {latest:%Y-%m-%d}, models fitted on the "
                "others"
            )
        train, held = table.loc[train_rows], table.loc[valid].reset_index(drop=True)
        horizon = self.training_horizon_
        edges = self._edges(horizon)
        reason = _why_no_boosters(train) or _why_no_boosters(held)
        # Small tables also try more regularised boosters (see BOOSTER_SETTINGS).
        tried = list(BOOSTER_SETTINGS) if len(train) < SMALL_TABLE_ROWS else ["default"]
        found: dict[str, dict[str, dict[str, np.ndarray]]] = {}
        for name in tried if reason is None else []:
            try:
                inner = _fit_boosters(
                    train.reset_index(drop=True),
                    hazards[train_rows],
                    horizon,
                    self.feature_names_,
                    self._common(),
                    dict.fromkeys(BOOSTERS, name),
                    self._path(),
                )
            except RetainInputError as error:
                reason = str(error)
                break
            found[name] = self._candidates(held, inner, horizon, held_hazards=hazards[valid])
        if reason is not None:
            # Nothing shows the boosters do better than the classic models: keep those.
            why = f"no validation ({reason}): BTYD kept"
            self.choices_ = {o: single(o, "btyd", why) for o in OUTPUTS}
            self.validation_ = {"split": split, "reason": why}
            return
        metrics = validation_metrics(held, horizon, edges)
        candidates = found["default"]
        for booster, outputs in BOOSTERS.items():
            judged = outputs[0]
            scores = {name: metrics[judged][1](found[name][judged]["lgbm"], None) for name in tried}
            self.settings_scores_[booster] = scores
            best = "default"
            for name in tried:  # another setting must do better (NaN never does)
                if scores[name] > scores[best] + 1e-9:
                    best = name
            self.booster_settings_[booster] = best
            for output in outputs:
                candidates[output]["lgbm"] = found[best][output]["lgbm"]
        self.choices_ = choose_outputs(candidates, held, horizon, edges)
        self.validation_ = {
            "split": split,
            "rows": str(len(held)),
            "horizon_days": str(horizon),
            **{f"settings_{b}": n for b, n in self.booster_settings_.items()},
            **{f"metric_{o}": c.metric for o, c in self.choices_.items()},
        }

    def _boosters(self) -> _Boosters | None:
        if self.churn_ is None:
            return None
        assert self.timing_ is not None and self.spend_ is not None
        assert self.purchases_ is not None
        return _Boosters(
            self.churn_, self.timing_, self.spend_, self.purchases_, self.feature_names_
        )

    def _candidates(
        self,
        table: pd.DataFrame,
        boosters: _Boosters | None,
        horizon: int,
        *,
        churn_lgbm: np.ndarray | None = None,
        held_hazards: np.ndarray | None = None,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Each output's candidates over ``horizon`` days for the rows of a feature table with
        BTYD columns at the training horizon: ``btyd``, ``naive`` and (with boosters) ``lgbm``.

        The LightGBM models learn corrections to BTYD at the training horizon; over a longer
        horizon the same corrections are applied to BTYD's expectations over it (log-odds for
        churn, per-bin log-odds for the hazards, the last bin's beyond the training bins, ratios
        for counts and values). ``held_hazards``: BTYD's hazards of a validation table (fitted at
        its own cutoff); otherwise those of ``btyd_``. ``churn_lgbm``: the churn model's
        probability at the training horizon when the caller has it (from the contributions).
        """
        trained = self.training_horizon_
        edges = self._edges(horizon)
        at_trained = table[["btyd_p_no_purchase", "btyd_expected_purchases", "btyd_clv"]]
        if horizon == trained:
            p_no, purchases, clv = (at_trained[c].to_numpy(float) for c in at_trained.columns)
            btyd_hazards = (
                held_hazards if held_hazards is not None else self.btyd_.hazards(table, edges)
            )
        else:
            p_no, purchases, clv = self.btyd_.expectations(table, horizon)
            btyd_hazards = self.btyd_.hazards(table, edges)
        naive = naive_values(table, horizon)
        # A feature row may leave the trailing window or the age unknown (NaN, as the service
        # accepts): the naive rule has no rate then, and BTYD's expectation stands in for it.
        naive_purchases = np.where(
            np.isfinite(naive["expected_purchases"]), naive["expected_purchases"], purchases
        )
        naive_clv = np.where(np.isfinite(naive["clv"]), naive["clv"], clv)
        found: dict[str, dict[str, np.ndarray]] = {
            "churn_probability": {"btyd": p_no},
            "p_purchase_30d": {"btyd": 1 - table["btyd_p_no_purchase_30d"].to_numpy(float)},
            "days_to_next_purchase": {"btyd": btyd_hazards},
            "expected_purchases": {"btyd": purchases, "naive": naive_purchases},
            "clv": {"btyd": clv, "naive": naive_clv},
        }
        if boosters is None:
            return found
        X = table.reindex(columns=boosters.feature_names)
        if churn_lgbm is None:
            churn_lgbm = boosters.churn.predict_proba(
                X,
                calibrated=self.calibrate_churn,
                base_probability=at_trained["btyd_p_no_purchase"].to_numpy(),
            )
        # Over the training horizon the bins are the timing model's own: BTYD's hazards over
        # them are ``btyd_hazards`` already (computed once: a request's latency).
        base_hazards = (
            btyd_hazards
            if horizon == trained
            else self.btyd_.hazards(table, boosters.timing.bin_edges_)
        )
        lgbm_hazards = boosters.timing.predict_hazard(X, base_hazards)
        if horizon != trained:
            shift = _logit(p_no) - _logit(at_trained["btyd_p_no_purchase"].to_numpy(float))
            churn_lgbm = special.expit(_logit(churn_lgbm) + shift)
            correction = _logit(lgbm_hazards) - _logit(base_hazards)
            bins = np.minimum(np.arange(edges.size - 1), correction.shape[1] - 1)
            lgbm_hazards = special.expit(_logit(btyd_hazards) + correction[:, bins])
        found["churn_probability"]["lgbm"] = churn_lgbm
        found["p_purchase_30d"]["lgbm"] = cdf_from_hazards(lgbm_hazards, edges, 30.0)
        found["days_to_next_purchase"]["lgbm"] = lgbm_hazards
        found["expected_purchases"]["lgbm"] = boosters.purchases.predict(X) * np.maximum(
            purchases, 1e-3
        )
        found["clv"]["lgbm"] = boosters.spend.predict(X) * np.maximum(clv, 1e-3)
        return found

    def _outputs(self, candidates: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Each output from its candidates and chosen weights (``days_to_next_purchase``: the
        hazards per bin); counts and values before their level (``levels_``)."""
        blends = {
            "churn_probability": blend_log_odds,
            "p_purchase_30d": blend_log_odds,
            "days_to_next_purchase": blend_log_odds,
            "expected_purchases": blend_values,
            "clv": blend_values,
        }
        return {
            output: combine(candidates[output], self.choices_[output].weights)
            for output, combine in blends.items()
        }

    def _edges(self, horizon: int) -> np.ndarray:
        return bin_edges(horizon, min(TimingModel(horizon).bin_days, horizon))

    def _fit_drift_profile(self, now: pd.DataFrame) -> None:
        """Bins and counts of key features and of the predictions on the population at ``as_of``
        (``drift_profile_``): the reference a scoring run's population is compared with."""
        scores = self.score_features(now, self.as_of_, n_reasons=0)
        reference = pd.concat(
            [
                now[[c for c in DRIFT_FEATURES if c in now]].reset_index(drop=True),
                scores[list(DRIFT_PREDICTIONS)],
            ],
            axis=1,
        )
        self.drift_profile_ = DriftProfile.fit(reference, reference.columns)

    def _fit_levels(self, table: pd.DataFrame, now: pd.DataFrame) -> None:
        """Set the level of the predicted counts and values at ``as_of`` (``levels_``).

        The chosen outputs rank customers well, but their level is an average over the training
        cutoffs, whose horizons fall in other seasons and at other ages of the customer base than
        the one predicted. The BTYD models fitted at ``as_of`` carry the age of the base; what
        they cannot know is the season. So the predicted total is anchored on BTYD's total at
        ``as_of`` times the ratio of actual to BTYD totals at the reference cutoff
        (:func:`reference_cutoff`: a whole number of years before ``as_of`` when one was trained
        on, else the latest). A single factor per output, learnt at fit time: scoring one
        customer or a million gives the same scores. Without labels (a fallback) the level is
        BTYD's own.
        """
        self.levels_: dict[str, float] = {"purchases": 1.0, "spend": 1.0}
        self.reference_cutoff_: pd.Timestamp | None = None
        if self.fallback_ is not None:
            return
        self.reference_cutoff_ = reference_cutoff(self.cutoffs_, self.as_of_)
        past = table.loc[table["cutoff"] == self.reference_cutoff_]
        outputs = self._outputs(self._candidates(now, self._boosters(), self.horizon_days))
        _, btyd_purchases, btyd_clv = self.btyd_.expectations(now, self.horizon_days)
        pairs = {
            "purchases": ("purchases_in_horizon", "btyd_expected_purchases", btyd_purchases),
            "spend": ("spend_in_horizon", "btyd_clv", btyd_clv),
        }
        names = {"purchases": "expected_purchases", "spend": "clv"}
        for name, (label, base, btyd_now) in pairs.items():
            btyd_ratio = past[label].clip(lower=0).sum() / _base(past[base]).sum()
            predicted = float(outputs[names[name]].sum())
            target = btyd_ratio * float(np.maximum(btyd_now, 1e-3).sum())
            self.levels_[name] = target / predicted if predicted > 0 else 1.0

    # -- scoring ----------------------------------------------------------------------------------

    def warm(self) -> RetentionModel:
        """Compile and check the churn and timing trees now, so that scoring a few customers runs
        in compiled code too (a service at start-up; batch runs compile on their own when large).
        A booster that cannot be compiled keeps being scored by LightGBM."""
        self._check_fitted()
        if self.churn_ is not None and self.timing_ is not None:
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
        boosters = self._boosters()
        contributions, churn_lgbm = None, None
        if boosters is not None and n_reasons > 0:
            # The reasons need every feature's contribution; their sums are the churn log-odds.
            contributions = boosters.churn.contributions(
                table.reindex(columns=self.feature_names_),
                table["btyd_p_no_purchase"].to_numpy(),
            )
            churn_lgbm = boosters.churn.probability_from_contributions(
                contributions, calibrated=self.calibrate_churn
            )
        outputs = self._outputs(
            self._candidates(table, boosters, self.horizon_days, churn_lgbm=churn_lgbm)
        )
        edges = self._edges(self.horizon_days)
        days = days_from_hazards(outputs["days_to_next_purchase"], edges)
        values = {
            "customer_id": table["customer_id"].astype("str").array,
            "churn_probability": outputs["churn_probability"],
            "p_alive": table["btyd_p_alive"].to_numpy(),
            "expected_purchases": outputs["expected_purchases"] * self.levels_["purchases"],
            "p_purchase_30d": outputs["p_purchase_30d"],
            "days_to_next_purchase": days,
            "expected_next_purchase_date": _days_after(to_cutoff(as_of), days),
            "clv": outputs["clv"] * self.levels_["spend"],
            "segment": table["segment"].to_numpy(),
            "reasons": churn_reasons(contributions, table, n_reasons=n_reasons)
            if contributions is not None
            else [[] for _ in range(len(table))],
        }
        # The columns, and their order, are the scores contract's (retain.data.contract.SCORES).
        return pd.DataFrame({name: values[name] for name in SCORE_COLUMNS})

    def purchase_hazards(self, table: pd.DataFrame) -> np.ndarray:
        """P(purchase in bin k | none before it) behind ``days_to_next_purchase``, for each row of
        a feature table (:meth:`features`), shape ``(n, bins)`` over :attr:`timing_edges_`."""
        self._check_fitted()
        candidates = self._candidates(table, self._boosters(), self.horizon_days)
        return blend_log_odds(
            candidates["days_to_next_purchase"], self.choices_["days_to_next_purchase"].weights
        )

    def purchase_survival(self, table: pd.DataFrame, days: float | Sequence[float]) -> np.ndarray:
        """P(no purchase by each of ``days``) for each row of a feature table, shape
        ``(n, len(days))``: the survival curve behind ``days_to_next_purchase``."""
        hazards = self.purchase_hazards(table)
        wanted = [float(d) for d in np.atleast_1d(days)]
        return 1.0 - cdf_from_hazards(hazards, self.timing_edges_, wanted)

    @property
    def timing_edges_(self) -> np.ndarray:
        """Edges in days of the bins of :meth:`purchase_hazards`, 0 to the horizon."""
        return self._edges(self.horizon_days)

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the model folder at ``path``: JSON parts and LightGBM text boosters, with a
        manifest of their hashes (:mod:`retain.models.persistence`); returns ``path``."""
        from retain.models.persistence import save_model

        return save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> RetentionModel:
        """The model in the folder at ``path``: every part's hash is checked before any is read,
        and nothing is unpickled (an old ``.pkl`` is refused with how to convert it)."""
        from retain.models.persistence import load_model

        model: RetentionModel = load_model(path)
        return model

    # -- helpers ----------------------------------------------------------------------------------

    @staticmethod
    def _with_btyd(table: pd.DataFrame, btyd: BTYDFeatures) -> pd.DataFrame:
        return pd.concat([table, btyd.transform(table)], axis=1)

    def _check_fitted(self) -> None:
        if not hasattr(self, "choices_"):
            raise NotFittedError("the RetentionModel is not fitted: call fit first")
