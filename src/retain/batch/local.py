"""The local engine: read and validate with pandas, then score customer chunks one after another.

Validation needs the whole table (a duplicate repeats a row anywhere in it, in every column of the
file: ``read_table`` reads them all, and they are let go once validated), so the validated
frames are held in memory; everything after that (features, the models' matrices, the TreeSHAP
contributions behind the reasons) is bounded by the chunk size, and each chunk's scores go to disk
as soon as they are made. When a step follows the scoring (the actions), the validated
transactions and customers frames are handed back to it as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from retain.batch.chunks import ChunkResult, chunk_of, score_chunk
from retain.batch.engine import EngineRun, EngineTask, ScoredInputs
from retain.batch.progress import Progress
from retain.batch.schema import SCORES_SCHEMA, to_arrow
from retain.data.validation import report_counts

__all__ = ["LocalEngine"]


class LocalEngine:
    """Scores on this machine, ``settings.chunk_customers`` customers at a time."""

    name = "local"

    def score(self, task: EngineTask) -> EngineRun:
        settings, timer, inputs, log = task.settings, task.timer, task.inputs, task.log
        files = settings.inputs()
        frames: dict[str, pd.DataFrame] = {}
        for name, _, _ in files.sources():
            validated = files.table(name, log, stage=timer.stage)
            assert validated is not None
            frames[name] = validated.frame
            inputs[name] = inputs[name].add(report_counts(validated.report))
            files.forget(name)
        kept = ScoredInputs()
        if task.keep_inputs:
            kept = ScoredInputs(frames["transactions"], 0, frames.get("customers"))
        n_customers = frames["transactions"]["customer_id"].nunique()
        n_chunks = max(1, math.ceil(n_customers / settings.chunk_customers))
        log(f"scoring {n_customers:,} customers in {n_chunks} chunk(s)")
        # _chunks takes the frames out of `frames` as it reorders them: one copy in memory
        # (two when the validated frames are kept for the actions).
        totals = ChunkResult(scores=pd.DataFrame())
        scored = 0
        with (
            timer.stage("score"),
            pq.ParquetWriter(task.destination, SCORES_SCHEMA, compression="zstd") as writer,
            Progress(n_chunks, "scoring", enabled=settings.progress, log=log) as progress,
        ):
            for part in _chunks(frames, n_chunks):
                result = score_chunk(
                    task.model,
                    part["transactions"],
                    task.as_of,
                    events=part.get("events"),
                    customers=part.get("customers"),
                    n_reasons=settings.n_reasons,
                )
                with timer.stage("write"):
                    writer.write_table(to_arrow(result.scores))
                totals.merge_counts(result)
                scored += len(result.scores)
                progress.advance(f"{scored:,} customers scored")
        timer.exclude("score", "write")
        return EngineRun(
            inputs=inputs,
            totals=totals,
            customers_scored=scored,
            details={"chunks": n_chunks, "chunk_customers": settings.chunk_customers},
            scored_inputs=kept,
        )


def _chunks(frames: dict[str, pd.DataFrame], n_chunks: int) -> Iterator[dict[str, pd.DataFrame]]:
    """The frames cut into ``n_chunks`` disjoint sets of customers (every row of a customer in the
    same chunk), in chunk order."""
    if n_chunks == 1:
        yield frames
        return
    ordered: dict[str, tuple[pd.DataFrame, np.ndarray]] = {}
    for name in list(frames):
        chunk = chunk_of(frames[name]["customer_id"], n_chunks)
        order = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[order], np.arange(n_chunks + 1))
        ordered[name] = (frames.pop(name).take(order).reset_index(drop=True), bounds)
    for i in range(n_chunks):
        yield {
            name: frame.iloc[bounds[i] : bounds[i + 1]] for name, (frame, bounds) in ordered.items()
        }
