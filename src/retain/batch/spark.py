"""The Spark engine: the same chunk scoring, run on customer hash partitions of a Spark cluster.

Spark reads the files; every row gets the partition of its customer, computed by the validation's
own id parsing (so " 42" and "42" meet); ``applyInPandas`` then hands each partition's rows, as a
pandas frame, to the code the local engine runs: validation, the feature builder, the models and
the actions (:func:`retain.batch.chunks.score_chunk`). The model travels to the workers as its
saved parts (:func:`retain.models.persistence.model_to_parts`: JSON and LightGBM text, checked
against their hashes when read back, and parsed as JSON and LightGBM text only). Each partition also returns one
summary row (its validation counts, drift counts, or the input error it met), which the driver
adds up for the manifest.

When the actions follow the scoring, each partition also returns the rows its KPIs need, reduced
(:func:`kpi_rows`: one row per customer, order, instant and sign of the amount, on or before
as_of) and the e-mails of its customers: the driver collects these, never the transactions.

Validation per partition judges what the local engine judges on the whole table: a duplicate is a
row identical to an earlier one in every column of the file, and identical rows have the same
customer, hence the same partition, so the partitions' counts add up to the table's. (Spark reads a
CSV file's columns as text, where pyarrow types numbers and timestamps: two rows that differ only
in how a number is written, "1" and "1.0", are duplicates locally and not here. Rows written alike
count the same on both engines. A line-item file's amount, quantity x price, is computed per row.)

Running on a cluster: ``retain score --engine spark --master spark://host:7077 ...``, or
``spark-submit`` a script that runs :class:`~retain.batch.ScoringJob` with ``engine="spark"``
(the master then comes from spark-submit). Every worker needs the same Python environment
(``pip install retain`` from the same lock); ``PYSPARK_PYTHON`` defaults to this interpreter. The
output folder must be on a filesystem the driver can rename in (local or mounted): the job
publishes it atomically like the local engine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Final, Protocol

import pandas as pd

from retain.batch.chunks import ChunkResult, chunk_of, score_chunk
from retain.batch.engine import EngineRun, EngineTask, ScoredInputs
from retain.batch.manifest import InputSummary
from retain.batch.schema import SCORES_SCHEMA, to_output_frame
from retain.data.columns import ColumnMapping
from retain.data.contract import CUSTOMERS, EVENTS, MANIFEST_FILE, TRANSACTIONS
from retain.data.io import csv_separator
from retain.data.validation import (
    ValidationOptions,
    check_columns,
    parse_customer_ids,
    raise_no_usable_rows,
    refuse_mixed_currencies,
    report_counts,
    validate_table,
)
from retain.errors import RetainError, RetainInputError
from retain.jobs.inputs import Inputs
from retain.models.persistence import model_from_parts, model_to_parts
from retain.models.retention import RetentionModel
from retain.models.training import up_to

__all__ = ["PARTITION_BYTES", "SparkEngine", "default_partitions", "kpi_rows"]

_PARTITION = "_retain_partition"
_TABLE = "_retain_table"
_SUMMARY = "_retain_summary"
_KIND: Final = "_retain_kind"
"""What an output row is: a customer's scores (null), ``summary``, ``kpi`` or ``email``."""
_KPI_COLUMNS: Final = {  # output column -> (contract column, Spark type)
    "_kpi_customer_id": ("customer_id", "string"),
    "_kpi_timestamp": ("timestamp", "timestamp"),
    "_kpi_amount": ("amount", "double"),
    "_kpi_order_id": ("order_id", "string"),
    "_kpi_email": ("email", "string"),
}
_CONTRACTS = {"transactions": TRANSACTIONS, "events": EVENTS, "customers": CUSTOMERS}


@dataclass(frozen=True)
class _Plan:
    """What every partition needs, sent to the workers with the function."""

    model: Any  # a Broadcast of the model's parts (file name -> bytes)
    model_key: str  # the hash of its manifest: workers (reused between tasks) load it once
    as_of: pd.Timestamp
    columns: dict[str, dict[str, str]]
    instants: dict[str, list[str]]
    """Per table, the columns Spark read as instants (TIMESTAMP): they are UTC, not local time."""
    validation: ValidationOptions
    n_reasons: int
    keep_inputs: bool = False
    """Also return the KPI rows and the customers' e-mails (:func:`kpi_rows`)."""


class SparkEngine:
    """Scores with pyspark; ``settings.spark_master`` (default ``local[*]``) says where."""

    name = "spark"

    def score(self, task: EngineTask) -> EngineRun:
        settings, timer, log = task.settings, task.timer, task.log
        from pyspark.sql import functions as F

        with timer.stage("start_spark"):
            spark = _session(settings.spark_master)
        inputs = settings.inputs()
        n_partitions = settings.partitions or default_partitions(spark, inputs)
        spark.conf.set("spark.sql.shuffle.partitions", str(n_partitions))
        frames, mappings = _partitioned(spark, inputs, n_partitions)
        parts = model_to_parts(task.model)
        plan = _Plan(
            model=spark.sparkContext.broadcast(parts),
            model_key=hashlib.sha256(parts[MANIFEST_FILE]).hexdigest(),
            as_of=task.as_of,
            columns=mappings,
            instants={name: _instant_columns(frame) for name, frame in frames.items()},
            validation=settings.validation,
            n_reasons=settings.n_reasons,
            keep_inputs=task.keep_inputs,
        )
        grouped = frames["transactions"].groupBy(_PARTITION)
        side = _side_table(frames)
        if side is None:
            result = grouped.applyInPandas(partial(_score_alone, plan), _output_schema())
        else:
            result = grouped.cogroup(side.groupBy(_PARTITION)).applyInPandas(
                partial(_score_with_side, plan), _output_schema()
            )
        log(f"scoring on Spark ({spark.sparkContext.master}), {n_partitions} customer partitions")
        result = result.persist()
        try:
            with timer.stage("score"):
                summaries = [
                    json.loads(row[0])
                    for row in result.where(F.col(_KIND) == "summary").select(_SUMMARY).collect()
                ]
            errors = [s["error"] for s in summaries if s.get("error")]
            if errors:
                raise RetainInputError(errors[0])
            _check_whole_table(summaries, settings.validation)
            with timer.stage("write"):
                (
                    result.where(F.col(_KIND).isNull())
                    .drop(_SUMMARY, _KIND, *_KPI_COLUMNS)
                    .orderBy("customer_id")
                    .write.option("compression", "zstd")
                    .parquet(str(task.destination))
                )
            kept = _scored_inputs(result, summaries) if task.keep_inputs else ScoredInputs()
        finally:
            result.unpersist()
        _tidy_output(task.destination)
        run = _engine_run(summaries, task.inputs, n_partitions, str(spark.sparkContext.master))
        run.scored_inputs = kept
        return run


# -- the driver's helpers ---------------------------------------------------------------------------


def _session(master: str | None, app: str = "retain score") -> Any:
    """The Spark session: spark-submit's when there is one, else a new one on ``master``
    (default ``local[*]``)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise RetainError(
            "the spark engine needs pyspark: pip install 'retain[spark]' (and Java 17+)"
        ) from error
    builder = SparkSession.builder.appName(app)
    if master is not None:
        builder = builder.master(master)
    elif not SparkConf().contains("spark.master"):
        builder = builder.master("local[*]")
    spark = (
        builder.config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# Input bytes per customer partition at most, by default. A partition is one pandas frame in a
# Python worker and one group in Spark's memory: 1.6 million customers' 220 MB parquet file in 4
# partitions ran the JVM out of its default 1 GB heap on local[2]; in 16 (14 MB each) it trained.
PARTITION_BYTES: Final = 16 * 2**20


def default_partitions(spark: Any, inputs: Inputs) -> int:
    """Customer partitions when none are asked for: two per core, at least 2, and at least one per
    :data:`PARTITION_BYTES` of the input files (those on this machine's file system; a path
    only the cluster sees counts as nothing)."""
    size = sum(_bytes_on_disk(source.path) for _, source, _ in inputs.sources())
    return max(2, 2 * spark.sparkContext.defaultParallelism, math.ceil(size / PARTITION_BYTES))


def _bytes_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def _partitioned(
    spark: Any, inputs: Inputs, n_partitions: int
) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """Each input read by Spark, its columns checked, every row marked with the partition of its
    customer; and the column mapping of every table (empty for a table not given)."""
    from pyspark.sql import functions as F

    mappings: dict[str, dict[str, str]] = {name: {} for name in _CONTRACTS}
    frames: dict[str, Any] = {}
    for name, source, contract in inputs.sources():
        frame = _read(spark, source.path, name)
        mappings[name] = source.columns
        check_columns(frame.columns, contract, source.mapping)
        key = _partition_udf(n_partitions)(F.col(f"`{source.mapping.source_of('customer_id')}`"))
        frames[name] = frame.withColumn(_PARTITION, key)
    return frames, mappings


def _output_schema() -> Any:
    """The scores' columns, then what the other kinds of row carry (all nullable: a summary row
    has no customer)."""
    from pyspark.sql.pandas.types import from_arrow_schema
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    types = {"string": StringType(), "double": DoubleType(), "timestamp": TimestampType()}
    return StructType(
        [StructField(f.name, f.dataType, nullable=True) for f in from_arrow_schema(SCORES_SCHEMA)]
        + [StructField(_SUMMARY, StringType(), nullable=True)]
        + [StructField(_KIND, StringType(), nullable=True)]
        + [
            StructField(name, types[kind], nullable=True)
            for name, (_, kind) in _KPI_COLUMNS.items()
        ]
    )


def _scored_inputs(result: Any, summaries: list[dict[str, Any]]) -> ScoredInputs:
    """The reduced KPI rows and the customers' e-mails, collected from the partitions' output."""
    from pyspark.sql import functions as F

    def collect(kind: str, names: list[str]) -> pd.DataFrame:
        rows = result.where(F.col(_KIND) == kind).select(*names).toPandas()
        return rows.rename(columns={name: _KPI_COLUMNS[name][0] for name in names})

    transactions = collect(
        "kpi", ["_kpi_customer_id", "_kpi_timestamp", "_kpi_amount", "_kpi_order_id"]
    )
    transactions["timestamp"] = pd.to_datetime(transactions["timestamp"]).dt.tz_localize("UTC")
    if not any(s.get("order_ids") for s in summaries):
        transactions = transactions.drop(columns="order_id")
    customers = None
    if any(s.get("emails") for s in summaries):
        customers = collect("email", ["_kpi_customer_id", "_kpi_email"])
    after = sum(int(s.get("rows_after_as_of", 0)) for s in summaries)
    return ScoredInputs(transactions, after, customers)


def _read(spark: Any, path: Path, table: str) -> Any:
    """A parquet file or folder, or a CSV file with a header (every column as text: validation
    parses them, exactly as it parses a CSV read by pandas)."""
    from pyspark.errors import PySparkException

    name = path.name.lower()
    try:
        if name.endswith(".parquet") or path.is_dir():
            return spark.read.parquet(str(path))
        if name.endswith((".csv", ".txt", ".csv.gz")):
            reader = spark.read.option("header", True).option("inferSchema", False)
            return reader.option("sep", csv_separator(path)).csv(str(path))
    except PySparkException as error:
        reason = str(error).splitlines()[0]
        raise RetainInputError(f"{table}: Spark cannot read {path}: {reason}") from error
    raise RetainInputError(
        f"{table}: {path} is neither parquet nor CSV (the spark engine reads .parquet and .csv)"
    )


def _partition_udf(n_partitions: int) -> Any:
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("int")  # type: ignore[call-overload]
    def partition(ids: pd.Series) -> pd.Series:
        parsed = parse_customer_ids(ids).fillna("")
        return pd.Series(chunk_of(parsed, n_partitions), index=ids.index).astype("int32")

    return partition


def _instant_columns(frame: Any) -> list[str]:
    from pyspark.sql.types import TimestampType

    return [f.name for f in frame.schema.fields if isinstance(f.dataType, TimestampType)]


def _side_table(frames: dict[str, Any]) -> Any | None:
    """Events and customer records as one table (marked by ``_TABLE``) to cogroup with the
    transactions: a partition's function gets all three for the same customers."""
    from pyspark.sql import functions as F

    parts = [
        frames[name].withColumn(_TABLE, F.lit(name))
        for name in ("events", "customers")
        if name in frames
    ]
    if not parts:
        return None
    side = parts[0]
    for part in parts[1:]:
        side = side.unionByName(part, allowMissingColumns=True)
    return side


def _check_whole_table(summaries: list[dict[str, Any]], options: ValidationOptions) -> None:
    """The refusals each partition leaves to the whole table (see ``validate_table``'s ``part``):
    a table without a usable row, and several currencies, which may each sit in a partition of
    customers of their own."""
    tables = {name for summary in summaries for name in summary["reports"]}
    for table in sorted(tables):
        reports = [s["reports"][table] for s in summaries if table in s["reports"]]
        if not sum(int(report["rows_valid"]) for report in reports):
            quarantined: dict[str, int] = {}
            for report in reports:
                for reason, n in report["quarantined"].items():
                    quarantined[reason] = quarantined.get(reason, 0) + int(n)
            raise_no_usable_rows(table, quarantined)
        if options.currency is None:
            currencies: dict[str, int] = {}
            for report in reports:
                for code, n in report.get("currencies", {}).items():
                    currencies[code] = currencies.get(code, 0) + int(n)
            refuse_mixed_currencies(table, "currency", currencies)


def _engine_run(
    summaries: list[dict[str, Any]],
    inputs: dict[str, InputSummary],
    n_partitions: int,
    master: str,
) -> EngineRun:
    totals = ChunkResult(scores=pd.DataFrame())
    scored = 0
    for summary in summaries:
        for table, counts in summary["reports"].items():
            inputs[table] = inputs[table].add(counts)
        totals.merge_counts(
            ChunkResult(
                scores=pd.DataFrame(),
                customers_without_purchase=summary["customers_without_purchase"],
                rows_after_as_of=summary["rows_after_as_of"],
                drift_counts=summary["drift_counts"],
            )
        )
        scored += summary["customers_scored"]
    return EngineRun(
        inputs=inputs,
        totals=totals,
        customers_scored=scored,
        details={"partitions": n_partitions, "spark_master": master},
    )


def _tidy_output(folder: Path) -> None:
    """Name the part files by their order alone (Spark adds a random job id, so a re-run would
    give other names), and drop the ``.crc`` files Hadoop's local filesystem writes beside them."""
    for checksum in folder.glob(".*.crc"):
        checksum.unlink()
    for i, part in enumerate(sorted(folder.glob("part-*.parquet"))):
        part.rename(folder / f"part-{i:05d}.parquet")


# -- on the workers ---------------------------------------------------------------------------------

_MODELS: dict[str, RetentionModel] = {}


def _model(plan: _Plan) -> RetentionModel:
    """The broadcast model, read from its parts once per worker process."""
    if plan.model_key not in _MODELS:
        _MODELS.clear()
        _MODELS[plan.model_key] = model_from_parts(plan.model.value, "the broadcast model")
    return _MODELS[plan.model_key]


def _score_alone(plan: _Plan, raw: pd.DataFrame) -> pd.DataFrame:
    return _score_partition(plan, {"transactions": raw})


def _score_with_side(plan: _Plan, raw: pd.DataFrame, side: pd.DataFrame) -> pd.DataFrame:
    return _score_partition(plan, _with_side(raw, side))


def _with_side(raw: pd.DataFrame, side: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A partition's tables by name, from its transactions and its cogrouped side rows."""
    tables = {"transactions": raw}
    if len(side):
        for name in ("events", "customers"):
            rows = side.loc[side[_TABLE] == name]
            if len(rows):
                tables[name] = rows.drop(columns=_TABLE).dropna(axis=1, how="all")
    return tables


def _score_partition(plan: _Plan, raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One partition's scores, its summary row (or only a summary row naming the error) and,
    when the actions follow, its KPI and e-mail rows."""
    summary: dict[str, Any] = {"reports": {}}
    try:
        frames = _validated(plan, raw, summary)
        result = score_chunk(
            _model(plan),
            frames["transactions"],
            plan.as_of,
            events=frames.get("events"),
            customers=frames.get("customers"),
            n_reasons=plan.n_reasons,
        )
    except RetainInputError as error:
        return _summary_row({"error": str(error)})
    summary |= {
        "customers_scored": len(result.scores),
        "customers_without_purchase": result.customers_without_purchase,
        "rows_after_as_of": result.rows_after_as_of,
        "drift_counts": result.drift_counts,
    }
    kept = _kept_rows(plan, frames, summary) if plan.keep_inputs else []
    parts = [to_output_frame(result.scores)] if len(result.scores) else []
    parts += [_summary_row(summary), *kept]
    # Each part gets every column first: a column a part lacks holds None (not NaN, which the
    # reasons' list column cannot take).
    return pd.concat([_as_output(part) for part in parts], ignore_index=True)


class _Reading(Protocol):
    """How a partition reads its rows (a plan's part that :func:`_validated` needs)."""

    # Read-only (properties): the plans that satisfy it are frozen dataclasses.
    @property
    def columns(self) -> dict[str, dict[str, str]]: ...
    @property
    def instants(self) -> dict[str, list[str]]: ...
    @property
    def validation(self) -> ValidationOptions: ...


def _validated(
    plan: _Reading, raw: dict[str, pd.DataFrame], summary: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    """The partition's frames validated as the local engine validates them; their report counts
    go into ``summary``."""
    frames = {}
    for name, frame in raw.items():
        frame = frame.drop(columns=_PARTITION)
        for column in plan.instants.get(name, []):
            if column in frame:  # Spark hands instants over as naive UTC wall clock
                frame[column] = pd.to_datetime(frame[column]).dt.tz_localize("UTC")
        validated = validate_table(
            frame, _CONTRACTS[name], ColumnMapping(plan.columns[name]), plan.validation, part=True
        )
        frames[name] = validated.frame
        summary["reports"][name] = report_counts(validated.report)
    return frames


def kpi_rows(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The rows of validated transactions that the KPIs, cohorts and CRR forecast need.

    Rows after ``as_of`` are left out (the actions leave them out too). Rows of the same
    customer and order at the same instant, both purchases or both refunds, become one row with
    their amounts summed: every KPI reads an order's first instant and gross value, a customer's
    purchase instants, a period's net revenue and the first and last instants, and none of these
    changes (up to the rounding of the sums). A row without an order id is an order of its own
    and stays as it is, and so does every row of a table without order ids: a reduction of
    those would change the order counts.
    """
    known = up_to(transactions, as_of)
    columns = ["customer_id", "timestamp", "amount"]
    if "order_id" not in known:
        return known[columns].reset_index(drop=True)
    loose = known["order_id"].isna().to_numpy()
    grouped = known.loc[~loose].assign(_refund=lambda f: f["amount"] < 0)
    orders = (
        grouped.groupby(
            ["customer_id", "order_id", "timestamp", "_refund"], sort=False, observed=True
        )["amount"]
        .sum()
        .reset_index()
        .drop(columns="_refund")
    )
    return pd.concat([orders, known.loc[loose, [*columns, "order_id"]]], ignore_index=True)


def _kept_rows(
    plan: _Plan, frames: dict[str, pd.DataFrame], summary: dict[str, Any]
) -> list[pd.DataFrame]:
    """The partition's KPI rows and its customers' e-mails, as output rows."""
    rows = kpi_rows(frames["transactions"], plan.as_of)
    summary["order_ids"] = "order_id" in rows
    kpi = pd.DataFrame(
        {
            _KIND: "kpi",
            "_kpi_customer_id": rows["customer_id"].astype("str"),
            "_kpi_timestamp": rows["timestamp"].dt.tz_convert("UTC").dt.tz_localize(None),
            "_kpi_amount": rows["amount"].astype("float64"),
        }
    )
    if "order_id" in rows:  # a missing order id stays missing: the row is an order of its own
        order = rows["order_id"]
        kpi["_kpi_order_id"] = order.astype("str").astype(object).where(order.notna(), None)
    kept = [kpi]
    customers = frames.get("customers")
    summary["emails"] = customers is not None and "email" in customers
    if summary["emails"]:
        assert customers is not None
        kept.append(
            pd.DataFrame(
                {
                    _KIND: "email",
                    "_kpi_customer_id": customers["customer_id"].astype("str"),
                    "_kpi_email": customers["email"],
                }
            )
        )
    return kept


def _summary_row(summary: dict[str, Any]) -> pd.DataFrame:
    row = pd.DataFrame({name: [None] for name in SCORES_SCHEMA.names})
    # Objects, not pandas 3's Arrow-backed str: a partition whose output is this row alone would
    # hand pyspark a chunked Arrow array, which its converter cannot take.
    row[_SUMMARY] = pd.Series([json.dumps(summary)], dtype=object)
    row[_KIND] = pd.Series(["summary"], dtype=object)
    return _as_output(row)


def _as_output(frame: pd.DataFrame) -> pd.DataFrame:
    """Every output column in order; a column this frame lacks is null, typed so that Arrow
    casts it to the column's Spark type (a timestamp column of NaT, else objects of None)."""
    for name in _output_names():
        if name not in frame:
            if _KPI_COLUMNS.get(name, ("", ""))[1] == "timestamp":
                frame[name] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us]")
            else:
                frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
    return frame[_output_names()]


def _output_names() -> list[str]:
    """The output frame's columns, in the order of :func:`_output_schema`."""
    return [*SCORES_SCHEMA.names, _SUMMARY, _KIND, *_KPI_COLUMNS]
