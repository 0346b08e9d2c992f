"""The RetentionModel as an MLflow pyfunc: what plain ``mlflow.pyfunc.load_model`` users get.

The model is the one the session's tracked training on the CDNOW sample registered (as of
1997-12-31, 90 days); these tests only read its store.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.pyfunc import PyFuncModel, PythonModel
from tests.tracking.conftest import AS_OF, Tracked

from retain.data.datasets import Dataset
from retain.data.validation import validate_transactions
from retain.errors import RetainInputError
from retain.models.retention import SCORE_COLUMNS, RetentionModel
from retain.tracking import load_model, signature, to_model_input, unwrap


@pytest.fixture(scope="module")
def transactions(cdnow_sample: Dataset) -> pd.DataFrame:
    return cdnow_sample.transactions.frame


@pytest.fixture
def champion(tracked: Tracked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PyFuncModel:
    """``models:/retain@champion`` loaded with plain MLflow, as a service or notebook would."""
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(tracked.settings.resolved_uri())
    return mlflow.pyfunc.load_model(tracked.settings.champion_uri())


def in_memory_scores(model: RetentionModel, tx: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
    """What the pyfunc must return: the model's scores with each customer's reasons joined."""
    scores = model.predict(tx, **kwargs)
    return scores.assign(reasons=scores["reasons"].map("; ".join))


def test_the_signature_takes_the_contracts_transactions_and_gives_the_scores() -> None:
    found = signature()
    inputs = {spec.name: (spec.type.name, spec.required) for spec in found.inputs.inputs}
    assert inputs == {
        "customer_id": ("string", True),
        "timestamp": ("string", True),
        "amount": ("double", True),
        "order_id": ("string", False),
        "product_id": ("string", False),
        "category": ("string", False),
        "quantity": ("double", False),
        "discount": ("double", False),
    }
    params = {p.name: (p.dtype.name, p.default) for p in found.params.params}
    assert params == {"as_of": ("string", ""), "n_reasons": ("long", 3)}
    assert found.outputs.input_names() == SCORE_COLUMNS
    # Null where no purchase is expected within the horizon (TimingModel.predict_days).
    optional = {spec.name for spec in found.outputs.inputs if not spec.required}
    assert optional == {"days_to_next_purchase", "expected_next_purchase_date"}


def test_the_logged_model_carries_the_signature_and_an_input_example(
    tracked: Tracked, tmp_path: Path
) -> None:
    mlflow.set_tracking_uri(tracked.settings.resolved_uri())
    info = mlflow.models.get_model_info(tracked.result.model_uri)
    assert info.signature == signature()
    folder = Path(
        mlflow.artifacts.download_artifacts(tracked.result.model_uri, dst_path=str(tmp_path))
    )
    saved = json.loads((folder / "input_example.json").read_text())
    assert saved["params"] == {"as_of": AS_OF}  # the example scores as of the training day
    example = pd.DataFrame(saved["inputs"]["data"], columns=saved["inputs"]["columns"])
    assert example.columns[:3].tolist() == ["customer_id", "timestamp", "amount"]
    assert example["customer_id"].nunique() == 3
    assert example["timestamp"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$").all()


def test_to_model_input_is_json_ready_and_validates_back_to_the_same_table(
    transactions: pd.DataFrame,
) -> None:
    extra = transactions.assign(note="not part of the contract")
    model_input = to_model_input(extra)
    assert model_input.columns.tolist() == ["customer_id", "timestamp", "amount", "quantity"]
    assert model_input["timestamp"].iloc[0] == "1997-01-01T00:00:00+0000"
    assert model_input["customer_id"].map(type).eq(str).all()
    assert model_input["amount"].dtype == "float64"
    back = validate_transactions(model_input).frame
    pd.testing.assert_frame_equal(back, transactions, check_index_type=False)


def test_the_loaded_champion_scores_raw_transactions_as_the_model_in_memory(
    tracked: Tracked, champion: PyFuncModel, transactions: pd.DataFrame
) -> None:
    scored = champion.predict(to_model_input(transactions), params={"as_of": AS_OF})
    expected = in_memory_scores(tracked.result.model, transactions, as_of=AS_OF)
    pd.testing.assert_frame_equal(scored, expected)
    assert scored.columns.tolist() == SCORE_COLUMNS
    assert len(scored) == 2_357  # every customer of the sample bought by 1997-12-31
    # Up to three reasons each by default (fewer when fewer features are reasons for them).
    assert scored["reasons"].str.count("; ").le(2).all()
    assert scored["reasons"].str.count("; ").eq(2).any()


def test_params_choose_the_day_and_the_number_of_reasons(
    tracked: Tracked, champion: PyFuncModel, transactions: pd.DataFrame
) -> None:
    model_input = to_model_input(transactions)
    one_reason = champion.predict(model_input, params={"as_of": AS_OF, "n_reasons": 1})
    assert not one_reason["reasons"].str.contains("; ").any()
    # Without as_of, the day of the last transaction given (the sample runs to 1998-06-30).
    assert transactions["timestamp"].max().strftime("%Y-%m-%d") == "1998-06-30"
    pd.testing.assert_frame_equal(
        champion.predict(model_input),
        in_memory_scores(tracked.result.model, transactions, as_of="1998-06-30"),
    )


def test_a_few_customers_get_the_same_scores_as_in_the_whole_batch(
    champion: PyFuncModel, transactions: pd.DataFrame
) -> None:
    """A service scores one history at a time: it must agree with the batch job."""
    ids = ["1", "2", "3", "1000"]
    few = champion.predict(
        to_model_input(transactions[transactions["customer_id"].isin(ids)]),
        params={"as_of": AS_OF},
    )
    batch = champion.predict(to_model_input(transactions), params={"as_of": AS_OF})
    pd.testing.assert_frame_equal(few, batch[batch["customer_id"].isin(ids)].reset_index(drop=True))


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda f: f.drop(columns="amount"), MlflowException, "Model is missing inputs ['amount']"),
        (
            lambda f: f.assign(amount="twelve"),
            MlflowException,
            "Incompatible input types for column amount",
        ),
        (
            lambda f: f.assign(timestamp="last tuesday"),
            RetainInputError,
            "column 'timestamp': 6,919 of 6,919 rows (100%) have unparseable timestamp",
        ),
        (lambda f: f.head(0), RetainInputError, "transactions: the table has no rows"),
    ],
    ids=["no amount", "text amount", "unparseable timestamps", "no rows"],
)
def test_bad_input_is_refused_with_a_clear_message(
    champion: PyFuncModel,
    transactions: pd.DataFrame,
    change: Any,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error) as caught:
        champion.predict(change(to_model_input(transactions)), params={"as_of": AS_OF})
    assert message in str(caught.value)


def test_bad_params_are_refused_with_a_clear_message(
    champion: PyFuncModel, transactions: pd.DataFrame
) -> None:
    model_input = to_model_input(transactions.head(50))
    with pytest.raises(RetainInputError, match="as-of date: cannot read 'someday'"):
        champion.predict(model_input, params={"as_of": "someday"})
    with pytest.raises(MlflowException, match="n_reasons"):
        champion.predict(model_input, params={"n_reasons": "many"})


def test_the_logged_model_is_code_and_a_model_folder_with_no_pickle(
    tracked: Tracked, tmp_path: Path
) -> None:
    """Models from code: MLflow stores model_code.py and loads it, instead of cloudpickling the
    pyfunc; the one artefact is the RetentionModel's folder of JSON and LightGBM text."""
    mlflow.set_tracking_uri(tracked.settings.resolved_uri())
    folder = Path(
        mlflow.artifacts.download_artifacts(tracked.result.model_uri, dst_path=str(tmp_path))
    )
    flavor = Model.load(folder).flavors["python_function"]
    assert flavor["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert Path(flavor["model_code_path"]).name == "model_code.py"
    assert "python_model" not in flavor  # the key of a cloudpickled PythonModel
    assert flavor["artifacts"]["retention_model"]["path"] == "artifacts/retention_model"
    source = Path(__file__).parents[2] / "src" / "retain" / "tracking" / "model_code.py"
    assert (folder / "model_code.py").read_text() == source.read_text()
    assert not [p for p in folder.rglob("*") if p.suffix in {".pkl", ".pickle", ".joblib"}]
    assert (folder / "artifacts" / "retention_model" / "manifest.json").is_file()
    assert isinstance(RetentionModel.load(folder / "artifacts" / "retention_model"), RetentionModel)


def test_retain_load_model_runs_no_code_logged_with_the_model(
    tracked: Tracked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """retain's loader (the service, ``retain score``) reads the model folder only: code planted
    in the logged model_code.py is not run by it, while MLflow's pyfunc loader does run it."""
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(tracked.settings.resolved_uri())
    stored = mlflow.get_logged_model(tracked.result.model_uri.removeprefix("models:/"))
    code = Path(stored.artifact_location.removeprefix("file://")) / "model_code.py"
    original = code.read_text()
    marker = tmp_path / "pwned"
    try:
        code.write_text(f"open({str(marker)!r}, 'w').close()\n" + original)
        assert isinstance(load_model(tracked.result.model_uri, tracked.settings), RetentionModel)
        assert not marker.exists()
        mlflow.pyfunc.load_model(tracked.result.model_uri)
        assert marker.exists()  # the planted code: what retain's loader did not run
    finally:
        code.write_text(original)


def test_retain_load_model_unwraps_the_registered_model(
    tracked: Tracked, transactions: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = load_model(settings=tracked.settings)  # models:/retain@champion
    assert isinstance(model, RetentionModel)
    some = transactions[transactions["customer_id"].isin(["5", "6"])]
    pd.testing.assert_frame_equal(
        model.predict(some, AS_OF), tracked.result.model.predict(some, AS_OF)
    )
    # A saved file loads without MLflow.
    saved = tracked.result.model.save(tmp_path / "model")
    assert isinstance(load_model(str(saved)), RetentionModel)


def test_loading_a_missing_alias_names_the_model_and_the_store(tracked: Tracked) -> None:
    uri = tracked.settings.resolved_uri()
    with pytest.raises(RetainInputError, match=f"cannot load model models:/retain@nope from {uri}"):
        load_model("models:/retain@nope", tracked.settings)


def test_unwrap_refuses_a_pyfunc_that_is_not_retains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Echo(PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input  # (no type hints: MLflow would read them as the model's schema)

    monkeypatch.chdir(tmp_path)
    mlflow.pyfunc.save_model(tmp_path / "echo", python_model=Echo(), pip_requirements=[])
    with pytest.raises(TypeError, match="not a retain model: Echo"):
        unwrap(mlflow.pyfunc.load_model(str(tmp_path / "echo")))


def test_the_logged_input_examples_hold_no_customer_of_the_training_data(
    tracked: Tracked, transactions: pd.DataFrame, tmp_path: Path
) -> None:
    """Finding 12: MLflow stores the input example beside the model, readable by whoever may load
    it; it must be made up, not three real customers' histories."""
    mlflow.set_tracking_uri(tracked.settings.resolved_uri())
    folder = Path(
        mlflow.artifacts.download_artifacts(tracked.result.model_uri, dst_path=str(tmp_path))
    )
    real_ids = set(transactions["customer_id"])
    real_amounts = set(transactions["amount"])
    saved = json.loads((folder / "input_example.json").read_text())
    example = pd.DataFrame(saved["inputs"]["data"], columns=saved["inputs"]["columns"])
    assert not real_ids & set(example["customer_id"])
    assert not real_amounts & set(example["amount"])
    serving = json.loads((folder / "serving_input_example.json").read_text())
    served = serving["dataframe_split"]
    served_ids = {row[served["columns"].index("customer_id")] for row in served["data"]}
    assert served_ids == set(example["customer_id"])
    assert not real_ids & served_ids
