"""The files a job reads, described once and loaded once.

Every command and job reads the same thing: a transactions file with its column mapping, and
optionally an events file and a customers file with theirs, validated with one set of options (and
the unusable transaction rows written to a quarantine file on request). :class:`Inputs` is that
description; :meth:`Inputs.load` reads and validates each file the first time it is asked for and
hands back the same :class:`~retain.data.validation.ValidatedTable` afterwards, so a job whose
steps all need the transactions (features, KPIs, training) validates them once.

This module depends on :mod:`retain.data` only: the batch engines build their inputs from it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Final, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from retain.data.columns import ColumnMapping
from retain.data.contract import CUSTOMERS, EVENTS, TRANSACTIONS, TableContract
from retain.data.io import read_table
from retain.data.validation import (
    ValidatedTable,
    ValidationOptions,
    validate_table,
    write_quarantine,
)

__all__ = ["TABLES", "Inputs", "TableName", "TableSource"]

TableName = Literal["transactions", "events", "customers"]
TABLES: Final[dict[TableName, TableContract]] = {
    "transactions": TRANSACTIONS,
    "events": EVENTS,
    "customers": CUSTOMERS,
}
"""The input tables, in the order they are read, with their contracts."""

Stage = Callable[[str], AbstractContextManager[object]]
"""Times a named stage of the loading (``read``, ``validate``): a batch job's stage timer."""


class TableSource(BaseModel):
    """One input file and its column mapping (contract column -> the file's column)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Path
    columns: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def parse(cls, path: Path | None, columns: str | None) -> TableSource | None:
        """From the command line: a path (or none) and its ``--columns`` text."""
        if path is None:
            return None
        return cls(path=path, columns=dict(ColumnMapping.parse(columns)))

    @property
    def mapping(self) -> ColumnMapping:
        return ColumnMapping(self.columns)


class Inputs(BaseModel):
    """A job's input files, their mappings and how to validate them (see the module doc)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    transactions: TableSource
    events: TableSource | None = None
    customers: TableSource | None = None
    validation: ValidationOptions = Field(default_factory=ValidationOptions)
    quarantine: Path | None = None
    """Where the unusable rows of the transactions go, with a reason column (.csv/.parquet)."""
    quarantine_all_columns: bool = False
    """Write every column of the file to the quarantine, not only the contract's (personal data
    such as e-mails stays out by default: :func:`~retain.data.validation.write_quarantine`)."""

    _loaded: dict[str, ValidatedTable] = PrivateAttr(default_factory=dict)

    def sources(self) -> Iterator[tuple[TableName, TableSource, TableContract]]:
        """The files given, in reading order, with their contracts."""
        for name, contract in TABLES.items():
            source = getattr(self, name)
            if source is not None:
                yield name, source, contract

    def table(
        self,
        name: TableName,
        log: Callable[[str], None] | None = None,
        stage: Stage | None = None,
    ) -> ValidatedTable | None:
        """The validated table ``name`` (None when that file was not given), read and validated
        on the first call, its report lines (and the quarantine's) sent to ``log`` then."""
        if name in self._loaded:
            return self._loaded[name]
        source = getattr(self, name)
        if source is None:
            return None
        validated = _load(source, TABLES[name], self.validation, stage or _untimed)
        for line in validated.report.lines():
            (log or _quiet)(line)
        if name == "transactions" and self.quarantine is not None:
            where = write_quarantine(
                validated,
                self.quarantine,
                source.mapping,
                contract=TABLES[name],
                all_columns=self.quarantine_all_columns,
            )
            (log or _quiet)(f"  quarantine: {len(validated.quarantine):,} rows written to {where}")
        self._loaded[name] = validated
        return validated

    def frames(
        self, log: Callable[[str], None] | None = None
    ) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
        """The validated transactions, events and customers frames (None for a file not given)."""
        loaded = [self.table(name, log) for name in TABLES]
        transactions, events, customers = (t.frame if t is not None else None for t in loaded)
        assert transactions is not None  # the transactions are required
        return transactions, events, customers

    def forget(self, name: TableName) -> None:
        """Let a loaded table go (its memory), e.g. once a batch engine has scored it."""
        self._loaded.pop(name, None)


def _load(
    source: TableSource, contract: TableContract, options: ValidationOptions, stage: Stage
) -> ValidatedTable:
    mapping = source.mapping
    mapping.check_names(contract.columns, contract.name)
    with stage("read"):
        raw = read_table(source.path, contract, mapping, options)
    with stage("validate"):
        return validate_table(raw, contract, mapping, options)


def _untimed(_: str) -> AbstractContextManager[object]:
    return nullcontext()


def _quiet(_: str) -> None:
    pass
