"""The feature registry: every column of the feature table declared once.

A declaration says what a feature is (name, dtype, unit, one-line meaning), what computes it and
whether the models read it. Names with ``{window}`` stand for one column per trailing window of
the builder (``orders_{window}d`` -> ``orders_30d``, ``orders_90d``, ...); ``{event}`` stands
for each of the contract's event types.

What computes a feature (``engines``):

- ``duckdb``, ``numpy`` and ``numba``: the builder's engines (the SQL of
  :mod:`retain.features.builder`, :mod:`retain.features.in_memory` for a few customers, and the
  one compiled pass of :mod:`retain.features.compiled` / ``_kernels`` for large tables), which
  must return exactly :func:`feature_columns`, in that order and with those dtypes; the builder
  checks the names on every build, ``tests/features/test_registry.py`` the dtypes of every
  engine, and ``test_in_memory.py`` / ``test_compiled.py`` the values against the SQL's. The
  event features are ``duckdb`` and ``numpy`` only: a numba build takes them from one of those.
- ``customers``: the builder's join of the customers table (both engines).
- ``btyd`` and ``segments``: added by the model to the builder's table (the BG/NBD + Gamma-Gamma
  columns of ``BTYDFeatures`` and the RFM scores of ``RFMSegmenter``).

A model input is a feature the LightGBM models read. Only declared features are: a column of a
customers file that is not declared here (a postcode, say) becomes an input only when the user
declares it, never because it happens to be numeric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from retain.data.contract import CUSTOMERS, EVENT_TYPES

__all__ = [
    "FEATURES",
    "Engine",
    "Feature",
    "customer_columns",
    "expand",
    "feature_columns",
    "feature_dtypes",
    "is_model_input",
    "model_input_names",
]

Engine = Literal["duckdb", "numpy", "numba", "customers", "btyd", "segments"]
_BUILDER: Final[tuple[Engine, ...]] = ("duckdb", "numpy", "numba")
_EVENTS: Final[tuple[Engine, ...]] = ("duckdb", "numpy")


@dataclass(frozen=True)
class Feature:
    """One feature (or one family of them, by window or event type), declared once."""

    name: str
    """The column name; ``{window}`` and ``{event}`` expand (see :func:`expand`)."""
    dtype: str
    """The pandas dtype of the column, as ``str(dtype)``."""
    unit: str
    meaning: str
    engines: tuple[Engine, ...] = _BUILDER
    model_input: bool = True
    windows: Literal["all", "short"] | None = None
    """Which of the builder's windows ``{window}`` takes: all of them, or the first two (the
    event counts)."""


def _tx(
    name: str,
    unit: str,
    meaning: str,
    *,
    engines: tuple[Engine, ...] = _BUILDER,
    windows: Literal["all", "short"] | None = None,
) -> Feature:
    """A float64 model input (what almost every feature is)."""
    return Feature(name, "float64", unit, meaning, engines, windows=windows)


FEATURES: Final[tuple[Feature, ...]] = (
    Feature("customer_id", "str", "", "the customer's key", model_input=False),
    # -- from the transactions (all three engines) ---------------------------------------------
    _tx("frequency", "days", "repeat purchase days (lifetimes' frequency)"),
    _tx("recency", "days", "days from the first to the last purchase day"),
    _tx("T", "days", "days from the first purchase day to the cutoff"),
    _tx("monetary_value", "currency", "mean net value of the repeat purchase days (0 without)"),
    _tx("days_since_last_purchase", "days", "days from the last purchase day to the cutoff"),
    _tx("orders_total", "orders", "orders up to the cutoff"),
    _tx("spend_total", "currency", "net spend up to the cutoff, refunds included"),
    _tx("gross_total", "currency", "spend of the purchases, refunds left out"),
    _tx("refund_total", "currency", "amount refunded (positive)"),
    _tx("avg_order_value", "currency", "gross spend per order"),
    _tx("ipt_mean", "days", "mean gap between purchase days (NaN without a repeat)"),
    _tx("ipt_median", "days", "median gap between purchase days"),
    _tx("ipt_std", "days", "sample standard deviation of the gaps (NaN under two gaps)"),
    _tx("overdue_ratio", "ratio", "days since the last purchase over the median gap"),
    _tx("spend_trend", "ratio", "gross spend of the last trend period against the one before, -1 to 1"),
    _tx("refund_share", "share", "refunded amount over gross spend"),
    _tx("weekend_share", "share", "share of the purchase days on a Saturday or Sunday"),
    _tx("orders_{window}d", "orders", "orders in the trailing window", windows="all"),
    _tx("spend_{window}d", "currency", "net spend in the trailing window", windows="all"),
    _tx("orders_ly_next_30d", "orders", "orders a year before the next 30 days (NaN under a year of history)"),
    _tx("orders_ly_next_90d", "orders", "orders a year before the next 90 days (NaN under a year of history)"),
    _tx("n_products", "products", "distinct products bought (NaN without product_id)"),
    _tx("n_categories", "categories", "distinct categories bought (NaN without category)"),
    _tx("discount_share", "share", "share of purchase lines with a discount (NaN without discount)"),
    _tx("mean_purchase_hour", "hour", "mean hour of day of the purchase lines, UTC"),
    # -- from the events (SQL or NumPy; NaN without an events table: unknown, not zero) --------
    _tx("{event}s_{window}d", "events", "events of the type in the trailing window", engines=_EVENTS, windows="short"),
    _tx("days_since_last_session", "days", "days from the last session to the cutoff", engines=_EVENTS),
    _tx("email_click_rate_90d", "ratio", "email clicks over email opens in the last 90 days", engines=_EVENTS),
    # -- from the customers table (the builder's join; only the columns the table has) ----------
    Feature("country", "str", "", "the customer's country", ("customers",), model_input=False),
    Feature("acquisition_channel", "str", "", "how the customer was acquired", ("customers",), model_input=False),
    _tx("days_since_signup", "days", "days from the signup date to the cutoff (NaN if after it)", engines=("customers",)),
    # -- added by the model: BG/NBD + Gamma-Gamma at the model's horizon, and the RFM scores ----
    _tx("btyd_p_alive", "probability", "BG/NBD's P(still active)", engines=("btyd",)),
    _tx("btyd_p_no_purchase", "probability", "BG/NBD's P(no purchase in the horizon)", engines=("btyd",)),
    _tx("btyd_p_no_purchase_30d", "probability", "BG/NBD's P(no purchase in 30 days)", engines=("btyd",)),
    _tx("btyd_expected_purchases", "purchases", "BG/NBD's expected purchases in the horizon", engines=("btyd",)),
    _tx("btyd_expected_spend", "currency", "Gamma-Gamma's expected spend per purchase", engines=("btyd",)),
    _tx("btyd_clv", "currency", "expected purchases times expected spend", engines=("btyd",)),
    Feature("r_score", "int64", "quintile", "recency score, 1-5", ("segments",), model_input=False),
    Feature("f_score", "int64", "quintile", "frequency score, 1-5", ("segments",), model_input=False),
    Feature("m_score", "int64", "quintile", "monetary score, 1-5", ("segments",), model_input=False),
    Feature("rfm_score", "int64", "", "the three scores as one number (r f m)", ("segments",), model_input=False),
    Feature("segment", "category", "", "the RFM segment", ("segments",), model_input=False),
)  # fmt: skip
"""Every feature, in the order of the feature table."""

# Columns of a customers table that the join leaves out: the key it joins on, the signup date
# (days_since_signup replaces it) and the email address (personal, and no signal).
_NOT_JOINED: Final = frozenset({"customer_id", "signup_date", "email"})


def expand(feature: Feature, windows: Sequence[int]) -> list[str]:
    """The column names of one declaration for the builder's ``windows`` (event types first,
    then windows: ``sessions_30d, sessions_90d, product_views_30d, ...``)."""
    if feature.windows is None:
        return [feature.name]
    chosen = list(windows) if feature.windows == "all" else list(windows)[:2]
    events = EVENT_TYPES if "{event}" in feature.name else ("",)
    return [feature.name.format(event=e, window=w) for e in events for w in chosen]


def _expanded(features: Iterable[Feature], windows: Sequence[int]) -> list[str]:
    """Names of consecutive declarations over all the windows interleave window by window
    (``orders_30d, spend_30d, orders_90d, ...``), as the SQL writes them."""
    names: list[str] = []
    block: list[Feature] = []
    for feature in [*features, None]:
        if feature is not None and feature.windows == "all":
            block.append(feature)
            continue
        per_feature = [expand(f, windows) for f in block]
        names += [name for at_window in zip(*per_feature, strict=True) for name in at_window]
        block = []
        if feature is not None:
            names += expand(feature, windows)
    return names


def customer_columns(columns: Iterable[str]) -> list[str]:
    """The columns the customers join adds, for a customers table with ``columns``: its
    attributes as they come (all but the key, the signup date and the email), then
    ``days_since_signup`` when it has a signup date."""
    columns = list(columns)
    joined = [c for c in columns if c not in _NOT_JOINED]
    return [*joined, "days_since_signup"] if "signup_date" in columns else joined


def feature_columns(
    windows: Sequence[int],
    *,
    events: bool = False,
    customers: bool | Iterable[str] = False,
) -> list[str]:
    """Exactly the columns :meth:`FeatureBuilder.build` returns, in its order.

    ``events``: the build had an events table. The columns are the same without one (the event
    features are then NaN: unknown, not zero); the argument only says so at the call site.
    ``customers``: the columns of the customers table joined (``True``: all the contract's).
    """
    del events  # the same columns either way (see above)
    builder = [f for f in FEATURES if "duckdb" in f.engines]
    names = _expanded(builder, windows)
    if customers is True:
        names += customer_columns(CUSTOMERS.columns)
    elif customers is not False:
        names += customer_columns(customers)
    return names


def feature_dtypes(windows: Sequence[int]) -> dict[str, str]:
    """The dtype of every declared column, by name, for the builder's ``windows``."""
    return {name: f.dtype for f in FEATURES for name in expand(f, windows)}


def model_input_names(windows: Sequence[int]) -> frozenset[str]:
    """The names of the declared features that are model inputs, for the builder's ``windows``:
    the model's inputs are the feature table's columns among these (in the table's order), plus
    the customers-file columns a user declares."""
    return frozenset(name for f in FEATURES if f.model_input for name in expand(f, windows))


def is_model_input(name: str, windows: Sequence[int]) -> bool:
    """Whether the column ``name`` is a declared model input for the builder's ``windows``."""
    return name in model_input_names(windows)
