"""Point-in-time customer features: one row per customer, from data at or before a cutoff.

One builder serves training, backtests, batch scoring and the HTTP service, so what is served is what
was trained. The definitions are the DuckDB SQL below, over the validated frames. Two other engines
compute the same values sooner where the SQL is slow: inputs of a few thousand rows (an HTTP request)
in NumPy (:mod:`retain.features.in_memory`), which answers in a millisecond where planning the SQL
takes 20; and large tables in one compiled pass over each customer's rows
(:mod:`retain.features.compiled`, numba), several times sooner than the SQL's hash aggregations on
ten million rows. Tests hold both to the SQL, column by column.

Conventions
-----------
- The cutoff is a day (UTC). Features use everything that happened on or before that day; labels
  use the days after it, up to ``cutoff + horizon_days`` inclusive.
- A *purchase* is a transaction with ``amount >= 0``; a refund or return (``amount < 0``) reduces
  spend but is never a purchase. A *purchase day* is a day with at least one purchase; its value is
  the day's net amount (same-day refunds included), as lifetimes sums a day's rows.
- RFM follows lifetimes (``summary_data_from_transaction_data(freq="D")``): ``frequency`` = repeat
  purchase days, ``recency`` = days from the first to the last purchase day, ``T`` = days from the
  first purchase day to the cutoff, ``monetary_value`` = mean value of the repeat purchase days
  (0 without repeats). Only customers with a purchase on or before the cutoff get a row.
- ``orders_ly_next_30d`` / ``_90d``: orders a year before the next 30 / 90 days (an annual habit:
  gifts, seasons, B2B restocking), for customers with a year of history; NaN for younger ones.
- An *order* is a distinct ``order_id`` among purchases when the column exists, else a purchase row.
- Missing means unknown: a feature that cannot be computed (a gap with a single purchase, product
  counts without a ``product_id`` column, event counts without an events table) is NaN, never 0.

Every column is declared in the feature registry (:mod:`retain.features.registry`); every engine
returns exactly its :func:`~retain.features.registry.feature_columns`, and a build checks so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from retain.data.contract import EVENT_TYPES
from retain.data.dates import DateLike, utc_day
from retain.data.engine import connect
from retain.errors import RetainError, RetainInputError
from retain.features import compiled as compiled_features
from retain.features import in_memory as in_memory_features
from retain.features.registry import feature_columns

__all__ = ["ENGINES", "RFM_COLUMNS", "FeatureBuilder", "to_cutoff"]

RFM_COLUMNS = ["frequency", "recency", "T", "monetary_value"]
ENGINES = ("auto", "duckdb", "numpy", "numba")


def to_cutoff(value: DateLike) -> pd.Timestamp:
    """The cutoff day as a naive midnight timestamp (UTC day), from a date, datetime or string."""
    return utc_day(value, "as-of date")


class FeatureBuilder:
    """Builds the feature table of every customer as of a cutoff.

    Parameters
    ----------
    windows:
        Trailing windows, in days, for order, spend and event counts.
    trend_days:
        Length of the two back-to-back periods compared by ``spend_trend``.
    engine:
        ``"duckdb"`` (SQL), ``"numpy"`` (:mod:`retain.features.in_memory`: the same values, far
        sooner on a few customers), ``"numba"`` (:mod:`retain.features.compiled`: the same values,
        some five times sooner than the SQL on millions of rows), or ``"auto"``: NumPy up to
        ``in_memory.MAX_ROWS`` rows of transactions and events together, numba above (DuckDB
        where numba cannot serve, or customer ids are missing). The events table goes to NumPy
        up to ``MAX_ROWS`` rows and to SQL above.
    """

    def __init__(
        self,
        windows: Sequence[int] = (30, 90, 180, 365),
        trend_days: int = 90,
        engine: str = "auto",
    ) -> None:
        self.windows = windows
        self.trend_days = trend_days
        self.engine = engine

    def build(
        self,
        transactions: pd.DataFrame,
        cutoff: DateLike,
        *,
        events: pd.DataFrame | None = None,
        customers: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Features of every customer with a purchase on or before ``cutoff``, one row each."""
        self._check_windows()
        day = to_cutoff(cutoff)
        unknown_events = [] if events is not None else self._event_columns()
        engine = self._engine_for(transactions, events)
        if engine == "duckdb":
            features, event_features = self._sql_tables(transactions, events, day, unknown_events)
        else:
            engine_module = in_memory_features if engine == "numpy" else compiled_features
            features = engine_module.transaction_features(
                transactions, day, self.windows, self.trend_days, unknown_events
            )
            event_features = self._event_table(events, day, in_numpy=engine == "numpy")
        if features.empty:
            raise RetainInputError(
                f"features: no customer has a purchase on or before {day:%Y-%m-%d}"
            )
        if event_features is not None:
            features = features.merge(event_features, on="customer_id", how="left")
            counts = [c for c in event_features.columns if c.endswith("d") and c != "customer_id"]
            features[counts] = features[counts].fillna(0.0)
        if customers is not None:
            features = self._join_customers(features, customers, day)
        self._check_columns(features, customers)
        # Rows come ordered by customer_id from SQL; a stable order makes training reproducible.
        return features

    def _check_columns(self, features: pd.DataFrame, customers: pd.DataFrame | None) -> None:
        """Refuse a table whose columns are not the registry's (:mod:`retain.features.registry`):
        a feature added to one engine and not declared, or declared and not computed, is caught
        at the first build rather than by a model that silently reads other columns."""
        expected = feature_columns(
            self.windows,
            customers=customers.columns.tolist() if customers is not None else False,
        )
        built = features.columns.tolist()
        if built != expected:
            undeclared = [c for c in built if c not in expected]
            missing = [c for c in expected if c not in built]
            raise RetainError(
                f"features: the built columns are not the registry's: {len(undeclared)} "
                f"undeclared {undeclared}, {len(missing)} declared but not built {missing}"
                + ("" if undeclared or missing else ", or they are in another order")
            )

    def _sql_tables(
        self,
        transactions: pd.DataFrame,
        events: pd.DataFrame | None,
        day: pd.Timestamp,
        unknown_events: Sequence[str],
    ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        """The transaction features (and the event features, with events) by DuckDB SQL."""
        con = _connect()
        con.register("tx", _as_naive_utc(transactions))
        params = _day_params(day)
        _execute(con, self._days_sql(transactions.columns), params)
        unsettled = con.execute("SELECT count(*) FROM days WHERE orders IS NULL").fetchall()
        if unsettled[0][0]:
            _execute(con, self._orders_fix_sql(), params)
        _execute(con, self._per_customer_sql(), params)
        features = _fetch(con, self._features_sql(transactions.columns, unknown_events), params)
        if events is None or features.empty:
            return features, None
        con.register("ev", _as_naive_utc(events))
        return features, _fetch(con, self._events_sql(), params)

    def labels(
        self,
        transactions: pd.DataFrame,
        cutoff: DateLike,
        horizon_days: int,
        observed_until: DateLike | None = None,
    ) -> pd.DataFrame:
        """What each customer with a purchase on or before ``cutoff`` did in the horizon after it.

        ``churned``: no purchase in (cutoff, cutoff + horizon]; ``days_to_next_purchase``: days from
        the cutoff to the next purchase day, censored at the horizon (``purchased`` says which);
        ``purchases_in_horizon``: purchase days; ``spend_in_horizon``: net amount, refunds included.
        ``observed_until`` is the last day the data is complete for (default: the day of the last
        transaction); the horizon must end by then.
        """
        if horizon_days < 1:
            raise RetainInputError(f"horizon_days must be at least 1, not {horizon_days}")
        day = to_cutoff(cutoff)
        # The data must cover the horizon: by default up to the last transaction's day.
        last = (
            utc_day(observed_until, "observed_until")
            if observed_until is not None
            else utc_day(transactions["timestamp"].max(), "last transaction")
        )
        end = day + pd.Timedelta(days=horizon_days)
        if end > last:
            raise RetainInputError(
                f"labels: a {horizon_days}-day horizon after {day:%Y-%m-%d} needs data up to "
                f"{end:%Y-%m-%d}, but the transactions end on {last:%Y-%m-%d}"
            )
        con = _connect()
        con.register("tx", _as_naive_utc(transactions[["customer_id", "timestamp", "amount"]]))
        labels = con.sql(
            """
            WITH days AS (
                SELECT customer_id, CAST(timestamp AS DATE) AS day,
                       sum(amount) AS net, bool_or(amount >= 0) AS purchase
                FROM tx WHERE timestamp < $end_excl
                GROUP BY ALL
            ),
            known AS (SELECT DISTINCT customer_id FROM days WHERE purchase AND day <= $cutoff),
            future AS (
                SELECT customer_id,
                       count(*) FILTER (WHERE purchase) AS purchases_in_horizon,
                       min(day) FILTER (WHERE purchase) - $cutoff AS days_to_next,
                       sum(net) AS spend_in_horizon
                FROM days WHERE day > $cutoff GROUP BY customer_id
            )
            SELECT k.customer_id,
                   coalesce(f.purchases_in_horizon, 0) = 0 AS churned,
                   coalesce(f.purchases_in_horizon, 0) > 0 AS purchased,
                   CAST(coalesce(f.days_to_next, $horizon) AS DOUBLE) AS days_to_next_purchase,
                   CAST(coalesce(f.purchases_in_horizon, 0) AS DOUBLE) AS purchases_in_horizon,
                   coalesce(f.spend_in_horizon, 0.0) AS spend_in_horizon
            FROM known k LEFT JOIN future f USING (customer_id)
            ORDER BY k.customer_id
            """,
            params={
                "cutoff": day.date(),
                "end_excl": end + pd.Timedelta(days=1),
                "horizon": horizon_days,
            },
        )
        # Rounded as the features are: parallel sums of spend differ in their last bits.
        return _rounded(labels.to_arrow_table())

    # -- SQL ------------------------------------------------------------------------------------

    def _days_sql(self, columns: pd.Index) -> str:
        """One row per customer and day up to the cutoff: amounts, orders and row tallies.

        Everything the feature table needs from single rows (amounts, hours, discounts, orders)
        is tallied in this one scan of the transactions; only distinct products need another.

        Orders are distinct order ids among a day's purchase rows (a row without an order id is
        an order of its own). ``count(DISTINCT order_id)`` per day would cost more than the rest
        of the scan, so the day keeps the smallest and largest 64-bit hash of its order ids
        instead (integers compare far faster than strings): with one id, or two rows, the count
        follows from them exactly. Only days with three or more purchase rows under two or more
        ids are left NULL here and counted exactly by :meth:`_orders_fix_sql`. (Two different ids
        of one customer's day would have to share a 64-bit hash to be miscounted.)
        """
        discounted = "coalesce(discount, 0) > 0" if "discount" in columns else "false"
        if "order_id" in columns:
            orders = """
                CASE WHEN count(order_id) FILTER (WHERE purchase) <= 1
                          OR min(hash(order_id)) FILTER (WHERE purchase AND order_id IS NOT NULL)
                             = max(hash(order_id)) FILTER (WHERE purchase AND order_id IS NOT NULL)
                          OR count(order_id) FILTER (WHERE purchase) = 2
                     THEN least(count(order_id) FILTER (WHERE purchase),
                                CASE WHEN min(hash(order_id)) FILTER (WHERE purchase AND order_id IS NOT NULL)
                                          = max(hash(order_id)) FILTER (WHERE purchase AND order_id IS NOT NULL)
                                     THEN 1 ELSE 2 END)
                END + count(*) FILTER (WHERE purchase AND order_id IS NULL)
            """
        else:
            orders = "count(*) FILTER (WHERE purchase)"
        return f"""
        CREATE OR REPLACE TEMP TABLE days AS
        WITH r AS (
            SELECT *, CAST(timestamp AS DATE) AS day, amount >= 0 AS purchase
            FROM tx WHERE timestamp < $cutoff_end
        )
        SELECT customer_id, day,
               sum(amount) AS net,
               coalesce(sum(amount) FILTER (WHERE purchase), 0) AS gross,
               coalesce(-sum(amount) FILTER (WHERE NOT purchase), 0) AS refunded,
               bool_or(purchase) AS purchase,
               {orders} AS orders,
               count(*) FILTER (WHERE purchase) AS purchase_rows,
               sum(hour(timestamp) + minute(timestamp) / 60.0) FILTER (WHERE purchase)
                   AS hour_sum,
               count(*) FILTER (WHERE purchase AND {discounted}) AS discounted_rows
        FROM r GROUP BY customer_id, day
        """

    @staticmethod
    def _orders_fix_sql() -> str:
        """Exact order counts for the days :meth:`_days_sql` could not settle from min and max."""
        return """
        UPDATE days SET orders = exact.orders
        FROM (
            SELECT t.customer_id, CAST(t.timestamp AS DATE) AS day,
                   count(DISTINCT t.order_id) + count(*) FILTER (WHERE t.order_id IS NULL)
                       AS orders
            FROM tx t
            SEMI JOIN (SELECT customer_id, day FROM days WHERE orders IS NULL) open
              ON t.customer_id = open.customer_id AND CAST(t.timestamp AS DATE) = open.day
            WHERE t.timestamp < $cutoff_end AND t.amount >= 0
            GROUP BY ALL
        ) exact
        WHERE days.customer_id = exact.customer_id AND days.day = exact.day
        """

    def _per_customer_sql(self) -> str:
        """Per customer, from the day table: RFM parts, totals, windows, habits, purchase days."""
        windows = ",\n".join(
            f"sum(orders) FILTER (WHERE day > $cutoff - {w}) AS orders_{w}d, "
            f"coalesce(sum(net) FILTER (WHERE day > $cutoff - {w}), 0) AS spend_{w}d"
            for w in self.windows
        )
        n = self.trend_days
        return f"""
        CREATE OR REPLACE TEMP TABLE per_customer AS
        SELECT * EXCLUDE (purchase_day_list, gap),
               CAST(list_median(gap) AS DOUBLE) AS ipt_median,
               list_stddev_samp(gap) AS ipt_std
        FROM (
        SELECT *, list_transform(range(1, len(purchase_day_list)),
                                 lambda i: purchase_day_list[i + 1] - purchase_day_list[i]) AS gap
        FROM (
        SELECT customer_id,
            count(*) FILTER (WHERE purchase) AS purchase_days,
            min(day) FILTER (WHERE purchase) AS first_day,
            max(day) FILTER (WHERE purchase) AS last_day,
            sum(net) FILTER (WHERE purchase) AS purchase_day_net,
            arg_min(net, day) FILTER (WHERE purchase) AS first_day_net,
            sum(orders) AS orders_total,
            sum(net) AS spend_total,
            sum(gross) AS gross_total,
            sum(refunded) AS refund_total,
            sum(hour_sum) / nullif(sum(purchase_rows), 0) AS mean_purchase_hour,
            sum(discounted_rows) / nullif(sum(purchase_rows), 0) AS discount_share,
            avg(CAST(dayofweek(day) IN (0, 6) AS DOUBLE)) FILTER (WHERE purchase) AS weekend_share,
            coalesce(sum(gross) FILTER (WHERE day > $cutoff - {n}), 0) AS gross_recent,
            coalesce(sum(gross) FILTER (WHERE day > $cutoff - {2 * n}
                                      AND day <= $cutoff - {n}), 0) AS gross_prior,
            list(day ORDER BY day) FILTER (WHERE purchase) AS purchase_day_list,
            sum(orders) FILTER (WHERE day > $cutoff - 365 AND day <= $cutoff - 335)
                AS orders_ly_next_30d,
            sum(orders) FILTER (WHERE day > $cutoff - 365 AND day <= $cutoff - 275)
                AS orders_ly_next_90d,
            {windows}
        FROM days GROUP BY customer_id
        HAVING count(*) FILTER (WHERE purchase) > 0
        ))
        """

    def _features_sql(self, columns: pd.Index, unknown_events: Sequence[str]) -> str:
        """The feature table: per-customer figures, gap statistics and catalogue breadth (and,
        without an events table, its columns as NULL: unknown, not zero)."""

        breadth = [c for c in ("product_id", "category") if c in columns]
        # Distinct 64-bit hashes count distinct values about three times faster than the strings
        # themselves; a product would have to share its hash with another of the same customer's
        # products to be missed.
        counts = ", ".join(
            f"count(DISTINCT CASE WHEN {c} IS NOT NULL THEN hash({c}) END) AS n_{c}"
            if c in breadth
            else f"CAST(NULL AS BIGINT) AS n_{c}"
            for c in ("product_id", "category")
        )
        catalogue = (
            f"""SELECT customer_id, {counts} FROM tx
                WHERE timestamp < $cutoff_end AND amount >= 0 GROUP BY customer_id"""
            if breadth
            else f"SELECT customer_id, {counts} FROM per_customer"
        )
        discount_share = "p.discount_share" if "discount" in columns else "CAST(NULL AS DOUBLE)"
        windows = ", ".join(
            f"CAST(coalesce(p.orders_{w}d, 0) AS DOUBLE) AS orders_{w}d, p.spend_{w}d"
            for w in self.windows
        )
        unknown = "".join(
            f",\n            CAST(NULL AS DOUBLE) AS {name}" for name in unknown_events
        )
        return f"""
        WITH catalogue AS ({catalogue})
        SELECT
            p.customer_id,
            CAST(p.purchase_days - 1 AS DOUBLE) AS frequency,
            CAST(p.last_day - p.first_day AS DOUBLE) AS recency,
            CAST($cutoff - p.first_day AS DOUBLE) AS "T",
            CASE WHEN p.purchase_days > 1
                 THEN (p.purchase_day_net - p.first_day_net) / (p.purchase_days - 1)
                 ELSE 0.0 END AS monetary_value,
            CAST($cutoff - p.last_day AS DOUBLE) AS days_since_last_purchase,
            CAST(p.orders_total AS DOUBLE) AS orders_total,
            p.spend_total, p.gross_total, p.refund_total,
            p.gross_total / nullif(p.orders_total, 0) AS avg_order_value,
            CASE WHEN p.purchase_days > 1
                 THEN CAST(p.last_day - p.first_day AS DOUBLE) / (p.purchase_days - 1) END
                 AS ipt_mean,
            p.ipt_median, p.ipt_std,
            CAST($cutoff - p.last_day AS DOUBLE) / nullif(p.ipt_median, 0) AS overdue_ratio,
            CASE WHEN p.gross_recent + p.gross_prior > 0
                 THEN (p.gross_recent - p.gross_prior) / (p.gross_recent + p.gross_prior)
                 ELSE 0.0 END AS spend_trend,
            coalesce(p.refund_total / nullif(p.gross_total, 0), 0.0) AS refund_share,
            p.weekend_share,
            {windows},
            CASE WHEN $cutoff - p.first_day >= 365
                 THEN CAST(coalesce(p.orders_ly_next_30d, 0) AS DOUBLE) END AS orders_ly_next_30d,
            CASE WHEN $cutoff - p.first_day >= 365
                 THEN CAST(coalesce(p.orders_ly_next_90d, 0) AS DOUBLE) END AS orders_ly_next_90d,
            CAST(c.n_product_id AS DOUBLE) AS n_products,
            CAST(c.n_category AS DOUBLE) AS n_categories,
            {discount_share} AS discount_share,
            p.mean_purchase_hour{unknown}
        FROM per_customer p
        LEFT JOIN catalogue c USING (customer_id)
        ORDER BY p.customer_id
        """

    def _in_memory(self, transactions: pd.DataFrame, events: pd.DataFrame | None) -> bool:
        """Whether to compute in NumPy (:mod:`retain.features.in_memory`) rather than SQL."""
        return self._engine_for(transactions, events) == "numpy"

    def _engine_for(self, transactions: pd.DataFrame, events: pd.DataFrame | None) -> str:
        """The engine of this build: the one asked for, or with ``"auto"`` NumPy up to
        ``in_memory.MAX_ROWS`` rows, then the compiled pass (DuckDB where numba cannot serve)."""
        if self.engine not in ENGINES:
            raise RetainInputError(
                f"feature engine must be one of {', '.join(map(repr, ENGINES))}, "
                f"not {self.engine!r}"
            )
        if self.engine == "numba" and not compiled_features.available():
            raise RetainError(
                "features: the numba engine is unavailable here (numba failed to import, or its "
                "kernel differs from the NumPy engine on the probe table; see the log)"
            )
        if self.engine != "auto":
            return self.engine
        rows = len(transactions) + (len(events) if events is not None else 0)
        if rows <= in_memory_features.MAX_ROWS:
            return "numpy"
        if transactions["customer_id"].hasnans or not compiled_features.available():
            return "duckdb"
        return "numba"

    def _event_table(
        self, events: pd.DataFrame | None, day: pd.Timestamp, *, in_numpy: bool
    ) -> pd.DataFrame | None:
        """The event features, in NumPy or (large tables beside the compiled engine) SQL."""
        if events is None:
            return None
        if in_numpy or len(events) <= in_memory_features.MAX_ROWS:
            return in_memory_features.event_features(events, day, self.windows[:2])
        con = _connect()
        con.register("ev", _as_naive_utc(events))
        return _fetch(con, self._events_sql(), _day_params(day))

    def _event_columns(self) -> list[str]:
        counts = [f"{kind}s_{w}d" for kind in EVENT_TYPES for w in self.windows[:2]]
        return [*counts, "days_since_last_session", "email_click_rate_90d"]

    def _events_sql(self) -> str:
        short = self.windows[:2]
        counts = ",\n".join(
            f"CAST(count(*) FILTER (WHERE event_type = '{kind}' AND day > $cutoff - {w})"
            f" AS DOUBLE) AS {kind}s_{w}d"
            for kind in EVENT_TYPES
            for w in short
        )
        return f"""
        WITH e AS (
            SELECT customer_id, event_type, CAST(timestamp AS DATE) AS day
            FROM ev WHERE timestamp < $cutoff_end
        )
        SELECT customer_id,
            {counts},
            CAST($cutoff - max(day) FILTER (WHERE event_type = 'session') AS DOUBLE)
                AS days_since_last_session,
            count(*) FILTER (WHERE event_type = 'email_click' AND day > $cutoff - 90)
              / nullif(count(*) FILTER (WHERE event_type = 'email_open' AND day > $cutoff - 90), 0)
                AS email_click_rate_90d
        FROM e GROUP BY customer_id
        """

    def _join_customers(
        self, features: pd.DataFrame, customers: pd.DataFrame, day: pd.Timestamp
    ) -> pd.DataFrame:
        """Attributes of the customers table; the signup date only if it is not after the cutoff."""
        attributes = customers.copy()
        if "signup_date" in attributes:
            signup = attributes.pop("signup_date").dt.tz_localize(None).dt.normalize()
            attributes["days_since_signup"] = (day - signup.where(signup <= day)).dt.days.astype(
                "float64"
            )
        attributes = attributes.drop(columns=["email"], errors="ignore")
        return features.merge(attributes, on="customer_id", how="left")

    def _check_windows(self) -> None:
        if not self.windows or any(int(w) < 1 for w in self.windows):
            raise RetainInputError(f"feature windows must be positive days, not {self.windows}")
        if self.trend_days < 1:
            raise RetainInputError(f"trend_days must be at least 1, not {self.trend_days}")


def _day_params(day: pd.Timestamp) -> dict[str, object]:
    """The cutoff as a DATE, and the first instant after the cutoff day (timestamps are naive UTC)."""
    return {"cutoff": day.date(), "cutoff_end": (day + pd.Timedelta(days=1)).to_pydatetime()}


def _used(sql: str, params: dict[str, object]) -> dict[str, object]:
    """The parameters a statement refers to: DuckDB refuses any it does not use."""
    return {name: value for name, value in params.items() if re.search(rf"\${name}\b", sql)}


def _execute(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> None:
    con.execute(sql, _used(sql, params))


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, object]) -> pd.DataFrame:
    """Run a query into pandas through Arrow: several times faster than ``.df()`` on string keys.

    Floats are rounded to 9 decimals: DuckDB's parallel sums add in a varying order, which moves
    the last bits (about 1e-13) from run to run, and that alone would change LightGBM's bins.
    Amounts are in cents, so the rounding loses nothing.
    """
    return _rounded(con.sql(sql, params=_used(sql, params)).to_arrow_table())


def _rounded(table: pa.Table) -> pd.DataFrame:
    """The Arrow table in pandas with float columns rounded to 9 decimals (see :func:`_fetch`)."""
    # numpy's rounding (scale, round half to even, unscale) lands on one double for all inputs a
    # few ulps apart; Arrow's round kernel does not. Rounding the Arrow columns spares pandas'
    # per-column assignment, which costs more than the query on one customer.
    rounded = [
        pa.array(np.round(column.to_numpy(zero_copy_only=False), 9))
        if pa.types.is_float64(column.type)
        else column
        for column in table.columns
    ]
    return pa.Table.from_arrays(rounded, names=table.column_names).to_pandas()


def _connect() -> duckdb.DuckDBPyConnection:
    return connect()


def _as_naive_utc(frame: pd.DataFrame) -> pa.Table:
    """The frame as an Arrow table with naive UTC timestamps, for DuckDB to scan.

    Naive timestamps let DuckDB group by day without time-zone lookups, and an Arrow table scans
    some 25% faster than the pandas frame it is made from (pandas strings are Arrow already, so
    the conversion costs a tenth of a second on ten million rows).
    """
    stamps = frame["timestamp"]
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        frame = frame.assign(timestamp=stamps.dt.tz_convert("UTC").dt.tz_localize(None))
    return pa.Table.from_pandas(frame, preserve_index=False)
