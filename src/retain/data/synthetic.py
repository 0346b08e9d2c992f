"""A seeded synthetic e-commerce shop whose customers follow BG/NBD and Gamma-Gamma exactly.

Real data never says which customers are still alive or what their purchase rate is, so the models
can only be judged on hold-out behaviour there. Here every customer's latent rate, dropout
probability, spend level and death are drawn from known priors and returned next to the tables,
so a fitted model can be compared with the truth, parameter by parameter and customer by customer.

The purchase process is the BG/NBD of Fader, Hardie & Lee (2005), in days:

- customer ``i`` is acquired at a uniform time ``t0_i`` of the acquisition window and buys then;
- while alive, repeat purchases arrive as a Poisson process of rate ``lambda_i ~ Gamma(r, alpha)``;
- after each *repeat* purchase the customer dies with probability ``p_i ~ Beta(a, b)``, so nobody
  dies before their first repeat purchase, as in the BG/NBD likelihood;
- the observation ends at the end of the day ``end``.

Amounts follow the Gamma-Gamma model (Colombo & Jiang 1999; Fader, Hardie & Lee 2005, "RFM and
CLV"): ``nu_i ~ Gamma(q, rate gamma)`` and each amount ``~ Gamma(p, rate nu_i)``, so customer ``i``
spends ``p / nu_i`` on average and the population ``p gamma / (q - 1)``.

Times are simulated on a continuous clock of days since ``start``, then each day is stretched onto
the wall clock with a daytime-heavy hourly profile. The stretch is monotone within a day and keeps
every purchase on its day, so it leaves the order of purchases and every day-level count (what the
models see) unchanged, while the timestamps get realistic hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.contract import EVENT_TYPES, EVENTS, TRANSACTIONS
from retain.data.dates import to_utc, utc_day
from retain.errors import RetainInputError

__all__ = ["MAX_ROWS", "SyntheticData", "simulate"]

# The most purchases (or events) one call may generate. The simulation never materialises the
# purchases a customer would have made after dying (see `_repeat_fractions`), so this only stops
# parameters whose *real* output would not fit in memory (about 1 kB per row at the peak), instead
# of letting the process be killed. Ten million transactions, the intended scale, is far below it.
MAX_ROWS: Final = 100_000_000

# numpy's Poisson sampler rejects means above ~9e18; a customer whose mean number of purchases in
# the window exceeds this is capped there, which changes nothing as long as MAX_ROWS holds.
_MAX_POISSON_MEAN: Final = 1e12

_US_PER_DAY: Final = 86_400_000_000
_US_PER_MINUTE: Final = 60_000_000
_US_PER_HOUR: Final = 60 * _US_PER_MINUTE

# Relative share of activity by UTC hour: quiet at night, peaks at lunch and in the evening.
_HOUR_WEIGHTS: Final = np.array(
    [0.5, 0.3, 0.2, 0.15, 0.15, 0.25, 0.6, 1.2, 2.0, 2.8, 3.4, 3.9,
     4.1, 3.9, 3.7, 3.7, 3.9, 4.2, 4.8, 5.3, 5.4, 4.6, 3.0, 1.4]
)  # fmt: skip
_HOUR_SHARE: Final = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()
_HOUR_CDF: Final = np.concatenate([[0.0], np.cumsum(_HOUR_SHARE)[:-1]])

# The catalogue is the same for every seed, so a product always belongs to the same category.
_CATALOGUE_SEED: Final = 20_240_101
_N_PRODUCTS: Final = 500
_CATEGORIES: Final = (
    "apparel", "shoes", "accessories", "beauty", "home", "kitchen",
    "electronics", "books", "toys", "sports", "garden", "grocery",
)  # fmt: skip

# Event behaviour. Sessions come at _SESSION_RATE x lambda while alive (browsing beyond the
# purchases) and at a tenth of that after death (lapsed customers still drop by now and then).
_SESSION_RATE: Final = 4.0
_DEAD_SESSION_SHARE: Final = 0.1
_PURCHASE_SESSION_SHARE: Final = 0.8  # purchases that come with a tracked session
_VIEWS_PER_SESSION: Final = 2.5
_CART_SHARE: Final = 0.2  # browsing sessions that put something in the cart
_ABANDON_SHARE: Final = 0.7  # browsing carts that get a cart_abandon event
_WISHLIST_SHARE: Final = 0.03
_CLICK_SHARE_ALIVE: Final = 0.15
_CLICK_SHARE_DEAD: Final = 0.05
_DEAD_OPEN_FACTOR: Final = 0.3  # a dead customer opens emails at 30 % of their alive propensity
_TICKET_SHARE: Final = 0.02  # purchases followed by a support ticket


@dataclass(frozen=True)
class SyntheticData:
    """Simulated tables and the ground truth they were drawn from.

    ``truth`` has one row per customer: ``customer_id``, ``acquired_at`` (first purchase),
    ``lam`` (repeat purchases per day while alive), ``p_drop`` (death probability after each repeat
    purchase), ``nu`` and ``expected_spend`` (``p / nu``, the customer's mean amount), ``n_repeat``
    (repeat purchases within the window), ``alive_at_end`` and ``died_at`` (the purchase after
    which the customer died; NaT if alive). ``params`` holds the arguments of :func:`simulate`.
    """

    transactions: pd.DataFrame
    events: pd.DataFrame | None
    truth: pd.DataFrame
    params: dict[str, Any]


def simulate(
    n_customers: int = 10_000,
    *,
    start: str = "2022-01-01",
    end: str = "2024-12-31",
    acquisition_days: int = 365,
    r: float = 0.75,
    alpha: float = 60.0,
    a: float = 0.8,
    b: float = 2.5,
    p: float = 6.0,
    q: float = 4.0,
    gamma: float = 15.0,
    events: bool = False,
    discounts: bool = False,
    refund_rate: float = 0.0,
    seed: int = 0,
) -> SyntheticData:
    """Simulate ``n_customers`` BG/NBD customers with Gamma-Gamma spend, and their ground truth.

    Customers are acquired uniformly over ``[start, start + acquisition_days)`` (UTC) and observed
    to the end of the day ``end``. ``r, alpha`` (rate per day), ``a, b`` and ``p, q, gamma`` are the
    BG/NBD and Gamma-Gamma parameters in lifetimes' notation, so a fit can be compared with them.

    ``discounts`` adds a ``discount`` column: the amount taken off the list price of an order, so
    ``amount`` stays the Gamma-Gamma draw (what the customer paid) and the truth stays exact.
    ``refund_rate`` is the share of orders that get a refund row 1 to 30 days later, with a
    negative amount; refunds that would land after ``end`` are not recorded. Both, and ``events``,
    draw from their own random streams: switching them on leaves the purchases unchanged.
    The same ``seed`` gives identical frames.

    The work is vectorised over customers: 1.6 million customers (about 8.5 million purchases
    with the default parameters) take some 15 s and 2 GB. Events multiply the rows by about 20.
    """
    params = {
        "n_customers": n_customers, "start": start, "end": end,
        "acquisition_days": acquisition_days, "r": r, "alpha": alpha, "a": a, "b": b,
        "p": p, "q": q, "gamma": gamma, "events": events, "discounts": discounts,
        "refund_rate": refund_rate, "seed": seed,
    }  # fmt: skip
    start_ts, n_days = _check_arguments(params)
    customer_rng, order_rng, discount_rng, refund_rng, event_rng = np.random.default_rng(
        seed
    ).spawn(5)
    start_us = start_ts.value // 1_000  # pd.Timestamp.value is in nanoseconds
    end_us = n_days * _US_PER_DAY  # the end of the window, on the clock of µs since start
    shop = _population(params, n_days, customer_rng)
    catalogue = _catalogue()
    lines = _purchase_lines(shop, p, catalogue[2], order_rng)
    if discounts:
        lines["discount"] = _discounts(lines["amount"], shop.owner, n_customers, discount_rng)
    if refund_rate > 0:
        lines = _with_refunds(lines, refund_rate, end_us, refund_rng)
    ids = _ids("C", np.arange(1, n_customers + 1), max(7, len(str(n_customers))))
    order_width = max(8, len(str(shop.owner.size)))
    transactions = _transactions(lines, ids, catalogue, start_us, order_width)
    event_frame = None
    if events:
        event_frame = _events(shop, ids, float(n_days), start_ts, end_us, event_rng)
    return SyntheticData(transactions, event_frame, _truth(shop, ids, p, start_us), params)


@dataclass(frozen=True)
class _Population:
    """The customers' latent traits, their deaths, and their purchases in time order."""

    t0: np.ndarray  # acquisition, continuous days since start
    lam: np.ndarray  # repeat purchases per day while alive
    p_drop: np.ndarray  # death probability after each repeat purchase
    nu: np.ndarray  # Gamma-Gamma spend rate
    n_repeat: np.ndarray  # repeat purchases within the window
    alive: np.ndarray  # alive at the end of the window
    death_t: np.ndarray  # death, continuous days (the window's end if alive)
    acquired_us: np.ndarray  # first purchase, µs since start
    died_us: np.ndarray  # the dying purchase, µs since start (meaningful only where not alive)
    owner: np.ndarray  # the customer of each purchase, in time order
    purchase_us: np.ndarray  # each purchase, µs since start, in time order


def _population(params: dict[str, Any], n_days: int, rng: np.random.Generator) -> _Population:
    """Draw the customers (BG/NBD traits, Gamma-Gamma spend rate) and their purchase times."""
    n = params["n_customers"]
    # Customers: acquisition time (days since start) and latent traits.
    t0 = rng.uniform(0.0, params["acquisition_days"], n)
    lam = rng.gamma(params["r"], 1.0 / params["alpha"], n)
    p_drop = rng.beta(params["a"], params["b"], n)
    nu = rng.gamma(params["q"], 1.0 / params["gamma"], n)

    # K: the repeat purchase after which the customer dies; N: purchases of the undying process.
    dies_after = rng.geometric(np.clip(p_drop, 1e-300, 1.0))
    window = n_days - t0
    n_unbounded = rng.poisson(np.minimum(lam * window, _MAX_POISSON_MEAN))
    n_repeat = np.minimum(dies_after, n_unbounded)
    alive = dies_after > n_unbounded
    _check_size(n + int(n_repeat.sum()), "purchases")

    # Purchases in customer order: each customer's first purchase, then their repeats in time order.
    fractions = _repeat_fractions(n_repeat, n_unbounded, rng)
    repeat_owner = np.repeat(np.arange(n), n_repeat)
    repeat_t = t0[repeat_owner] + window[repeat_owner] * fractions
    n_purchases = n_repeat + 1
    first_row = np.cumsum(n_purchases) - n_purchases
    owner = np.repeat(np.arange(n), n_purchases)
    t = np.empty(owner.size)
    t[first_row] = t0
    is_repeat = np.ones(owner.size, dtype=bool)
    is_repeat[first_row] = False
    t[is_repeat] = repeat_t
    # Died: the last purchase is the dying one.
    last_t = t[first_row + n_repeat]
    death_t = np.where(alive, float(n_days), last_t)

    purchase_us = _wall_clock_us(t)
    # The rows are in customer order, so a stable sort on time alone also orders ties by customer.
    order = np.argsort(purchase_us, kind="stable")
    return _Population(
        t0, lam, p_drop, nu, n_repeat, alive, death_t,
        acquired_us=purchase_us[first_row], died_us=purchase_us[first_row + n_repeat],
        owner=owner[order], purchase_us=purchase_us[order],
    )  # fmt: skip


def _purchase_lines(
    shop: _Population, p: float, popularity: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One line per purchase: its Gamma-Gamma amount, a quantity and a product, by column."""
    owner = shop.owner
    amount = rng.gamma(p, 1.0, owner.size) / shop.nu[owner]
    amount = np.maximum(np.round(amount, 2), 0.01)
    quantity = (1 + rng.poisson(0.4, owner.size)).astype(np.float64)
    product = rng.choice(_N_PRODUCTS, size=owner.size, p=popularity)
    order_no = np.arange(1, owner.size + 1)
    return {
        "owner": owner, "us": shop.purchase_us, "amount": amount, "order_no": order_no,
        "quantity": quantity, "product": product,
    }  # fmt: skip


def _transactions(
    lines: dict[str, np.ndarray],
    ids: pd.api.extensions.ExtensionArray,
    catalogue: tuple[list[str], np.ndarray, np.ndarray],
    start_us: int,
    order_width: int,
) -> pd.DataFrame:
    """The transactions table of the contract from the lines' columns."""
    products, product_category, _ = catalogue
    transactions = pd.DataFrame(
        {
            "customer_id": _take(ids, lines["owner"]),
            "timestamp": _timestamps(lines["us"], start_us),
            "amount": lines["amount"],
            "order_id": _order_ids(lines["order_no"], order_width),
            "quantity": lines["quantity"],
            "product_id": _take(products, lines["product"]),
            "category": _take(_CATEGORIES, product_category[lines["product"]]),
        }
    )
    if "discount" in lines:
        transactions["discount"] = lines["discount"]
    TRANSACTIONS.check(transactions)
    return transactions


def _truth(
    shop: _Population, ids: pd.api.extensions.ExtensionArray, p: float, start_us: int
) -> pd.DataFrame:
    """One row per customer: what was drawn (see :class:`SyntheticData`)."""
    return pd.DataFrame(
        {
            "customer_id": ids,
            "acquired_at": _timestamps(shop.acquired_us, start_us),
            "lam": shop.lam,
            "p_drop": shop.p_drop,
            "nu": shop.nu,
            "expected_spend": p / shop.nu,
            "n_repeat": shop.n_repeat.astype(np.int64),
            "alive_at_end": shop.alive,
            "died_at": _timestamps(shop.died_us, start_us).where(~shop.alive),
        }
    )


def _check_arguments(params: dict[str, Any]) -> tuple[pd.Timestamp, int]:
    """Raise RetainInputError for arguments that cannot describe a shop; return start and days."""
    n = params["n_customers"]
    if not _is_integer(n) or n < 1:
        raise RetainInputError(f"n_customers must be a positive integer, got {n!r}")
    start, end = _date(params["start"], "start"), _date(params["end"], "end")
    days = params["acquisition_days"]
    if not _is_integer(days) or days < 1:
        raise RetainInputError(f"acquisition_days must be a positive integer, got {days!r}")
    n_days = (end - start).days + 1  # the observation runs to the end of the day `end`
    if n_days < days:
        last = (start + pd.Timedelta(days=days - 1)).date()
        raise RetainInputError(
            f"end ({end.date()}) is before the end of the acquisition window ({last}): "
            "customers would be acquired after the observation ends"
        )
    for name in ("r", "alpha", "a", "b", "p", "q", "gamma"):
        value = params[name]
        if not _is_number(value) or not np.isfinite(value) or value <= 0:
            raise RetainInputError(f"{name} must be a positive finite number, got {value!r}")
    rate = params["refund_rate"]
    if not _is_number(rate) or not 0 <= rate < 1:
        raise RetainInputError(f"refund_rate must be in [0, 1), got {rate!r}")
    seed = params["seed"]
    if not _is_integer(seed) or seed < 0:
        raise RetainInputError(f"seed must be a non-negative integer, got {seed!r}")
    return start, n_days


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _date(value: str, name: str) -> pd.Timestamp:
    """A date string as a naive UTC midnight; a time of day is refused."""
    day = utc_day(value, name)
    if to_utc(value, name).tz_localize(None) != day:
        raise RetainInputError(f"{name} must be a date without a time of day, got {value!r}")
    return day.as_unit("us")


def _check_size(rows: int, what: str) -> None:
    if rows > MAX_ROWS:
        raise RetainInputError(
            f"these parameters would generate {rows:,} {what}, more than the limit of "
            f"{MAX_ROWS:,}: use fewer customers, a lower purchase rate (larger alpha) or a "
            "higher dropout probability"
        )


def _repeat_fractions(
    n_repeat: np.ndarray, n_unbounded: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """The first ``n_repeat[i]`` of ``n_unbounded[i]`` sorted uniforms on (0, 1), per customer.

    Given N events of a Poisson process in a window, their times are N sorted uniforms. The first
    n of them are S_1/S_{N+1}, ..., S_n/S_{N+1}, where S_j are partial sums of standard
    exponentials; S_{N+1} is S_n plus an independent Gamma(N + 1 - n). So only the kept purchases
    are drawn, and the purchases that death cuts off cost nothing, however large lambda is.
    Returns one flat array, customer after customer, increasing within each customer.
    """
    total = np.cumsum(rng.standard_exponential(int(n_repeat.sum())))
    ends = np.cumsum(n_repeat)
    before = np.concatenate([[0.0], total])[ends - n_repeat]  # sum up to the customer's first
    partial = total - np.repeat(before, n_repeat)
    last = np.concatenate([[0.0], total])[ends] - before  # S_n (0 without repeats)
    rest = rng.gamma((n_unbounded - n_repeat + 1).astype(np.float64))
    return partial / np.repeat(last + rest, n_repeat)


def _wall_clock_us(t: np.ndarray) -> np.ndarray:
    """Continuous days since start -> µs since start, with daytime-weighted hours.

    The fraction of each day is mapped through the inverse CDF of the hourly profile (uniform
    within an hour). The map is increasing and keeps each time on its day.
    """
    day = np.floor(t)
    u = t - day
    hour = np.searchsorted(_HOUR_CDF, u, side="right") - 1
    within = (u - _HOUR_CDF[hour]) / _HOUR_SHARE[hour]
    us_of_day = np.floor((hour + within) * _US_PER_HOUR).astype(np.int64)
    return day.astype(np.int64) * _US_PER_DAY + np.minimum(us_of_day, _US_PER_DAY - 1)


def _timestamps(us: np.ndarray, start_us: int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex((us + start_us).view("datetime64[us]")).tz_localize("UTC")


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pd.api.extensions.ExtensionArray:
    """``prefix`` + zero-padded ``numbers`` as a pandas ``str`` array.

    Written as fixed-width bytes straight into an Arrow buffer: formatting ten million ids with
    Python strings would take longer than the whole simulation.
    """
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    size = head.size + width
    digits = np.empty((size, numbers.size), dtype=np.uint8)  # one row per character: fast writes
    digits[: head.size] = head[:, None]
    rest = numbers.astype(np.uint32 if numbers.size and numbers.max() < 2**32 else np.uint64)
    for row in range(size - 1, head.size - 1, -1):
        digits[row] = rest % 10
        rest = rest // 10
    digits[head.size :] += ord("0")
    offsets = np.arange(0, numbers.size * size + 1, size, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(
        numbers.size, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(digits.T))
    )
    return pd.array(strings, dtype="str")


def _order_ids(order_no: np.ndarray, width: int) -> pd.api.extensions.ExtensionArray:
    """``O00000001`` for an order; a refund (negative number) gets ``RO00000001``."""
    ids = pa.array(_ids("O", np.abs(order_no), width))
    refund = order_no < 0
    if refund.any():
        text = pa.large_string()
        prefixed = pc.binary_join_element_wise(pa.scalar("R", text), ids, pa.scalar("", text))
        ids = pc.if_else(pa.array(refund), prefixed, ids)
    return pd.array(ids, dtype="str")


def _take(
    labels: Sequence[str] | pd.api.extensions.ExtensionArray, codes: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """``labels[codes]`` as a pandas ``str`` array, taken in Arrow (no Python strings per row)."""
    strings = pc.take(pa.array(labels, type=pa.large_string()), pa.array(codes))
    return pd.array(strings, dtype="str")


def _catalogue() -> tuple[list[str], np.ndarray, np.ndarray]:
    """Product ids, each product's category code, and Zipf-like popularity (fixed for all seeds)."""
    rng = np.random.default_rng(_CATALOGUE_SEED)
    products = [f"P{i:04d}" for i in range(1, _N_PRODUCTS + 1)]
    category_size = rng.dirichlet(np.full(len(_CATEGORIES), 3.0))
    category = rng.choice(len(_CATEGORIES), size=_N_PRODUCTS, p=category_size)
    popularity = 1.0 / rng.permutation(np.arange(1, _N_PRODUCTS + 1)) ** 1.05
    return products, category, popularity / popularity.sum()


def _discounts(
    amount: np.ndarray, owner: np.ndarray, n_customers: int, rng: np.random.Generator
) -> np.ndarray:
    """Discount amount per order: most customers rarely get one, a few hunt for them.

    A customer's propensity is Beta(0.6, 3) (mean 17 %); a discounted order gets 5-30 % off its
    list price, and ``amount`` is what was paid, so the discount is ``amount * rate / (1 - rate)``.
    """
    propensity = rng.beta(0.6, 3.0, n_customers)
    given = rng.random(owner.size) < propensity[owner]
    rate = rng.choice(np.array([0.05, 0.1, 0.15, 0.2, 0.3]), size=owner.size,
                      p=[0.2, 0.35, 0.2, 0.15, 0.1])  # fmt: skip
    return np.where(given, np.round(amount * rate / (1 - rate), 2), 0.0)


def _with_refunds(
    columns: dict[str, np.ndarray], refund_rate: float, end_us: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Add refund rows (negative amount, 1-30 days after their order) and re-sort by time.

    60 % of refunds return the whole order, the others 10-90 % of it (a partial return or a
    goodwill gesture); the quantity returned follows the same share.
    """
    chosen = np.flatnonzero(rng.random(columns["us"].size) < refund_rate)
    delay = rng.integers(_US_PER_DAY, 30 * _US_PER_DAY, chosen.size, endpoint=True)
    share = np.where(rng.random(chosen.size) < 0.6, 1.0, rng.uniform(0.1, 0.9, chosen.size))
    refund_us = columns["us"][chosen] + delay
    kept = refund_us < end_us
    chosen, share, refund_us = chosen[kept], share[kept], refund_us[kept]
    refund = {
        "owner": columns["owner"][chosen],
        "us": refund_us,
        "amount": -np.maximum(np.round(share * columns["amount"][chosen], 2), 0.01),
        "order_no": -columns["order_no"][chosen],
        "quantity": -np.round(share * columns["quantity"][chosen]) + 0.0,  # + 0.0: no -0.0
        "product": columns["product"][chosen],
    }
    if "discount" in columns:
        refund["discount"] = np.zeros(chosen.size)
    # Orders come first, so on a tie of time and customer an order precedes its refunds.
    owner = np.concatenate([columns["owner"], refund["owner"]])
    us = np.concatenate([columns["us"], refund["us"]])
    order = np.lexsort((owner, us))
    return {name: np.concatenate([columns[name], refund[name]])[order] for name in columns}


_EVENT_CODES: Final = {name: code for code, name in enumerate(EVENT_TYPES)}

# Events of one kind: (owner, µs since start, event code).
_Part = tuple[np.ndarray, np.ndarray, int]


def _events(
    shop: _Population,
    ids: pd.api.extensions.ExtensionArray,
    n_days: float,
    start: pd.Timestamp,
    end_us: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Web and email events that carry signal about being alive without copying the purchases.

    - browsing sessions at ``4 lambda`` per day while alive and a tenth of that after death;
    - 80 % of purchases come with a tracked session (views, add_to_cart) just before them;
    - product views per session, add_to_cart on 20 % of browsing sessions, cart_abandon for 70 %
      of those carts, wishlist_add on 3 % of browsing sessions;
    - a weekly email campaign (Tuesdays 09:00 UTC) from acquisition on; each customer has a
      Beta(1.5, 6) open propensity, cut to 30 % after death; 15 % of opens click (5 % when dead);
    - a support ticket after 2 % of purchases, 1 hour to 14 days later.

    Each step draws from ``rng`` in turn, so their order is part of what a seed means.
    """
    sessions = _Sessions.draw(shop, n_days, rng)
    parts = [*sessions.parts(), _product_views(sessions, rng), *_carts(sessions, rng)]
    parts += _emails(shop, n_days, start, end_us, rng)
    ticketed = rng.random(shop.owner.size) < _TICKET_SHARE
    ticket_us = shop.purchase_us[ticketed] + rng.integers(
        _US_PER_HOUR, 14 * _US_PER_DAY, ticketed.sum()
    )
    parts.append((shop.owner[ticketed], ticket_us, _EVENT_CODES["support_ticket"]))
    return _event_table(parts, ids, start, end_us)


@dataclass(frozen=True)
class _Sessions:
    """Browsing sessions, and the sessions that led to a purchase."""

    browse_owner: np.ndarray
    browse_us: np.ndarray
    buy_owner: np.ndarray
    buy_us: np.ndarray  # the purchase
    buy_session_us: np.ndarray  # the start of its session

    @classmethod
    def draw(cls, shop: _Population, n_days: float, rng: np.random.Generator) -> _Sessions:
        # Browsing sessions, uniform within the alive period and within the dead period.
        lam, t0, death_t = shop.lam, shop.t0, shop.death_t
        customer = np.arange(t0.size)
        alive_count = rng.poisson(_SESSION_RATE * lam * (death_t - t0))
        dead_count = rng.poisson(_SESSION_RATE * _DEAD_SESSION_SHARE * lam * (n_days - death_t))
        _check_size(int(alive_count.sum() + dead_count.sum()) * 4, "events")
        lo = np.concatenate([np.repeat(t0, alive_count), np.repeat(death_t, dead_count)])
        hi = np.concatenate(
            [np.repeat(death_t, alive_count), np.full(int(dead_count.sum()), n_days)]
        )
        browse_owner = np.concatenate(
            [np.repeat(customer, alive_count), np.repeat(customer, dead_count)]
        )
        browse_us = _wall_clock_us(rng.uniform(lo, hi))
        # Sessions that led to a purchase start 2-30 minutes before it (not before the window).
        tracked = rng.random(shop.owner.size) < _PURCHASE_SESSION_SHARE
        buy_us = shop.purchase_us[tracked]
        buy_session_us = np.maximum(
            buy_us - rng.integers(2 * _US_PER_MINUTE, 30 * _US_PER_MINUTE, buy_us.size), 0
        )
        return cls(browse_owner, browse_us, shop.owner[tracked], buy_us, buy_session_us)

    def parts(self) -> list[_Part]:
        session = _EVENT_CODES["session"]
        return [(self.browse_owner, self.browse_us, session),
                (self.buy_owner, self.buy_session_us, session)]  # fmt: skip


def _product_views(sessions: _Sessions, rng: np.random.Generator) -> _Part:
    """Product views: browsing sessions view 0+ products, purchase sessions 1+."""
    session_owner = np.concatenate([sessions.browse_owner, sessions.buy_owner])
    session_us = np.concatenate([sessions.browse_us, sessions.buy_session_us])
    views = rng.poisson(_VIEWS_PER_SESSION, session_owner.size)
    views[sessions.browse_owner.size :] += 1
    view_us = np.repeat(session_us, views) + rng.integers(0, 20 * _US_PER_MINUTE, int(views.sum()))
    return np.repeat(session_owner, views), view_us, _EVENT_CODES["product_view"]


def _carts(sessions: _Sessions, rng: np.random.Generator) -> list[_Part]:
    """Carts: every purchase session has one (between its start and the purchase); a share of
    browsing sessions too, most of which are later flagged as abandoned; and wishlist adds."""
    s = sessions
    buy_cart_us = s.buy_session_us + (
        (s.buy_us - s.buy_session_us) * rng.uniform(0.1, 0.9, s.buy_us.size)
    ).astype(np.int64)
    carted = rng.random(s.browse_owner.size) < _CART_SHARE
    cart_us = s.browse_us[carted] + rng.integers(_US_PER_MINUTE, 20 * _US_PER_MINUTE, carted.sum())
    abandoned = rng.random(cart_us.size) < _ABANDON_SHARE
    abandon_us = cart_us[abandoned] + rng.integers(_US_PER_HOUR, 2 * _US_PER_HOUR, abandoned.sum())
    wished = rng.random(s.browse_owner.size) < _WISHLIST_SHARE
    wish_us = s.browse_us[wished] + rng.integers(0, 20 * _US_PER_MINUTE, wished.sum())
    return [
        (s.buy_owner, buy_cart_us, _EVENT_CODES["add_to_cart"]),
        (s.browse_owner[carted], cart_us, _EVENT_CODES["add_to_cart"]),
        (s.browse_owner[carted][abandoned], abandon_us, _EVENT_CODES["cart_abandon"]),
        (s.browse_owner[wished], wish_us, _EVENT_CODES["wishlist_add"]),
    ]


def _emails(
    shop: _Population, n_days: float, start: pd.Timestamp, end_us: int, rng: np.random.Generator
) -> list[_Part]:
    """Email: a weekly campaign, received from acquisition on; opens and clicks, fewer after
    death."""
    n = shop.t0.size
    customer = np.arange(n)
    first_tuesday = (1 - start.weekday()) % 7
    campaign_us = (np.arange(first_tuesday, n_days, 7) * _US_PER_DAY + 9 * _US_PER_HOUR).astype(
        np.int64
    )
    death_us = np.where(shop.alive, end_us, shop.died_us)
    first = np.searchsorted(campaign_us, shop.acquired_us)
    turn = np.maximum(np.searchsorted(campaign_us, death_us), first)  # first campaign after death
    last = campaign_us.size
    propensity = rng.beta(1.5, 6.0, n)
    parts: list[_Part] = []
    for low, high, open_share, click_share in (
        (first, turn, propensity, _CLICK_SHARE_ALIVE),
        (turn, np.full(n, last), _DEAD_OPEN_FACTOR * propensity, _CLICK_SHARE_DEAD),
    ):
        opens = rng.binomial(high - low, open_share)
        open_owner = np.repeat(customer, opens)
        span = (high - low)[open_owner]
        campaign = low[open_owner] + np.floor(rng.random(open_owner.size) * span).astype(np.int64)
        open_us = campaign_us[campaign] + (
            rng.exponential(6 * _US_PER_HOUR, open_owner.size)
        ).astype(np.int64)
        clicked = rng.random(open_owner.size) < click_share
        click_us = open_us[clicked] + rng.integers(5_000_000, 10 * _US_PER_MINUTE, clicked.sum())
        parts += [(open_owner, open_us, _EVENT_CODES["email_open"]),
                  (open_owner[clicked], click_us, _EVENT_CODES["email_click"])]  # fmt: skip
    return parts


def _event_table(
    parts: list[_Part], ids: pd.api.extensions.ExtensionArray, start: pd.Timestamp, end_us: int
) -> pd.DataFrame:
    """The events table of the contract: the events inside the window, in time order."""
    event_owner = np.concatenate([part[0] for part in parts])
    event_us = np.concatenate([part[1] for part in parts])
    event_code = np.concatenate([np.full(part[0].size, part[2], dtype=np.int8) for part in parts])
    inside = event_us < end_us
    event_owner, event_us, event_code = event_owner[inside], event_us[inside], event_code[inside]
    order = np.lexsort((event_code, event_owner, event_us))
    frame = pd.DataFrame(
        {
            "customer_id": _take(ids, event_owner[order]),
            "timestamp": _timestamps(event_us[order], start.value // 1_000),
            "event_type": _take(EVENT_TYPES, event_code[order]),
        }
    )
    EVENTS.check(frame)
    return frame
