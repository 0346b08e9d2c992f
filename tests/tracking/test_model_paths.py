"""One model folder, three ways to write it and every way to load it: the same bytes, the same scores.

``retain train --out`` saves with :meth:`RetentionModel.save`, the registry logs the same folder as
the pyfunc's artefact, and ``retain export`` writes the registered model for a registry-less
service. Each is loaded by ``retain score --model`` (:func:`retain.tracking.load_model`), by the
service (:meth:`Scorer.load`, from its folder or a URI) and from the registry.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from tests.tracking.conftest import AS_OF, Tracked

from retain.data.datasets import Dataset
from retain.models.persistence import MANIFEST
from retain.serving.scoring import EXPORT_MODEL, Scorer, export_model
from retain.serving.settings import ServingSettings
from retain.tracking import load_model


def test_train_out_export_and_registry_load_everywhere_and_score_identically(
    tracked: Tracked,
    cdnow_sample: Dataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracked.settings.resolved_uri())
    champion = tracked.settings.champion_uri()
    saved = tracked.result.model.save(tmp_path / "out" / "model")  # what `retain train --out` does
    exported = export_model(champion, tmp_path / "export").parent  # what `retain export` does
    manifests = {
        (saved / MANIFEST).read_bytes(),
        (exported / EXPORT_MODEL / MANIFEST).read_bytes(),
    }
    assert len(manifests) == 1  # the same parts, byte for byte

    transactions = cdnow_sample.transactions.frame
    some = transactions[transactions["customer_id"].isin(transactions["customer_id"].unique()[:60])]
    expected = tracked.result.model.predict(some, AS_OF)
    loaded = {
        "score --model <train --out folder>": load_model(str(saved), tracked.settings),
        "score --model models:/ (registry)": load_model(champion, tracked.settings),
        "score --model <export folder>": load_model(str(exported / EXPORT_MODEL)),
        "service, exported folder": Scorer.load(ServingSettings(model_dir=exported)).model,
        "service, model URI": Scorer.load(
            ServingSettings(model_uri=champion, model_dir=tmp_path / "none")
        ).model,
        "service, train --out folder as URI": Scorer.load(
            ServingSettings(model_uri=str(saved), model_dir=tmp_path / "none")
        ).model,
    }
    for path, model in loaded.items():
        got = model.predict(some, AS_OF)
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=path)
