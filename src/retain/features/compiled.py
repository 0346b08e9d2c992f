"""The feature table of a large input in one compiled pass over each customer's rows (numba).

The builder's SQL (:mod:`retain.features.builder`) takes some 16 s on ten million transactions:
DuckDB groups the rows by customer and day, then the days by customer, then the rows again for
distinct products, each a hash aggregation over strings. Here the rows are grouped by customer once
(a counting sort of ``pd.factorize`` codes), put in day order where they are not already, and one
loop per customer (:mod:`retain.features._kernels`) computes every transaction feature from its
days; ids are compared by 64-bit hashes of their bytes, as the SQL compares them by DuckDB's.

Every definition is the SQL's. ``tests/features/test_compiled.py`` holds this engine to the SQL
and the NumPy engine (:mod:`retain.features.in_memory`) column by column, on the simulator, CDNOW
and random histories; and before its first use in a process, the kernel is checked against the
NumPy engine on a probe table with refunds, same-day orders, rows without ids and rows after the
cutoff (:func:`available`). Sums add in another order than DuckDB's; floats are rounded to 9
decimals on every path, which makes them equal (a value within an ulp of a rounding boundary can
still differ by 1e-9).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa

from retain.errors import RetainInputError
from retain.features.in_memory import _day_micros, _micros
from retain.features.in_memory import transaction_features as numpy_features

__all__ = ["available", "transaction_features"]

_LOG = logging.getLogger(__name__)
_DAY: Final = 86_400_000_000
_KEYED: Final = ("order_id", "product_id", "category")


def transaction_features(
    transactions: pd.DataFrame,
    cutoff: pd.Timestamp,
    windows: Sequence[int],
    trend_days: int,
    event_columns: Sequence[str],
) -> pd.DataFrame:
    """The builder's transaction features, ordered by customer_id; ``event_columns`` come as NaN
    (no events table: unknown, not zero)."""
    kernels = _kernels()
    missing = int(transactions["customer_id"].isna().sum())
    if missing:  # validation sets such rows aside; the SQL would make them one customer
        raise RetainInputError(
            f"features: transactions column customer_id is missing on {missing:,} rows "
            "(the numba engine needs a customer on every row; validate the table first)"
        )
    stamps = _micros(transactions["timestamp"])
    code, ids = _customer_codes(transactions["customer_id"])
    n = len(transactions)
    keys = np.zeros((len(_KEYED), n), dtype=np.uint64)
    flags = np.zeros(n, dtype=np.uint8)
    bits = (kernels.HAS_ORDER, kernels.HAS_PRODUCT, kernels.HAS_CATEGORY)
    for k, (name, bit) in enumerate(zip(_KEYED, bits, strict=True)):
        if name in transactions:
            flags |= np.where(_keys(transactions[name], keys[k]), np.uint8(bit), np.uint8(0))
    discount = "discount" in transactions
    if discount:
        discounted = np.nan_to_num(transactions["discount"].to_numpy(dtype="float64")) > 0
        flags |= np.where(discounted, np.uint8(kernels.DISCOUNTED), np.uint8(0))
    starts, packed = kernels.pack_rows(
        code,
        len(ids),
        stamps,
        _day_micros(cutoff) + _DAY,
        transactions["amount"].to_numpy(dtype="float64"),
        keys,
        flags,
        max(1, min(kernels.numba.get_num_threads(), 4)),  # a (parts, customers) table of counts
    )
    del keys, flags
    kernels.sort_by_day(starts, packed)
    per_window = [name for w in windows for name in (f"orders_{w}d", f"spend_{w}d")]
    names = [*kernels.HEAD, *per_window, *kernels.TAIL, *event_columns]
    out, kept = kernels.customer_features(
        starts,
        packed,
        np.array([name in transactions for name in _KEYED] + [discount]),
        int((cutoff - pd.Timestamp("1970-01-01")).days),
        np.asarray(windows, dtype=np.int64),
        int(trend_days),
        len(names),
    )
    if not kept.all():  # customers whose rows are all after the cutoff, or refunds
        out, ids = out[:, kept], ids[kept].reset_index(drop=True)
    # One float block, (columns, rows) as pandas keeps it: no copy per column.
    frame = pd.DataFrame(out.T, columns=names, copy=False)
    frame.insert(0, "customer_id", ids)
    return frame


def _customer_codes(ids: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Each row's customer as a code that counts up in the order of the ids as text (as DuckDB
    orders them: byte by byte), and the ids in that order.

    Text ids are grouped by 64-bit hashes of their bytes, which is several times sooner than
    ``pd.factorize`` on ten million strings, then checked with a second, independent 64-bit hash
    against the first id of their group: two ids that share the first hash are caught (and the
    exact route taken) unless they share the second too."""
    array = _arrow_text(ids)
    if array is None or array.null_count:
        code, uniques = pd.factorize(ids, sort=True)
        return code.astype(np.int64), pd.Series(uniques, dtype="str")
    kernels = _kernels()
    offsets, data = _buffers(array)
    hashes = np.empty(len(array), dtype=np.uint64)
    kernels.hash_strings(offsets, data, np.ones(len(array), dtype=bool), hashes)
    code, first = kernels.group_hashes(hashes)
    kernels.second_hashes(offsets, data, hashes)  # the first ones are spent
    if not kernels.same_as_first(code, first, hashes):
        code, uniques = pd.factorize(ids, sort=True)
        return code.astype(np.int64), pd.Series(uniques, dtype="str")
    longest = int(np.max(offsets[first + 1] - offsets[first], initial=0))
    words, lengths = kernels.prefix_words(first, offsets, data, max(1, -(-longest // 8)))
    order = np.lexsort((lengths, *words[::-1]))  # lexsort's last key is the first compared
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    texts = pd.Series(pd.arrays.ArrowStringArray(array.take(pa.array(first[order]))))
    return rank[code], texts.astype("str")


def _arrow_text(values: pd.Series) -> pa.Array | None:
    """The column as one Arrow (large) string array, or None if it is not text."""
    if not pd.api.types.is_string_dtype(values.dtype) or pd.api.types.is_object_dtype(values):
        return None
    array = pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        return None
    return array


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The offsets (int64) and bytes of an Arrow (large) string array."""
    _, offsets_buffer, data_buffer = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[
        array.offset : array.offset + len(array) + 1
    ]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, dtype=np.uint8)
    )
    return offsets.astype(np.int64, copy=False), data


def _keys(values: pd.Series, out: np.ndarray) -> np.ndarray:
    """Comparable 64-bit keys of a column's values into ``out`` (hashes of the bytes of text,
    ``pd.factorize`` codes of anything else); returns where the column has a value."""
    array = _arrow_text(values)
    if array is None:
        codes = pd.factorize(values, use_na_sentinel=True)[0]
        out[:] = codes.astype(np.uint64)
        return codes >= 0
    valid = ~np.asarray(array.is_null().to_numpy(zero_copy_only=False))
    _kernels().hash_strings(*_buffers(array), valid, out)
    return valid


@cache
def available() -> bool:
    """Whether the compiled engine can serve: numba imports, and the kernel reproduces the NumPy
    engine on the probe table (checked once per process; the compilation is cached on disk)."""
    try:
        _kernels()
    except ImportError as error:  # numba is a dependency, but a broken install must not crash
        _LOG.warning("features: numba unavailable (%s); large tables go to DuckDB", error)
        return False
    probe, cutoff = _probe()
    options: dict[str, Any] = {"windows": (30, 90, 180, 365), "trend_days": 90}
    for table in (probe, probe.drop(columns=["order_id", "product_id", "category", "discount"])):
        ours = transaction_features(table, cutoff, event_columns=(), **options)
        theirs = numpy_features(table, cutoff, event_columns=(), **options)
        try:
            pd.testing.assert_frame_equal(ours, theirs, check_exact=False, rtol=1e-9, atol=0)
        except AssertionError as difference:
            _LOG.warning("features: the compiled engine differs from NumPy: %s", difference)
            return False
    return True


def _probe() -> tuple[pd.DataFrame, pd.Timestamp]:
    """A small table with what can go wrong: refunds (also a refund-only day and a customer with
    refunds alone), several rows and orders a day, rows without an order id or product, a purchase
    on the cutoff day, rows after it, times out of order, discounts."""
    rng = np.random.default_rng(7)
    n = 400

    def draw(*values: object) -> np.ndarray:
        return rng.choice(np.array(values, dtype=object), n)

    customers = draw("a", "b", "c", "d", "10", "9")
    stamps = pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 600 * 24 * 60, n), unit="min"
    )
    amounts = np.round(rng.uniform(-50, 200, n), 2)
    # Customer e's only purchase is on the cutoff day; "0" (the first id) has a refund alone.
    customers[0], amounts[0] = "e", 9.5
    stamps = stamps.where(np.arange(n) != 0, pd.Timestamp("2022-02-04 23:59", tz="UTC"))
    customers[1], amounts[1] = "0", -3.0
    frame = pd.DataFrame(
        {
            "customer_id": pd.Series(customers, dtype="str"),
            "timestamp": pd.Series(stamps).astype("datetime64[us, UTC]"),
            "amount": amounts,
            "order_id": pd.Series(draw("o1", "o2", "o3", "o4", None), dtype="str"),
            "product_id": pd.Series(draw("p", "q", "r", None), dtype="str"),
            "category": pd.Series(draw("x", "y", None), dtype="str"),
            "discount": rng.choice(np.array([np.nan, 0.0, 5.0]), n),
        }
    )
    return frame, pd.Timestamp("2022-02-04")


def _kernels() -> Any:
    """The numba loops, imported on first use: numba's import and the compilation (cached on disk
    after the first run) are paid only by large builds."""
    from retain.features import _kernels as kernels

    return kernels
