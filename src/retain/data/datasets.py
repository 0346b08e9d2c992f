"""Loaders for the real data sets retain is measured on.

- CDNOW (Fader & Hardie): CD purchases of customers who first bought in Q1 1997, followed to June
  1998. Both files ship inside the ``lifetimes`` package: the master file (23,570 customers) and the
  1/10 sample of the BG/NBD paper (2,357 customers). lifetimes is the ``demo`` extra
  (``pip install 'retain[demo]'``), not a core dependency: retain reads only the files, and the
  serving image should not carry lifetimes, autograd and dill for a demo. retain does not copy the
  files into its own package: lifetimes' MIT licence covers its code, while the data are Fader and
  Hardie's, published for research without a licence of their own.
- UCI Online Retail II: a UK gift retailer's invoice lines, December 2009 to December 2011, as a
  real client exports them: guests without an id, cancellations, zero prices, postage lines.

Each loader maps the file onto the data contract and runs the same validation as any user file,
and adds what is particular to the source to the report's notes.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

from retain.data.validation import (
    ValidatedTable,
    ValidationOptions,
    validate_customers,
    validate_transactions,
)
from retain.errors import RetainInputError

__all__ = [
    "Dataset",
    "cdnow_path",
    "default_online_retail_path",
    "load_cdnow",
    "load_online_retail",
]

ONLINE_RETAIL_FILE = "online_retail_ii.parquet"

# Stock codes of Online Retail II that are not goods: postage, fees, manual adjustments.
NON_PRODUCT_CODES = frozenset(
    {
        "POST",
        "DOT",
        "M",
        "C2",
        "BANK CHARGES",
        "AMAZONFEE",
        "CRUK",
        "D",
        "S",
        "PADS",
        "B",
        "ADJUST",
        "ADJUST2",
        "TEST001",
        "TEST002",
        "SP1002",
        "m",
    }
)


@dataclass(frozen=True)
class Dataset:
    """Validated tables of one source, and notes on what the source holds beyond the counts."""

    name: str
    transactions: ValidatedTable
    customers: ValidatedTable | None = None
    events: ValidatedTable | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The validation reports and the source notes, as terminal lines."""
        lines = [f"data set: {self.name}", *self.transactions.report.lines()]
        for table in (self.customers, self.events):
            if table is not None:
                lines += table.report.lines()
        return lines + [f"  note: {note}" for note in self.notes]


CDNOW_PACKAGE = "lifetimes"


def cdnow_path(kind: Literal["master", "sample"] = "master") -> Path:
    """Where the lifetimes package keeps the CDNOW file.

    The package is found, not imported: importing lifetimes would load autograd for a file path.
    """
    spec = importlib.util.find_spec(CDNOW_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RetainInputError(
            f"CDNOW {kind}: the data file ships with the {CDNOW_PACKAGE} package, which is not "
            "installed; install the demo extra: pip install 'retain[demo]' (or `make setup`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / f"CDNOW_{kind}.txt"


def load_cdnow(kind: Literal["master", "sample"] = "master") -> Dataset:
    """CDNOW transactions: customer, day of purchase, number of CDs and dollar value.

    The sample file's second column is the customer's id within the sample (1..2,357).
    """
    if kind not in ("master", "sample"):
        raise RetainInputError(f"CDNOW comes as 'master' or 'sample', not {kind!r}")
    names = ["customer_id", "date", "quantity", "amount"]
    if kind == "sample":
        names = ["master_id", *names]
    raw = pd.read_csv(
        cdnow_path(kind),
        sep=r"\s+",
        header=0 if kind == "master" else None,
        names=names,
        dtype={"customer_id": "str", "master_id": "str", "date": "str"},
    )
    raw["customer_id"] = raw["customer_id"].str.lstrip("0")
    validated = validate_transactions(
        raw.drop(columns=["master_id"], errors="ignore"),
        {"timestamp": "date"},
        ValidationOptions(timestamp_format="%Y%m%d", strict=True),
    )
    return Dataset(name=f"CDNOW {kind}", transactions=validated)


def default_online_retail_path() -> Path:
    """``$RETAIN_ONLINE_RETAIL`` or ``shared/data/online_retail_ii.parquet`` beside a parent folder."""
    if env := os.environ.get("RETAIN_ONLINE_RETAIL"):
        return Path(env)
    for folder in [Path.cwd(), *Path.cwd().parents]:
        candidate = folder.parent / "shared" / "data" / ONLINE_RETAIL_FILE
        if candidate.exists():
            return candidate
    raise RetainInputError(
        f"cannot find {ONLINE_RETAIL_FILE} in a shared/data folder beside this one or its parents; "
        "pass its path or set RETAIN_ONLINE_RETAIL"
    )


def load_online_retail(
    path: str | Path | None = None, options: ValidationOptions | None = None
) -> Dataset:
    """UCI Online Retail II: invoices as orders, cancellations as negative amounts, guests counted.

    Times are UK local time in the file and become UTC. Guest lines (no customer id) cannot be tied
    to a customer: they are set aside and counted, like any row without an id.
    """
    path = Path(path) if path is not None else default_online_retail_path()
    if not path.exists():
        raise RetainInputError(f"Online Retail II: no file at {path}")
    raw = pd.read_parquet(path)
    options = options or ValidationOptions(timezone="Europe/London")
    transactions = validate_transactions(
        raw,
        {
            "customer_id": "Customer ID",
            "timestamp": "InvoiceDate",
            "amount": "Amount",
            "order_id": "Invoice",
            "product_id": "StockCode",
            "quantity": "Quantity",
        },
        options,
    )
    guests = int(raw["Customer ID"].isna().sum())
    guest_revenue = float(raw.loc[raw["Customer ID"].isna(), "Amount"].sum())
    frame = transactions.frame
    cancelled = frame["order_id"].str.startswith("C")
    notes = [
        f"guest lines (no customer id): {guests:,} rows, {guest_revenue:,.0f} in revenue, set aside",
        f"cancellation lines (invoice 'C...'): {int(cancelled.sum()):,} rows on "
        f"{frame.loc[cancelled, 'order_id'].nunique():,} invoices, kept as negative amounts",
        f"zero-price lines: {int((frame['amount'] == 0).sum()):,} rows, kept",
        f"non-product lines (postage, fees, adjustments): "
        f"{int(frame['product_id'].isin(NON_PRODUCT_CODES).sum()):,} rows, kept",
    ]
    # A customer's country is the one on most of their lines.
    countries = (
        raw.dropna(subset=["Customer ID"])
        .groupby(["Customer ID", "Country"], observed=True)
        .size()
        .sort_values(ascending=False)
        .reset_index()
        .drop_duplicates("Customer ID")[["Customer ID", "Country"]]
    )
    customers = validate_customers(countries, {"customer_id": "Customer ID", "country": "Country"})
    return Dataset(
        name="UCI Online Retail II",
        transactions=transactions,
        customers=customers,
        notes=notes,
    )
