"""The compiled tree walks give LightGBM's own numbers: contributions and raw scores over bins."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from retain.models.trees import (
    checked_trees,
    compile_booster,
    leaf_tables,
    predict_over_bins,
    table_contributions,
    tree_contributions,
    warm,
    warmed,
    warmed_over_bins,
)


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[:, 2] = rng.integers(0, 3, size=n)  # many exact zeros: the "Zero" missing type's case
    X[rng.random(n) < 0.2, 1] = np.nan  # missing values: default directions
    logit = X[:, 0] - np.nan_to_num(X[:, 1]) + 0.5 * X[:, 2] + X[:, 5] * (X[:, 3] > 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y


@pytest.fixture(scope="module", params=[False, True], ids=["nan-missing", "zero-as-missing"])
def booster(request: pytest.FixtureRequest) -> lgb.Booster:
    X, y = _data(4000, 0)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "verbose": -1,
        "seed": 0,
        "zero_as_missing": request.param,
        "min_data_in_leaf": 5,
    }
    return lgb.train(params, lgb.Dataset(X, y), num_boost_round=40)


def test_contributions_equal_lightgbm_pred_contrib(booster: lgb.Booster) -> None:
    X, _ = _data(3000, 1)
    trees = compile_booster(booster)
    assert trees is not None
    theirs = booster.predict(X, pred_contrib=True)
    tables = leaf_tables(trees)
    assert tables is not None
    for ours in (tree_contributions(booster, trees, X), table_contributions(trees, tables, X)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)
        # and they still add up to the raw score
        raw = booster.predict(X, raw_score=True)
        np.testing.assert_allclose(ours.sum(axis=1), raw, atol=1e-12)


def test_values_lightgbm_reads_as_zero(booster: lgb.Booster) -> None:
    """LightGBM reads anything within its kZeroThreshold (a float32 1e-35) of zero as 0.0; the
    compiled walks must too, at every split, on the path or off it."""
    X, _ = _data(400, 5)
    edge = float(np.float32(1e-35))
    tiny = np.array([edge, -edge, np.nextafter(edge, 1.0), -np.nextafter(edge, 1.0), 1e-36, 0.0])
    rng = np.random.default_rng(6)
    mask = rng.random(X.shape) < 0.4
    X[mask] = rng.choice(tiny, size=int(mask.sum()))
    trees = compile_booster(booster)
    assert trees is not None
    tables = leaf_tables(trees)
    assert tables is not None
    theirs = booster.predict(X, pred_contrib=True)
    np.testing.assert_allclose(table_contributions(trees, tables, X), theirs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tree_contributions(booster, trees, X), theirs, rtol=0, atol=1e-12)


def test_raw_scores_over_bins_equal_repeated_rows(booster: lgb.Booster) -> None:
    # The last feature plays the bin start: each row is scored at every bin's value of it.
    X, _ = _data(500, 2)
    starts = np.array([0.0, 0.5, 1.0, 2.0, -1.0, 3.5])
    trees = compile_booster(booster)
    assert trees is not None
    ours = predict_over_bins(trees, X[:, :-1], starts)
    repeated = np.repeat(X, len(starts), axis=0)
    repeated[:, -1] = np.tile(starts, len(X))
    theirs = booster.predict(repeated, raw_score=True).reshape(len(X), len(starts))
    np.testing.assert_array_equal(ours, theirs)


def test_a_booster_the_arrays_cannot_model_falls_back() -> None:
    rng = np.random.default_rng(3)
    X = rng.integers(0, 5, size=(2000, 3)).astype(float)
    y = (X[:, 0] == 2).astype(float)
    categorical = lgb.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(X, y, categorical_feature=[0]),
        num_boost_round=5,
    )
    assert compile_booster(categorical) is None
    assert checked_trees(categorical) is None
    assert not warm(categorical) and warmed(categorical) is None


def test_checked_trees_keeps_its_verdict_on_the_booster(booster: lgb.Booster) -> None:
    first = checked_trees(booster)
    assert first is not None
    assert checked_trees(booster) is first


def test_warm_prepares_the_compiled_paths_for_a_few_rows() -> None:
    X, y = _data(2000, 7)
    fresh = lgb.train(
        {"objective": "binary", "num_leaves": 7, "verbose": -1, "min_data_in_leaf": 5},
        lgb.Dataset(X, y),
        num_boost_round=10,
    )
    starts = np.array([0.0, 1.0, 2.0])
    assert warmed(fresh) is None and warmed_over_bins(fresh, starts) is None  # nothing compiled
    assert warm(fresh) and warm(fresh, starts)
    prepared = warmed(fresh)
    assert prepared is not None and prepared.tables is not None
    assert warmed_over_bins(fresh, starts) is not None
    assert warmed_over_bins(fresh, np.array([0.0, 5.0])) is None  # other bins: not prepared
