"""Column mappings: how a file's own column names map onto the data contract's names.

Real exports name their columns their own way ("Customer ID", "InvoiceDate"). A mapping says which
file column feeds which contract column, so nobody renames files by hand:

    >>> ColumnMapping.parse('customer_id="Customer ID",timestamp=InvoiceDate')
    ColumnMapping({'customer_id': 'Customer ID', 'timestamp': 'InvoiceDate'})
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TypeAlias

from retain.errors import RetainInputError

__all__ = ["ColumnMapping", "ColumnsLike"]

# One `name=value` pair: the value may be quoted (to hold commas) or bare (up to the next comma).
_PAIR = re.compile(
    r"""\s*(?P<key>[^=,\s]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>[^,]*))\s*"""
)


class ColumnMapping(Mapping[str, str]):
    """A read-only map from contract column name to the file's column name."""

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._pairs = dict(pairs or {})
        sources = list(self._pairs.values())
        repeated = sorted({s for s in sources if sources.count(s) > 1})
        if repeated:
            raise RetainInputError(
                f"column mapping: file column(s) {repeated} are mapped to more than one contract column"
            )

    @classmethod
    def of(cls, columns: ColumnsLike) -> ColumnMapping:
        """A mapping from any of the forms users write one in: a ColumnMapping, a dict
        (``{"customer_id": "Customer ID"}``), or the ``--columns`` text of the command line
        (``'customer_id="Customer ID",timestamp=InvoiceDate'``), so that a notebook can paste what
        works on the command line. ``None`` is the empty mapping (the file uses the contract's names).
        """
        if columns is None:
            return cls()
        if isinstance(columns, ColumnMapping):
            return columns
        if isinstance(columns, str):
            return cls.parse(columns)
        if isinstance(columns, Mapping):
            wrong = {
                k: v for k, v in columns.items() if not isinstance(k, str) or not isinstance(v, str)
            }
            if wrong:
                raise RetainInputError(
                    f"column mapping: names and file columns must be text, not {wrong!r}"
                )
            return cls(columns)
        raise RetainInputError(
            "column mapping: give a dict such as {'customer_id': 'Customer ID'} or text such as "
            f"'customer_id=\"Customer ID\"', not a {type(columns).__name__}"
        )

    @classmethod
    def parse(cls, text: str | None) -> ColumnMapping:
        """Parse ``name=column,name="Column with spaces",...`` (as given to ``--columns``)."""
        if text is None or not text.strip():
            return cls()
        pairs: dict[str, str] = {}
        position = 0
        while position < len(text):
            match = _PAIR.match(text, position)
            if match is None:
                raise RetainInputError(
                    f"column mapping: cannot read {text[position:]!r}; "
                    'expected name=column pairs separated by commas, e.g. customer_id="Customer ID"'
                )
            value = match.group("dq") or match.group("sq") or (match.group("bare") or "").strip()
            if not value:
                raise RetainInputError(f"column mapping: no file column given for {match['key']!r}")
            if match["key"] in pairs:
                raise RetainInputError(f"column mapping: {match['key']!r} is mapped twice")
            pairs[match["key"]] = value
            position = match.end()
            if position < len(text):
                if text[position] != ",":
                    raise RetainInputError(
                        f"column mapping: expected ',' after {match.group(0).strip()!r}"
                    )
                position += 1
        return cls(pairs)

    def check_names(self, allowed: list[str], table: str) -> None:
        """Reject contract names that the table does not have (a typo would otherwise be ignored)."""
        unknown = sorted(set(self._pairs) - set(allowed))
        if unknown:
            raise RetainInputError(
                f"column mapping: {unknown} are not {table} columns; "
                f"the {table} columns are {', '.join(allowed)}"
            )

    def source_of(self, name: str) -> str:
        """The file column that feeds contract column ``name`` (itself when not mapped)."""
        return self._pairs.get(name, name)

    def __getitem__(self, key: str) -> str:
        return self._pairs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"ColumnMapping({self._pairs!r})"


ColumnsLike: TypeAlias = ColumnMapping | Mapping[str, str] | str | None
"""What functions that take a column mapping accept (see :meth:`ColumnMapping.of`)."""
