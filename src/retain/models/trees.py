"""LightGBM's trees as flat arrays, walked by compiled (numba) loops where LightGBM's own API does
far more work than the answer needs, with the same results.

Three uses:

- **TreeSHAP by decision pattern** (:func:`tree_contributions`), for millions of customers.
  Path-dependent TreeSHAP values of one tree depend on a row only through the side it takes at
  each of the tree's splits. A 15-leaf tree has 14 splits, so at most 2^14 patterns, and in
  practice a few thousand among millions of rows. LightGBM's exact TreeSHAP (``pred_contrib``) is
  computed once per pattern, on one row that has it, and every row adds its patterns' values: the
  same numbers as ``pred_contrib`` on every row (to rounding), about a hundred times faster on a
  million rows.
- **TreeSHAP by leaf tables** (:func:`table_contributions`), for a request's few customers. A
  leaf's share depends only on which of its path's features the row satisfies, so each leaf's
  values for every such case are tabulated once per model (:func:`leaf_tables`; Yang 2021, "Fast
  TreeSHAP" v2), and a row adds up table entries. About three times LightGBM's speed on a few
  hundred rows, with no per-call set-up; a service prepares them at start-up (:func:`warm`).
- **Hazards for every time bin** (:func:`predict_over_bins`). The timing model scores a customer
  once per bin, with the bin's start as one more feature. Most splits do not look at the bin, so
  one walk per tree and customer follows the customer's own values and forks only at the splits
  on the bin, carrying the set of bins that went each way: one walk instead of one per bin.

Every split is decided exactly as LightGBM decides it (``<=`` on the double threshold, values
within LightGBM's zero threshold read as zero, missing values by the split's missing type and
default direction). Before first use, a booster's arrays are checked against LightGBM itself on
probe rows that sit on every threshold, just above it, at zero and missing (:func:`checked_trees`);
anything the arrays cannot represent (categorical splits, linear trees, trees with more than 31
splits) or that fails the check leaves the callers on LightGBM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast

import lightgbm as lgb
import numpy as np

__all__ = [
    "FAST_ROWS",
    "CompiledContributions",
    "LeafTables",
    "TreeArrays",
    "checked_trees",
    "compile_booster",
    "leaf_tables",
    "predict_over_bins",
    "table_contributions",
    "tree_contributions",
    "warm",
    "warmed",
    "warmed_over_bins",
]

_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_ZERO: Final = 1.0000000180025095e-35  # LightGBM's kZeroThreshold: float32 1e-35, as a double
_MAX_SPLITS: Final = 31  # decision patterns are bits of an int32
_MAX_TABLE_BITS: Final = 16  # patterns are looked up in a 2^bits table per tree up to this
_BLOCK_ROWS: Final = 200_000
# From this many rows on, the compiled paths pay for themselves (their fixed cost: ~0.1 s to read
# the trees, one LightGBM call per tree, and a one-time compilation cached on disk).
FAST_ROWS: Final = 20_000
_CHECK_ROWS: Final = 256
_MAX_TABLE_VALUES: Final = 1 << 24  # leaf tables up to 128 MB
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
    split_count: np.ndarray  # training rows through each split and leaf: TreeSHAP's weights
    leaf_count: np.ndarray
    expected_value: float  # the trees' mean output over the training rows (the SHAP bias)
    max_depth: int

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
        k: [] for k in ("feature", "threshold", "missing", "default_left", "left", "right", "count")
    }
    leaves: list[float] = []
    leaf_counts: list[float] = []
    roots: list[int] = []
    starts = [0]
    expected_value, max_depth = 0.0, 0
    for tree in dump["tree_info"]:
        first_split, first_leaf = len(nodes["feature"]), len(leaves)
        n_splits = tree["num_leaves"] - 1
        if n_splits > _MAX_SPLITS:
            return None
        for name in nodes:
            nodes[name].extend([None] * n_splits)
        leaves.extend([0.0] * tree["num_leaves"])
        leaf_counts.extend([0.0] * tree["num_leaves"])
        stack = [(tree["tree_structure"], 0)]
        while stack:
            node, depth = stack.pop()
            max_depth = max(max_depth, depth)
            if "leaf_index" in node:
                leaves[first_leaf + node["leaf_index"]] = float(node["leaf_value"])
                leaf_counts[first_leaf + node["leaf_index"]] = float(node.get("leaf_count", 0))
                continue
            if node["decision_type"] != "<=":
                return None
            i = first_split + node["split_index"]
            nodes["count"][i] = float(node["internal_count"])
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
                stack.append((child, depth + 1))
        root = tree["tree_structure"]
        roots.append(~first_leaf if "leaf_index" in root else first_split)
        starts.append(len(nodes["feature"]))
        expected_value += _expected_value(
            np.asarray(leaves[first_leaf:]), np.asarray(leaf_counts[first_leaf:])
        )
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
        split_count=np.asarray(nodes["count"], dtype=np.float64),
        leaf_count=np.asarray(leaf_counts, dtype=np.float64),
        expected_value=expected_value,
        max_depth=max_depth,
    )


def _expected_value(values: np.ndarray, counts: np.ndarray) -> float:
    """A tree's mean output over its training rows (LightGBM's ``Tree::ExpectedValue``)."""
    if len(values) == 1:
        return float(values[0])
    return float(np.sum(values * (counts / counts.sum())))


@dataclass(frozen=True)
class CompiledContributions:
    """What the compiled contribution paths need: the arrays, and the leaf tables if they fit."""

    trees: TreeArrays
    tables: LeafTables | None


def checked_trees(booster: lgb.Booster, bin_starts: np.ndarray | None = None) -> TreeArrays | None:
    """The booster's arrays, once they reproduce LightGBM (contributions, or raw scores over the
    bins for the timing model) on probe rows that take every split both ways and send missing
    values and zeros everywhere; None if they do not or cannot.

    The verdict is kept on the booster object, so it is reached once per loaded model.
    """
    key = _key(bin_starts)
    if not hasattr(booster, key):
        setattr(booster, key, _checked(booster, bin_starts))
    return cast(TreeArrays | None, getattr(booster, key))


def warm(booster: lgb.Booster, bin_starts: np.ndarray | None = None) -> bool:
    """Compile and check the booster now (for contributions, its leaf tables too), so that a
    single row is served from compiled code (:func:`warmed`, :func:`warmed_over_bins`): what a
    service does at start-up. False when the booster cannot be compiled."""
    trees = checked_trees(booster, bin_starts)
    if trees is not None and bin_starts is None and not hasattr(booster, _TABLES_KEY):
        setattr(booster, _TABLES_KEY, CompiledContributions(trees, _checked_tables(booster, trees)))
    return trees is not None


def warmed(booster: lgb.Booster) -> CompiledContributions | None:
    """The checked arrays and leaf tables of a booster :func:`warm` prepared, else None (without
    compiling anything: a small one-off scoring run is faster through LightGBM)."""
    return cast(CompiledContributions | None, getattr(booster, _TABLES_KEY, None))


def warmed_over_bins(booster: lgb.Booster, bin_starts: np.ndarray) -> TreeArrays | None:
    """The checked arrays for :func:`predict_over_bins` if they were prepared (by :func:`warm`, or
    by a large scoring run), else None."""
    return cast(TreeArrays | None, getattr(booster, _key(bin_starts), None))


_TABLES_KEY: Final = "_retain_leaf_tables"


def _key(bin_starts: np.ndarray | None) -> str:
    if bin_starts is None:
        return "_retain_trees"
    return "_retain_trees_over_bins_" + "_".join(f"{float(b)!r}" for b in bin_starts)


def _checked(booster: lgb.Booster, bin_starts: np.ndarray | None) -> TreeArrays | None:
    trees = compile_booster(booster)
    if trees is None:
        return None
    rows = _probe_rows(trees, bin_feature=bin_starts is not None)
    if bin_starts is not None:
        n_bins = len(bin_starts)
        ours = predict_over_bins(trees, rows, bin_starts)
        repeated = np.empty((rows.shape[0] * n_bins, rows.shape[1] + 1))
        repeated[:, :-1] = np.repeat(rows, n_bins, axis=0)
        repeated[:, -1] = np.tile(bin_starts, rows.shape[0])
        theirs = np.asarray(booster.predict(repeated, raw_score=True)).reshape(-1, n_bins)
        return trees if _same(ours, theirs) else None
    theirs = np.asarray(booster.predict(rows, pred_contrib=True))
    return trees if _same(tree_contributions(booster, trees, rows), theirs) else None


def _checked_tables(booster: lgb.Booster, trees: TreeArrays) -> LeafTables | None:
    """The leaf tables, once they reproduce LightGBM's contributions on the probe rows."""
    tables = leaf_tables(trees)
    if tables is None:
        return None
    rows = _probe_rows(trees, bin_feature=False)
    theirs = np.asarray(booster.predict(rows, pred_contrib=True))
    return tables if _same(table_contributions(trees, tables, rows), theirs) else None


def _same(ours: np.ndarray, theirs: np.ndarray) -> bool:
    return bool(np.allclose(ours, theirs, rtol=0.0, atol=_TOLERANCE, equal_nan=True))


def _probe_rows(trees: TreeArrays, *, bin_feature: bool) -> np.ndarray:
    """Rows whose every value sits on a split threshold, just above one, at zero or missing: every
    split is taken both ways, and missing values and zeros meet every default direction."""
    rng = np.random.default_rng(0)
    n_features = trees.n_features - 1 if bin_feature else trees.n_features
    rows = np.zeros((_CHECK_ROWS, n_features))
    for f in range(n_features):
        cuts = trees.threshold[trees.feature == f]
        values = np.concatenate([cuts, np.nextafter(cuts, np.inf), [0.0, np.nan]])
        rows[:, f] = rng.choice(values, size=_CHECK_ROWS)
    return rows


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


@dataclass(frozen=True)
class LeafTables:
    """Per leaf (global ids, contiguous per tree from ``leaf_start[t]``): its path's splits and
    the side taken (``path_*``, from ``path_start[leaf]``), the distinct features on the path
    (``feat``, from ``feat_start[leaf]``; ``path_element`` says which one a split tests), and the
    table of their TreeSHAP values for every mask of satisfied features (from ``table_start``)."""

    leaf_start: np.ndarray
    path_start: np.ndarray
    path_split: np.ndarray
    path_left: np.ndarray
    path_element: np.ndarray
    feat_start: np.ndarray
    feat: np.ndarray
    table_start: np.ndarray
    tables: np.ndarray


def leaf_tables(trees: TreeArrays) -> LeafTables | None:
    """The trees' leaf tables, or None when they would take more than :data:`_MAX_TABLE_VALUES`."""
    n_leaves = np.diff(trees.split_start) + 1
    leaf_start = np.concatenate([[0], np.cumsum(n_leaves)]).astype(np.int64)
    paths: list[list[tuple[int, bool]]] = [[] for _ in range(int(leaf_start[-1]))]
    for root in trees.root:
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(int(root), [])]
        while stack:
            node, path = stack.pop()
            if node < 0:
                paths[~node] = path
                continue
            stack.append((int(trees.left[node]), [*path, (node, True)]))
            stack.append((int(trees.right[node]), [*path, (node, False)]))
    path_split: list[int] = []
    path_left: list[bool] = []
    path_element: list[int] = []
    feat: list[int] = []
    zero_fractions: list[float] = []
    path_start, feat_start, table_start = [0], [0], [0]
    for path in paths:
        # The path's features in the order of their last split, as LightGBM's recursion leaves
        # them (a repeated feature is unwound and extended again).
        order = list(dict.fromkeys(int(trees.feature[s]) for s, _ in reversed(path)))[::-1]
        fractions = dict.fromkeys(order, 1.0)
        for s, went_left in path:
            child = trees.left[s] if went_left else trees.right[s]
            f = int(trees.feature[s])
            fractions[f] *= _count(trees, int(child)) / trees.split_count[s]
            path_split.append(s)
            path_left.append(went_left)
            path_element.append(order.index(f))
        feat.extend(order)
        zero_fractions.extend(fractions[f] for f in order)
        path_start.append(len(path_split))
        feat_start.append(len(feat))
        table_start.append(table_start[-1] + (1 << len(order)) * len(order))
        if table_start[-1] > _MAX_TABLE_VALUES:
            return None
    starts = np.asarray(feat_start, dtype=np.int64)
    values = np.asarray(table_start, dtype=np.int64)
    tables = np.empty(int(values[-1]), dtype=np.float64)
    _kernels().leaf_tables(
        starts, np.asarray(zero_fractions, dtype=np.float64), trees.leaf_value, values, tables
    )
    return LeafTables(
        leaf_start=leaf_start,
        path_start=np.asarray(path_start, dtype=np.int64),
        path_split=np.asarray(path_split, dtype=np.int64),
        path_left=np.asarray(path_left, dtype=np.bool_),
        path_element=np.asarray(path_element, dtype=np.int64),
        feat_start=starts,
        feat=np.asarray(feat, dtype=np.int64),
        table_start=values,
        tables=tables,
    )


def _count(trees: TreeArrays, node: int) -> float:
    return float(trees.leaf_count[~node] if node < 0 else trees.split_count[node])


def table_contributions(trees: TreeArrays, tables: LeafTables, data: np.ndarray) -> np.ndarray:
    """``booster.predict(data, pred_contrib=True)`` from the leaf tables."""
    data = np.ascontiguousarray(data, dtype=np.float64)
    out = np.zeros((data.shape[0], trees.n_features + 1), dtype=np.float64)
    kernels = _kernels()
    walk = (
        kernels.table_contributions
        if len(data) >= FAST_ROWS
        else kernels.table_contributions_serial
    )
    walk(
        data, out, trees.split_start, tables.leaf_start,
        trees.feature, trees.threshold, trees.missing, trees.default_left,
        tables.path_start, tables.path_split, tables.path_left, tables.path_element,
        tables.feat_start, tables.feat, tables.table_start, tables.tables,
    )  # fmt: skip
    out[:, -1] += trees.expected_value
    return out


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
    left = _goes_left(
        np.asarray(bin_starts, dtype=np.float64)[None, :],
        trees.threshold[on_bins, None],
        trees.missing[on_bins, None],
        trees.default_left[on_bins, None],
    )
    bits = np.left_shift(np.uint64(1), np.arange(n_bins, dtype=np.uint64))
    goes_left[on_bins] = np.bitwise_or.reduce(np.where(left, bits, np.uint64(0)), axis=1)
    data = np.ascontiguousarray(data, dtype=np.float64)
    out = np.zeros((data.shape[0], n_bins), dtype=np.float64)
    walk = kernels.over_bins if len(data) >= FAST_ROWS else kernels.over_bins_serial
    walk(data, bin_feature, goes_left, trees.root, trees.leaf_value, out, *_arrays(trees))
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


def _goes_left(
    value: np.ndarray, threshold: np.ndarray, missing: np.ndarray, default_left: np.ndarray
) -> np.ndarray:
    """LightGBM's numerical decision (``Tree::NumericalDecision``), elementwise: True for left."""
    value = np.where(
        (np.isnan(value) & (missing != _MISSING["NaN"])) | (np.abs(value) <= _ZERO), 0.0, value
    )
    default = ((missing == _MISSING["Zero"]) & (value == 0.0)) | (
        (missing == _MISSING["NaN"]) & np.isnan(value)
    )
    return np.where(default, default_left, value <= threshold)


# -- the compiled loops -----------------------------------------------------------------------------


def _kernels() -> Any:
    """The numba loops (``_tree_kernels``), imported on first use: numba's import and the
    compilation (cached on disk after the first run) are paid only by large scoring runs."""
    from retain.models import _tree_kernels

    return _tree_kernels
