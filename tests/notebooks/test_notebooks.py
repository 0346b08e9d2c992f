"""The notebooks run end to end in small mode, and are committed without outputs.

Each notebook is executed with nbclient on a kernel that runs this interpreter (the project's
venv), in a temporary working directory, with ``RETAIN_NOTEBOOK_SMALL=1`` (read by the notebook's
parameters cell) and ``TMPDIR`` inside the test's folder, so that the MLflow store the quickstart
creates with ``tempfile.mkdtemp`` is the test's and never the repository's.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
QUICKSTART = "01_quickstart.ipynb"
ONLINE_RETAIL = "02_online_retail.ipynb"
# Where the README says the Online Retail II file lives: shared/data beside the repository.
ONLINE_RETAIL_FILE = ROOT.parent / "shared" / "data" / "online_retail_ii.parquet"
CELL_TIMEOUT_S = 600
KERNEL = "retain-notebook-tests"

pytestmark = pytest.mark.slow


@pytest.fixture
def small_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kernel spec for this interpreter, the small-mode switch and a private TMPDIR; returns
    the working directory the notebook runs in.

    The kernel spec goes into a folder on ``JUPYTER_PATH``, which Jupyter searches before the
    user's and the system's kernels, so no other ``python3`` kernel can be picked up.
    """
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "retain (tests)",
                "language": "python",
            }
        ),
        encoding="utf-8",
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("RETAIN_NOTEBOOK_SMALL", "1")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setenv("TMPDIR", str(temporary))
    for variable in ("MLFLOW_TRACKING_URI", "RETAIN_TRACKING_URI"):
        monkeypatch.delenv(variable, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    return work


def execute(name: str, work: Path) -> nbformat.NotebookNode:
    """The notebook after running every cell in ``work`` (a failing cell fails the test)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(work)}},
    ).execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Everything the code cells printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images_in(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )


@pytest.mark.parametrize("name", [QUICKSTART, ONLINE_RETAIL])
def test_notebook_is_committed_clean(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    with_outputs = [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count]
    assert not with_outputs, f"{name}: code cells {with_outputs} have outputs or counts"
    parameters = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(parameters) == 1, f"{name}: expected one cell tagged 'parameters'"
    assert "RETAIN_NOTEBOOK_SMALL" in parameters[0].source
    assert notebook.metadata["kernelspec"]["name"] == "python3"


def test_quickstart_runs_in_small_mode(small_mode: Path, tmp_path: Path) -> None:
    notebook = execute(QUICKSTART, small_mode)
    text = text_of(notebook)

    assert "mode: small; CDNOW sample" in text
    assert "2,357 customers" in text
    # The classic models reproduce the published BG/NBD fit on the CDNOW sample.
    for parameter, value in {"r": "0.243", "alpha": "4.414", "a": "0.793", "b": "2.426"}.items():
        assert re.search(rf"BG/NBD\s+{parameter}\s+{value}\s+{value}", text), parameter

    # The comparison table: every contender, and AUCs that rank better than chance.
    assert re.search(r"^metric\s+retain\s+bgnbd\s+naive\s*$", text, re.MULTILINE)
    line = re.search(r"^churn_roc_auc\s+(\S+)\s+(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
    assert line is not None
    aucs = [float(value.rstrip("*")) for value in line.groups()]
    assert all(0.6 < auc < 1.0 for auc in aucs), aucs

    # The tracked run registered version 1 as the champion, in a store under the test's TMPDIR.
    champion = re.search(r"models:/retain@champion is version (\d+)", text)
    assert champion is not None and champion.group(1) == "1"
    store = re.search(r"MLflow store: sqlite:///(\S+)", text)
    assert store is not None
    database = Path(store.group(1))
    assert database.is_file()
    assert database.is_relative_to(tmp_path / "tmp")
    assert (database.parent / "mlruns").is_dir()
    assert not any(small_mode.iterdir()), "the notebook wrote into its working directory"
    assert "scored 2,357 customers as of 1998-06-30" in text

    # Matrices, tracking, calibration + gains, CLV deciles, feature importance.
    assert images_in(notebook) >= 5


def test_online_retail_runs_in_small_mode(
    small_mode: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = Path(os.environ.get("RETAIN_ONLINE_RETAIL") or ONLINE_RETAIL_FILE)
    if not data.is_file():
        pytest.skip(
            f"Online Retail II is not at {data} (shared/data beside the repository, or set "
            "RETAIN_ONLINE_RETAIL)"
        )
    monkeypatch.setenv("RETAIN_ONLINE_RETAIL", str(data))
    notebook = execute(ONLINE_RETAIL, small_mode)
    text = text_of(notebook)

    assert "mode: small" in text
    # The cleaning report: guests set aside and counted, cancellations kept.
    assert re.search(r"set aside: [\d,]+ rows with missing customer_id", text)
    assert "note: guest lines (no customer id)" in text
    assert "note: cancellation lines (invoice 'C...')" in text
    assert "800 customers," in text

    scored = re.search(r"scored ([\d,]+) customers as of (\S+)", text)
    assert scored is not None
    assert 0 < int(scored.group(1).replace(",", "")) <= 800
    assert scored.group(2) == "2011-12-09"
    # The riskiest valuable customers come with their reasons; CLV is broken down by segment.
    assert re.search(r"[\d,]+ valuable customers", text)
    assert re.search(r"no order for \d+ days|BG/NBD|orders every", text)
    for segment in ("Champions", "Loyal", "Lost"):
        assert segment in text
    assert "clv_share" in text
    assert images_in(notebook) >= 3
