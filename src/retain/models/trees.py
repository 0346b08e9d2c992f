"""LightGBM's trees as flat arrays, walked by compiled (numba) loops where LightGBM's own API does
far more work than the answer needs, with the same results.

Two uses, both for scoring millions of customers:

- **TreeSHAP by decision pattern** (:func:`tree_contributions`). Path-dependent TreeSHAP values of
  one tree depend on a row only through the side it takes at each of the tree's splits. A
  15-leaf tree has 14 splits, so at most 2^14 patterns, and in practice a few thousand among
  millions of rows. LightGBM's exact TreeSHAP (``pred_contrib``) is computed once per pattern, on
  one row that has it, and every row adds its patterns' values: the same numbers as
  ``pred_contrib`` on every row (to rounding), about a hundred times faster on a million rows.
- **Hazards for every time bin** (:func:`predict_over_bins`). The timing model scores a customer
  once per bin, with the bin's start as one more feature. Most splits do not look at the bin, so
  one walk per tree and customer follows the customer's own values and forks only at the splits
  on the bin, carrying the set of bins that went each way: one walk instead of one per bin.

Every split is decided exactly as LightGBM decides it (``<=`` on the double threshold, missing
values by the split's missing type and default direction), and the first use of a booster checks
the leaves it reaches against ``pred_leaf``; anything the arrays cannot represent (categorical
splits, linear trees, trees with more than 31 splits) makes :func:`compile_booster` return None and
the callers fall back to LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import lightgbm as lgb
import numpy as np

__all__ = [
    "FAST_ROWS",
    "TreeArrays",
    "checked_trees",
    "compile_booster",
    "predict_over_bins",
    "tree_contributions",
]

_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO: Final = 1e-35  # LightGBM's kZeroThreshold
_MAX_SPLITS: Final = 31  # decision patterns are bits of an int32
_MAX_TABLE_BITS: Final = 16  # patterns are looked up in a 2^bits table per tree up to this
_BLOCK_ROWS: Final = 200_000
# From this many rows on, the compiled paths pay for themselves (their fixed cost: ~0.1 s to read
# the trees, one LightGBM call per tree, and a one-time compilation cached on disk).
FAST_ROWS: Final = 20_000
_CHECK_ROWS: Final = 256
_TOLERANCE: Final = 1e-9


@dataclass(frozen=True)
class TreeArrays:
    """Every split and leaf of a booster. Node ids are global; a child below zero is the leaf
    ``~child`` (global too). Splits of tree ``t`` are ``split_start[t]:split_start[t + 1]``, in the
    order of their ``split_index`` (bit ``k`` of a pattern is split ``split_start[t] + k``)."""

    feature: np.ndarray
    threshold: np.ndarray
    missing: np.ndarray
    default_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaf_value: np.ndarray
    root: np.ndarray
    split_start: np.ndarray
    n_features: int

    @property
    def n_trees(self) -> int:
        return len(self.root)


def compile_booster(booster: lgb.Booster) -> TreeArrays | None:
    """The booster's trees as arrays, or None when they use anything the arrays do not model."""
    dump = booster.dump_model()
    if dump.get("linear_tree") or any(
        "==" in str(t.get("tree_structure", {}).get("decision_type", "")) for t in dump["tree_info"]
    ):
        return None
    nodes: dict[str, list[Any]] = {
        k: [] for k in ("feature", "threshold", "missing", "default_left", "left", "right")
    }
    leaves: list[float] = []
    roots: list[int] = []
    starts = [0]
    for tree in dump["tree_info"]:
        first_split, first_leaf = len(nodes["feature"]), len(leaves)
        n_splits = tree["num_leaves"] - 1
        if n_splits > _MAX_SPLITS:
            return None
        for name in nodes:
            nodes[name].extend([None] * n_splits)
        leaves.extend([0.0] * tree["num_leaves"])
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "leaf_index" in node:
                leaves[first_leaf + node["leaf_index"]] = float(node["leaf_value"])
                continue
            if node["decision_type"] != "<=":
                return None
            i = first_split + node["split_index"]
            nodes["feature"][i] = node["split_feature"]
            nodes["threshold"][i] = float(node["threshold"])
            nodes["missing"][i] = _MISSING[node["missing_type"]]
            nodes["default_left"][i] = bool(node["default_left"])
            for side in ("left", "right"):
                child = node[f"{side}_child"]
                nodes[side][i] = (
                    ~(first_leaf + child["leaf_index"])
                    if "leaf_index" in child
                    else first_split + child["split_index"]
                )
                stack.append(child)
        root = tree["tree_structure"]
        roots.append(~first_leaf if "leaf_index" in root else first_split)
        starts.append(len(nodes["feature"]))
    return TreeArrays(
        feature=np.asarray(nodes["feature"], dtype=np.int32),
        threshold=np.asarray(nodes["threshold"], dtype=np.float64),
        missing=np.asarray(nodes["missing"], dtype=np.int8),
        default_left=np.asarray(nodes["default_left"], dtype=np.bool_),
        left=np.asarray(nodes["left"], dtype=np.int32),
        right=np.asarray(nodes["right"], dtype=np.int32),
        leaf_value=np.asarray(leaves, dtype=np.float64),
        root=np.asarray(roots, dtype=np.int32),
        split_start=np.asarray(starts, dtype=np.int32),
        n_features=booster.num_feature(),
    )


def checked_trees(
    booster: lgb.Booster, sample: np.ndarray, bin_starts: np.ndarray | None = None
) -> TreeArrays | None:
    """The booster's arrays, once they reproduce LightGBM on a sample of the rows to be scored
    (contributions; or raw scores over the bins, for the timing model); None otherwise.

    The verdict is kept on the booster object, so it is reached once per loaded model.
    """
    key = "_retain_trees" if bin_starts is None else "_retain_trees_over_bins"
    if hasattr(booster, key):
        return getattr(booster, key)
    trees = compile_booster(booster)
    if trees is not None:
        rows = np.ascontiguousarray(sample[:_CHECK_ROWS], dtype=np.float64)
        if bin_starts is None:
            ours = tree_contributions(booster, trees, rows)
            theirs = booster.predict(rows, pred_contrib=True)
        else:
            n_bins = len(bin_starts)
            ours = predict_over_bins(trees, rows, bin_starts)
            repeated = np.empty((rows.shape[0] * n_bins, rows.shape[1] + 1))
            repeated[:, :-1] = np.repeat(rows, n_bins, axis=0)
            repeated[:, -1] = np.tile(bin_starts, rows.shape[0])
            theirs = np.asarray(booster.predict(repeated, raw_score=True)).reshape(-1, n_bins)
        if not np.allclose(ours, np.asarray(theirs), rtol=0.0, atol=_TOLERANCE, equal_nan=True):
            trees = None
    setattr(booster, key, trees)
    return trees


def _arrays(trees: TreeArrays) -> tuple[np.ndarray, ...]:
    return (
        trees.feature,
        trees.threshold,
        trees.missing,
        trees.default_left,
        trees.left,
        trees.right,
    )


# -- TreeSHAP by decision pattern -------------------------------------------------------------------


def tree_contributions(booster: lgb.Booster, trees: TreeArrays, data: np.ndarray) -> np.ndarray:
    """``booster.predict(data, pred_contrib=True)`` computed once per decision pattern per tree.

    Shape ``(n, n_features + 1)``: the features' contributions, then the expected value. Rows go
    in blocks, so the pattern table (rows x trees) stays small whatever the input's size.
    """
    data = np.ascontiguousarray(data, dtype=np.float64)
    result = np.empty((data.shape[0], trees.n_features + 1), dtype=np.float64)
    for first in range(0, data.shape[0], _BLOCK_ROWS):
        block = data[first : first + _BLOCK_ROWS]
        result[first : first + len(block)] = _block_contributions(booster, trees, block)
    return result


def _block_contributions(booster: lgb.Booster, trees: TreeArrays, data: np.ndarray) -> np.ndarray:
    kernels = _kernels()
    n_trees = trees.n_trees
    # Each row's pattern in each tree, (trees, rows); then numbered within the tree, in place.
    which = kernels.patterns(
        np.ascontiguousarray(data.T),
        trees.split_start,
        trees.threshold,
        trees.feature,
        *_missing_directions(trees),
    )
    tables: list[np.ndarray] = []  # per tree: each pattern's contributions to the used columns
    used: list[np.ndarray] = []
    for t in range(n_trees):
        n_splits = int(trees.split_start[t + 1] - trees.split_start[t])
        if n_splits <= _MAX_TABLE_BITS:
            first = np.empty(min(data.shape[0], 1 << n_splits), dtype=np.int64)
            count = kernels.number_patterns(
                which[t], np.full(1 << n_splits, -1, dtype=np.int32), first
            )
            representatives = first[:count]
        else:
            _, representatives, inverse = np.unique(
                which[t], return_index=True, return_inverse=True
            )
            which[t] = inverse
        values = np.asarray(
            booster.predict(
                data[representatives], pred_contrib=True, start_iteration=t, num_iteration=1
            ),
            dtype=np.float64,
        )
        columns = np.flatnonzero(np.any(values != 0.0, axis=0))
        used.append(columns)
        tables.append(values[:, columns])
    width = max(1, max(len(c) for c in used))
    offsets = np.zeros(n_trees + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(v) for v in tables])
    stacked = np.zeros((width, int(offsets[-1])), dtype=np.float64)  # (column slot, pattern)
    columns = np.full((n_trees, width), -1, dtype=np.int64)
    for t in range(n_trees):
        stacked[: tables[t].shape[1], offsets[t] : offsets[t + 1]] = tables[t].T
        columns[t, : len(used[t])] = used[t]
    counts = np.array([len(c) for c in used], dtype=np.int64)
    result = np.zeros((trees.n_features + 1, data.shape[0]), dtype=np.float64)
    kernels.add_patterns(result, which, offsets, stacked, columns, counts)
    return result.T


# -- hazards over time bins -------------------------------------------------------------------------


def predict_over_bins(trees: TreeArrays, data: np.ndarray, bin_starts: np.ndarray) -> np.ndarray:
    """Raw scores of every row at every bin, shape ``(n, n_bins)``: the same as predicting the
    rows repeated once per bin with the bin's start as the last feature (LightGBM ``raw_score``).
    """
    n_bins = len(bin_starts)
    if n_bins > 64:
        raise ValueError("predict_over_bins handles at most 64 bins")
    kernels = _kernels()
    bin_feature = trees.n_features - 1
    # For every split on the bin feature: the bins (bit k = bin k) that go left.
    goes_left = np.zeros(len(trees.feature), dtype=np.uint64)
    on_bins = np.flatnonzero(trees.feature == bin_feature)
    for i in on_bins:
        for k, start in enumerate(bin_starts):
            if _goes_left(
                float(start), trees.threshold[i], trees.missing[i], trees.default_left[i]
            ):
                goes_left[i] |= np.uint64(1) << np.uint64(k)
    data = np.ascontiguousarray(data, dtype=np.float64)
    out = np.zeros((data.shape[0], n_bins), dtype=np.float64)
    kernels.over_bins(
        data, bin_feature, goes_left, trees.root, trees.leaf_value, out, *_arrays(trees)
    )
    return out


def _missing_directions(trees: TreeArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per split: where a missing value goes, whether zeros count as missing, and the default
    direction (LightGBM: a missing value is a zero unless the split has a place for missing
    values; on "Zero" splits zeros, and so missing values, go the default way)."""
    nan_left = np.where(
        trees.missing == _MISSING["None"], trees.threshold >= 0.0, trees.default_left
    )
    zero_missing = trees.missing == _MISSING["Zero"]
    return nan_left.astype(np.bool_), zero_missing, trees.default_left


def _goes_left(value: float, threshold: float, missing: int, default_left: bool) -> bool:
    """LightGBM's numerical decision (``Tree::NumericalDecision``), for one value."""
    if np.isnan(value) and missing != _MISSING["NaN"]:
        value = 0.0
    if (missing == _MISSING["Zero"] and -_ZERO <= value <= _ZERO) or (
        missing == _MISSING["NaN"] and np.isnan(value)
    ):
        return bool(default_left)
    return bool(value <= threshold)


# -- the compiled loops -----------------------------------------------------------------------------


def _kernels() -> Any:
    """The numba loops (``_tree_kernels``), imported on first use: numba's import and the
    compilation (cached on disk after the first run) are paid only by large scoring runs."""
    from retain.models import _tree_kernels

    return _tree_kernels
