"""Reading tables from CSV and parquet files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from retain.data.columns import ColumnMapping, ColumnsLike
from retain.data.contract import TableContract
from retain.data.validation import OptionsLike, ValidatedTable, as_options, validate_table
from retain.errors import RetainInputError

__all__ = ["csv_separator", "load_table", "read_table"]

_CSV_SUFFIXES = (".csv", ".txt", ".tsv", ".csv.gz", ".csv.zip")


def read_table(
    path: str | Path,
    contract: TableContract,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
) -> pd.DataFrame:
    """Read a CSV or parquet file as it is, every column, with id and text columns kept as text.

    Id columns are read as text so that "00042" stays "00042"; everything else keeps its own type
    and is parsed strictly by validation. With a timestamp format in ``options``, timestamp columns
    are read as text too, for validation to parse with that format. Columns the contract does not
    use are read too: a row is a duplicate only when it repeats another in every column (two lines
    of one invoice differ by their product), and the quarantine file shows whole source rows.
    """
    columns = ColumnMapping.of(columns)
    options = as_options(options)
    path = Path(path)
    if not path.exists():
        raise RetainInputError(f"{contract.name}: no file at {path}")
    name = path.name.lower()
    try:
        if name.endswith(".parquet") or path.is_dir():
            if path.is_file():
                pq.read_schema(path)  # a file that is not parquet: one clear error below
            return pd.read_parquet(path)
        if name.endswith(_CSV_SUFFIXES):
            as_text = {"id", "text"}
            if options.timestamp_format is not None:
                as_text |= {"timestamp", "date"}
            text_columns = {
                columns.source_of(c): "str" for c, kind in contract.kinds.items() if kind in as_text
            }
            sep = csv_separator(path)
            header = pd.read_csv(path, nrows=0, sep=sep).columns
            return _read_csv(path, sep, {c: t for c, t in text_columns.items() if c in header})
    except pd.errors.EmptyDataError as error:
        raise RetainInputError(f"{contract.name}: {path} is empty (no header, no rows)") from error
    except (
        pd.errors.ParserError,
        UnicodeDecodeError,
        OSError,
        ValueError,
        pa.ArrowException,
    ) as error:
        raise RetainInputError(f"{contract.name}: cannot read {path}: {error}") from error
    raise RetainInputError(
        f"{contract.name}: {path} is neither parquet nor CSV (expected .parquet, .csv or .tsv)"
    )


def _read_csv(path: Path, sep: str, dtypes: dict[str, str]) -> pd.DataFrame:
    """The CSV file through pyarrow's multi-threaded reader, or pandas' own where pyarrow refuses
    the file (pandas' reader then names the problem).

    pyarrow reads ten million rows about three times faster, and types ISO 8601 timestamp columns
    as it reads them: their values are the instants validation would parse from the text (a column
    that mixes zoned and naive values, or holds anything else, stays text and is parsed there).
    """
    try:
        return pd.read_csv(path, dtype=dtypes, sep=sep, engine="pyarrow")
    except (pa.ArrowException, ValueError, pd.errors.ParserError):
        return pd.read_csv(path, dtype=dtypes, sep=sep)


# Separators of exports from spreadsheets and shops in locales that write decimal commas.
_SEPARATORS = (",", ";", "\t", "|")


def csv_separator(path: Path) -> str:
    """The separator of a CSV file: a tab for ``.tsv``, else a comma, unless the header read so is
    one column that holds another separator (';', a tab, '|', ','): then the most frequent of
    them. A semicolon-separated export would otherwise fail as "required column missing"."""
    sep = "\t" if path.name.lower().endswith(".tsv") else ","
    try:
        names = pd.read_csv(path, nrows=0, sep=sep).columns.tolist()
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return sep  # the reader itself then says what is wrong with the file
    if len(names) == 1:
        counts = {s: names[0].count(s) for s in _SEPARATORS if s != sep}
        best = max(counts, key=lambda s: counts[s])
        if counts[best] > 0:
            return best
    return sep


def load_table(
    path: str | Path,
    contract: TableContract,
    columns: ColumnsLike = None,
    options: OptionsLike = None,
) -> ValidatedTable:
    """Read a file and validate it against its table's contract.

    ``columns`` maps the contract's names to the file's, as a ColumnMapping, a dict
    (``{"customer_id": "Customer ID"}``) or the command line's ``--columns`` text
    (``'customer_id="Customer ID",timestamp=InvoiceDate'``); ``options`` is a ValidationOptions or
    a dict of its fields (``{"timezone": "Europe/London"}``).
    """
    columns = ColumnMapping.of(columns)
    options = as_options(options)
    columns.check_names(contract.columns, contract.name)
    return validate_table(read_table(path, contract, columns, options), contract, columns, options)
