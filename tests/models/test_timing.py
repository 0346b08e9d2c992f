"""TimingModel: the person-period expansion by hand, then the fitted model on simulated customers.

Training uses the cutoffs 2023-06-30 and 2023-12-31 (horizon 180 days); the model is judged on a
later cutoff (2024-06-30), and, for calibration without drift, on *other* customers of the same
shop at a training cutoff. The calibration checks are what catches broken censoring: a model that
reads "no purchase in the horizon" as a purchase at its end must fail them, and
``test_treating_censored_examples_as_events_fails_calibration`` shows that it does.

The models here use learning rate 0.1 and 20 early-stopping rounds to keep the run short.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from retain.data.synthetic import simulate
from retain.errors import RetainInputError
from retain.features import build_features
from retain.models.retention import BTYDFeatures
from retain.models.timing import BIN_FEATURE, TimingModel, bin_edges

HORIZON = 180
TRAIN_CUTOFFS = ("2023-06-30", "2023-12-31")
TEST_CUTOFF = "2024-06-30"
LABELS = ["churned", "purchased", "days_to_next_purchase", "purchases_in_horizon"]
NOT_FEATURES = ["customer_id", "segment", "cutoff", *LABELS, "spend_in_horizon"]
FAST = {"learning_rate": 0.1, "early_stopping_rounds": 20}


def features(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=NOT_FEATURES).astype("float64")


def table_at(transactions: pd.DataFrame, cutoff: str) -> pd.DataFrame:
    table = build_features(transactions, cutoff, horizon_days=HORIZON)
    return table.assign(cutoff=pd.Timestamp(cutoff))


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    """Training (two cutoffs stacked), test (a later cutoff), fresh (other customers, 2023-12-31)."""
    shop = simulate(6000, seed=11).transactions
    others = simulate(6000, seed=1011).transactions
    return {
        "train": pd.concat([table_at(shop, c) for c in TRAIN_CUTOFFS], ignore_index=True),
        "test": table_at(shop, TEST_CUTOFF),
        "fresh": table_at(others, TRAIN_CUTOFFS[-1]),
    }


def fit(table: pd.DataFrame, **kwargs: object) -> TimingModel:
    model = TimingModel(HORIZON, **(FAST | kwargs))
    return model.fit(
        features(table), table["days_to_next_purchase"], table["purchased"], cutoff=table["cutoff"]
    )


@pytest.fixture(scope="module")
def model(tables: dict[str, pd.DataFrame]) -> TimingModel:
    return fit(tables["train"])


def bought_within(table: pd.DataFrame, days: int) -> np.ndarray:
    return (table["purchased"] & (table["days_to_next_purchase"] <= days)).to_numpy()


def calibration_errors(model: TimingModel, table: pd.DataFrame) -> dict[int, float]:
    """Mean predicted minus observed P(purchase within d days), for d = 30, 90 and the horizon."""
    days = [30, 90, HORIZON]
    predicted = model.predict_cdf(features(table), days).mean(axis=0)
    return {
        d: float(p - bought_within(table, d).mean()) for d, p in zip(days, predicted, strict=True)
    }


# -- the expansion, by hand -----------------------------------------------------------------------


def test_expansion_handles_events_and_censoring() -> None:
    model = TimingModel(30, 7)  # bins (0,7] (7,14] (14,21] (21,28] (28,30]
    edges = model._edges()
    np.testing.assert_array_equal(edges, [0, 7, 14, 21, 28, 30])
    days = np.array([1.0, 15.0, 30.0, 30.0, 10.0, 7.0])
    event = np.array([True, True, True, False, False, True])
    example, bin_index, target, weight = model._expand(days, event, None, edges)
    rows = pd.DataFrame({"example": example, "bin": bin_index, "target": target})
    per_example = rows.groupby("example").agg(bins=("bin", list), events=("target", "sum"))
    assert per_example.loc[0, "bins"] == [0]  # bought on day 1: bin 0, an event
    assert per_example.loc[1, "bins"] == [0, 1, 2]  # day 15: at risk in bins 0-2, event in 2
    assert per_example.loc[2, "bins"] == [0, 1, 2, 3, 4]  # day 30: the short last bin
    assert per_example.loc[3, "bins"] == [0, 1, 2, 3, 4]  # censored at 30: all bins, no event
    assert per_example.loc[4, "bins"] == [0]  # censored at 10: only the bin fully observed
    assert per_example.loc[5, "bins"] == [0]  # day 7 is the last day of bin 0
    assert per_example["events"].tolist() == [1, 1, 1, 0, 0, 1]
    event_rows = rows[rows["target"] == 1]
    assert event_rows["bin"].tolist() == [0, 0, 2, 4]
    assert weight is None and model.subsample_rate_ == 1.0


def test_subsampling_keeps_every_event_and_reweights_the_rest() -> None:
    rng = np.random.default_rng(0)
    days = rng.integers(1, 181, 5000).astype(float)
    event = rng.random(5000) < 0.3
    days[~event] = 180.0
    full = TimingModel(180, 7)
    _, _, target, _ = full._expand(days, event, None, full._edges())
    capped = TimingModel(180, 7, max_rows=20_000)
    example, _, kept_target, weight = capped._expand(days, event, None, capped._edges())
    assert weight is not None
    assert kept_target.sum() == target.sum() == event.sum()  # every purchase row is kept
    assert abs(example.size - 20_000) < 500
    assert np.all(weight[kept_target == 1] == 1.0)
    rate = capped.subsample_rate_
    assert np.allclose(weight[kept_target == 0], 1 / rate)
    # The weighted count of non-event rows estimates the full count.
    assert weight[kept_target == 0].sum() == pytest.approx((target == 0).sum(), rel=0.02)
    with pytest.raises(RetainInputError, match="max_rows"):
        bad = TimingModel(180, 7, max_rows=100)
        bad._expand(days, event, None, bad._edges())


# -- the fitted model -----------------------------------------------------------------------------


def test_thirty_day_repurchase_ranks_out_of_time(
    model: TimingModel, tables: dict[str, pd.DataFrame]
) -> None:
    test = tables["test"]
    p30 = model.predict_cdf(features(test), 30)
    assert p30.shape == (len(test),)
    assert roc_auc_score(bought_within(test, 30), p30) > 0.82  # measured 0.872


def test_cdf_is_a_distribution_function(
    model: TimingModel, tables: dict[str, pd.DataFrame]
) -> None:
    X = features(tables["test"])
    days = [0, 1, 3, 7, 10, 30, 61.5, 90, 179, 180, 250, 1000]
    cdf = model.predict_cdf(X, days)
    assert cdf.shape == (len(X), len(days))
    assert cdf.min() >= 0.0 and cdf.max() <= 1.0
    assert np.all(np.diff(cdf, axis=1) >= 0)
    assert np.all(cdf[:, 0] == 0.0)
    # At bin ends the CDF is 1 - survival; inside a bin log-survival is linear in the day.
    survival = model.predict_survival(X)
    assert survival.shape == (len(X), model.n_bins_)
    np.testing.assert_allclose(model.predict_cdf(X, model.bin_edges_[1:]), 1 - survival, atol=1e-12)
    log_s = np.log1p(-model.predict_cdf(X, [7, 10, 14]))
    np.testing.assert_allclose(log_s[:, 1], log_s[:, 0] + 3 / 7 * (log_s[:, 2] - log_s[:, 0]))
    hazards = model.predict_hazard(X)
    np.testing.assert_allclose(np.cumprod(1 - hazards, axis=1), survival, rtol=1e-9)


def test_calibrated_on_other_customers_at_a_training_cutoff(
    model: TimingModel, tables: dict[str, pd.DataFrame]
) -> None:
    """No drift here, so the model must get the purchase rates right: this is the censoring test."""
    errors = calibration_errors(model, tables["fresh"])
    assert all(abs(e) < 0.025 for e in errors.values()), errors  # measured +0.001 .. +0.010


def test_calibrated_out_of_time(model: TimingModel, tables: dict[str, pd.DataFrame]) -> None:
    """Looser: the test cutoff's customers are older than any seen in training (T beyond the
    training range), and trees extrapolate flat, so the model over-predicts a little there."""
    errors = calibration_errors(model, tables["test"])
    assert all(abs(e) < 0.05 for e in errors.values()), errors  # measured +0.001 .. +0.024


def test_treating_censored_examples_as_events_fails_calibration(
    tables: dict[str, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The calibration checks above have the power to catch broken censoring: with an expansion
    that turns every censored example into a purchase in the last bin, they fail by far."""
    expand = TimingModel._expand

    def broken(
        self: TimingModel, days: np.ndarray, event: np.ndarray, *args: object
    ) -> tuple[np.ndarray, ...]:
        return expand(self, np.minimum(days, HORIZON), np.ones_like(event), *args)

    monkeypatch.setattr(TimingModel, "_expand", broken)
    errors = calibration_errors(fit(tables["train"], learning_rate=0.2), tables["fresh"])
    assert errors[HORIZON] > 0.5, errors  # P(within the horizon) is near 1


def test_predicted_days_are_the_median(model: TimingModel, tables: dict[str, pd.DataFrame]) -> None:
    X = features(tables["test"])
    days = model.predict_days(X)
    known = np.isfinite(days)
    assert days.shape == (len(X),) and np.all(days[known] > 0)
    # The CDF reaches 1/2 at the predicted day.
    some = np.flatnonzero(known)[:400]
    cdf_at = np.diag(model.predict_cdf(X.iloc[some], days[some]))  # row i at its own day
    np.testing.assert_allclose(cdf_at, 0.5, atol=1e-9)
    # Customers expected sooner are more likely to buy within 30 days.
    assert (
        pd.Series(days[known]).corr(pd.Series(model.predict_cdf(X, 30)[known]), method="spearman")
        < -0.9
    )


def test_no_predicted_day_lies_beyond_the_horizon(
    model: TimingModel, tables: dict[str, pd.DataFrame]
) -> None:
    """The model learns nothing past the horizon (censored there), so it dates no purchase past
    it: the days are within it, and NaN exactly for the customers whose P(purchase within the
    horizon) is below one half (whose median would lie beyond it)."""
    X = features(tables["test"])
    days = model.predict_days(X)
    unknown = np.isnan(days)
    assert np.array_equal(unknown, model.predict_cdf(X, HORIZON) < 0.5)
    assert 0 < unknown.sum() < len(X)  # both kinds of customer are there
    assert np.all((days[~unknown] > 0) & (days[~unknown] <= HORIZON))
    # The same from hazards already predicted (the RetentionModel's path).
    np.testing.assert_array_equal(model.days_from_hazards(model.predict_hazard(X)), days)


def test_contributions_explain_the_hazard(
    model: TimingModel, tables: dict[str, pd.DataFrame]
) -> None:
    X = features(tables["test"]).iloc[:300]
    first = model.contributions(X)
    assert list(first.columns) == [*model.feature_names_, BIN_FEATURE, "bias"]
    h = model.predict_hazard(X)
    np.testing.assert_allclose(first.sum(axis=1), np.log(h[:, 0] / (1 - h[:, 0])), atol=1e-9)
    later = model.contributions(X, day=100)
    k = int(np.searchsorted(model.bin_edges_[1:], 100))
    np.testing.assert_allclose(later.sum(axis=1), np.log(h[:, k] / (1 - h[:, k])), atol=1e-9)
    assert BIN_FEATURE in model.feature_importance().index


# -- reproducibility ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return tables["fresh"].iloc[:2000].reset_index(drop=True)


def test_same_seed_gives_identical_predictions(small: pd.DataFrame) -> None:
    first = fit(small, random_state=5)
    again = clone(first).fit(features(small), small["days_to_next_purchase"], small["purchased"])
    X = features(small)
    np.testing.assert_array_equal(again.predict_cdf(X, [30, 90]), first.predict_cdf(X, [30, 90]))
    np.testing.assert_array_equal(again.predict_days(X), first.predict_days(X))


def test_subsampled_fit_stays_calibrated(small: pd.DataFrame) -> None:
    """Half the non-event rows, reweighted: the purchase rates barely move."""
    full = fit(small)
    capped = fit(small, max_rows=full.n_rows_ // 2)
    assert capped.n_rows_ < 0.6 * full.n_rows_ and capped.subsample_rate_ < 0.6
    errors = calibration_errors(capped, small)
    assert all(abs(e) < 0.05 for e in errors.values()), errors  # measured +0.000 .. +0.030
    shift = errors[HORIZON] - calibration_errors(full, small)[HORIZON]
    assert abs(shift) < 0.025  # measured 0.013


def test_a_float32_fit_matches_the_float64_fit(small: pd.DataFrame) -> None:
    """The lean path's float32 features (issue 18): LightGBM bins them as it bins float64, so the
    hazards barely move."""
    full = fit(small)
    lean = TimingModel(HORIZON, **FAST).fit(
        features(small).astype("float32"),
        small["days_to_next_purchase"],
        small["purchased"],
        cutoff=small["cutoff"],
    )
    X = features(small)
    np.testing.assert_allclose(
        lean.predict_cdf(X, [30, 90]), full.predict_cdf(X, [30, 90]), atol=0.01
    )


def test_pickle_round_trip_in_a_fresh_process(
    model: TimingModel, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    X = features(tables["test"]).iloc[:1000]
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    X.to_pickle(tmp_path / "X.pkl")
    script = (
        "import pickle, sys, numpy as np, pandas as pd\n"
        "d = sys.argv[1]\n"
        "model = pickle.loads(open(d + '/model.pkl', 'rb').read())\n"
        "X = pd.read_pickle(d + '/X.pkl')\n"
        "np.save(d + '/cdf.npy', model.predict_cdf(X, [7, 30, 180]))\n"
        "np.save(d + '/days.npy', model.predict_days(X))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "cdf.npy"), model.predict_cdf(X, [7, 30, 180]))
    np.testing.assert_array_equal(np.load(tmp_path / "days.npy"), model.predict_days(X))


# -- bad input ------------------------------------------------------------------------------------


def test_bad_labels_and_settings(small: pd.DataFrame) -> None:
    X, days, bought = features(small), small["days_to_next_purchase"], small["purchased"]
    with pytest.raises(RetainInputError, match="purchased has 1999 rows but X has 2000"):
        TimingModel(HORIZON).fit(X, days, bought.iloc[1:])
    with pytest.raises(RetainInputError, match="days_to_next_purchase has 2 negative values"):
        TimingModel(HORIZON).fit(X, days.where(days.index > 1, -1.0), bought)
    with pytest.raises(RetainInputError, match="days_to_next_purchase has 1 missing values"):
        TimingModel(HORIZON).fit(X, days.where(days.index > 0), bought)
    with pytest.raises(RetainInputError, match="purchased has 1 values other than 0/1"):
        TimingModel(HORIZON).fit(X, days, bought.astype(float).where(bought.index > 0, 0.5))
    with pytest.raises(RetainInputError, match="both outcomes"):
        TimingModel(HORIZON).fit(X, days, np.zeros(len(X)))
    with pytest.raises(RetainInputError, match="named 'bin_start'"):
        TimingModel(HORIZON).fit(X.assign(bin_start=0.0), days, bought)
    with pytest.raises(RetainInputError, match=r"bin_days \(200\) must not exceed"):
        TimingModel(HORIZON, 200).fit(X, days, bought)
    with pytest.raises(RetainInputError, match="horizon_days must be a positive whole number"):
        TimingModel(0).fit(X, days, bought)
    with pytest.raises(RetainInputError, match="non-numeric columns: customer_id"):
        TimingModel(HORIZON).fit(small[["customer_id", "recency"]], days, bought)


def test_bad_day_counts(model: TimingModel, small: pd.DataFrame) -> None:
    X = features(small).iloc[:5]
    for days in (-1, [30, np.nan], [[30]]):
        with pytest.raises(RetainInputError, match="non-negative day counts"):
            model.predict_cdf(X, days)


# -- a baseline to boost from ---------------------------------------------------------------------


def bgnbd_hazards(table: pd.DataFrame) -> np.ndarray:
    """BG/NBD's per-bin hazards, BG/NBD fitted at each cutoff on that cutoff's customers."""
    edges = bin_edges(HORIZON, 7)
    return np.vstack(
        [
            BTYDFeatures(HORIZON).fit(group).hazards(group, edges)
            for _, group in table.groupby("cutoff", sort=True)
        ]
    )


def test_a_model_that_learns_nothing_returns_the_baseline(
    tables: dict[str, pd.DataFrame],
) -> None:
    train = tables["train"].sort_values("cutoff", kind="stable", ignore_index=True)
    base = bgnbd_hazards(train)
    assert base.shape == (len(train), 26) and np.all((base > 0) & (base < 1))
    idle = TimingModel(HORIZON, n_estimators=1, early_stopping_rounds=None, learning_rate=1e-9)
    idle.fit(
        features(train),
        train["days_to_next_purchase"],
        train["purchased"],
        base_hazard=base,
    )
    np.testing.assert_allclose(idle.predict_hazard(features(train), base), base, rtol=1e-6)


def test_boosting_from_bgnbd_stays_calibrated_and_ranks(tables: dict[str, pd.DataFrame]) -> None:
    train = tables["train"].sort_values("cutoff", kind="stable", ignore_index=True)
    test = tables["test"]
    model = TimingModel(HORIZON, **FAST).fit(
        features(train),
        train["days_to_next_purchase"],
        train["purchased"],
        cutoff=train["cutoff"],
        base_hazard=bgnbd_hazards(train),
    )
    base = bgnbd_hazards(test)
    X = features(test)
    p30 = model.predict_cdf(X, 30, base)
    assert roc_auc_score(bought_within(test, 30), p30) > 0.82
    predicted = model.predict_cdf(X, [30, 90, HORIZON], base).mean(axis=0)
    observed = [bought_within(test, d).mean() for d in (30, 90, HORIZON)]
    np.testing.assert_allclose(predicted, observed, atol=0.03)
    # The baseline is part of the model: scoring without it, or with the wrong shape, is refused.
    with pytest.raises(RetainInputError, match="exactly when the model was fitted with one"):
        model.predict_cdf(X, 30)
    with pytest.raises(RetainInputError, match="base_hazard must have shape"):
        model.predict_cdf(X, 30, base[:, :5])
