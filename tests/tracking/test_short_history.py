"""A tracked training never fails for lack of a holdout: on a short history the holdout is
shortened or skipped, the run says why (tag ``holdout``, param ``holdout_horizon_days``), and the
model is still trained and registered.

The histories are the first weeks of the CDNOW sample (every customer's first purchase is in the
first quarter of 1997, so its first weeks are a young store's export).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from tests.tracking.conftest import small_model, sqlite_settings

from retain.data.datasets import Dataset
from retain.features import to_cutoff
from retain.models.training import up_to
from retain.tracking import train_tracked
from retain.tracking.training import HoldoutPlan, plan_holdout

TEN_WEEKS = "1997-03-12"  # 70 days after the first transaction
NINE_WEEKS = "1997-03-05"  # 63 days
HORIZON = 44


@pytest.fixture(scope="module")
def transactions(cdnow_sample: Dataset) -> pd.DataFrame:
    return cdnow_sample.transactions.frame


def history(transactions: pd.DataFrame, as_of: str) -> pd.DataFrame:
    return up_to(transactions, to_cutoff(as_of))


@pytest.mark.parametrize(
    ("as_of", "horizon", "status", "cutoff", "days"),
    [
        ("1997-12-31", 90, "full", "1997-10-02", 90),
        # exactly 56 days before the whole horizon's cutoff
        ("1997-04-11", 44, "full", "1997-02-26", 44),
        ("1997-04-10", 44, "shortened", "1997-02-26", 43),
        (TEN_WEEKS, HORIZON, "shortened", "1997-02-26", 14),
        (NINE_WEEKS, HORIZON, "skipped", None, None),
    ],
)
def test_the_holdout_keeps_8_weeks_of_history_and_2_weeks_to_judge(
    transactions: pd.DataFrame,
    as_of: str,
    horizon: int,
    status: str,
    cutoff: str | None,
    days: int | None,
) -> None:
    plan = plan_holdout(history(transactions, as_of), as_of, horizon)
    assert (plan.status, plan.horizon_days) == (status, days)
    assert plan.cutoff == (None if cutoff is None else pd.Timestamp(cutoff))
    if status == "full":
        assert plan.reason is None and plan.tag == "full"
    else:
        assert plan.tag == f"{status}: {plan.reason}"
        assert f"hold no {horizon}-day holdout after the 56 days of history" in plan.tag


def test_the_reasons_say_how_much_there_is(transactions: pd.DataFrame) -> None:
    shortened = plan_holdout(history(transactions, TEN_WEEKS), TEN_WEEKS, HORIZON)
    assert shortened.tag == (
        "shortened: 70 days of history hold no 44-day holdout after the 56 days of history its "
        "model needs; 14 days judged, not comparable with a 44-day holdout"
    )
    skipped = plan_holdout(history(transactions, NINE_WEEKS), NINE_WEEKS, HORIZON)
    assert skipped == HoldoutPlan(
        "skipped",
        None,
        None,
        "63 days of history hold no 44-day holdout after the 56 days of history its model needs, "
        "nor one of 14 days (7 left after them)",
    )


def test_short_histories_train_and_register_and_say_what_became_of_the_holdout(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ten weeks, 44-day horizon: trained and registered as the first version (the champion),
    its holdout shortened to 14 days or skipped. Then nine weeks, no holdout at all: registered,
    and the challenger, since a champion exists."""
    monkeypatch.chdir(tmp_path)
    settings = sqlite_settings(tmp_path)
    said: list[str] = []
    first = train_tracked(
        transactions,
        TEN_WEEKS,
        HORIZON,
        settings=settings,
        model_factory=small_model,
        progress=said.append,
    )
    store = MlflowClient(settings.resolved_uri())
    run = store.get_run(first.run_id)
    assert run.info.status == "FINISHED"
    tag = run.data.tags["holdout"]
    assert tag.startswith(("shortened: ", "skipped: ")), tag
    assert first.holdout.tag == tag
    if tag.startswith("shortened"):
        assert first.evaluation is not None
        assert run.data.params["holdout_horizon_days"] == "14"
        assert "churn_roc_auc/retain" in run.data.metrics
        assert (
            "holdout: fitting up to 1997-02-26, judging the 14 days after it (shortened: "
            in said[0]
        )
    else:
        assert first.evaluation is None
        assert run.data.params["holdout_horizon_days"] == "none"
        assert not any("/" in key and key.split("/")[0] != "validation" for key in run.data.metrics)
        assert any(line.startswith("holdout skipped: ") for line in said)
    assert first.registration is not None
    assert (first.registration.version, first.registration.champion) == ("1", True)
    assert first.registration.reason.startswith("the first version of the model")
    # The final model trained on the ten weeks (a shorter training horizon), and says so.
    params = run.data.params
    assert int(params["plan_training_horizon_days"]) < HORIZON
    assert params["plan_cutoffs"] != "none"
    assert int(params["training_rows"]) > 0
    assert params["choice_churn_probability"] in {"lgbm", "btyd", "blend"}

    second = train_tracked(
        transactions, NINE_WEEKS, HORIZON, settings=settings, model_factory=small_model
    )
    tags = store.get_run(second.run_id).data.tags
    assert tags["holdout"].startswith("skipped: 63 days of history hold no 44-day holdout")
    assert second.evaluation is None
    assert second.registration is not None
    assert (second.registration.version, second.registration.champion) == ("2", False)
    assert second.registration.reason.startswith(
        "no holdout metrics to compare with version 1 (holdout skipped: "
    )
    assert tags["champion"] == "False"
    aliases = store.get_registered_model("retain").aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"champion": "1", "challenger": "2"}


def test_a_history_too_short_for_a_labelled_cutoff_falls_back_and_is_tagged(
    transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five weeks: no holdout, no labelled cutoff; BTYD alone, with one warning, the reason as
    the run's ``fallback`` tag, and still a registered version."""
    monkeypatch.chdir(tmp_path)
    settings = sqlite_settings(tmp_path)
    with pytest.warns(RuntimeWarning, match="no labelled cutoff") as caught:
        result = train_tracked(
            transactions, "1997-02-05", HORIZON, settings=settings, model_factory=small_model
        )
    fallbacks = [w for w in caught if "BG/NBD + Gamma-Gamma's alone" in str(w.message)]
    assert len(fallbacks) == 1
    run = MlflowClient(settings.resolved_uri()).get_run(result.run_id)
    assert run.data.tags["holdout"].startswith("skipped: 35 days of history")
    assert run.data.tags["fallback"] == result.model.fallback_
    assert run.data.tags["fallback"].startswith("no labelled cutoff: 35 days of history")
    params = run.data.params
    assert (params["plan_cutoffs"], params["training_rows"], params["reference_cutoff"]) == (
        "none",
        "0",
        "none",
    )
    assert {params[f"choice_{o}"] for o in result.model.choices_} == {"btyd"}
    assert not any(key.startswith("validation/") for key in run.data.metrics)
    assert result.registration is not None and result.registration.champion


def test_the_holdout_models_warnings_say_they_are_the_holdouts(
    transactions: pd.DataFrame,
) -> None:
    """A holdout model that falls back to BTYD warns as the final model would, prefixed
    ``holdout:`` so the two are told apart on the console."""
    from retain.models.retention import RetentionModel
    from retain.tracking.training import _holdout

    data = history(transactions, TEN_WEEKS)
    plan = plan_holdout(data, TEN_WEEKS, HORIZON)
    assert plan.status == "shortened"

    def factory(horizon_days: int) -> RetentionModel:  # 60 days asked, 56 held: no cutoff
        return RetentionModel(horizon_days, min_history_days=60, n_jobs=1)

    with pytest.warns(RuntimeWarning) as caught:
        evaluation = _holdout(data, plan, factory)
    messages = [str(w.message) for w in caught if "Gamma-Gamma's alone" in str(w.message)]
    assert len(messages) == 1
    assert messages[0].startswith("holdout: training: no labelled cutoff")
    assert evaluation.latest.horizon_days == 14
    assert evaluation.latest.as_of == pd.Timestamp("1997-02-26")
