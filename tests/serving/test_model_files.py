"""The service and a hostile model file: a pickle placed as the service's model runs nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.models.test_persistence import poisoned_pickle
from tests.serving.conftest import running_server

from retain.errors import ModelFileError
from retain.serving.scoring import Scorer
from retain.serving.settings import ServingSettings


def test_a_poisoned_pickle_in_the_model_folder_is_refused_unrun(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    pickled, marker = poisoned_pickle(models)
    pickled.rename(models / "retain.pkl")  # where retain 0.1's export put its pickle
    with pytest.raises(ModelFileError, match="retain no longer loads pickles"):
        Scorer.load(ServingSettings(model_dir=models))
    assert not marker.exists()


@pytest.mark.slow
def test_the_real_service_with_a_poisoned_pickle_is_not_ready_and_runs_nothing(
    tmp_path: Path,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    pickled, marker = poisoned_pickle(models)
    pickled.rename(models / "retain.pkl")
    env = {"RETAIN_SERVE_MODEL_DIR": str(models)}
    with running_server(tmp_path / "server", env, wait_ready=False) as server:
        with server.client() as client:
            for _ in range(120):  # until the loader has given up
                if "not loaded" in server.output() or "pickle" in server.output():
                    break
                time.sleep(0.5)
            assert client.get("/readyz").status_code == 503
        log = server.output()
    assert "retain no longer loads pickles" in log, log
    assert not marker.exists()
