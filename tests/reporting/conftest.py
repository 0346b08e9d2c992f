"""A scoring output to build actions from, made once per session.

1,500 simulated customers, a RetentionModel (90-day horizon, two cutoffs, one thread) fitted and
scored as of 2024-06-30 (a month end: the CRR forecast of July needs no transactions) by the
scoring job without its actions step; beside it, the transactions file, a customers file with
e-mails (some missing, some invalid) and a randomised campaign's history over the scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.batch import BatchSettings, ScoringJob
from retain.data.synthetic import simulate
from retain.models.retention import RetentionModel

AS_OF = "2024-06-30"
N_CUSTOMERS = 1_500
LEVELS = (0.0, 0.05, 0.10, 0.20)
HISTORY_FEATURES = ("p_purchase_30d", "churn_probability", "p_alive", "clv")


@dataclass(frozen=True)
class Scored:
    """A `retain score` output and the files it was made from."""

    folder: Path
    transactions: Path
    customers: Path
    history: Path
    frame: pd.DataFrame

    @property
    def scores(self) -> pd.DataFrame:
        return pd.read_parquet(self.folder / "scores.parquet")


def emails(ids: pd.Series, rng: np.random.Generator) -> pd.Series:
    """Mixed-case Gmail addresses with dots, some blank and some invalid."""
    values = pd.Series([f"  First.Last{c}@GMail.com " for c in ids], dtype="object")
    values[rng.uniform(size=len(ids)) < 0.1] = None
    values[rng.uniform(size=len(ids)) < 0.05] = "not an address"
    return values


def campaign_history(scores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Each customer randomly sent a level or held out; a discount lifts the purchase rate of the
    customers unlikely to buy anyway."""
    n = len(scores)
    treatment = rng.choice(LEVELS, n)
    base = scores["p_purchase_30d"].to_numpy()
    p = np.clip(base + treatment * 1.5 * (1 - base), 0, 1)
    purchased = (rng.uniform(size=n) < p).astype(int)
    order_value = (scores["spend_total"] / scores["orders_total"]).clip(lower=0).to_numpy()
    history = scores[["customer_id", *HISTORY_FEATURES]].copy()
    history["treatment"] = treatment
    history["purchased"] = purchased
    history["revenue"] = purchased * order_value
    return history


@pytest.fixture(scope="session")
def scored_output(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    folder = tmp_path_factory.mktemp("scored")
    frame = simulate(N_CUSTOMERS, seed=11).transactions
    transactions = folder / "transactions.parquet"
    frame.to_parquet(transactions, index=False)
    model = RetentionModel(90, n_cutoffs=2, n_jobs=1).fit(frame, AS_OF)
    model_path = model.save(folder / "model")
    out = folder / "out"
    settings = BatchSettings(
        transactions=transactions,
        as_of=AS_OF,
        out=out,
        model=str(model_path),
        progress=False,
    )
    ScoringJob(settings, log=lambda _: None, warn=lambda _: None).run()
    rng = np.random.default_rng(11)
    ids = frame["customer_id"].drop_duplicates().reset_index(drop=True)
    customers = folder / "customers.csv"
    pd.DataFrame({"customer_id": ids, "email": emails(ids, rng)}).to_csv(customers, index=False)
    history = folder / "history.csv"
    campaign_history(pd.read_parquet(out / "scores.parquet"), rng).to_csv(history, index=False)
    return Scored(out, transactions, customers, history, frame)
