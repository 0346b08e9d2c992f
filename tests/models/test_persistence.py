"""Model folders: exact round trips, every part hashed, and nothing unpickled on any load path."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.synthetic import simulate
from retain.errors import ModelFileError, NotFittedError
from retain.models.persistence import MANIFEST, model_from_parts, model_to_parts
from retain.models.retention import RetentionModel

AS_OF = "2024-06-30"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return simulate(1_500, seed=5).transactions


@pytest.fixture(scope="module")
def model(data: pd.DataFrame) -> RetentionModel:
    return RetentionModel(60, n_cutoffs=2, n_jobs=1, calibrate_churn=True).fit(data, AS_OF)


@pytest.fixture(scope="module")
def folder(model: RetentionModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model.save(tmp_path_factory.mktemp("saved") / "model")


def _same_state(a: object, b: object, path: str = "model") -> None:
    """Every attribute of ``a`` is in ``b`` with an equal value (boosters by their text)."""
    if hasattr(a, "model_to_string"):  # a LightGBM booster
        assert a.model_to_string() == b.model_to_string(), path  # type: ignore[attr-defined]
        return
    if isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b, err_msg=path)
        assert a.dtype == b.dtype, path  # type: ignore[attr-defined]
        return
    if isinstance(a, dict):
        assert list(a) == list(b), path  # type: ignore[arg-type]
        for key in a:
            _same_state(a[key], b[key], f"{path}[{key!r}]")  # type: ignore[index]
        return
    if isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), path  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            _same_state(x, y, f"{path}[{i}]")
        return
    state = getattr(a, "__dict__", None)
    if state is not None and not isinstance(a, pd.Timestamp):
        assert type(a) is type(b), path
        public = {k: v for k, v in state.items() if not k.startswith("_") and k != "f_"}
        for key, value in public.items():
            _same_state(value, getattr(b, key), f"{path}.{key}")
        return
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    assert a == b or (a != a and b != b), f"{path}: {a!r} != {b!r}"


def test_a_saved_folder_loads_to_the_same_model_and_scores(
    model: RetentionModel, folder: Path, data: pd.DataFrame
) -> None:
    loaded = RetentionModel.load(folder)
    _same_state(model, loaded)
    pd.testing.assert_frame_equal(
        loaded.predict(data, AS_OF), model.predict(data, AS_OF), check_exact=True
    )
    assert loaded.churn_.calibrator_ is not None  # the calibration travels too


def test_the_folder_holds_json_and_lightgbm_text_only(folder: Path) -> None:
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert names == [
        "boosters/churn.txt",
        "boosters/purchases.txt",
        "boosters/spend.txt",
        "boosters/timing.txt",
        "btyd.json",
        "drift.json",
        "estimators.json",
        "features.json",
        MANIFEST,
        "model.json",
        "segments.json",
        "settings.json",
    ]
    for name in names:
        text = (folder / name).read_text(encoding="utf-8")
        if name.endswith(".json"):
            json.loads(text)
        else:
            assert text.startswith("tree\n")  # LightGBM's model text
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == "retain-model" and manifest["format_version"] == 1
    assert sorted(manifest["parts"]) == sorted(set(names) - {MANIFEST})


PARTS = [
    "boosters/churn.txt",
    "boosters/timing.txt",
    "boosters/spend.txt",
    "boosters/purchases.txt",
    "btyd.json",
    "drift.json",
    "estimators.json",
    "features.json",
    "model.json",
    "segments.json",
    "settings.json",
]


@pytest.mark.parametrize("part", PARTS)
def test_a_flipped_byte_in_any_part_is_refused_with_the_part_named(
    model: RetentionModel, tmp_path: Path, part: str
) -> None:
    folder = model.save(tmp_path / "model")
    raw = bytearray((folder / part).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (folder / part).write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=f"part {part} does not match its hash"):
        RetentionModel.load(folder)


def test_missing_truncated_and_foreign_parts_are_refused(
    model: RetentionModel, tmp_path: Path
) -> None:
    folder = model.save(tmp_path / "model")
    (folder / "btyd.json").unlink()
    with pytest.raises(ModelFileError, match=r"part btyd\.json is missing"):
        RetentionModel.load(folder)
    folder = model.save(tmp_path / "model")  # a model folder is replaced whole
    text = (folder / "boosters" / "timing.txt").read_bytes()
    (folder / "boosters" / "timing.txt").write_bytes(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match=r"part boosters/timing.txt has .* bytes"):
        RetentionModel.load(folder)
    parts = model_to_parts(model)
    with pytest.raises(ModelFileError, match=r"parts not in manifest.json: \['notes.json'\]"):
        model_from_parts({**parts, "notes.json": b"{}"}, "memory")
    with pytest.raises(ModelFileError, match=r"no manifest\.json"):
        RetentionModel.load(tmp_path)


def test_a_newer_format_is_refused_with_upgrade_advice(model: RetentionModel) -> None:
    parts = model_to_parts(model)
    manifest = json.loads(parts[MANIFEST])
    manifest["format_version"] = 99
    with pytest.raises(ModelFileError, match=r"format version 99.*upgrade retain"):
        model_from_parts({**parts, MANIFEST: json.dumps(manifest).encode()}, "memory")


def test_parts_round_trip_in_memory(model: RetentionModel, data: pd.DataFrame) -> None:
    # What the Spark job broadcasts: bytes in, the same model out.
    loaded = model_from_parts(model_to_parts(model), "memory")
    _same_state(model, loaded)
    assert model_to_parts(loaded) == model_to_parts(model)  # saving is deterministic


def test_a_btyd_only_fallback_round_trips(data: pd.DataFrame, tmp_path: Path) -> None:
    # Forty days of history: no labelled cutoff fits, so BTYD alone predicts.
    as_of = f"{data['timestamp'].min() + pd.Timedelta(days=40):%Y-%m-%d}"
    early = data.loc[data["timestamp"] < pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fallback = RetentionModel(90, n_jobs=1).fit(early, as_of)
    assert fallback.fallback_ is not None and fallback.churn_ is None
    loaded = RetentionModel.load(fallback.save(tmp_path / "fallback"))
    assert not (tmp_path / "fallback" / "boosters").exists()
    pd.testing.assert_frame_equal(
        loaded.predict(early, as_of), fallback.predict(early, as_of), check_exact=True
    )


def test_an_attribute_the_format_does_not_list_fails_the_save(
    model: RetentionModel, tmp_path: Path
) -> None:
    copy = model_from_parts(model_to_parts(model), "memory")
    copy.spend_.new_thing_ = 1.0
    with pytest.raises(TypeError, match=r"SpendModel has attributes .*\['new_thing_'\]"):
        copy.save(tmp_path / "model")


def test_an_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        RetentionModel().save(tmp_path / "model")


def test_saving_over_a_folder_that_is_not_a_model_is_refused(
    model: RetentionModel, tmp_path: Path
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders.csv").write_text("keep me")
    with pytest.raises(ModelFileError, match="exists and is not a model folder"):
        model.save(tmp_path / "data")
    assert (tmp_path / "data" / "orders.csv").read_text() == "keep me"


class _Poison:
    """A pickle that creates a file when it is loaded: what a hostile model.pkl could do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def poisoned_pickle(folder: Path) -> tuple[Path, Path]:
    """A ``model.pkl`` that would create ``marker`` if unpickled (by any loader)."""
    marker = folder / "pwned"
    path = folder / "model.pkl"
    path.write_bytes(pickle.dumps(_Poison(marker)))
    return path, marker


def test_a_poisoned_pickle_runs_nothing_and_is_refused(tmp_path: Path) -> None:
    path, marker = poisoned_pickle(tmp_path)
    with pytest.raises(ModelFileError, match=r"old pickled model.*retain no longer loads pickles"):
        RetentionModel.load(path)
    assert not marker.exists()


def test_retain_score_refuses_a_poisoned_pickle(tmp_path: Path, data: pd.DataFrame) -> None:
    path, marker = poisoned_pickle(tmp_path)
    data.head(200).to_csv(tmp_path / "tx.csv", index=False)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("retain")),
            "score",
            "--transactions",
            str(tmp_path / "tx.csv"),
            "--as-of",
            AS_OF,
            "--model",
            str(path),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "not a model folder" in result.stderr + result.stdout
    assert not marker.exists()
