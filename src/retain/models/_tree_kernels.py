"""The compiled loops of :mod:`retain.models.trees` (numba; cached on disk after the first run).

Kept apart so that importing retain does not import numba: only large scoring runs need these.
"""

import numba
import numpy as np

# LightGBM's kZeroThreshold, a float32 1e-35 (a little above the double 1e-35): values within it
# of zero are zeros to LightGBM.
ZERO = 1.0000000180025095e-35

# Rows go in tiles of TILE: a tile's data and results stay in cache while every tree passes.
TILE = 256

_jit = numba.njit(cache=True, nogil=True)
_parallel = numba.njit(cache=True, nogil=True, parallel=True)
_inline = numba.njit(cache=True, nogil=True, inline="always")


@_jit
def _left_of(value, threshold, missing, default_left):
    # LightGBM reads a value within ZERO of zero as zero (it leaves it out of the sparse row
    # it predicts from), and a missing value as zero unless the split has a place for it.
    if (np.isnan(value) and missing != 2) or -ZERO <= value <= ZERO:
        value = 0.0
    if (missing == 1 and value == 0.0) or (missing == 2 and np.isnan(value)):
        return default_left
    return value <= threshold


@_parallel
def patterns(columns, split_start, threshold, feature, nan_left, zero_missing, default_left):
    """Each row's decision pattern in each tree, ``(trees, rows)``: bit ``k`` set when the row
    goes left at the tree's split ``k``. ``columns`` is the data transposed (features, rows), so
    that one split is decided for a tile of rows at once, without branches (vectorised)."""
    n, n_trees = columns.shape[1], split_start.shape[0] - 1
    out = np.zeros((n_trees, n), dtype=np.int32)
    for tile in numba.prange((n + TILE - 1) // TILE):
        first, last = tile * TILE, min(n, (tile + 1) * TILE)
        for t in range(n_trees):
            for k in range(split_start[t + 1] - split_start[t]):
                s = split_start[t] + k
                values = columns[feature[s]]
                cut, if_nan, zero_default = threshold[s], nan_left[s], zero_missing[s]
                if_zero = default_left[s]
                bit = np.int32(1) << k
                for i in range(first, last):
                    v = values[i]
                    tiny = abs(v) <= ZERO  # read as zero, as in _left_of
                    left = (
                        if_nan
                        if v != v
                        else (if_zero if zero_default and tiny else (0.0 if tiny else v) <= cut)
                    )
                    out[t, i] |= bit * left
    return out


@_jit
def number_patterns(codes, table, representatives):
    """Replace each code by its pattern's number (0, 1, ... in order of first appearance); write
    each pattern's first row to ``representatives``; return the number of patterns."""
    count = 0
    for i in range(codes.shape[0]):
        code = codes[i]
        if table[code] < 0:
            table[code] = count
            representatives[count] = i
            count += 1
        codes[i] = table[code]
    return count


@_parallel
def add_patterns(result, which, offsets, stacked, columns, counts):
    """``result`` (columns, rows) += each row's pattern's contributions, tree by tree."""
    n = result.shape[1]
    for tile in numba.prange((n + TILE - 1) // TILE):
        first, last = tile * TILE, min(n, (tile + 1) * TILE)
        for t in range(which.shape[0]):
            patterns_of_tree = which[t]
            for j in range(counts[t]):
                target = result[columns[t, j]]
                values = stacked[j, offsets[t] : offsets[t + 1]]
                for i in range(first, last):
                    target[i] += values[patterns_of_tree[i]]


def _over_bins(
    data, bin_feature, goes_left, root, leaf_value, out,
    feature, threshold, missing, default_left, left, right,
):  # fmt: skip
    n, n_bins = out.shape
    all_bins = np.uint64((1 << n_bins) - 1)
    for i in numba.prange(n):
        stack_node = np.empty(64, dtype=np.int32)
        stack_bins = np.empty(64, dtype=np.uint64)
        for t in range(root.shape[0]):
            top = 0
            stack_node[0] = root[t]
            stack_bins[0] = all_bins
            while top >= 0:
                node, bins = stack_node[top], stack_bins[top]
                top -= 1
                if node < 0:
                    value = leaf_value[~node]
                    for k in range(n_bins):
                        if (bins >> np.uint64(k)) & np.uint64(1):
                            out[i, k] += value
                    continue
                if feature[node] == bin_feature:
                    to_left = bins & goes_left[node]
                    to_right = bins & ~goes_left[node]
                    if to_left:
                        top += 1
                        stack_node[top], stack_bins[top] = left[node], to_left
                    if to_right:
                        top += 1
                        stack_node[top], stack_bins[top] = right[node], to_right
                else:
                    value = data[i, feature[node]]
                    go_left = _left_of(value, threshold[node], missing[node], default_left[node])
                    top += 1
                    stack_node[top] = left[node] if go_left else right[node]
                    stack_bins[top] = bins


# -- path-dependent TreeSHAP by leaf tables ---------------------------------------------------------
#
# A leaf's share of a row's TreeSHAP values depends on the row only through which of the features
# on the leaf's path the row satisfies (all of that feature's conditions on the path, or not): with
# k such features, 2^k cases, each a vector of k values, tabulated once per model (Yang, "Fast
# TreeSHAP", 2021: algorithm v2). The path arithmetic is LightGBM's (Tree::ExtendPath and
# Tree::UnwoundPathSum); a path here is three arrays (zero fraction, one fraction, weight).


@_inline
def _extend(zero, one, weight, depth, zero_fraction, one_fraction):
    zero[depth] = zero_fraction
    one[depth] = one_fraction
    weight[depth] = 1.0 if depth == 0 else 0.0
    for i in range(depth - 1, -1, -1):
        weight[i + 1] += one_fraction * weight[i] * (i + 1) / (depth + 1)
        weight[i] = zero_fraction * weight[i] * (depth - i) / (depth + 1)


@_inline
def _unwound_sum(zero, one, weight, depth, index):
    one_fraction, zero_fraction = one[index], zero[index]
    next_one = weight[depth]
    total = 0.0
    for i in range(depth - 1, -1, -1):
        if one_fraction != 0.0:
            part = next_one * (depth + 1) / ((i + 1) * one_fraction)
            total += part
            next_one = weight[i] - part * zero_fraction * ((depth - i) / (depth + 1))
        else:
            total += (weight[i] / zero_fraction) / ((depth - i) / (depth + 1))
    return total


@_parallel
def leaf_tables(feat_start, zero_fractions, leaf_value, table_start, tables):
    """Fill ``tables``: for leaf ``l`` with path features ``feat_start[l]:feat_start[l + 1]``
    (their zero fractions: the share of the node's training rows that took the path's side, over
    all the path's splits on that feature) and every mask of satisfied features, each feature's
    TreeSHAP value, at ``table_start[l] + mask * k + i``."""
    for leaf in numba.prange(feat_start.shape[0] - 1):
        first, k = feat_start[leaf], feat_start[leaf + 1] - feat_start[leaf]
        zero = np.empty(k + 1)
        one = np.empty(k + 1)
        weight = np.empty(k + 1)
        for mask in range(1 << k):
            _extend(zero, one, weight, 0, 1.0, 1.0)
            for i in range(k):
                satisfied = 1.0 if (mask >> i) & 1 else 0.0
                _extend(zero, one, weight, i + 1, zero_fractions[first + i], satisfied)
            base = table_start[leaf] + mask * k
            for i in range(k):
                w = _unwound_sum(zero, one, weight, k, i + 1)
                tables[base + i] = w * (one[i + 1] - zero[i + 1]) * leaf_value[leaf]


def _table_contributions(
    data, out, split_start, leaf_start, feature, threshold, missing, default_left,
    path_start, path_split, path_left, path_element, feat_start, feat, table_start, tables,
):  # fmt: skip
    """``out`` (rows, features + 1) += each row's TreeSHAP values from the leaf tables (the
    expected values, the last column, are the caller's)."""
    n_trees = split_start.shape[0] - 1
    widest = 0
    for t in range(n_trees):
        widest = max(widest, split_start[t + 1] - split_start[t])
    for i in numba.prange(data.shape[0]):
        left = np.empty(max(widest, 1), dtype=np.bool_)
        x, phi = data[i], out[i]
        for t in range(n_trees):
            first_split = split_start[t]
            for s in range(first_split, split_start[t + 1]):
                left[s - first_split] = _left_of(
                    x[feature[s]], threshold[s], missing[s], default_left[s]
                )
            for leaf in range(leaf_start[t], leaf_start[t + 1]):
                k = feat_start[leaf + 1] - feat_start[leaf]
                if k == 0:
                    continue
                mask = (1 << k) - 1
                for p in range(path_start[leaf], path_start[leaf + 1]):
                    if left[path_split[p] - first_split] != path_left[p]:
                        mask &= ~(1 << path_element[p])
                base = table_start[leaf] + mask * k
                for j in range(k):
                    phi[feat[feat_start[leaf] + j]] += tables[base + j]


# Each walk in two builds: across the cores for large inputs, and on the calling thread for a
# request's few rows, where waking a thread pool costs more than the walk (and a service's workers
# already use every core).
over_bins = _parallel(_over_bins)
over_bins_serial = _jit(_over_bins)
table_contributions = _parallel(_table_contributions)
table_contributions_serial = _jit(_table_contributions)
