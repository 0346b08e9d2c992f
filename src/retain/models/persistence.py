"""Model folders: a fitted RetentionModel as JSON and LightGBM text, with a hashed manifest.

A model folder holds

- ``manifest.json``: the format name and version, the retain version that wrote it, and the
  SHA-256 and size of every other part;
- ``settings.json``: the RetentionModel's parameters;
- ``model.json``: what training decided (plan, cutoffs, choices, validation, levels);
- ``features.json``: the feature builder's settings and the model's feature list;
- ``btyd.json``: the BG/NBD and Gamma-Gamma parameters; ``segments.json``: the RFM score edges;
  ``drift.json``: the reference population's bins and counts;
- ``estimators.json``: the LightGBM estimators' parameters and fitted numbers (the churn
  calibration's thresholds among them), and ``boosters/<name>.txt``: each booster in LightGBM's
  own text format (absent in a BTYD-only fallback).

Nothing here unpickles or evaluates: JSON is parsed into plain values (numbers, strings, lists,
dicts, and tagged arrays, numpy scalars and timestamps), then set on objects of the classes this
module lists. :func:`load_model` checks every part's size and hash against the manifest before it
parses any of them.

What the hash protects against: corruption and partial copies (a truncated upload, a flipped bit,
a part from another model). Not an attacker who can write the folder: they can rewrite the
manifest too. A model folder is trusted configuration, like the code that reads it; keep it where
only the people who deploy models can write.

Which attributes each class saves is listed here (:data:`_LAYOUTS`), next to the format version:
saving an object with an attribute the list does not name is an error, so a new fitted attribute
cannot be silently left out of model files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import fields
from importlib import metadata
from pathlib import Path
from typing import Any, Final, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from retain.errors import ModelFileError, NotFittedError
from retain.features.builder import FeatureBuilder
from retain.features.segments import RFMSegmenter
from retain.models.btyd.bgnbd import BetaGeoModel
from retain.models.btyd.gamma_gamma import GammaGammaModel
from retain.models.choice import OutputChoice
from retain.models.churn import ChurnModel
from retain.models.timing import TimingModel
from retain.models.training import TrainingPlan
from retain.models.value import PurchasesModel, SpendModel
from retain.monitoring.drift import DriftProfile

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "load_model",
    "model_from_parts",
    "model_to_parts",
    "save_model",
]

FORMAT: Final = "retain-model"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
# Limits checked before anything is read: a manifest is a few kilobytes, a booster a few MB.
MAX_MANIFEST_BYTES: Final = 1 << 20
MAX_PART_BYTES: Final = 1 << 30

_BOOSTERS: Final = ("churn", "timing", "spend", "purchases")
_PART_NAME: Final = re.compile(r"^(boosters/)?[a-z_]+\.(json|txt)$")
_ARRAY_DTYPES: Final = frozenset({"float64", "float32", "int64", "int32", "bool"})

# -- what each class saves ------------------------------------------------------------------------

_LGBM: Final = (
    "n_estimators",
    "learning_rate",
    "num_leaves",
    "early_stopping_rounds",
    "params",
    "random_state",
    "n_jobs",
    "feature_names_",
    "n_features_in_",
    "best_iteration_",
    "validation_",
)
# Class -> attributes written as plain values (boosters and the calibrator are parts of their own).
_LAYOUTS: Final[dict[type, tuple[str, ...]]] = {
    FeatureBuilder: ("engine", "windows", "trend_days"),
    RFMSegmenter: ("recency_edges_", "frequency_edges_", "monetary_edges_"),
    BetaGeoModel: (
        "penalizer_coef",
        "time_unit",
        "params_",
        "log_likelihood_",
        "n_customers_",
        "time_unit_",
        "converged_",
    ),
    GammaGammaModel: (
        "penalizer_coef",
        "params_",
        "log_likelihood_",
        "n_customers_",
        "n_one_time_",
        "time_unit_",
        "converged_",
    ),
    ChurnModel: (*_LGBM, "offset_", "churn_rate_"),
    TimingModel: (
        *_LGBM,
        "horizon_days",
        "bin_days",
        "max_rows",
        "bin_edges_",
        "n_bins_",
        "offset_",
        "subsample_rate_",
        "n_rows_",
    ),
    SpendModel: (*_LGBM, "balance", "tweedie_variance_power", "n_clipped_", "scale_"),
    PurchasesModel: (*_LGBM, "balance", "scale_"),
}
_ESTIMATORS: Final = {
    cls.__name__: cls for cls in (ChurnModel, TimingModel, SpendModel, PurchasesModel)
}
_OBJECTS: Final = ("churn_", "timing_", "spend_", "purchases_", "btyd_", "builder_", "segmenter_")
_SETTINGS: Final = (
    "horizon_days",
    "n_cutoffs",
    "step_days",
    "min_history_days",
    "same_season",
    "windows",
    "customer_features",
    "penalizer_coef",
    "choose_outputs",
    "calibrate_churn",
    "max_training_customers",
    "timing_max_rows",
    "training_float32",
    "random_state",
    "n_jobs",
)
_DECISIONS: Final = (
    "as_of_",
    "cutoffs_",
    "training_horizon_",
    "fallback_",
    "training_rows_",
    "training_sample_",
    "feature_names_",
    "booster_settings_",
    "settings_scores_",
    "validation_",
    "levels_",
    "reference_cutoff_",
)


# -- plain values <-> JSON ------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    """A value as JSON-able data; arrays, numpy scalars, tuples and timestamps are tagged."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.generic):
        return {"$scalar": value.item(), "dtype": value.dtype.name}
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.name not in _ARRAY_DTYPES:
            raise TypeError(f"an array of {value.dtype} cannot be written into a model file")
        return {"$array": value.tolist(), "dtype": value.dtype.name, "shape": list(value.shape)}
    if isinstance(value, pd.Timestamp):
        tz = None if value.tz is None else str(value.tz)
        wall = value if value.tz is None else value.tz_localize(None)
        return {"$timestamp": wall.isoformat(), "unit": value.unit, "tz": tz}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) and not k.startswith("$") for k in value):
            raise TypeError(f"dict keys must be text not starting with '$': {list(value)[:5]}")
        return {k: _encode(v) for k, v in value.items()}
    raise TypeError(f"a {type(value).__name__} cannot be written into a model file")


def _decode(data: Any) -> Any:
    """The inverse of :func:`_encode` (only plain values are made: no class is looked up)."""
    if isinstance(data, list):
        return [_decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$scalar" in data:
        return np.dtype(_dtype(data["dtype"])).type(data["$scalar"])
    if "$array" in data:
        shape = tuple(int(n) for n in data["shape"])
        return np.asarray(data["$array"], dtype=_dtype(data["dtype"])).reshape(shape)
    if "$timestamp" in data:
        stamp = pd.Timestamp(str(data["$timestamp"])).as_unit(_unit(data["unit"]))
        return stamp if data["tz"] is None else stamp.tz_localize(str(data["tz"]))
    if "$tuple" in data:
        return tuple(_decode(v) for v in data["$tuple"])
    return {k: _decode(v) for k, v in data.items()}


_Unit = Literal["s", "ms", "us", "ns"]
_UNITS: Final[dict[object, _Unit]] = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}


def _unit(name: object) -> _Unit:
    if name not in _UNITS:
        raise ValueError(f"unknown timestamp unit {name!r}")
    return _UNITS[name]


def _dtype(name: object) -> str:
    if name not in _ARRAY_DTYPES:
        raise ValueError(f"unknown dtype {name!r}")
    return str(name)


def _json(value: Any) -> bytes:
    # NaN and infinities are written as Python's json writes them (NaN, Infinity): floats must
    # come back bit for bit, and repr-based JSON floats do.
    return json.dumps(_encode(value), indent=1, allow_nan=True).encode("utf-8")


# -- objects <-> plain values ---------------------------------------------------------------------


def _attributes(obj: object) -> dict[str, Any]:
    """The attributes of ``obj`` its layout names; an attribute it does not name is an error."""
    layout = _LAYOUTS[type(obj)]
    present = {k for k in vars(obj) if not k.startswith("_")}
    unlisted = present - set(layout) - {"booster_", "calibrator_"}
    if unlisted:
        raise TypeError(
            f"{type(obj).__name__} has attributes the model format does not list: "
            f"{sorted(unlisted)} (add them to retain.models.persistence._LAYOUTS and bump "
            "FORMAT_VERSION)"
        )
    return {name: getattr(obj, name) for name in layout if hasattr(obj, name)}


def _restore(cls: type[Any], attributes: Mapping[str, Any]) -> Any:
    """An object of ``cls`` with ``attributes`` set, as unpickling would (``__init__`` not run)."""
    unknown = set(attributes) - set(_LAYOUTS[cls])
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown attributes {sorted(unknown)}")
    obj = object.__new__(cls)
    obj.__dict__.update(attributes)
    return obj


def _estimator_state(estimator: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"class": type(estimator).__name__, **_attributes(estimator)}
    calibrator = getattr(estimator, "calibrator_", None)
    if isinstance(estimator, ChurnModel):
        # scikit-learn's own state of the isotonic fit (parameters and thresholds); its
        # __setstate__ rebuilds the interpolation from the thresholds, as unpickling does.
        state["calibrator_"] = None if calibrator is None else calibrator.__getstate__()
    return state


def _estimator(state: Mapping[str, Any], booster: str) -> Any:
    state = dict(state)
    cls = _ESTIMATORS[str(state.pop("class"))]
    calibration = state.pop("calibrator_", "absent")
    estimator = _restore(cls, state)
    estimator.booster_ = lgb.Booster(model_str=booster)
    if calibration != "absent":
        calibrator = None
        if calibration is not None:
            calibrator = IsotonicRegression.__new__(IsotonicRegression)
            calibrator.__setstate__(dict(calibration))
        estimator.calibrator_ = calibrator
    return estimator


def _btyd_state(btyd: Any) -> dict[str, Any]:
    return {
        "horizon_days": btyd.horizon_days,
        "penalizer_coef": btyd.penalizer_coef,
        "transactions": {
            "class": type(btyd.transactions_).__name__,
            **_attributes(btyd.transactions_),
        },
        "spend": _attributes(btyd.spend_),
    }


def _btyd(state: Mapping[str, Any]) -> Any:
    from retain.models.retention import BTYDFeatures

    transactions = dict(state["transactions"])
    if transactions.pop("class") != BetaGeoModel.__name__:
        raise ValueError("btyd: only a BG/NBD transactions model is supported")
    btyd = BTYDFeatures(int(state["horizon_days"]), float(state["penalizer_coef"]))
    btyd.transactions_ = _restore(BetaGeoModel, transactions)
    btyd.spend_ = _restore(GammaGammaModel, state["spend"])
    return btyd


# -- the model <-> parts --------------------------------------------------------------------------


def model_to_parts(model: Any) -> dict[str, bytes]:
    """The model folder's files, name -> bytes, the manifest included (what :func:`save_model`
    writes; a Spark job broadcasts it as it is)."""
    if not hasattr(model, "choices_"):
        raise NotFittedError("the RetentionModel is not fitted: call fit first")
    _check_complete(model)
    parts: dict[str, bytes] = {
        "settings.json": _json({name: getattr(model, name) for name in _SETTINGS}),
        "model.json": _json(
            {
                **{name: getattr(model, name) for name in _DECISIONS},
                "plan_": {f.name: getattr(model.plan_, f.name) for f in fields(TrainingPlan)},
                "choices_": {
                    output: {f.name: getattr(choice, f.name) for f in fields(OutputChoice)}
                    for output, choice in model.choices_.items()
                },
            }
        ),
        "features.json": _json({"builder": _attributes(model.builder_)}),
        "btyd.json": _json(_btyd_state(model.btyd_)),
        "segments.json": _json(_attributes(model.segmenter_)),
        "drift.json": _json(model.drift_profile_.model_dump()),
    }
    estimators = {}
    for name in _BOOSTERS:
        estimator = getattr(model, f"{name}_")
        if estimator is not None:
            estimators[name] = _estimator_state(estimator)
            parts[f"boosters/{name}.txt"] = estimator.booster_.model_to_string().encode("utf-8")
    parts["estimators.json"] = _json(estimators)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "retain_version": _version(),
        "parts": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            for name, data in sorted(parts.items())
        },
    }
    parts[MANIFEST] = json.dumps(manifest, indent=1).encode("utf-8")
    return parts


def _check_complete(model: Any) -> None:
    known = {*_SETTINGS, *_DECISIONS, *_OBJECTS, "plan_", "choices_", "drift_profile_"}
    unlisted = {k for k in vars(model) if not k.startswith("_")} - known
    if unlisted:
        raise TypeError(
            f"RetentionModel has attributes the model format does not list: {sorted(unlisted)}"
        )


def model_from_parts(parts: Mapping[str, bytes], source: str) -> Any:
    """The model from its folder's files (checked against the manifest first); ``source`` names
    the folder in errors."""
    manifest = _manifest(parts.get(MANIFEST), source)
    _check_parts(manifest, parts, source)
    return _assemble(parts, source)


def _assemble(parts: Mapping[str, bytes], source: str) -> Any:
    from retain.models.retention import RetentionModel

    def part(name: str) -> Any:
        try:
            return _decode(json.loads(parts[name]))
        except (ValueError, TypeError, KeyError) as error:
            raise ModelFileError(
                f"model folder {source}: part {name} cannot be read ({error})"
            ) from error

    settings, decisions = part("settings.json"), part("model.json")
    try:
        model = RetentionModel(**settings)
        model.__dict__.update({k: v for k, v in decisions.items() if k in _DECISIONS})
        model.__dict__.setdefault("training_sample_", None)  # folders written before sampling
        model.plan_ = TrainingPlan(**decisions["plan_"])
        model.choices_ = {o: OutputChoice(**c) for o, c in decisions["choices_"].items()}
        model.builder_ = _restore(FeatureBuilder, part("features.json")["builder"])
        model.btyd_ = _btyd(part("btyd.json"))
        model.segmenter_ = _restore(RFMSegmenter, part("segments.json"))
        model.drift_profile_ = DriftProfile.model_validate(part("drift.json"))
        estimators = part("estimators.json")
        for name in _BOOSTERS:
            booster = parts.get(f"boosters/{name}.txt")
            state = estimators.get(name)
            if state is None or booster is None:
                if (state is None) != (booster is None):
                    raise ValueError(f"the {name} estimator and boosters/{name}.txt come apart")
                setattr(model, f"{name}_", None)
                continue
            value = _estimator(state, booster.decode("utf-8"))
            setattr(model, f"{name}_", value)
    except ModelFileError:
        raise
    except (ValueError, TypeError, KeyError, lgb.basic.LightGBMError) as error:
        raise ModelFileError(f"model folder {source} is not a retain model ({error})") from error
    return model


def _manifest(data: bytes | None, source: str) -> dict[str, Any]:
    if data is None:
        raise ModelFileError(f"model folder {source}: no {MANIFEST}; not a retain model folder")
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise ModelFileError(f"model folder {source}: {MANIFEST} is not JSON ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"model folder {source}: {MANIFEST} is not a {FORMAT} manifest")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"model folder {source} has format version {version!r}, written by retain "
            f"{manifest.get('retain_version', '?')}; this retain reads versions up to "
            f"{FORMAT_VERSION}: upgrade retain"
        )
    listed = manifest.get("parts")
    if not isinstance(listed, dict) or not all(
        isinstance(k, str) and _PART_NAME.match(k) for k in listed
    ):
        raise ModelFileError(f"model folder {source}: {MANIFEST} lists no valid parts")
    return manifest


def _check_parts(manifest: Mapping[str, Any], parts: Mapping[str, bytes], source: str) -> None:
    """Every listed part is there, no other, each with its size and SHA-256 (nothing parsed)."""
    listed: dict[str, Any] = manifest["parts"]
    extra = sorted(set(parts) - set(listed) - {MANIFEST})
    if extra:
        raise ModelFileError(f"model folder {source}: parts not in {MANIFEST}: {extra}")
    for name, entry in listed.items():
        if name not in parts:
            raise ModelFileError(f"model folder {source}: part {name} is missing")
        data = parts[name]
        if len(data) != entry.get("bytes") or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            raise ModelFileError(
                f"model folder {source}: part {name} does not match its hash in {MANIFEST} "
                "(corrupt or partly copied); copy the whole folder again or re-export the model"
            )


# -- folders --------------------------------------------------------------------------------------


def save_model(model: Any, path: str | Path) -> Path:
    """Write the model folder at ``path`` (replacing a model folder there) and return it.

    The parts are written to a sibling folder first and renamed into place, so a reader never
    sees a half-written model.
    """
    path = Path(path)
    parts = model_to_parts(model)
    replaceable = path.is_dir() and ((path / MANIFEST).exists() or not any(path.iterdir()))
    if path.exists() and not replaceable:
        raise ModelFileError(
            f"cannot save the model at {path}: it exists and is not a model folder"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        for name, data in parts.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        if path.exists():
            shutil.rmtree(path)
        staging.rename(path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return path


def load_model(path: str | Path) -> Any:
    """The RetentionModel in the model folder at ``path``: sizes and hashes checked first."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no saved model at {path}")
    if path.is_file():
        raise ModelFileError(_not_a_folder(path))
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelFileError(f"model folder {path}: no {MANIFEST}; not a retain model folder")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ModelFileError(
            f"model folder {path}: {MANIFEST} is over {MAX_MANIFEST_BYTES:,} bytes"
        )
    manifest = _manifest(manifest_path.read_bytes(), str(path))
    parts = {MANIFEST: manifest_path.read_bytes()}
    for name, entry in manifest["parts"].items():
        file = path / name
        if not file.is_file():
            raise ModelFileError(f"model folder {path}: part {name} is missing")
        size = file.stat().st_size
        if size != entry.get("bytes") or size > MAX_PART_BYTES:
            raise ModelFileError(
                f"model folder {path}: part {name} has {size:,} bytes, {MANIFEST} says "
                f"{entry.get('bytes')!r} (corrupt or partly copied)"
            )
        parts[name] = file.read_bytes()
    _check_parts(manifest, parts, str(path))
    return _assemble(parts, str(path))


def _not_a_folder(path: Path) -> str:
    with path.open("rb") as file:
        head = file.read(2)
    what = "an old pickled model (retain 0.1)" if head[:1] == b"\x80" else "a file"
    return (
        f"{path} is {what}, not a model folder. retain no longer loads pickles: loading one can "
        "run any code in it. Retrain and save a folder (`retain train ... --out DIR`), or, if you "
        "trust the file (it runs whatever it holds), convert it once from a retain checkout: "
        "`python tools/convert_pickled_model.py OLD.pkl NEW_FOLDER`"
    )


def _version() -> str:
    try:
        return metadata.version("retain")
    except metadata.PackageNotFoundError:
        return "unknown"
