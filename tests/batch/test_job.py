"""ScoringJob with the local engine, in this process: what it writes, what the manifest says, and
that chunking, re-running and bad rows change nothing they should not."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from tests.batch.conftest import AS_OF, N_CUSTOMERS, Fitted, Run, copy_output, score

from retain.actions import ACTIONS, recommend_actions
from retain.batch import Manifest
from retain.batch.schema import HISTORY_COLUMNS, SCORES_SCHEMA
from retain.data.contract import TRANSACTIONS
from retain.data.io import load_table
from retain.data.synthetic import simulate
from retain.features.builder import to_cutoff
from retain.monitoring import DRIFT_FEATURES, DRIFT_PREDICTIONS

CHUNK = 700
END_OF_AS_OF = pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def by_customer(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.sort_values("customer_id", ignore_index=True)


def comparable(manifest: Manifest) -> dict[str, object]:
    """A manifest without what legitimately differs between two runs of the same inputs."""
    return manifest.model_dump(exclude={"created_at", "durations_s"})


@pytest.fixture(scope="module")
def chunked(tmp_path_factory: pytest.TempPathFactory, fitted: Fitted) -> Run:
    """The same inputs as ``scored``, CHUNK customers at a time."""
    return score(fitted, tmp_path_factory.mktemp("chunked") / "out", chunk_customers=CHUNK)


# -- the output -------------------------------------------------------------------------------------


def test_one_row_per_customer_with_a_purchase_by_as_of(scored: Run, fitted: Fitted) -> None:
    tx = fitted.transactions
    buyers = tx.loc[(tx["timestamp"] < END_OF_AS_OF) & (tx["amount"] >= 0), "customer_id"]
    scores = scored.scores
    assert scores["customer_id"].is_unique
    assert set(scores["customer_id"]) == set(buyers)
    assert len(scores) == scored.manifest.customers_scored == N_CUSTOMERS
    assert scored.manifest.customers_without_purchase == 0


def test_the_scores_file_has_exactly_the_output_schema(scored: Run) -> None:
    schema = pq.read_schema(scored.out / "scores.parquet").remove_metadata()
    assert schema.equals(SCORES_SCHEMA), schema
    assert "action" in schema.names
    # A customer with no purchase expected within the horizon has nulls there (not NaN, not a
    # date decades away): the same customers in both columns.
    table = pq.read_table(scored.out / "scores.parquet")
    days = table.column("days_to_next_purchase")
    dates = table.column("expected_next_purchase_date")
    assert 0 < days.null_count < len(table)
    assert days.is_null().equals(dates.is_null())
    assert not pc.any(pc.is_nan(days)).as_py()
    assert pc.max(days).as_py() <= scored.manifest.horizon_days
    assert sorted(p.name for p in scored.out.iterdir()) == [
        "actions",
        "manifest.json",
        "scores.parquet",
    ]


def test_the_scores_are_complete_and_in_range(scored: Run) -> None:
    scores = scored.scores
    for column in ("churn_probability", "p_alive", "p_purchase_30d"):
        assert scores[column].notna().all(), column
        assert scores[column].between(0, 1).all(), column
    for column in ("expected_purchases", "clv"):
        assert scores[column].notna().all(), column
        assert (scores[column] >= 0).all(), column
    assert set(scores["action"]) <= set(ACTIONS)
    # Days and date: both null (no purchase expected within the horizon) or both set, within it.
    days, dates = scores["days_to_next_purchase"], scores["expected_next_purchase_date"]
    assert days.isna().eq(dates.isna()).all()
    assert days.dropna().between(0, scored.manifest.horizon_days).all()
    assert scores["reasons"].map(len).between(0, 3).all()  # none when no feature is a reason
    assert scores["reasons"].map(len).gt(0).mean() > 0.5


# -- the manifest -----------------------------------------------------------------------------------


def test_the_manifest_file_is_what_the_job_returned(scored: Run) -> None:
    text = (scored.out / "manifest.json").read_text(encoding="utf-8")
    assert Manifest.model_validate_json(text) == scored.manifest
    assert json.loads(text)["output"]["scores"] == "scores.parquet"


def test_the_manifest_traces_the_inputs(scored: Run, fitted: Fitted) -> None:
    manifest = scored.manifest
    assert manifest.engine == "local"
    assert manifest.as_of == AS_OF
    assert list(manifest.inputs) == ["transactions"]
    summary = manifest.inputs["transactions"]
    assert summary.path == str(fitted.path)
    assert summary.sha256 == sha256(fitted.path)
    assert summary.bytes == fitted.path.stat().st_size
    assert summary.rows_read == pq.read_metadata(fitted.path).num_rows == len(fitted.transactions)
    assert summary.rows_valid == summary.rows_read
    assert summary.rows_rejected == {}
    after = int((fitted.transactions["timestamp"] >= END_OF_AS_OF).sum())
    assert after > 0
    assert manifest.output["transactions_after_as_of"] == after


def test_the_manifest_identifies_the_model_folder_by_its_content(
    scored: Run, fitted: Fitted
) -> None:
    model = scored.manifest.model
    # The folder's manifest holds the hash of every part: its own hash identifies the model.
    assert model.version == f"sha256:{sha256(fitted.model_path / 'manifest.json')[:16]}"
    assert model.name == "model"
    assert model.uri == str(fitted.model_path)
    assert model.trained_as_of == AS_OF
    assert model.horizon_days == scored.manifest.horizon_days == 90
    assert any(model.version in line for line in scored.log)


def test_the_manifest_describes_the_output(scored: Run) -> None:
    output = scored.manifest.output
    path = scored.out / "scores.parquet"
    assert output["sha256"] == sha256(path)
    assert output["bytes"] == path.stat().st_size
    assert output["rows"] == pq.read_metadata(path).num_rows == scored.manifest.customers_scored
    assert output["chunks"] == 1


def test_the_manifest_times_every_stage(scored: Run) -> None:
    durations = scored.manifest.durations_s
    stages = {"hash_inputs", "load_model", "read", "validate", "score", "write"}
    assert stages | {"total"} <= set(durations)
    assert all(v >= 0 for v in durations.values())
    # Writing happens inside scoring and is taken out of it: no second is counted twice.
    assert sum(v for k, v in durations.items() if k != "total") <= durations["total"] + 0.01
    assert durations["score"] > 0


# -- drift ------------------------------------------------------------------------------------------


def test_the_training_population_has_not_drifted(scored: Run, fitted: Fitted) -> None:
    drift = scored.manifest.drift
    assert drift is not None
    assert set(drift.features) == set(DRIFT_FEATURES) & set(fitted.model.drift_profile_.edges)
    assert {"frequency", "recency", "T", "monetary_value"} <= set(drift.features)
    assert set(drift.predictions) == set(DRIFT_PREDICTIONS)
    # The very customers the profile was made from, as of the same day: the same counts.
    assert all(v == 0 for v in [*drift.features.values(), *drift.predictions.values()]), drift
    assert drift.drifted == []
    assert drift.threshold == 0.25
    assert scored.warnings == []


def test_a_population_of_heavier_buyers_is_reported_as_drifted(
    fitted: Fitted, tmp_path: Path
) -> None:
    heavy = tmp_path / "heavy.parquet"
    simulate(1_000, alpha=8.0, gamma=60.0, seed=3).transactions.to_parquet(heavy, index=False)
    run = score(fitted, tmp_path / "out", transactions=heavy, n_reasons=0)
    drift = run.manifest.drift
    assert drift is not None
    stability = drift.features | drift.predictions
    assert {"frequency", "spend_365d", "expected_purchases", "clv"} <= set(drift.drifted)
    assert drift.drifted == [k for k, v in stability.items() if v > drift.threshold]
    assert all(math.isfinite(v) and v >= 0 for v in stability.values())
    for column in drift.drifted:
        assert any(w.startswith(f"drift: {column} has moved") for w in run.warnings), column
    assert len(run.warnings) == len(drift.drifted)
    assert run.scores["reasons"].map(len).eq(0).all()  # n_reasons=0


# -- chunks, determinism ----------------------------------------------------------------------------


def test_chunks_do_not_change_the_scores(scored: Run, chunked: Run) -> None:
    assert chunked.manifest.output["chunks"] == math.ceil(N_CUSTOMERS / CHUNK) == 5
    whole, parts = by_customer(scored.scores), by_customer(chunked.scores)
    floats = [c for c in whole if whole[c].dtype == "float64"]
    others = [*floats, "reasons"]
    pd.testing.assert_frame_equal(whole.drop(columns=others), parts.drop(columns=others))
    np.testing.assert_allclose(whole[floats], parts[floats], rtol=1e-12, atol=1e-12)
    assert whole["reasons"].map(list).tolist() == parts["reasons"].map(list).tolist()


def test_chunks_add_up_to_the_whole_run(scored: Run, chunked: Run) -> None:
    """Drift counts and input counts are summed over chunks: the same manifest as in one go."""
    exclude = {"created_at", "durations_s", "output"}
    assert chunked.manifest.model_dump(exclude=exclude) == scored.manifest.model_dump(
        exclude=exclude
    )


def test_a_few_customers_in_chunks_of_one_score_as_in_the_whole_base(
    scored: Run, fitted: Fitted, tmp_path: Path
) -> None:
    """25 chunks for 25 customers: hashing leaves some chunks empty, which write no rows. Every
    feature is per customer, so a customer's scores do not depend on who else is scored."""
    tx = fitted.transactions
    few = sorted(tx["customer_id"].unique())[:25]
    path = tmp_path / "few.parquet"
    tx.loc[tx["customer_id"].isin(few)].to_parquet(path, index=False)
    run = score(fitted, tmp_path / "out", transactions=path, chunk_customers=1)
    assert run.manifest.output["chunks"] == 25
    whole = by_customer(scored.scores)
    expected = whole.loc[whole["customer_id"].isin(few)].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        by_customer(run.scores).drop(columns="reasons"), expected.drop(columns="reasons")
    )
    reasons = by_customer(run.scores)["reasons"].map(list).tolist()
    assert reasons == expected["reasons"].map(list).tolist()


def test_without_a_progress_bar_each_chunk_is_a_log_line(chunked: Run) -> None:
    lines = [line for line in chunked.log if line.startswith("scoring: ")]
    assert [line.split(",")[0] for line in lines] == [f"scoring: {i}/5 done" for i in range(1, 6)]
    assert lines[-1].endswith(f"{N_CUSTOMERS:,} customers scored")
    assert "scoring 3,000 customers in 5 chunk(s)" in chunked.log


def test_the_scores_are_the_models_predictions(scored: Run, fitted: Fitted) -> None:
    validated = load_table(fitted.path, TRANSACTIONS).frame
    expected = by_customer(fitted.model.predict(validated, AS_OF))
    actual = by_customer(scored.scores)
    assert actual["customer_id"].tolist() == expected["customer_id"].tolist()
    for column in (
        "churn_probability",
        "p_alive",
        "expected_purchases",
        "p_purchase_30d",
        "days_to_next_purchase",
        "clv",
    ):
        np.testing.assert_allclose(actual[column], expected[column], rtol=1e-9, err_msg=column)
    assert actual["segment"].tolist() == expected["segment"].tolist()
    assert actual["reasons"].map(list).tolist() == expected["reasons"].map(list).tolist()
    dates = [
        None if pd.isna(stamp) else stamp.date()
        for stamp in expected["expected_next_purchase_date"]
    ]
    assert actual["expected_next_purchase_date"].tolist() == dates
    # The action reads the customer's history too: the feature table's, beside the predictions.
    history = fitted.model.features(validated, to_cutoff(AS_OF))[["customer_id", *HISTORY_COLUMNS]]
    with_history = expected.merge(history.astype({"customer_id": "str"}), on="customer_id")
    assert actual["action"].tolist() == recommend_actions(with_history).tolist()


def test_a_rerun_gives_the_same_bytes(scored: Run, fitted: Fitted, tmp_path: Path) -> None:
    """Over a copy of the earlier output (which it replaces): the same file, the same manifest."""
    out = copy_output(scored, tmp_path / "out")
    (out / "scores.parquet").write_bytes(b"stale")
    again = score(fitted, out)
    assert (out / "scores.parquet").read_bytes() == (scored.out / "scores.parquet").read_bytes()
    assert comparable(again.manifest) == comparable(scored.manifest)
    assert again.manifest.created_at >= scored.manifest.created_at


# -- bad rows ---------------------------------------------------------------------------------------


def test_rejected_rows_are_counted_by_reason_and_the_rest_is_scored(
    fitted: Fitted, tmp_path: Path
) -> None:
    """A CSV export with a few unusable rows among thousands, and two customers who only buy
    after as_of: rows set aside are counted by reason, late customers counted, not scored."""
    raw = fitted.transactions.copy()
    text = raw.astype({"amount": "object", "customer_id": "object"})
    text["timestamp"] = raw["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = np.random.default_rng(5).choice(len(raw), size=10, replace=False)
    text.loc[rows[:4], "amount"] = "12,50"  # a decimal comma
    text.loc[rows[4:7], "customer_id"] = "  "
    text.loc[rows[7:], "timestamp"] = "sometime"
    late = pd.DataFrame(
        {"customer_id": ["LATE1", "LATE2"], "timestamp": ["2024-08-01 10:00:00"] * 2}
    ).assign(amount=[20.0, 30.0])
    path = tmp_path / "export.csv"
    pd.concat([text, late], ignore_index=True).to_csv(path, index=False)
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is a fine destination

    run = score(fitted, out, transactions=path)

    summary = run.manifest.inputs["transactions"]
    assert summary.rows_read == len(raw) + 2
    assert summary.rows_rejected == {
        "missing customer_id": 3,
        "unparseable timestamp": 3,
        "non-numeric amount": 4,
    }
    assert summary.rows_valid == summary.rows_read - 10
    assert "transactions: 15,310 rows read, 15,300 usable, 10 set aside; 3,002 customers" in run.log
    scores = run.scores
    assert not {"LATE1", "LATE2"} & set(scores["customer_id"])
    assert run.manifest.customers_without_purchase == 2
    assert (
        f"  not scored: 2 customers of the input with no purchase on or before {AS_OF}" in run.log
    )
    assert run.manifest.customers_scored == len(scores)
    # Customers who lost a row are still scored from their other rows.
    damaged = set(raw.loc[rows[:4], "customer_id"]) | set(raw.loc[rows[7:], "customer_id"])
    assert damaged <= set(scores["customer_id"])
