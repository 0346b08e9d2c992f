"""The Spark engine: the same chunk scoring, run on customer hash partitions of a Spark cluster.

Spark reads the files; every row gets the partition of its customer, computed by the validation's
own id parsing (so " 42" and "42" meet); ``applyInPandas`` then hands each partition's rows, as a
pandas frame, to the code the local engine runs: validation, the feature builder, the models and
the actions (:func:`retain.batch.chunks.score_chunk`). The model travels to the workers as one
broadcast pickle. Each partition also returns one summary row (its validation counts, drift
counts, or the input error it met), which the driver adds up for the manifest.

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
import os
import pickle
import sys
import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from retain.batch.chunks import ChunkResult, chunk_of, score_chunk
from retain.batch.engine import EngineRun, EngineTask
from retain.batch.manifest import InputSummary
from retain.batch.schema import SCORES_SCHEMA, to_output_frame
from retain.batch.settings import BatchSettings
from retain.data.columns import ColumnMapping
from retain.data.contract import CUSTOMERS, EVENTS, TRANSACTIONS
from retain.data.io import csv_separator
from retain.data.validation import (
    ValidationOptions,
    check_columns,
    parse_customer_ids,
    report_counts,
    validate_table,
)
from retain.errors import RetainError, RetainInputError
from retain.models.retention import RetentionModel

__all__ = ["SparkEngine"]

_PARTITION = "_retain_partition"
_TABLE = "_retain_table"
_SUMMARY = "_retain_summary"
_CONTRACTS = {"transactions": TRANSACTIONS, "events": EVENTS, "customers": CUSTOMERS}


@dataclass(frozen=True)
class _Plan:
    """What every partition needs, sent to the workers with the function."""

    model: Any  # a Broadcast of the pickled RetentionModel
    model_key: str  # its hash: workers (reused between tasks) unpickle each model once
    as_of: pd.Timestamp
    columns: dict[str, dict[str, str]]
    instants: dict[str, list[str]]
    """Per table, the columns Spark read as instants (TIMESTAMP): they are UTC, not local time."""
    validation: ValidationOptions
    n_reasons: int


class SparkEngine:
    """Scores with pyspark; ``settings.spark_master`` (default ``local[*]``) says where."""

    name = "spark"

    def score(self, task: EngineTask) -> EngineRun:
        settings, timer, inputs, log = task.settings, task.timer, task.inputs, task.log
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_schema
        from pyspark.sql.types import StringType, StructField, StructType

        with timer.stage("start_spark"):
            spark = _session(settings)
        n_partitions = settings.partitions or max(2, 2 * spark.sparkContext.defaultParallelism)
        spark.conf.set("spark.sql.shuffle.partitions", str(n_partitions))
        paths = {
            "transactions": settings.transactions,
            "events": settings.events,
            "customers": settings.customers,
        }
        mappings = {
            "transactions": settings.columns,
            "events": settings.event_columns,
            "customers": settings.customer_columns,
        }
        frames = {}
        for name, path in paths.items():
            if path is None:
                continue
            frame = _read(spark, path, name)
            mapping = ColumnMapping(mappings[name])
            check_columns(frame.columns, _CONTRACTS[name], mapping)
            key = _partition_udf(n_partitions)(F.col(f"`{mapping.source_of('customer_id')}`"))
            frames[name] = frame.withColumn(_PARTITION, key)
        pickled = pickle.dumps(task.model, pickle.HIGHEST_PROTOCOL)
        plan = _Plan(
            model=spark.sparkContext.broadcast(pickled),
            model_key=hashlib.sha256(pickled).hexdigest(),
            as_of=task.as_of,
            columns=mappings,
            instants={name: _instant_columns(frame) for name, frame in frames.items()},
            validation=settings.validation,
            n_reasons=settings.n_reasons,
        )
        scores_type = from_arrow_schema(SCORES_SCHEMA)
        schema = StructType(
            [
                StructField(f.name, f.dataType, nullable=True)  # the summary row has no customer
                for f in scores_type.fields
            ]
            + [StructField(_SUMMARY, StringType(), nullable=True)]
        )
        grouped = frames["transactions"].groupBy(_PARTITION)
        side = _side_table(frames)
        if side is None:
            result = grouped.applyInPandas(partial(_score_alone, plan), schema)
        else:
            result = grouped.cogroup(side.groupBy(_PARTITION)).applyInPandas(
                partial(_score_with_side, plan), schema
            )
        log(f"scoring on Spark ({spark.sparkContext.master}), {n_partitions} customer partitions")
        result = result.persist()
        try:
            with timer.stage("score"):
                summaries = [
                    json.loads(row[0])
                    for row in result.where(F.col("customer_id").isNull())
                    .select(_SUMMARY)
                    .collect()
                ]
            errors = [s["error"] for s in summaries if s.get("error")]
            if errors:
                raise RetainInputError(errors[0])
            with timer.stage("write"):
                (
                    result.where(F.col("customer_id").isNotNull())
                    .drop(_SUMMARY)
                    .orderBy("customer_id")
                    .write.option("compression", "zstd")
                    .parquet(str(task.destination))
                )
        finally:
            result.unpersist()
        _tidy_output(task.destination)
        return _engine_run(summaries, inputs, n_partitions, str(spark.sparkContext.master))


# -- the driver's helpers ---------------------------------------------------------------------------


def _session(settings: BatchSettings) -> Any:
    """The Spark session: spark-submit's when there is one, else a new one on the given master."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    warnings.filterwarnings("ignore", message=".*does not yet fully support pandas.*")
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise RetainError(
            "the spark engine needs pyspark: pip install 'retain[spark]' (and Java 17+)"
        ) from error
    builder = SparkSession.builder.appName("retain score")
    if settings.spark_master is not None:
        builder = builder.master(settings.spark_master)
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
    """The broadcast model, unpickled once per worker process."""
    if plan.model_key not in _MODELS:
        _MODELS.clear()
        _MODELS[plan.model_key] = pickle.loads(plan.model.value)
    return _MODELS[plan.model_key]


def _score_alone(plan: _Plan, raw: pd.DataFrame) -> pd.DataFrame:
    return _score_partition(plan, {"transactions": raw})


def _score_with_side(plan: _Plan, raw: pd.DataFrame, side: pd.DataFrame) -> pd.DataFrame:
    tables = {"transactions": raw}
    if len(side):
        for name in ("events", "customers"):
            rows = side.loc[side[_TABLE] == name]
            if len(rows):
                tables[name] = rows.drop(columns=_TABLE).dropna(axis=1, how="all")
    return _score_partition(plan, tables)


def _score_partition(plan: _Plan, raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One partition's scores, then its summary row (or only a summary row naming the error)."""
    summary: dict[str, Any] = {"reports": {}}
    try:
        frames = {}
        for name, frame in raw.items():
            frame = frame.drop(columns=_PARTITION)
            for column in plan.instants.get(name, []):
                if column in frame:  # Spark hands instants over as naive UTC wall clock
                    frame[column] = pd.to_datetime(frame[column]).dt.tz_localize("UTC")
            validated = validate_table(
                frame, _CONTRACTS[name], ColumnMapping(plan.columns[name]), plan.validation
            )
            frames[name] = validated.frame
            summary["reports"][name] = report_counts(validated.report)
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
    if not len(result.scores):
        return _summary_row(summary)
    scores = to_output_frame(result.scores).assign(**{_SUMMARY: None})
    return pd.concat([scores, _summary_row(summary)], ignore_index=True)


def _summary_row(summary: dict[str, Any]) -> pd.DataFrame:
    row = pd.DataFrame({name: [None] for name in SCORES_SCHEMA.names})
    row[_SUMMARY] = json.dumps(summary)
    return row
