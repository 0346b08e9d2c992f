"""The compiled loops of :mod:`retain.models.trees` (numba; cached on disk after the first run).

Kept apart so that importing retain does not import numba: only large scoring runs need these.
"""

import numba
import numpy as np

# Rows go in tiles of TILE: a tile's data and results stay in cache while every tree passes.
TILE = 256

_jit = numba.njit(cache=True, nogil=True)
_parallel = numba.njit(cache=True, nogil=True, parallel=True)


@_jit
def _left_of(value, threshold, missing, default_left):
    if np.isnan(value) and missing != 2:
        value = 0.0
    if (missing == 1 and -1e-35 <= value <= 1e-35) or (missing == 2 and np.isnan(value)):
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
                    left = (
                        if_nan
                        if v != v
                        else (if_zero if zero_default and abs(v) <= 1e-35 else v <= cut)
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


@_parallel
def over_bins(
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
