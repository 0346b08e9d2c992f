"""The nightly scoring job: every customer's scores and action, a manifest, published atomically.

>>> manifest = ScoringJob(BatchSettings(transactions=..., as_of="2024-12-31", out=...)).run()

(``retain score`` runs it through :class:`retain.jobs.ScoreJob`, which adds the actions step.)

Stages: check the arguments and inputs, load the model, then the engine reads, validates and
scores (local: customer chunks on this machine; spark: customer hash partitions on a cluster),
then the drift of the scored population against the training one, then ``manifest.json``, then
the step given as ``after`` (the actions), with the frames the engine validated. Nothing is
visible in ``out`` until all of it has succeeded (:func:`atomic_directory`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from retain.batch.chunks import ChunkResult
from retain.batch.engine import Engine, EngineRun, EngineTask, ScoredInputs
from retain.batch.local import LocalEngine
from retain.batch.manifest import (
    DriftReport,
    InputSummary,
    Manifest,
    ModelInfo,
    file_digest,
    package_versions,
)
from retain.batch.progress import StageTimer
from retain.batch.publish import atomic_directory, check_replaceable
from retain.batch.settings import BatchSettings
from retain.data.contract import MANIFEST_FILE, SCORES_FILE
from retain.errors import RetainInputError
from retain.features.builder import to_cutoff
from retain.models.retention import RetentionModel
from retain.monitoring import DRIFT_PREDICTIONS

__all__ = ["SCORES_FILE", "AfterScoring", "ScoringJob"]

logger = logging.getLogger("retain.batch")


class AfterScoring(Protocol):
    """A step run inside the staging folder once the scores and manifest are written (the
    actions), published with them."""

    def write(
        self, folder: Path, manifest: Manifest, inputs: ScoredInputs, log: Callable[[str], None]
    ) -> object: ...


class ScoringJob:
    """One scoring run: the scores and the manifest (and ``after``'s files) in ``settings.out``."""

    def __init__(
        self,
        settings: BatchSettings,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
        after: AfterScoring | None = None,
    ) -> None:
        self.settings = settings
        self.log = log or logger.info
        self.warn = warn or logger.warning
        self.after = after

    def run(self) -> Manifest:
        settings = self.settings
        timer = StageTimer()
        as_of = to_cutoff(settings.as_of)
        check_replaceable(
            Path(settings.out),
            MANIFEST_FILE,
            "the scoring job",
            (settings.transactions, settings.events, settings.customers, settings.model),
        )
        inputs = self._check_inputs(timer)
        with timer.stage("load_model"):
            model, info = self._load_model()
        self.log(
            f"model {info.name} version {info.version} ({info.uri}), trained as of {info.trained_as_of}"
        )
        engine = self._engine()
        with atomic_directory(settings.out, settings.wait_lock) as staging:
            task = EngineTask(
                settings, model, as_of, staging / SCORES_FILE, timer, inputs, self.log,
                keep_inputs=self.after is not None,
            )  # fmt: skip
            run = engine.score(task)
            if run.customers_scored == 0:
                raise RetainInputError(
                    f"score: no customer has a purchase on or before {as_of:%Y-%m-%d} "
                    f"({run.totals.customers_without_purchase:,} customers in the input)"
                )
            manifest = self._manifest(engine.name, model, info, run, timer, staging)
            manifest.write(staging / MANIFEST_FILE)
            if self.after is not None:
                self.after.write(staging, manifest, run.scored_inputs, self.log)
        self._log_done(manifest)
        return manifest

    def _manifest(
        self,
        engine: str,
        model: RetentionModel,
        info: ModelInfo,
        run: EngineRun,
        timer: StageTimer,
        staging: Path,
    ) -> Manifest:
        drift = self._drift(model, run.totals)
        scores_hash, scores_bytes = file_digest(staging / SCORES_FILE)
        return Manifest(
            retain_version=package_versions().get("retain", "unknown"),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            engine=engine,
            as_of=f"{to_cutoff(self.settings.as_of):%Y-%m-%d}",
            horizon_days=model.horizon_days,
            model=info,
            inputs=run.inputs,
            customers_scored=run.customers_scored,
            customers_without_purchase=run.totals.customers_without_purchase,
            output={
                "scores": SCORES_FILE,
                "rows": run.customers_scored,
                "sha256": scores_hash,
                "bytes": scores_bytes,
                "transactions_after_as_of": run.totals.rows_after_as_of,
                **run.details,
            },
            durations_s=timer.summary(),
            drift=drift,
            packages=package_versions(),
        )

    def _log_done(self, manifest: Manifest) -> None:
        self.log(
            f"scored {manifest.customers_scored:,} customers as of {manifest.as_of} "
            f"in {manifest.durations_s['total']:.1f}s -> {self.settings.out}"
        )
        if manifest.customers_without_purchase:
            self.log(
                f"  not scored: {manifest.customers_without_purchase:,} customers of the input "
                f"with no purchase on or before {manifest.as_of}"
            )

    # -- stages -----------------------------------------------------------------------------------

    def _check_inputs(self, timer: StageTimer) -> dict[str, InputSummary]:
        """Every input exists; its content hash (before the model is loaded: a typo fails fast)."""
        paths = {
            "transactions": self.settings.transactions,
            "events": self.settings.events,
            "customers": self.settings.customers,
        }
        inputs: dict[str, InputSummary] = {}
        with timer.stage("hash_inputs"):
            for name, path in paths.items():
                if path is None:
                    continue
                if not path.exists():
                    raise RetainInputError(f"{name}: no file at {path}")
                digest, size = file_digest(path)
                inputs[name] = InputSummary(path=str(path), sha256=digest, bytes=size)
        return inputs

    def _load_model(self) -> tuple[RetentionModel, ModelInfo]:
        from retain.tracking import TrackingSettings, load_model, model_version

        uri = self.settings.model
        tracking = TrackingSettings()
        model = load_model(uri, tracking)
        registered = uri.startswith("models:/")
        name = (
            uri.removeprefix("models:/").split("@")[0].split("/")[0]
            if registered
            else Path(uri).name
        )
        info = ModelInfo(
            name=name,
            # A saved model has no registry version: its content hash identifies it.
            version=model_version(uri, tracking) if registered else _content_version(Path(uri)),
            uri=uri,
            trained_as_of=f"{model.as_of_:%Y-%m-%d}",
            horizon_days=model.horizon_days,
        )
        return model, info

    def _engine(self) -> Engine:
        if self.settings.engine == "spark":
            from retain.batch.spark import SparkEngine

            return SparkEngine()
        return LocalEngine()

    def _drift(self, model: RetentionModel, totals: ChunkResult) -> DriftReport:
        # Every model file carries its training profile (a part of the format, version 1).
        profile = model.drift_profile_
        threshold = self.settings.drift_threshold
        stability = profile.stability(totals.drift_counts)
        predictions = {k: v for k, v in stability.items() if k in DRIFT_PREDICTIONS}
        features = {k: v for k, v in stability.items() if k not in DRIFT_PREDICTIONS}
        drifted = [k for k, v in stability.items() if v > threshold]
        for column in drifted:
            message = (
                f"drift: {column} has moved from the training population "
                f"(PSI {stability[column]:.3f} > {threshold:g})"
            )
            self.warn(message)
        return DriftReport(
            reference=f"customers at the model's as_of, {model.as_of_:%Y-%m-%d}",
            threshold=threshold,
            features=features,
            predictions=predictions,
            drifted=drifted,
        )


def _content_version(path: Path) -> str:
    """A saved model's version: the hash of its file, or of a model folder's manifest (which
    holds the hash of every part)."""
    target = path / MANIFEST_FILE if path.is_dir() else path
    return f"sha256:{file_digest(target)[0][:16]}"
