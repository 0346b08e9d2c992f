"""``retain audiences`` as a job: the actions of an existing ``retain score`` output.

``retain score`` plans the actions itself, from the frames its engine validated
(:class:`~retain.jobs.actions.ScoringActions`). This job is for later: other settings or another
budget on the same scores, read back from their folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from retain.data.contract import CUSTOMERS, SCORES_FILE
from retain.data.io import load_table
from retain.data.validation import ValidationOptions
from retain.errors import RetainInputError
from retain.jobs.actions import ACTIONS_FOLDER, ActionRun, publish_actions
from retain.jobs.inputs import Inputs, TableSource

__all__ = ["ActionsJob"]


class ActionsJob(BaseModel):
    """The action plan, audiences, discounts, outreach and report of the scores in ``scores``,
    published atomically into ``out`` (default: ``scores/actions``).

    ``transactions`` (optional) give the KPIs, cohorts and CRR forecast; ``customers`` (optional,
    with an ``email`` column) a customer-match audience; ``campaign_history`` a measured discount
    response; ``settings`` the TOML/JSON action settings.

    >>> ActionsJob(scores=Path("scores"), budget=500).run(print)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scores: Path
    budget: float
    transactions: TableSource | None = None
    customers: TableSource | None = None
    validation: ValidationOptions = Field(default_factory=ValidationOptions)
    campaign_history: Path | None = None
    settings: Path | None = None
    out: Path | None = None
    period: Literal["M", "Q", "Y"] = "M"
    active_window_days: int = 365

    def run(self, log: Callable[[str], None] | None = None) -> ActionRun:
        """Check the arguments, read the scores and the optional files, then plan and publish."""
        from retain.jobs.action_settings import (
            load_action_settings,
            load_report_settings,
            read_campaign_history,
            read_scores,
        )

        say = log or (lambda _: None)
        if not self.budget >= 0:  # NaN too
            raise RetainInputError(f"--budget must be a number >= 0, not {self.budget}")
        table, manifest = read_scores(self.scores)
        action_settings, discount_settings = load_action_settings(self.settings)
        transactions, customers = self._frames(say)
        history = (
            None if self.campaign_history is None else read_campaign_history(self.campaign_history)
        )
        return publish_actions(
            self.out if self.out is not None else self.scores / ACTIONS_FOLDER,
            table,
            manifest,
            inputs=(
                self.scores / SCORES_FILE,
                *(s.path if s else None for s in (self.transactions, self.customers)),
                self.campaign_history,
                self.settings,
            ),
            budget=self.budget,
            transactions=transactions,
            customers=customers,
            campaign_history=history,
            action_settings=action_settings,
            discount_settings=discount_settings,
            period=self.period,
            active_window_days=self.active_window_days,
            report_settings=load_report_settings(self.settings),
            log=say,
        )

    def _frames(
        self, say: Callable[[str], None]
    ) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        """The validated transactions and customers, when given (each validated once)."""
        transactions = customers = None
        if self.transactions is not None:
            inputs = Inputs(transactions=self.transactions, validation=self.validation)
            transactions = inputs.frames(say)[0]
        if self.customers is not None:
            loaded = load_table(
                self.customers.path, CUSTOMERS, self.customers.mapping, self.validation
            )
            for line in loaded.report.lines():
                say(line)
            if "email" not in loaded.frame:
                raise RetainInputError(
                    f"customers: {self.customers.path} has no email column (map it with "
                    '--customers-columns email="E-mail")'
                )
            customers = loaded.frame
        return transactions, customers
