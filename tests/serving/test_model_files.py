"""The service and a hostile model file: a pickle placed as the service's model runs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.models.test_persistence import poisoned_pickle
from tests.serving.conftest import VERSION, Trained, running_server

from retain.errors import ModelFileError
from retain.serving.scoring import Scorer
from retain.serving.settings import ServingSettings

ROOT = Path(__file__).parents[2]


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


@pytest.mark.slow
def test_a_bento_carries_the_exported_model_folder_whole(trained: Trained, tmp_path: Path) -> None:
    """`bentoml build` of a project whose models/ holds an export: every part of the folder is
    in the Bento (a missing one would be refused at start-up, by name)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("bentofile.yaml", "requirements", "src"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, project / name)
    shutil.copytree(trained.model_dir, project / "models")
    built = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "build", "--output", "tag"],
        cwd=project,
        env={**os.environ, "BENTOML_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (bento,) = [
        p for p in (tmp_path / "home" / "bentos" / "retain").iterdir() if p.name != "latest"
    ]
    packaged = bento / "src" / "models"
    expected = sorted(
        p.relative_to(trained.model_dir) for p in trained.model_dir.rglob("*") if p.is_file()
    )
    assert sorted(p.relative_to(packaged) for p in packaged.rglob("*") if p.is_file()) == expected
    assert Scorer.load(ServingSettings(model_dir=packaged)).version == VERSION
