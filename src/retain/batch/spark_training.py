"""Training on Spark: the feature tables built on customer hash partitions, the fit on the driver.

:meth:`RetentionModel.fit <retain.models.retention.RetentionModel.fit>` is two steps around the
feature builder (``plan_fit``, then ``fit_tables``); here Spark builds the tables between them,
with the partitions, the reading and the validation of the scoring engine (:mod:`.spark`):

1. every partition validates its rows (``validate_table(..., part=True)``) and returns its report
   counts, its earliest transaction on or before ``as_of`` and its number of customers with a
   purchase. The driver refuses what the local engine refuses (the first partition's input error,
   then the whole-table refusals of scoring) and plans the fit: the cutoffs, the training horizon
   and the customer sample (a hash of the id, so every partition knows its sampled customers);
2. every partition validates its rows again and returns, as Arrow IPC streams, its sampled
   customers' features and labels at every cutoff, the six RFM columns of all its customers at
   ``as_of`` (the BTYD models kept for scoring and the segments are fitted on the whole
   population) and its sampled customers' features at ``as_of``.

The driver sorts the parts into the local tables, row for row, and fits. Per cutoff it scores the
RFM segments on the sample as a whole, as :func:`~retain.features.build_features` does (their
quintile edges are the sample's, not a partition's). The driver holds the sample's rows and six
numbers per customer of the population, never the transactions.

On ``local[*]`` the model equals :meth:`RetentionModel.fit`'s on the validated frames, given the
same settings and seed (``tests/batch/test_spark_training.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import pandas as pd
import pyarrow as pa

from retain.batch.spark import (
    _PARTITION,
    _check_whole_table,
    _instant_columns,
    _partitioned,
    _session,
    _side_table,
    _validated,
    _with_side,
    default_partitions,
)
from retain.data.validation import ValidationOptions
from retain.errors import RetainInputError
from retain.features.builder import FeatureBuilder, to_cutoff
from retain.features.segments import RFMSegmenter
from retain.jobs.inputs import Inputs
from retain.models.retention import RetentionModel
from retain.models.sampling import CustomerSample, in_sample
from retain.models.training import up_to

__all__ = ["POPULATION_COLUMNS", "SparkTraining", "fit_on_spark"]

POPULATION_COLUMNS: Final = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last_purchase",
    "spend_total",
)
"""What ``fit_tables`` reads of the population at ``as_of``: each customer's RFM summary."""

_KIND: Final = "kind"
_PAYLOAD: Final = "payload"
_SUMMARY: Final = "summary"
_POPULATION: Final = "population"
_NOW: Final = "now"


@dataclass(frozen=True)
class SparkTraining:
    """A model fitted on Spark, with the validation counts of its inputs (summed per table)."""

    model: RetentionModel
    reports: dict[str, dict[str, Any]]
    partitions: int
    master: str


@dataclass(frozen=True)
class _Reading:
    """What every partition needs to validate its rows, sent with the function."""

    as_of: pd.Timestamp
    columns: dict[str, dict[str, str]]
    instants: dict[str, list[str]]
    validation: ValidationOptions


@dataclass(frozen=True)
class _TablesPlan:
    """What every partition needs in the second pass: the fit's plan and its sample."""

    reading: _Reading
    builder: FeatureBuilder
    cutoffs: list[pd.Timestamp]
    horizon_days: int
    sample: CustomerSample


@dataclass
class _Parts:
    """The frames the partitions returned, by kind, before they are put together."""

    features: dict[pd.Timestamp, list[pd.DataFrame]] = field(default_factory=dict)
    labels: dict[pd.Timestamp, list[pd.DataFrame]] = field(default_factory=dict)
    population: list[pd.DataFrame] = field(default_factory=list)
    now: list[pd.DataFrame] = field(default_factory=list)


def fit_on_spark(
    model: RetentionModel,
    inputs: Inputs,
    as_of: str | pd.Timestamp,
    *,
    master: str | None = None,
    partitions: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> SparkTraining:
    """Fit ``model`` on ``inputs`` up to ``as_of``, the feature tables built on Spark (see the
    module doc). ``master``: a Spark master URL (default ``local[*]``, or spark-submit's);
    ``partitions``: customer hash partitions (default: :func:`~retain.batch.spark.default_partitions`)."""
    day = to_cutoff(as_of)
    spark = _session(master, "retain train")
    n_partitions = partitions or default_partitions(spark, inputs)
    spark.conf.set("spark.sql.shuffle.partitions", str(n_partitions))
    frames, mappings = _partitioned(spark, inputs, n_partitions)
    reading = _Reading(
        as_of=day,
        columns=mappings,
        instants={name: _instant_columns(frame) for name, frame in frames.items()},
        validation=inputs.validation,
    )
    where = str(spark.sparkContext.master)
    log(f"training on Spark ({where}), {n_partitions} customer partitions")
    summaries = [
        json.loads(row[_PAYLOAD])
        for row in _run(frames, partial(_count_partition, reading)).collect()
    ]
    _refuse(summaries, reading)
    reports = _summed_reports(summaries)
    first = min(pd.Timestamp(s["first"]) for s in summaries if s["first"] is not None)
    buyers = sum(int(s["buyers"]) for s in summaries)
    sample = model.plan_fit(pd.DataFrame({"timestamp": [first]}), day, buyers)
    log(
        f"customer sample: {sample.rate:.4g} of {buyers:,} customers with a purchase"
        if sample.sampled
        else f"customers: all {buyers:,} with a purchase"
    )
    plan = _TablesPlan(reading, model.builder_, model.cutoffs_, model.training_horizon_, sample)
    parts = _collect(_run(frames, partial(_tables_partition, plan)))
    training = _training_table(parts, model.cutoffs_)
    model.fit_tables(training, _sorted(parts.population), _sorted(parts.now))
    return SparkTraining(model, reports, n_partitions, where)


# -- the driver's helpers ---------------------------------------------------------------------------


def _run(frames: dict[str, Any], work: Callable[[dict[str, pd.DataFrame]], pd.DataFrame]) -> Any:
    """``work`` on every partition's tables (transactions, cogrouped with the events and the
    customers when given), as a DataFrame of (kind, payload) rows."""
    grouped = frames["transactions"].groupBy(_PARTITION)
    schema = f"{_KIND} string, {_PAYLOAD} binary"
    side = _side_table(frames)
    if side is None:
        return grouped.applyInPandas(lambda raw: work({"transactions": raw}), schema)
    return grouped.cogroup(side.groupBy(_PARTITION)).applyInPandas(
        lambda raw, rows: work(_with_side(raw, rows)), schema
    )


def _refuse(summaries: list[dict[str, Any]], reading: _Reading) -> None:
    """The local engine's refusals: a partition's input error, the whole table's (no usable row,
    several currencies), and no transaction on or before ``as_of``."""
    errors = [s["error"] for s in summaries if s.get("error")]
    if errors:
        raise RetainInputError(errors[0])
    _check_whole_table(summaries, reading.validation)
    if not any(s["first"] is not None for s in summaries):
        raise RetainInputError(f"training: no transactions on or before {reading.as_of:%Y-%m-%d}")


def _summed_reports(summaries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each table's report counts, added up over the partitions."""
    totals: dict[str, dict[str, Any]] = {}
    for summary in summaries:
        for table, counts in summary["reports"].items():
            total = totals.setdefault(table, {})
            for name, value in counts.items():
                if isinstance(value, dict):
                    kept = total.setdefault(name, {})
                    for key, n in value.items():
                        kept[key] = kept.get(key, 0) + n
                elif isinstance(value, list):  # warnings: each once
                    kept_list = total.setdefault(name, [])
                    kept_list += [v for v in value if v not in kept_list]
                else:
                    total[name] = total.get(name, 0) + value
    return totals


def _collect(result: Any) -> _Parts:
    """The second pass's frames, decoded as they arrive (one partition's bytes at a time).

    The partitions are computed together first (cached on the executors): the local iterator
    alone would run one partition's job after another."""
    result = result.persist()
    try:
        result.count()
        return _decoded(result.toLocalIterator())
    finally:
        result.unpersist()


def _decoded(rows: Iterator[Any]) -> _Parts:
    parts = _Parts()
    for row in rows:
        kind, payload = row[_KIND], row[_PAYLOAD]
        if kind == _SUMMARY:
            summary = json.loads(payload)
            if summary.get("error"):  # the first pass read the same rows without one
                raise RetainInputError(summary["error"])
            continue
        frame = _from_ipc(payload)
        if kind == _POPULATION:
            parts.population.append(frame)
        elif kind == _NOW:
            parts.now.append(frame)
        else:
            table, cutoff = kind.split(" ", 1)
            target = parts.features if table == "features" else parts.labels
            target.setdefault(pd.Timestamp(cutoff), []).append(frame)
    return parts


def _training_table(parts: _Parts, cutoffs: list[pd.Timestamp]) -> pd.DataFrame:
    """The sample's features and labels at every cutoff, as :func:`~retain.models.training.
    training_table` stacks them: per cutoff, the RFM segments scored on the whole sample, then
    the labels, then the cutoff."""
    if not cutoffs:
        return pd.DataFrame(columns=["cutoff", "churned"])
    tables = []
    for cutoff in cutoffs:
        if not parts.features.get(cutoff):
            raise RetainInputError(
                f"features: no customer has a purchase on or before {cutoff:%Y-%m-%d}"
            )
        features = RFMSegmenter().fit_transform(_sorted(parts.features[cutoff]))
        labels = _sorted(parts.labels[cutoff])
        tables.append(
            features.merge(labels, on="customer_id", how="left", validate="one_to_one").assign(
                cutoff=cutoff
            )
        )
    return pd.concat(tables, ignore_index=True)


def _sorted(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The partitions' rows in customer order, as the feature builder orders a whole table."""
    whole = pd.concat(frames, ignore_index=True)
    return whole.sort_values("customer_id", kind="stable").reset_index(drop=True)


# -- on the workers ---------------------------------------------------------------------------------


def _count_partition(reading: _Reading, raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Pass 1: the partition's report counts, its earliest transaction on or before as_of and its
    customers with a purchase (or only the input error it met)."""
    summary: dict[str, Any] = {"reports": {}}
    try:
        frames = _validated(reading, raw, summary)
    except RetainInputError as error:
        return _rows([(_SUMMARY, json.dumps({"error": str(error)}).encode())])
    history = up_to(frames["transactions"], reading.as_of)
    purchases = history["amount"].to_numpy() >= 0
    summary["first"] = history["timestamp"].min().isoformat() if len(history) else None
    summary["buyers"] = int(pd.unique(history["customer_id"].to_numpy()[purchases]).size)
    return _rows([(_SUMMARY, json.dumps(summary).encode())])


def _tables_partition(plan: _TablesPlan, raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Pass 2: the partition's part of the training table (sampled customers, every cutoff), of
    the population's RFM summary and of the sample's features at as_of."""
    try:
        frames = _validated(plan.reading, raw, {"reports": {}})
    except RetainInputError as error:
        return _rows([(_SUMMARY, json.dumps({"error": str(error)}).encode())])
    day = plan.reading.as_of
    history = up_to(frames["transactions"], day)
    if not (history["amount"].to_numpy() >= 0).any():
        return _rows([])  # no customer of this partition has features yet
    events, customers = up_to(frames.get("events"), day), frames.get("customers")
    now = plan.builder.build(history, day, events=events, customers=customers)
    rows = [
        (_POPULATION, now[["customer_id", *POPULATION_COLUMNS]]),
        (_NOW, _in_sample(now, plan.sample)),
    ]
    learn = _in_sample(history, plan.sample)
    learn_events = None if events is None else _in_sample(events, plan.sample)
    learn_customers = None if customers is None else _in_sample(customers, plan.sample)
    for cutoff in plan.cutoffs:
        if not _known_at(learn, cutoff):
            continue  # none of the partition's sampled customers is known at this cutoff
        features = plan.builder.build(learn, cutoff, events=learn_events, customers=learn_customers)
        labels = plan.builder.labels(learn, cutoff, plan.horizon_days, observed_until=day)
        rows += [
            (f"features {cutoff.isoformat()}", features),
            (f"labels {cutoff.isoformat()}", labels),
        ]
    return _rows([(kind, _to_ipc(frame)) for kind, frame in rows])


def _known_at(transactions: pd.DataFrame, cutoff: pd.Timestamp) -> bool:
    """Whether any purchase of ``transactions`` falls on or before the cutoff day."""
    known = up_to(transactions, cutoff)
    return bool((known["amount"].to_numpy() >= 0).any())


def _in_sample(frame: pd.DataFrame, sample: CustomerSample) -> pd.DataFrame:
    """The rows of the sample's customers (all rows when the sample is everybody)."""
    if not sample.sampled:
        return frame
    return frame.loc[in_sample(frame["customer_id"], sample)].reset_index(drop=True)


def _rows(rows: list[tuple[str, Any]]) -> pd.DataFrame:
    # Objects, not pandas 3's Arrow-backed str (see spark._summary_row).
    return pd.DataFrame(
        {
            _KIND: pd.Series([kind for kind, _ in rows], dtype=object),
            _PAYLOAD: pd.Series([payload for _, payload in rows], dtype=object),
        }
    )


def _to_ipc(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(payload: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(payload).read_all().to_pandas()
