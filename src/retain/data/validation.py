"""Validation: from a raw table with the file's own columns to a frame that meets the contract.

Two kinds of problem, treated differently:

- *Table problems* make the whole input unusable or ambiguous (no rows, a required column missing, a
  mapping that names no column, timestamps that mix zoned and unzoned values, most of a column
  unparseable). They raise :class:`~retain.errors.RetainInputError` naming the table, the column,
  the problem and how many rows it touches.
- *Row problems* make single rows unusable (no customer id, an unparseable timestamp, an amount that
  is not a number). Those rows are set aside with a reason, counted in the report and, on request,
  written to a quarantine file. No row disappears without a count.

Exact duplicate rows are counted; by default they are kept, because on files without an order id
two identical rows can be two real purchases (CDNOW has 215 such rows). A duplicate is a row equal
to an earlier one in *every* column of the source as read, mapped or not: two lines of one invoice
with the same amount are two products when their product columns differ (on Online Retail II, the
contract's columns alone would call 322,529 lines duplicates; 11,676 usable lines repeat another
in every column).

Line-item exports carry a unit price and a quantity instead of a line total: with ``price`` and
``quantity`` mapped and no ``amount``, the amount is their product. An amount mapped to a unit price
(``amount=Price``) is accepted, with a warning, since unit prices would be counted as revenue.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NoReturn, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import AfterValidator, BaseModel, ValidationError

from retain.data.columns import ColumnMapping, ColumnsLike
from retain.data.contract import (
    CUSTOMERS,
    DECIMAL_ID,
    EVENTS,
    TIMESTAMP_DTYPE,
    TRANSACTIONS,
    TableContract,
)
from retain.data.engine import connect
from retain.errors import RetainInputError

__all__ = [
    "OptionsLike",
    "ValidatedTable",
    "ValidationOptions",
    "ValidationReport",
    "as_options",
    "check_columns",
    "parse_customer_ids",
    "raise_no_usable_rows",
    "refuse_mixed_currencies",
    "report_counts",
    "validate_customers",
    "validate_events",
    "validate_table",
    "validate_transactions",
    "write_quarantine",
]

DuplicatePolicy = Literal["keep", "drop", "error"]

# Below this many rows a table is checked with pandas: a DuckDB query's fixed cost (a few ms) is
# more than pandas takes there, and the HTTP service validates one customer's history per request.
_SMALL: Final = 50_000

# A timestamp string that carries its own zone: a trailing Z or a +hh:mm / -hhmm offset.
_ZONED = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


def _currency_code(code: str | None) -> str | None:
    """A currency code as the ``currency`` column's values are compared: trimmed, in capitals."""
    return None if code is None else code.strip().upper()


class ValidationOptions(BaseModel):
    """How strictly to read a table."""

    model_config = {"extra": "forbid"}  # a misspelt option must not be ignored

    timezone: str = "UTC"
    """Zone of timestamps that carry none (naive ones); every timestamp ends up in UTC."""
    timestamp_format: str | None = None
    """strftime format of timestamp strings; ISO 8601 when not given."""
    duplicates: DuplicatePolicy = "keep"
    """What to do with rows equal to an earlier row in every column of the source: keep, drop
    (quarantined), or error."""
    max_invalid_share: float = 0.5
    """Above this share of unusable rows for one reason, the column is wrong rather than some rows."""
    strict: bool = False
    """Refuse the table when any row is unusable, instead of quarantining it."""
    currency: Annotated[str | None, AfterValidator(_currency_code)] = None
    """The one currency (e.g. EUR) to keep from a table whose ``currency`` column holds several;
    rows in any other are set aside. Without it such a table is refused: amounts in euros and yen
    must not be added together."""
    ambiguous_times: Literal["earliest", "latest", "refuse"] = "refuse"
    """Naive local times that a daylight-saving change makes ambiguous or non-existent: set aside
    with their own reason (refuse), or read as the earlier or later instant."""


class ValidationReport(BaseModel):
    """What validation found: the counts a user reads before trusting any number downstream."""

    table: str
    rows_read: int
    rows_valid: int
    quarantined: dict[str, int]
    duplicate_rows: int
    duplicates: DuplicatePolicy
    refund_rows: int = 0
    nonpositive_quantity_rows: int = 0
    """Purchase rows (amount not negative) with a quantity of zero or less: kept, since the amount
    is what the models read, but a sign that the export's quantities or amounts are wrong."""
    shared_order_ids: int = 0
    """Order ids that appear on rows of more than one customer (an export that numbers orders per
    shop or per day, or a mapping to the wrong column): counted, with examples in a warning. The
    Spark engine validates each partition of customers apart, so its count misses an order shared
    across partitions."""
    currencies: dict[str, int] = {}
    """Rows read in each code of the table's ``currency`` column, if it has one."""
    normalised_ids: int = 0
    """Rows whose customer id was written as a decimal (12346.0) and read as the whole number
    ("12346"), as the contract says: one customer whatever the file's spelling."""
    customers: int
    first_timestamp: pd.Timestamp | None = None
    last_timestamp: pd.Timestamp | None = None
    warnings: list[str] = []
    notes: list[str] = []
    """How the table was read where it is not plain (e.g. an amount computed from price and
    quantity)."""

    model_config = {"arbitrary_types_allowed": True}

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def lines(self) -> list[str]:
        """The report as short lines for a terminal or a log."""
        lines = [
            f"{self.table}: {_rows(self.rows_read)} read, {self.rows_valid:,} usable, "
            f"{self.rows_quarantined:,} set aside; {self.customers:,} "
            f"customer{'' if self.customers == 1 else 's'}"
        ]
        if self.first_timestamp is not None and self.last_timestamp is not None:
            lines.append(
                f"  period: {self.first_timestamp:%Y-%m-%d %H:%M} to "
                f"{self.last_timestamp:%Y-%m-%d %H:%M} UTC"
            )
        lines += [f"  {note}" for note in self.notes]
        lines += [
            f"  set aside: {_rows(n)} with {reason}" for reason, n in self.quarantined.items()
        ]
        if self.normalised_ids:
            lines.append(
                f"  customer ids written as decimals, read as whole numbers (12346.0 -> 12346): "
                f"{_rows(self.normalised_ids)}"
            )
        if self.refund_rows:
            lines.append(f"  refunds/returns (negative amounts): {_rows(self.refund_rows)}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines


def report_counts(report: ValidationReport) -> dict[str, object]:
    """The additive part of a report as plain JSON values: the reports of disjoint parts of a
    table (chunks, Spark partitions) add up to the whole table's."""
    return {
        "rows_read": report.rows_read,
        "rows_valid": report.rows_valid,
        "quarantined": dict(report.quarantined),
        "duplicate_rows": report.duplicate_rows,
        "refund_rows": report.refund_rows,
        "normalised_ids": report.normalised_ids,
        "nonpositive_quantity_rows": report.nonpositive_quantity_rows,
        "shared_order_ids": report.shared_order_ids,
        "currencies": dict(report.currencies),
        "warnings": list(report.warnings),
    }


OptionsLike: TypeAlias = ValidationOptions | Mapping[str, Any] | None
"""What functions that take validation options accept (see :func:`as_options`)."""


def as_options(options: OptionsLike) -> ValidationOptions:
    """Validation options from a ValidationOptions or a dict of its fields
    (``{"timezone": "Europe/London"}``), so a notebook need not import the class; ``None`` is the
    defaults. An unknown key or a wrong value is an input error naming it."""
    if options is None:
        return ValidationOptions()
    if isinstance(options, ValidationOptions):
        return options
    if not isinstance(options, Mapping):
        raise RetainInputError(
            "validation options: give a dict such as {'timezone': 'Europe/London'} or "
            f"ValidationOptions(...), not a {type(options).__name__}"
        )
    try:
        return ValidationOptions(**options)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise RetainInputError(
            f"validation options: {problems} (the options are "
            f"{', '.join(ValidationOptions.model_fields)})"
        ) from error


@dataclass(frozen=True)
class ValidatedTable:
    """A frame that meets the contract, its report, and the rows set aside with their reasons."""

    frame: pd.DataFrame
    report: ValidationReport
    quarantine: pd.DataFrame = field(repr=False)


def validate_transactions(
    raw: pd.DataFrame,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
) -> ValidatedTable:
    """Validate a transactions table (customer_id, timestamp, amount, optional columns)."""
    return validate_table(raw, TRANSACTIONS, columns, options)


def validate_events(
    raw: pd.DataFrame,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
) -> ValidatedTable:
    """Validate an events table (customer_id, timestamp, event_type)."""
    return validate_table(raw, EVENTS, columns, options)


def validate_customers(
    raw: pd.DataFrame,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
) -> ValidatedTable:
    """Validate a customers table (customer_id, optional signup_date and attributes)."""
    return validate_table(raw, CUSTOMERS, columns, options)


def validate_table(
    raw: pd.DataFrame,
    contract: TableContract,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
    *,
    part: bool = False,
) -> ValidatedTable:
    """Check, parse and type one table against its contract.

    ``raw`` is the table as read, with all its columns: duplicates are judged on every one of them.
    ``columns``: a ColumnMapping, a dict or the ``--columns`` text; ``options``: ValidationOptions
    or a dict of its fields.

    A row's reason for being set aside is its first problem, in this order: the columns' own
    problems (in the contract's order), a computed column that overflows, a duplicate (when they
    are dropped), a repeated value of the table's unique column (the customers' id).

    ``part``: ``raw`` is one part of a table (a Spark partition of customers), so two refusals
    are left to the caller, who sees the whole: no usable row left, and several currencies (each
    part may hold one of its own); :func:`refuse_mixed_currencies` takes the parts' counts.
    """
    options = as_options(options)
    mapping = ColumnMapping.of(columns)
    table = contract.name
    if len(raw) == 0:
        raise RetainInputError(f"{table}: the table has no rows")
    selected = _select_columns(raw, contract, mapping)
    # Required columns the file lacks but can be computed (amount = quantity x price): their
    # factors are then needed on every row.
    derived = {name: pair for name, pair in contract.derived.items() if name not in selected}
    # One small integer per row: 0 when usable, else 1 + the index of its first problem.
    problems = _RowProblems(len(raw))
    parsed, normalised_ids = _parse_columns(selected, contract, mapping, options, derived, problems)
    notes = _derive_columns(parsed, derived, mapping, problems)
    if "timestamp" in parsed:
        problems.add("timestamp decades before the rest", _far_past(parsed["timestamp"]))
    frame = pd.DataFrame({c: parsed[c] for c in contract.columns if c in parsed}, index=raw.index)
    n_duplicates, warnings = _judge_duplicates(raw, table, options, problems)
    currencies: dict[str, int] = {}
    if "amount" in contract.kinds:
        other, currencies = _other_currencies(raw, table, options, refuse_mix=not part)
        if other is not None:
            problems.add(f"currency other than {options.currency}", other)
    if contract.unique is not None:
        repeated = frame[contract.unique].duplicated(keep="first").to_numpy()
        problems.add(f"repeated {contract.unique}", repeated & (problems.codes == 0))
    frame, quarantine = _set_aside(raw, frame, table, options, problems, allow_empty=part)

    unit_price = _unit_price_warning(frame, mapping, raw.columns) if not derived else None
    if unit_price:
        warnings.append(unit_price)
    timestamps = frame.get("timestamp")
    if timestamps is not None:
        future = int((timestamps > pd.Timestamp.now(tz="UTC")).sum())
        if future:
            warnings.append(f"{future:,} rows have a timestamp in the future")
    nonpositive_quantities, shared_orders = _kept_but_odd(frame, bool(unit_price), warnings)
    contract.check(frame)
    report = ValidationReport(
        table=table,
        rows_read=len(raw),
        rows_valid=len(frame),
        quarantined=problems.counts(),
        duplicate_rows=n_duplicates,
        duplicates=options.duplicates,
        refund_rows=int((frame["amount"] < 0).sum()) if "amount" in frame else 0,
        normalised_ids=normalised_ids,
        nonpositive_quantity_rows=nonpositive_quantities,
        shared_order_ids=shared_orders,
        currencies=currencies,
        customers=_distinct_count(frame["customer_id"]),
        first_timestamp=timestamps.min() if timestamps is not None and len(frame) else None,
        last_timestamp=timestamps.max() if timestamps is not None and len(frame) else None,
        warnings=warnings,
        notes=notes,
    )
    return ValidatedTable(frame=frame, report=report, quarantine=quarantine)


# How far before a table's median timestamp a timestamp is taken for a stand-in date (0001-01-01,
# 1900-01-01, 1970-01-01) rather than a real event.
_FAR_PAST: Final = pd.DateOffset(years=30)


def _far_past(timestamps: pd.Series) -> np.ndarray:
    """Rows whose timestamp is more than 30 years before the table's median timestamp.

    They are set aside (with their own reason), not merely warned about: one purchase dated
    0001-01-01 makes its customer two thousand years old, and tenure, recency and the
    probabilistic models' time spans would be scored on that. Such dates are stand-ins an
    export writes for "unknown". The median, unlike the first timestamp, is not moved by them.
    """
    present = timestamps.dropna()
    if present.empty:
        return np.zeros(len(timestamps), dtype=bool)
    limit = pd.Timestamp(present.median()) - _FAR_PAST
    return (timestamps < limit).fillna(False).to_numpy(dtype=bool)


def _other_currencies(
    raw: pd.DataFrame, table: str, options: ValidationOptions, refuse_mix: bool = True
) -> tuple[np.ndarray | None, dict[str, int]]:
    """Rows in a currency other than ``options.currency`` (None when there is nothing to set
    aside), and the rows read in each currency (empty without a currency column).

    The contract has no currency: amounts are added up as they are. A source column named
    ``currency`` (any case) that holds more than one code (compared trimmed and in capitals)
    would add euros to yen, so such a table is refused unless one currency is picked; rows with
    no code are then set aside too, since their currency is unknown.
    """
    column = next((c for c in raw.columns if str(c).strip().lower() == "currency"), None)
    if column is None:
        return None, {}
    codes = raw[column].astype("str").str.strip().str.upper().where(raw[column].notna())
    found = {str(code): int(n) for code, n in codes.value_counts().items()}
    if options.currency is None:
        if refuse_mix:
            refuse_mixed_currencies(table, str(column), found)
        return None, found
    return (codes != options.currency).fillna(True).to_numpy(dtype=bool), found


def raise_no_usable_rows(table: str, quarantined: Mapping[str, int]) -> NoReturn:
    """Refuse a table none of whose rows is usable, with the count of each reason."""
    detail = ", ".join(f"{_rows(n)} with {reason}" for reason, n in quarantined.items())
    raise RetainInputError(f"{table}: no usable rows are left ({detail})")


def refuse_mixed_currencies(table: str, column: str, found: Mapping[str, int]) -> None:
    """Refuse a table whose ``column`` holds more than one currency (``found``: rows per code),
    for want of ``--currency``. The Spark engine calls it again on the whole table's counts, since
    each partition of customers may hold a single currency of its own."""
    if len(found) > 1:
        listed = ", ".join(f"{code} ({_rows(n)})" for code, n in found.items())
        raise RetainInputError(
            f"{table}: column '{column}' holds {len(found)} currencies: {listed}; amounts in "
            "different currencies cannot be added up. Pick one with --currency CODE "
            '(currency="CODE" in Python): rows in the others are set aside'
        )


def _kept_but_odd(frame: pd.DataFrame, unit_price: bool, warnings: list[str]) -> tuple[int, int]:
    """Count the usable rows kept although they look wrong, adding a warning for each kind: the
    purchases of no or negative quantity, and the order ids used by several customers.

    ``unit_price``: the amount was warned about as a unit price, which is positive whatever the
    quantity (that warning already says why)."""
    nonpositive_quantities = _nonpositive_quantities(frame)
    if nonpositive_quantities and not unit_price:
        warnings.append(
            f"{_rows(nonpositive_quantities)} are purchases (amount 0 or more) of a quantity of 0 "
            "or less (kept; check the export's quantity and amount columns)"
        )
    shared_orders = _shared_orders(frame)
    if shared_orders:
        examples = ", ".join(repr(o) for o in shared_orders[:3])
        warnings.append(
            f"{len(shared_orders):,} order_id value(s) are used by several customers (e.g. "
            f"{examples}): check the order_id mapping"
        )
    return nonpositive_quantities, len(shared_orders)


def _shared_orders(frame: pd.DataFrame) -> list[str]:
    """The order ids found on the usable rows of more than one customer, in order."""
    if "order_id" not in frame:
        return []
    if len(frame) < _SMALL:
        pairs = frame[["order_id", "customer_id"]].dropna().drop_duplicates()
        shared = pairs["order_id"][pairs["order_id"].duplicated()].drop_duplicates()
        return sorted(shared.astype("str").tolist())
    # pandas' drop_duplicates over two text columns took over half of validating ten million
    # rows; an order is shared when its smallest and largest customer ids differ.
    con = _duckdb()
    con.register("pairs", frame[["order_id", "customer_id"]])
    shared_ids = con.execute(
        "SELECT order_id FROM pairs WHERE order_id IS NOT NULL AND customer_id IS NOT NULL"
        " GROUP BY order_id HAVING min(customer_id) <> max(customer_id)"
    ).fetchall()
    return sorted(str(row[0]) for row in shared_ids)


def _nonpositive_quantities(frame: pd.DataFrame) -> int:
    """Purchase rows (amount 0 or more) whose quantity is 0 or less: counted, not set aside.

    A return is a negative amount; a purchase of -2 units, or of none, is a line the export got
    wrong in one of the two columns, and which one cannot be told from the row."""
    if "quantity" not in frame or "amount" not in frame:
        return 0
    return int(((frame["quantity"] <= 0) & (frame["amount"] >= 0)).sum())


def _parse_columns(
    selected: dict[str, pd.Series],
    contract: TableContract,
    mapping: ColumnMapping,
    options: ValidationOptions,
    derived: dict[str, tuple[str, str]],
    problems: _RowProblems,
) -> tuple[dict[str, pd.Series], int]:
    """Every selected column parsed to its kind, its unusable rows added to ``problems``; a column
    with too many of them for one reason is refused whole (:func:`_check_share`). Also returns how
    many ids were written as decimals (12346.0) and normalised."""
    needed = set(contract.required).union(*derived.values())
    parsed: dict[str, pd.Series] = {}
    clean = _clean_text_columns(selected)
    normalised = 0
    for name, kind in contract.kinds.items():
        if name not in selected:
            continue
        if kind == "id":
            values, n_normalised = _parse_ids(selected[name], name in clean)
            masks = {f"missing {name}": values.isna()}
            normalised += n_normalised
        else:
            values, masks = _parse_column(
                selected[name],
                name,
                kind,
                contract,
                mapping,
                options,
                name in clean,
                name in needed,
            )
        parsed[name] = values
        for problem, mask in masks.items():
            source = mapping.source_of(name)
            _check_share(mask, contract.name, source, problem, selected[name], options)
            problems.add(problem, mask.to_numpy(dtype=bool))
    return parsed, normalised


def _derive_columns(
    parsed: dict[str, pd.Series],
    derived: dict[str, tuple[str, str]],
    mapping: ColumnMapping,
    problems: _RowProblems,
) -> list[str]:
    """Add each computed column (amount = quantity x price) to ``parsed``; return the notes that
    say so for the report."""
    notes: list[str] = []
    for name, (left, right) in derived.items():
        product = parsed[left] * parsed[right]
        # Rows with a missing or unreadable factor are already set aside; a product of two huge
        # numbers can still overflow.
        problems.add(f"non-finite {name}", np.isinf(product.to_numpy()))
        parsed[name] = product
        notes.append(
            f"{name} = {left} x {right} ('{mapping.source_of(left)}' x "
            f"'{mapping.source_of(right)}'): no {name} column is mapped"
        )
    return notes


def _judge_duplicates(
    raw: pd.DataFrame, table: str, options: ValidationOptions, problems: _RowProblems
) -> tuple[int, list[str]]:
    """Count the usable rows that repeat an earlier one and apply the duplicates policy: refuse
    the table, set them aside, or keep them with a warning. Returns the count and the warnings."""
    # Judged on the source rows, not on the parsed contract columns: lines that differ in a column
    # the contract does not read (a product, a description) are different lines.
    duplicated = _exact_duplicates(raw) & (problems.codes == 0)
    n_duplicates = int(duplicated.sum())
    if not n_duplicates:
        return 0, []
    what = f"rows identical to an earlier row in {_column_list(raw.columns)}: {_rows(n_duplicates)}"
    if options.duplicates == "error":
        raise RetainInputError(
            f"{table}: {what}; remove them, or choose --duplicates keep|drop "
            '(duplicates="keep"|"drop" in Python)'
        )
    if options.duplicates == "drop":
        problems.add("duplicate row", duplicated)
        return n_duplicates, []
    warning = f'{what} (kept; to set them aside: --duplicates drop, or duplicates="drop" in Python)'
    return n_duplicates, [warning]


def _set_aside(
    raw: pd.DataFrame,
    frame: pd.DataFrame,
    table: str,
    options: ValidationOptions,
    problems: _RowProblems,
    allow_empty: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The usable rows (renumbered from 0) and the source rows set aside with their reason; in
    strict mode, or when no row is usable (unless ``allow_empty``), the table is refused with the
    counts."""
    bad = problems.codes > 0
    counts = problems.counts()
    if counts and options.strict:
        detail = ", ".join(f"{_rows(n)} with {reason}" for reason, n in counts.items())
        raise RetainInputError(f"{table}: {detail} (strict mode refuses unusable rows)")
    if bad.any():
        quarantine = raw.loc[bad].assign(reason=problems.reasons(bad).to_numpy())
    else:  # an empty selection still gathers every Arrow chunk (0.3 s on ten million rows)
        quarantine = raw.iloc[:0].assign(reason=pd.Series([], dtype="str"))
    frame = frame.loc[~bad].reset_index(drop=True) if bad.any() else frame.reset_index(drop=True)
    if frame.empty and not allow_empty:
        raise_no_usable_rows(table, counts)
    return frame, quarantine


class _RowProblems:
    """The first problem of every row, as a small integer code per row."""

    def __init__(self, n_rows: int) -> None:
        self.codes = np.zeros(n_rows, dtype=np.int8)
        self.names: list[str] = []

    def add(self, problem: str, mask: np.ndarray) -> None:
        fresh = mask & (self.codes == 0)
        if fresh.any():
            if problem not in self.names:
                self.names.append(problem)
            self.codes[fresh] = self.names.index(problem) + 1

    def counts(self) -> dict[str, int]:
        if not self.codes.any():
            return {}
        tally = np.bincount(self.codes, minlength=len(self.names) + 1)[1:]
        pairs = sorted(zip(self.names, tally.tolist(), strict=True), key=lambda p: -p[1])
        return {name: n for name, n in pairs if n}

    def reasons(self, rows: np.ndarray) -> pd.Series:
        names = np.array(["", *self.names], dtype=object)
        return pd.Series(names[self.codes[rows]], dtype="str")


def _exact_duplicates(frame: pd.DataFrame) -> np.ndarray:
    """Rows equal in every column to an earlier row (values as read: numbers and typed timestamps
    by value, text by its characters).

    DuckDB hashes every row (64 bits) and returns the positions of the rows whose hash repeats, in
    one parallel pass with a semi-join (about 3 s on ten million rows of nine columns; pandas'
    ``duplicated`` takes over ten); those candidates alone are then compared exactly, so a hash
    collision never marks a row as a duplicate. A column DuckDB cannot take (Python objects of
    mixed types) sends the table to pandas.
    """
    if len(frame) < _SMALL:
        return _pandas_duplicates(frame)
    # Positional names: source columns may hold quotes, or repeat a name.
    names = [f"c{i}" for i in range(frame.shape[1])]
    renamed = frame.set_axis(names, axis=1).assign(position=np.arange(len(frame)))
    try:
        con = _duckdb()
        con.register("frame", renamed)
        candidates = con.sql(
            f"""
            WITH hashed AS (SELECT hash({", ".join(names)}) AS h, position FROM frame),
                 repeated AS (SELECT h FROM hashed GROUP BY h HAVING count(*) > 1)
            SELECT position FROM hashed SEMI JOIN repeated USING (h)
            """
        ).fetchnumpy()["position"]
    except (duckdb.Error, TypeError, ValueError):
        return _pandas_duplicates(frame)
    result = np.zeros(len(frame), dtype=bool)
    if len(candidates):
        candidates = np.sort(candidates)  # in file order: the first of equal rows is kept
        result[candidates[_pandas_duplicates(frame.iloc[candidates])]] = True
    return result


def _pandas_duplicates(frame: pd.DataFrame) -> np.ndarray:
    try:
        return frame.duplicated(keep="first").to_numpy()
    except TypeError:  # unhashable values (lists, dicts from parquet) compare by their text
        text = {c: "str" for c, dtype in frame.dtypes.items() if dtype.kind == "O"}
        return frame.astype(text).duplicated(keep="first").to_numpy()


def _column_list(columns: pd.Index, shown: int = 12) -> str:
    """``all 8 columns (a, b, ...)``: which columns a duplicate was judged on."""
    names = [str(c) for c in columns]
    listed = ", ".join(names[:shown]) + (
        f" and {len(names) - shown} more" if len(names) > shown else ""
    )
    if len(names) == 1:
        return f"its only column ({listed})"
    return f"all {len(names)} columns ({listed})"


# A source column named like a unit price (not a line total): "Price", "UnitPrice", "unit_price".
_UNIT_PRICE_NAME = re.compile(r"price|preis|prix|precio|prezzo", re.IGNORECASE)
_TOTAL_NAME = re.compile(r"total|sum|line|amount|revenue|paid|value|net|gross", re.IGNORECASE)


def _unit_price_warning(
    frame: pd.DataFrame, mapping: ColumnMapping, raw_columns: pd.Index
) -> str | None:
    """A warning when the amount looks like a unit price on lines of several units.

    Such an amount counts one unit's price as a line's revenue (``amount=Price,quantity=Quantity``
    on a line-item export). The amount is taken as a unit price when it equals the mapped ``price``
    on most usable rows with a quantity above 1, or when its source column is named like a unit
    price ("Price", "UnitPrice", not "Total price"). Without a quantity there is nothing to tell.
    """
    if "amount" not in frame or "quantity" not in frame:
        return None
    several = (frame["quantity"] > 1).to_numpy()
    n_several = int(several.sum())
    if n_several == 0:
        return None
    source = mapping.source_of("amount")
    quantity = _quoted(mapping.source_of("quantity"))
    price = _quoted(mapping.source_of("price") if "price" in frame else source)
    fix = (
        f"unit prices would be counted as revenue; map price={price},quantity={quantity} and no "
        "amount (amount = quantity x price), or map amount to the line total"
    )
    if "price" in frame:
        amounts = frame["amount"].to_numpy()[several]
        prices = frame["price"].to_numpy()[several]
        equal = int(np.isclose(amounts, prices, rtol=1e-9, atol=0).sum())
        if equal > n_several / 2:
            return (
                f"amount ('{source}') equals the unit price ('{mapping.source_of('price')}') on "
                f"{equal:,} of the {_rows(n_several)} with a quantity above 1: {fix}"
            )
        return None
    if _UNIT_PRICE_NAME.search(source) and not _TOTAL_NAME.search(source):
        return (
            f"amount is read from '{source}', named like a unit price, and "
            f"{_rows(n_several)} have a quantity above 1: {fix}"
        )
    return None


def _quoted(name: str) -> str:
    return f'"{name}"' if re.search(r"[\s,=\"']", name) else name


def _distinct_count(values: pd.Series) -> int:
    if len(values) < _SMALL:
        return int(values.nunique())
    con = _duckdb()
    con.register("ids", values.to_frame("value"))
    return int(con.execute("SELECT count(DISTINCT value) FROM ids").fetchall()[0][0])


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def write_quarantine(
    validated: ValidatedTable,
    path: str | Path,
    columns: ColumnsLike = None,
    *,
    contract: TableContract = TRANSACTIONS,
    all_columns: bool = False,
) -> Path:
    """Write the rows set aside, with their source row number and reason, as parquet or CSV (by
    the file's suffix).

    A quarantine file is for finding and fixing rows, and lands wherever the user points it, so by
    default it holds only the columns the contract reads (under the file's own names, through
    ``columns``, the mapping the table was validated with; the factors of a computed column
    included): a raw export's e-mails, names and addresses stay out. ``all_columns`` writes every
    column of the file (``--quarantine-all-columns``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = validated.quarantine
    if not all_columns:
        mapping = ColumnMapping.of(columns)
        read = {mapping.source_of(name) for name in contract.columns}
        rows = rows[[c for c in rows.columns if c in read or c == "reason"]]
    rows = rows.rename_axis("source_row").reset_index()
    if path.suffix == ".parquet":
        rows.astype({c: "str" for c in rows.columns if rows[c].dtype == object}).to_parquet(path)
    else:
        rows.to_csv(path, index=False)
    return path


def _select_columns(
    raw: pd.DataFrame, contract: TableContract, mapping: ColumnMapping, rows: str | None = None
) -> dict[str, pd.Series]:
    """Pick the contract's columns out of the raw table, by mapping or by their own name."""
    table = contract.name
    mapping.check_names(contract.columns, table)
    found = ", ".join(map(str, raw.columns))
    absent = [f"{s!r} (for {n})" for n, s in mapping.items() if s not in raw.columns]
    if absent:
        raise RetainInputError(
            f"{table}: the column mapping names {', '.join(absent)}, which the table does not "
            f"have; its columns are: {found}"
        )
    for name in contract.required:
        if mapping.source_of(name) in raw.columns:
            continue
        factors = contract.derived.get(name, ())
        if factors and all(mapping.source_of(f) in raw.columns for f in factors):
            continue  # computed from them (amount = quantity x price)
        alternative = (
            f" (the line total), or, for line items, "
            f"{','.join(f'{f}=<your column>' for f in factors)}"
            if factors
            else ""
        )
        raise RetainInputError(
            f"{table}: required column '{name}' is missing ({rows or _rows(len(raw))}); its columns "
            f"are: {found}. Map yours with --columns {name}=<your column>{alternative}"
        )
    return {
        name: raw[mapping.source_of(name)]
        for name in contract.columns
        if mapping.source_of(name) in raw.columns
    }


def _parse_column(
    values: pd.Series,
    name: str,
    kind: str,
    contract: TableContract,
    mapping: ColumnMapping,
    options: ValidationOptions,
    clean: bool = False,
    required: bool = False,
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Parse one column to its contract type; return it and a mask of unusable rows per problem.

    ``clean``: the column is text with no surrounding space and no empty value (see
    :func:`_clean_text_columns`), so it is used as it is. ``required``: a row without a value is
    unusable (a required column, or a factor of a computed one).
    """
    if kind == "text":
        parsed = values if clean else _clean_text(values)
        problems = {f"missing {name}": parsed.isna()} if required else {}
        return parsed, problems
    if kind in ("timestamp", "date"):
        parsed, dst = _parse_timestamps(values, contract.name, mapping.source_of(name), options)
        missing = values.isna() | _blank(values)
        problems = {reason: mask for reason, mask in dst.items() if mask.any()}
        unparseable = ~missing & parsed.isna()
        for mask in dst.values():
            unparseable &= ~mask
        problems[f"unparseable {name}"] = unparseable
        if required:
            problems[f"missing {name}"] = missing
        return parsed, problems
    if kind == "number":
        parsed, not_numeric = _parse_numbers(values)
        problems = {f"non-numeric {name}": not_numeric}
        if required:
            problems[f"missing {name}"] = values.isna() | _blank(values)
        problems[f"non-finite {name}"] = pd.Series(np.isinf(parsed.to_numpy()), index=values.index)
        return parsed, problems
    raise AssertionError(f"unknown column kind {kind!r}")


def check_columns(names: list[str], contract: TableContract, columns: ColumnMapping) -> None:
    """The errors validation would give for a table with these column names (before reading it:
    an engine that splits the table by customer needs the customer id column first)."""
    _select_columns(pd.DataFrame(columns=names), contract, columns, rows="all rows")


def parse_customer_ids(values: pd.Series) -> pd.Series:
    """Customer ids as validation makes them (text, trimmed; blank ones missing; whole numbers
    written as decimals lose their zeros: '12346.0' -> '12346'). Every reader goes through it: the
    CSV and parquet readers by way of validation, the Spark engine to pick a customer's partition."""
    return _parse_ids(values)[0]


def _parse_ids(values: pd.Series, clean: bool = False) -> tuple[pd.Series, int]:
    """Customer ids as strings, and how many were written as decimals and normalised.

    The contract makes 12346, 12346.0 and "12346.0" the one id "12346", whatever the reader: a CSV
    column is read as text (to keep "00042"), a parquet column may be float. Leading zeros stay.
    ``clean``: text already trimmed and without blanks (see :func:`_clean_text_columns`).
    """
    if pd.api.types.is_float_dtype(values.dtype):
        numbers = values.astype("float64")
        whole = numbers.notna() & (numbers == np.floor(numbers))
        n_whole = int(whole.sum())
        if bool(whole.all() or (whole | numbers.isna()).all()):
            ids = numbers.astype("Int64").astype("str")
            return ids.where(numbers.notna()), n_whole
        texts = numbers.map(lambda v: repr(v).removesuffix(".0"), na_action="ignore")
        return texts.astype("str"), n_whole
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.astype("str"), 0
    text = values if clean else _clean_text(values)
    # A cheap test first, the expression on the few candidates: on ten million ids a regular
    # expression on each costs seconds.
    candidates = text[text.str.endswith("0").fillna(False).astype(bool)]
    decimal = candidates[candidates.str.fullmatch(DECIMAL_ID.pattern).astype(bool)]
    if decimal.empty:
        return text, 0
    text = text.copy()
    text[decimal.index] = decimal.str.replace(r"\.0+$", "", regex=True)
    return text, len(decimal)


def _clean_text(values: pd.Series) -> pd.Series:
    """Strings with surrounding space removed; empty strings are missing."""
    text = values.astype("str") if values.dtype != "str" else values
    text = text.str.strip()
    return text.where(text.str.len() > 0)


def _clean_text_columns(selected: dict[str, pd.Series]) -> set[str]:
    """The string columns in which no value is empty or starts or ends with white space.

    Stripping them would change nothing, so they are used as they are: stripping ten million
    strings costs seconds a column. Below ``_SMALL`` rows pandas checks every value; above, see
    :func:`_edges_clean`.
    """
    text = {name: values for name, values in selected.items() if values.dtype == "str"}
    if not text:
        return set()
    if len(next(iter(text.values()))) < _SMALL:
        return {name for name, values in text.items() if not _dirty(values).any()}
    return {name for name, values in text.items() if _edges_clean(values)}


def _dirty(values: pd.Series) -> pd.Series:
    """Values that :func:`_clean_text` would change: empty, or with white space at an end
    (missing values stay missing)."""
    return values.notna() & ((values == "") | (values.str.strip() != values))


def _edges_clean(values: pd.Series) -> bool:
    """Whether no value of a large text column is empty or has white space at an end, read from
    its Arrow buffers: the first and last byte of every value, a numpy gather (0.05 s a column of
    ten million ids, where a DuckDB pass over the characters took 0.5 s and pandas' strip 2 s).

    A value whose first or last byte is a space, a control or part of a multi-byte character is
    only a candidate; the candidates alone are checked as :func:`_clean_text` would strip them,
    so the answer is exact. A column not stored in Arrow is checked whole.
    """
    try:
        array = pa.array(values.array)
    except (pa.ArrowException, TypeError, ValueError):
        return not _dirty(values).any()
    chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
    positions: list[np.ndarray] = []
    start = 0
    for chunk in chunks:
        positions.append(start + _edge_candidates(chunk))
        start += len(chunk)
    candidates = np.concatenate(positions) if positions else np.empty(0, dtype=np.int64)
    return not (len(candidates) and _dirty(values.iloc[candidates]).any())


def _edge_candidates(chunk: pa.Array) -> np.ndarray:
    """Positions in ``chunk`` (a string array) of the present values that are empty or whose first
    or last byte is not printable ASCII."""
    if not pa.types.is_string(chunk.type) and not pa.types.is_large_string(chunk.type):
        return np.arange(len(chunk))  # checked by pandas
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    _, offsets_buffer, data_buffer = chunk.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[
        chunk.offset : chunk.offset + len(chunk) + 1
    ]
    starts, ends = offsets[:-1], offsets[1:]
    suspect = ends == starts
    if data_buffer is not None and len(data_buffer):
        data = np.frombuffer(data_buffer, dtype=np.uint8)
        filled = ~suspect
        first = data[starts[filled]]
        last = data[ends[filled] - 1]
        suspect[filled] = _maybe_space(first) | _maybe_space(last)
    if chunk.null_count:
        suspect &= chunk.is_valid().to_numpy(zero_copy_only=False)
    return np.flatnonzero(suspect)


def _maybe_space(byte: np.ndarray) -> np.ndarray:
    """UTF-8 bytes that may be (part of) a white space character: ASCII space and controls, DEL,
    and every byte of a multi-byte character (U+00A0, U+2003, U+3000 ... are white space)."""
    return (byte <= 0x20) | (byte >= 0x7F)


def _duckdb() -> duckdb.DuckDBPyConnection:
    return connect()


def _blank(values: pd.Series) -> pd.Series:
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        return values.astype("str").str.strip().str.len() == 0
    return pd.Series(False, index=values.index)


def _parse_numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Numbers as float64, and which non-missing values are not numbers."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        parsed = values.astype("float64")
        return parsed, pd.Series(False, index=values.index)
    text = values.astype("str").str.strip()
    parsed = pd.to_numeric(text, errors="coerce").astype("float64")
    present = values.notna() & (text.str.len() > 0)
    return parsed, present & parsed.isna()


def _parse_timestamps(
    values: pd.Series, table: str, column: str, options: ValidationOptions
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Timestamps in UTC (NaT where a value is missing or cannot be parsed), and the local times
    a daylight-saving change made ambiguous or non-existent, by reason (see :func:`_localize`).

    Naive timestamps are read in ``options.timezone``. A column that mixes zoned and naive strings is
    refused: the naive ones' zone would be a guess.
    """
    dst: dict[str, pd.Series] = {}
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        parsed = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        parsed, dst = _localize(values, options, table, column)
    else:
        text = values.astype("str").str.strip()
        text = text.where(values.notna() & (text.str.len() > 0))
        zoned = text.str.contains(_ZONED, na=False)
        n_zoned, n_present = int(zoned.sum()), int(text.notna().sum())
        if 0 < n_zoned < n_present:
            raise RetainInputError(
                f"{table}: column '{column}' mixes time zones: {_rows(n_zoned)} with a zone "
                f"(e.g. {text[zoned].iloc[0]!r}) and {_rows(n_present - n_zoned)} without "
                f"(e.g. {text[text.notna() & ~zoned].iloc[0]!r}); give every timestamp a zone, "
                "or none and set the time zone option"
            )
        fmt = options.timestamp_format or "ISO8601"
        if n_zoned:
            parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True)
        else:
            naive = pd.to_datetime(text, format=fmt, errors="coerce")
            parsed, dst = _localize(naive, options, table, column)
    return parsed.astype(TIMESTAMP_DTYPE), dst


# How numbers that pandas cannot read are usually written, and what to do about it. They are not
# converted: "1,234" is a thousand in one locale and 1.234 in another, and a guess would corrupt
# the amounts silently.
_NUMBER_HINTS: Final = (
    (
        r"[-+]?\d[\d.,]*,[\d.,]*\d",
        "these have commas (decimal or thousands separators): write plain numbers with a "
        "decimal point, e.g. 1234.5",
    ),
    (
        r"[^\d\s.,+-]{1,3}\s?[-+]?[\d.,]+|[-+]?[\d.,]+\s?[^\d\s.,+-]{1,3}",
        "these carry a currency sign or unit: write the bare numbers",
    ),
)


def _number_hint(texts: pd.Series) -> str:
    """Advice for a column of unreadable numbers, from how most of them are written."""
    for pattern, hint in _NUMBER_HINTS:
        if texts.str.fullmatch(pattern).mean() > 0.5:
            return f"; {hint}"
    return "; check the column mapping"


# The reasons of naive local times that a daylight-saving change makes ambiguous or impossible.
_AMBIGUOUS: Final = "ambiguous timestamp (clocks went back)"
_NONEXISTENT: Final = "non-existent timestamp (clocks went forward)"


def _localize(
    values: pd.Series, options: ValidationOptions, table: str, column: str
) -> tuple[pd.Series, dict[str, pd.Series]]:
    """Naive wall-clock times read in ``options.timezone``, in UTC, and the rows that a
    daylight-saving change made ambiguous (the hour the clocks went back happens twice) or
    non-existent (the hour they skipped), by reason.

    ``options.ambiguous_times``: ``refuse`` sets such rows aside with their reason (which of two
    instants a time meant cannot be told from it); ``earliest`` / ``latest`` take the earlier or
    later instant of an ambiguous time, and the last instant before or the first after a skipped
    one.
    """
    policy = options.ambiguous_times
    try:
        if policy == "refuse":
            localized = values.dt.tz_localize(options.timezone, ambiguous="NaT", nonexistent="NaT")
        else:
            earliest = np.full(len(values), policy == "earliest")
            shift = "shift_backward" if policy == "earliest" else "shift_forward"
            localized = values.dt.tz_localize(
                options.timezone, ambiguous=earliest, nonexistent=shift
            )
    except Exception as error:  # pytz/zoneinfo raise several types for an unknown zone
        raise RetainInputError(
            f"{table}: unknown time zone {options.timezone!r} for '{column}'"
        ) from error
    lost = values.notna() & localized.isna()
    if not lost.any():
        return localized.dt.tz_convert("UTC"), {}
    # Only the lost rows tell which: an ambiguous time has an instant once one is chosen.
    chosen = values[lost].dt.tz_localize(
        options.timezone, ambiguous=np.ones(int(lost.sum()), dtype=bool), nonexistent="NaT"
    )
    nonexistent = pd.Series(False, index=values.index)
    nonexistent[chosen.index] = chosen.isna()
    masks = {_AMBIGUOUS: lost & ~nonexistent, _NONEXISTENT: nonexistent}
    return localized.dt.tz_convert("UTC"), masks


def _check_share(
    mask: pd.Series,
    table: str,
    column: str,
    problem: str,
    values: pd.Series,
    options: ValidationOptions,
) -> None:
    """Refuse a column when so many rows fail that the column, not the rows, must be wrong."""
    n_bad = int(mask.sum())
    if n_bad == 0 or n_bad <= options.max_invalid_share * len(mask):
        return
    examples = ", ".join(repr(v) for v in values[mask].drop_duplicates().head(3).tolist())
    hint = ""
    if problem.startswith("unparseable"):
        hint = "; give the format, e.g. --timestamp-format '%d/%m/%Y %H:%M'"
    elif problem.startswith("non-numeric"):
        hint = _number_hint(values[mask].astype("str").str.strip())
    examples_text = f" (e.g. {examples})" if not problem.startswith("missing") else ""
    raise RetainInputError(
        f"{table}: column '{column}': {n_bad:,} of {len(mask):,} rows "
        f"({n_bad / len(mask):.0%}) have {problem}{examples_text}{hint}"
    )
