"""The nightly scoring job: scores, manifest and, unless turned off, the actions beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Field

from retain.batch.manifest import Manifest
from retain.batch.settings import BatchSettings, ScoringOptions
from retain.jobs.inputs import Inputs

__all__ = ["ScoreJob"]


class ScoreJob(ScoringOptions):
    """``retain score``: every customer of ``inputs`` scored as of ``as_of`` into ``out``
    (:class:`retain.batch.ScoringJob`), then their action plan, audiences and report into
    ``out/actions`` (:mod:`retain.jobs.actions`) from the frames the engine validated, all
    published together.

    >>> ScoreJob(inputs=Inputs(transactions=TableSource(path=...)), as_of=..., out=...).run()
    >>> ScoreJob.of(BatchSettings(transactions=..., as_of=..., out=...), budget=500).run()
    """

    inputs: Inputs
    actions: bool = True
    """After scoring, also write the action plan, the audiences and the HTML report into
    ``out/actions``, published with the scores."""
    budget: float | None = Field(default=None, ge=0)
    """Cap on the discounts' expected cost; default: the discount settings' budget (no cap)."""
    action_settings: Path | None = None
    """TOML or JSON file of the action plan's settings (and a ``[discounts]`` table)."""

    @classmethod
    def of(cls, settings: BatchSettings, **actions: Any) -> ScoreJob:
        """The job of a :class:`BatchSettings` (the files and how to score them), with the
        actions' options (``actions``, ``budget``, ``action_settings``)."""
        options = {name: getattr(settings, name) for name in ScoringOptions.model_fields}
        return cls(inputs=settings.inputs(), **options, **actions)

    def run(
        self,
        log: Callable[[str], None] | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> Manifest:
        """Score and publish; the manifest of the run."""
        from retain.batch.job import ScoringJob
        from retain.jobs.actions import ScoringActions

        after = None
        if self.actions:  # its settings are read now: a bad file fails before the scoring
            after = ScoringActions.prepare(self.out, self.budget, self.action_settings)
        settings = BatchSettings.of(self.inputs, self)
        return ScoringJob(settings, log=log, warn=warn, after=after).run()
