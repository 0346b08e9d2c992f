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
def patterns(data, split_start, feature, threshold, missing, default_left, left, right):
    n, n_trees = data.shape[0], split_start.shape[0] - 1
    out = np.zeros((n_trees, n), dtype=np.int32)
    for tile in numba.prange((n + TILE - 1) // TILE):
        for t in range(n_trees):
            for i in range(tile * TILE, min(n, (tile + 1) * TILE)):
                code = 0
                for k in range(split_start[t + 1] - split_start[t]):
                    s = split_start[t] + k
                    if _left_of(data[i, feature[s]], threshold[s], missing[s], default_left[s]):
                        code |= 1 << k
                out[t, i] = code
    return out


@_jit
def first_rows(codes, first_row):
    for i in range(codes.shape[0]):
        if first_row[codes[i]] < 0:
            first_row[codes[i]] = i


@_parallel
def add_patterns(result, which, offsets, stacked, columns, counts):
    n = result.shape[0]
    for tile in numba.prange((n + TILE - 1) // TILE):
        for t in range(which.shape[0]):
            for i in range(tile * TILE, min(n, (tile + 1) * TILE)):
                row = offsets[t] + which[t, i]
                for j in range(counts[t]):
                    result[i, columns[t, j]] += stacked[row, j]


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
