"""The compiled loops of :mod:`retain.features.compiled` (numba; cached on disk after the first run).

Kept apart so that importing retain does not import numba: only large feature builds need these.
Every definition here is the builder's SQL (:mod:`retain.features.builder`), restated as one pass
over each customer's rows in day order; ``tests/features/test_compiled.py`` holds the two equal.
"""

import numba
import numpy as np

_jit = numba.njit(cache=True, nogil=True)
_parallel = numba.njit(cache=True, nogil=True, parallel=True)

DAY = 86_400_000_000  # timestamps are microseconds since the epoch (UTC)
HOUR = 3_600_000_000
MINUTE = 60_000_000

# The columns of ``transaction_features``'s output, in the feature table's order; the trailing
# window columns (orders, spend per window) come between WEEKEND_SHARE and the tail.
HEAD = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "orders_total",
    "spend_total",
    "gross_total",
    "refund_total",
    "avg_order_value",
    "ipt_mean",
    "ipt_median",
    "ipt_std",
    "overdue_ratio",
    "spend_trend",
    "refund_share",
    "weekend_share",
)
TAIL = (
    "orders_ly_next_30d",
    "orders_ly_next_90d",
    "n_products",
    "n_categories",
    "discount_share",
    "mean_purchase_hour",
)


# One transaction as the kernels read it: the rows are copied once into customer order, so that
# the feature pass reads memory in sequence instead of gathering from each column.
ROW = np.dtype(
    [
        ("stamp", np.int64),
        ("amount", np.float64),
        ("order", np.uint64),
        ("product", np.uint64),
        ("category", np.uint64),
        ("flags", np.uint8),  # has an order id, a product, a category; discounted (bits 0-3)
    ],
    align=True,
)
HAS_ORDER, HAS_PRODUCT, HAS_CATEGORY, DISCOUNTED = 1, 2, 4, 8
_N_HEAD, _N_TAIL = len(HEAD), len(TAIL)


@_parallel
def hash_strings(offsets, data, valid, out):
    """A 64-bit FNV-1a hash of each string of an Arrow string array into ``out`` (0 where
    ``valid`` is not).

    Distinct values are counted by their hashes, as the SQL counts them by DuckDB's ``hash``: two
    different ids of one customer would have to share a 64-bit hash to be miscounted."""
    for i in numba.prange(offsets.shape[0] - 1):
        h = np.uint64(0)
        if valid[i]:
            h = np.uint64(14695981039346656037)
            for k in range(offsets[i], offsets[i + 1]):
                h = (h ^ np.uint64(data[k])) * np.uint64(1099511628211)
        out[i] = h


@_jit
def group_hashes(hashes):
    """A code per distinct hash (0, 1, ... in order of first appearance) for every row, and the
    first row of each code: an open-addressing table that doubles at half full."""
    n = hashes.shape[0]
    size = 1 << 16
    keys = np.zeros(size, dtype=np.uint64)
    slots = np.full(size, -1, dtype=np.int64)  # the code in the slot, -1 when empty
    first = np.empty(max(n, 1), dtype=np.int64)
    codes = np.empty(n, dtype=np.int64)
    count = 0
    for i in range(n):
        h = hashes[i]
        at = np.int64(h & np.uint64(size - 1))
        while slots[at] >= 0 and keys[at] != h:
            at = (at + 1) & (size - 1)
        if slots[at] >= 0:
            codes[i] = slots[at]
            continue
        keys[at], slots[at] = h, count
        first[count], codes[i] = i, count
        count += 1
        if 2 * count > size:  # rehash into twice the slots
            size *= 2
            keys = np.zeros(size, dtype=np.uint64)
            slots = np.full(size, -1, dtype=np.int64)
            for code in range(count):
                key = hashes[first[code]]
                at = np.int64(key & np.uint64(size - 1))
                while slots[at] >= 0:
                    at = (at + 1) & (size - 1)
                keys[at], slots[at] = key, code
    return codes, first[:count].copy()


@_parallel
def second_hashes(offsets, data, out):
    """A second 64-bit hash of each string, independent of ``hash_strings``'s (a polynomial in
    the golden-ratio multiplier): two ids sharing both would be a 1 in 2**128 coincidence."""
    for i in numba.prange(offsets.shape[0] - 1):
        h = np.uint64(offsets[i + 1] - offsets[i])
        for k in range(offsets[i], offsets[i + 1]):
            h = (h + np.uint64(data[k]) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(29)
        out[i] = h


@_jit
def same_as_first(codes, first, second):
    """Whether every row's second hash is its code's first row's (no two ids share a hash)."""
    of_code = second[first]
    for i in range(codes.shape[0]):  # noqa: SIM110 (numba compiles no generator into all())
        if second[i] != of_code[codes[i]]:
            return False
    return True


@_jit
def prefix_words(rows, offsets, data, n_words):
    """Bytes 8k to 8k + 7 of the strings at ``rows`` as big-endian integers (zero-padded), one
    column per k, and their lengths: sorting by the words, then the length, is sorting the
    strings byte by byte (as DuckDB orders text)."""
    words = np.zeros((n_words, rows.shape[0]), dtype=np.uint64)
    lengths = np.empty(rows.shape[0], dtype=np.int64)
    for u in range(rows.shape[0]):
        a, b = offsets[rows[u]], offsets[rows[u] + 1]
        lengths[u] = b - a
        for k in range(min(b - a, 8 * n_words)):
            shift = np.uint64(8 * (7 - k % 8))
            words[k // 8, u] |= np.uint64(data[a + k]) << shift
    return words, lengths


@_parallel
def pack_rows(customer, n_customers, stamps, end, amount, keys, flags, parts):
    """The rows before ``end`` as ``ROW`` records grouped by customer code, and where each
    customer's rows start (``starts[c]`` to ``starts[c + 1]``): a counting sort, stable, done by
    each of ``parts`` threads on its own consecutive part of the rows (its customers' rows go
    after the previous part's). ``keys``: order, product and category keys (a (3, rows) array)."""
    n = customer.shape[0]
    size = (n + parts - 1) // parts
    at = np.zeros((parts, n_customers), dtype=np.int64)
    for p in numba.prange(parts):
        for i in range(p * size, min(n, (p + 1) * size)):
            if stamps[i] < end:
                at[p, customer[i]] += 1
    starts = np.empty(n_customers + 1, dtype=np.int64)
    total = 0
    for c in range(n_customers):
        starts[c] = total
        for p in range(parts):
            count = at[p, c]
            at[p, c] = total
            total += count
    starts[n_customers] = total
    packed = np.empty(total, dtype=ROW)
    for p in numba.prange(parts):
        for i in range(p * size, min(n, (p + 1) * size)):
            if stamps[i] < end:
                c = customer[i]
                row = packed[at[p, c]]
                row.stamp = stamps[i]
                row.amount = amount[i]
                row.order = keys[0, i]
                row.product = keys[1, i]
                row.category = keys[2, i]
                row.flags = flags[i]
                at[p, c] += 1
    return starts, packed


@_parallel
def sort_by_day(starts, packed):
    """Put each customer's rows in day order (in place); exports in time order need no sorting."""
    for c in numba.prange(starts.shape[0] - 1):
        first, last = starts[c], starts[c + 1]
        ordered = True
        for i in range(first + 1, last):
            if packed[i].stamp // DAY < packed[i - 1].stamp // DAY:
                ordered = False
                break
        if not ordered:
            days = np.empty(last - first, dtype=np.int64)
            for k in range(last - first):
                days[k] = packed[first + k].stamp // DAY
            packed[first:last] = packed[first:last][np.argsort(days, kind="mergesort")]


@_jit
def _distinct(values, n):
    """Distinct values among ``values[:n]`` (sorted in place)."""
    if n <= 1:
        return n
    if n <= 16:  # insertion sort: most days hold one or two orders
        for i in range(1, n):
            v = values[i]
            j = i - 1
            while j >= 0 and values[j] > v:
                values[j + 1] = values[j]
                j -= 1
            values[j + 1] = v
    else:
        values[:n].sort()
    count = 1
    for i in range(1, n):
        if values[i] != values[i - 1]:
            count += 1
    return count


@_jit
def _rounded(value):
    """``np.round(value, 9)``, as the SQL path rounds its floats (see ``builder._fetch``)."""
    return np.rint(value * 1e9) / 1e9


@_jit
def _gap_statistics(purchase_days, n, gaps):
    """Median and sample standard deviation of the gaps between the ``n`` purchase days (NaN
    without a gap; the deviation NaN with one)."""
    n_gaps = n - 1
    if n_gaps < 1:
        return np.nan, np.nan
    total = 0.0
    for k in range(n_gaps):
        gaps[k] = purchase_days[k + 1] - purchase_days[k]
        total += gaps[k]
    mean = total / n_gaps
    squares = 0.0
    for k in range(n_gaps):
        squares += (gaps[k] - mean) ** 2
    std = np.sqrt(squares / (n_gaps - 1)) if n_gaps > 1 else np.nan
    gaps[:n_gaps].sort()
    median = (gaps[(n_gaps - 1) // 2] + gaps[n_gaps // 2]) / 2
    return median, std


@_parallel
def customer_features(starts, packed, columns, cut, windows, trend_days, n_columns):
    """The transaction features of every customer, one row of the result per feature (``HEAD``,
    then orders and spend per window, then ``TAIL``, then NaN up to ``n_columns``), rounded to 9
    decimals, and whether the customer has a purchase day (only those get a row of the table).

    ``columns``: the table has an order id, a product id, a category, a discount column. Per
    customer and day (the SQL's ``days`` table) the rows give net, gross and refunded amounts,
    purchase rows, hours, discounted rows and orders; per customer the days give the rest."""
    n_customers = starts.shape[0] - 1
    out = np.empty((n_columns, n_customers))  # a customer without a row is dropped: no fill
    n_features = _N_HEAD + 2 * windows.shape[0] + _N_TAIL
    out[n_features:] = np.nan  # the event columns, unknown without an events table
    kept = np.zeros(n_customers, dtype=np.bool_)
    blocks = 64
    size = (n_customers + blocks - 1) // blocks
    for block in numba.prange(blocks):
        first, last = block * size, min(n_customers, (block + 1) * size)
        most = 0
        for c in range(first, last):
            most = max(most, starts[c + 1] - starts[c])
        buffers = (
            np.empty(most, dtype=np.uint64),  # the order ids of a day
            np.empty(most, dtype=np.uint64),  # the products of the customer
            np.empty(most, dtype=np.uint64),  # the categories of the customer
            np.empty(most, dtype=np.int64),  # the purchase days
            np.empty(most, dtype=np.float64),  # the gaps between them
            np.empty(windows.shape[0], dtype=np.int64),  # orders per window
            np.empty(windows.shape[0], dtype=np.float64),  # spend per window
        )
        for c in range(first, last):
            if starts[c + 1] > starts[c]:
                rows = packed[starts[c] : starts[c + 1]]
                kept[c] = _one_customer(rows, columns, cut, windows, trend_days, buffers, out[:, c])
    return out, kept


@_jit
def _one_day(rows, i, has_order, day_orders, products, categories, n_products, n_categories):
    """The customer-day starting at row ``i`` (a row of the SQL's ``days`` table): where the next
    day starts, the day, net, gross and refunded amounts, purchase hours, purchase rows,
    discounted rows and orders; the day's products and categories are appended to the
    customer's (their counts returned)."""
    end = rows.shape[0]
    day = rows[i].stamp // DAY
    net = gross = refunded = hours = 0.0
    day_rows = discounted = n_ids = without_id = 0
    while i < end and rows[i].stamp // DAY == day:
        row = rows[i]
        i += 1
        x = row.amount
        net += x
        if not x >= 0:  # a refund or return: never a purchase
            refunded -= x
            continue
        gross += x
        day_rows += 1
        within = row.stamp - day * DAY
        hours += within // HOUR + (within % HOUR // MINUTE) / 60.0
        flags = row.flags
        if flags & DISCOUNTED:
            discounted += 1
        if flags & HAS_ORDER:
            day_orders[n_ids] = row.order
            n_ids += 1
        else:
            without_id += 1  # an order of its own
        if flags & HAS_PRODUCT:
            products[n_products] = row.product
            n_products += 1
        if flags & HAS_CATEGORY:
            categories[n_categories] = row.category
            n_categories += 1
    orders = _distinct(day_orders, n_ids) + without_id if has_order else day_rows
    day_tally = (net, gross, refunded, hours)
    return i, day, day_tally, day_rows, discounted, orders, n_products, n_categories


@_jit
def _one_customer(rows, columns, cut, windows, trend_days, buffers, out):
    """One customer's features into ``out``; False when the customer has no purchase day."""
    day_orders, products, categories, purchase_day, gaps, window_orders, window_spend = buffers
    window_orders[:] = 0
    window_spend[:] = 0.0
    n_purchase_days = first_day = last_day = 0
    purchase_day_net = first_day_net = 0.0
    orders_total = purchase_rows = discounted_rows = weekend_days = 0
    spend_total = gross_total = refund_total = hour_total = 0.0
    gross_recent = gross_prior = 0.0
    ly_30 = ly_90 = n_products = n_categories = 0
    i = 0
    while i < rows.shape[0]:
        i, day, tally, day_rows, discounted, orders, n_products, n_categories = _one_day(
            rows, i, columns[0], day_orders, products, categories, n_products, n_categories
        )
        net, gross, refunded, hours = tally
        orders_total += orders
        spend_total += net
        gross_total += gross
        refund_total += refunded
        hour_total += hours
        purchase_rows += day_rows
        discounted_rows += discounted
        for w in range(windows.shape[0]):
            if day > cut - windows[w]:
                window_orders[w] += orders
                window_spend[w] += net
        if day > cut - trend_days:
            gross_recent += gross
        elif day > cut - 2 * trend_days:
            gross_prior += gross
        if cut - 365 < day <= cut - 335:
            ly_30 += orders
        if cut - 365 < day <= cut - 275:
            ly_90 += orders
        if day_rows > 0:  # a purchase day
            if n_purchase_days == 0:
                first_day, first_day_net = day, net
            purchase_day[n_purchase_days] = day
            n_purchase_days += 1
            last_day = day
            purchase_day_net += net
            weekday = (day + 4) % 7  # 0 = Sunday, as DuckDB's dayofweek; 1970-01-01 was a Thursday
            if weekday == 0 or weekday == 6:
                weekend_days += 1
    if n_purchase_days == 0:
        return False
    repeats = n_purchase_days - 1
    median, std = _gap_statistics(purchase_day, n_purchase_days, gaps)
    since_last = float(cut - last_day)
    both = gross_recent + gross_prior
    head = (
        float(repeats),
        float(last_day - first_day),
        float(cut - first_day),
        (purchase_day_net - first_day_net) / repeats if repeats > 0 else 0.0,
        since_last,
        float(orders_total),
        spend_total,
        gross_total,
        refund_total,
        gross_total / orders_total if orders_total != 0 else np.nan,
        (last_day - first_day) / repeats if repeats > 0 else np.nan,
        median,
        std,
        since_last / median if median != 0 else np.nan,  # NaN / NaN stays NaN
        (gross_recent - gross_prior) / both if both > 0 else 0.0,
        refund_total / gross_total if gross_total != 0 else 0.0,
        weekend_days / n_purchase_days,
    )
    year_old = cut - first_day >= 365
    tail = (
        float(ly_30) if year_old else np.nan,
        float(ly_90) if year_old else np.nan,
        float(_distinct(products, n_products)) if columns[1] else np.nan,
        float(_distinct(categories, n_categories)) if columns[2] else np.nan,
        discounted_rows / purchase_rows if columns[3] else np.nan,
        hour_total / purchase_rows,
    )
    _write(out, head, window_orders, window_spend, tail)
    return True


@_jit
def _write(out, head, window_orders, window_spend, tail):
    """A customer's column of the feature table, rounded as the SQL's (``HEAD``, windows,
    ``TAIL``)."""
    for k in range(len(head)):
        out[k] = _rounded(head[k])
    at = len(head)
    for w in range(window_orders.shape[0]):
        out[at + 2 * w] = float(window_orders[w])
        out[at + 2 * w + 1] = _rounded(window_spend[w])
    at += 2 * window_orders.shape[0]
    for k in range(len(tail)):
        out[at + k] = _rounded(tail[k])
