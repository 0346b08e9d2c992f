"""The jobs: train, score, actions, evaluate and demo, each a frozen settings object with a
``run()``, all built from one :class:`Inputs` (the files, their mappings and how to validate them,
each file loaded once).

The command line, the notebooks and the batch engines are thin adapters over these. The names are
imported on first use (PEP 562), so that :mod:`retain.batch` can build on :mod:`retain.jobs.inputs`
while :class:`ScoreJob` builds on :mod:`retain.batch`, with no import cycle.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retain.jobs.actions import ActionRun, publish_actions, write_actions
    from retain.jobs.audiences import ActionsJob
    from retain.jobs.demo import DemoJob
    from retain.jobs.evaluate import EvaluateJob
    from retain.jobs.inputs import Inputs, TableSource
    from retain.jobs.score import ScoreJob
    from retain.jobs.train import TrainJob

__all__ = [
    "ActionRun",
    "ActionsJob",
    "DemoJob",
    "EvaluateJob",
    "Inputs",
    "ScoreJob",
    "TableSource",
    "TrainJob",
    "publish_actions",
    "write_actions",
]

_HOMES = {
    "ActionRun": "retain.jobs.actions",
    "ActionsJob": "retain.jobs.audiences",
    "DemoJob": "retain.jobs.demo",
    "EvaluateJob": "retain.jobs.evaluate",
    "Inputs": "retain.jobs.inputs",
    "ScoreJob": "retain.jobs.score",
    "TrainJob": "retain.jobs.train",
    "TableSource": "retain.jobs.inputs",
    "publish_actions": "retain.jobs.actions",
    "write_actions": "retain.jobs.actions",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'retain.jobs' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
