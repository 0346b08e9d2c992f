"""The README's own-data examples, run as written on a native line-item export.

The README shows a shop's own export (Online Retail II's columns: Invoice, StockCode, Description,
Quantity, InvoiceDate, Price, Customer ID, Country; no amount column) going from ``retain validate``
to scores, and a notebook snippet loading the same file. Both are taken out of README.md and run
unchanged in a temporary folder that holds ``export.csv`` (a cut of Online Retail II: a few hundred
customers and some guest lines) and a ``.venv`` link to this interpreter's environment, so that
``.venv/bin/retain`` means what it means in the README. A README edit that breaks them fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retain.data.datasets import default_online_retail_path
from retain.errors import RetainInputError

README = Path(__file__).resolve().parents[1] / "README.md"
N_CUSTOMERS = 300
NATIVE_COLUMNS = [
    "Invoice",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "Price",
    "Customer ID",
    "Country",
]


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def readme_blocks(title: str, language: str) -> list[str]:
    """The fenced ``language`` code blocks of one README section, in order."""
    pattern = rf"^```{language}\n(.*?)^```$"
    return re.findall(pattern, readme_section(title), flags=re.MULTILINE | re.DOTALL)


def native_block() -> str:
    """The README's shell block that takes the native export from validation to scores."""
    blocks = [b for b in readme_blocks("Your own data", "bash") if "MAPPING=" in b]
    assert len(blocks) == 1, "the README's native-export example is gone from 'Your own data'"
    return blocks[0]


def notebook_block() -> str:
    section = readme_section("Your own data")
    after = section[section.index("In a notebook:") :]
    return re.findall(r"^```python\n(.*?)^```$", after, flags=re.MULTILINE | re.DOTALL)[0]


def clean_env() -> dict[str, str]:
    """This process's variables without MLflow's or retain's: the README's commands alone decide."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}


@dataclass(frozen=True)
class Expected:
    """What the cut holds, counted with pandas on the file's text, independently of retain."""

    rows: int
    usable: int  # rows with a customer id: the cut's only unusable rows are guest lines
    duplicates: int  # usable rows identical, in every column's text, to an earlier row
    customers: int
    revenue: float  # sum of Quantity x Price over the usable rows


def native_export(folder: Path) -> tuple[Path, Expected]:
    """``folder/export.csv``: every line of ``N_CUSTOMERS`` customers of Online Retail II and of
    20 guest invoices, in the shop's own columns (no Amount), as pandas writes CSV."""
    try:
        source = default_online_retail_path()
    except RetainInputError:
        if os.environ.get("CI"):
            raise
        pytest.skip("online_retail_ii.parquet is not beside this checkout")
    lines = pd.read_parquet(source, columns=NATIVE_COLUMNS)
    rng = np.random.default_rng(21)
    ids = np.sort(lines["Customer ID"].dropna().unique())
    chosen = rng.choice(ids, N_CUSTOMERS, replace=False)
    guests = lines.loc[lines["Customer ID"].isna(), "Invoice"].drop_duplicates()
    guest_invoices = rng.choice(guests.to_numpy(), 20, replace=False)
    cut = lines[lines["Customer ID"].isin(chosen) | lines["Invoice"].isin(guest_invoices)]
    path = folder / "export.csv"
    cut.to_csv(path, index=False)

    text = pd.read_csv(path, dtype=str, keep_default_na=False)
    usable = text["Customer ID"] != ""
    numbers = text.loc[usable, ["Quantity", "Price"]].astype(float)
    expected = Expected(
        rows=len(text),
        usable=int(usable.sum()),
        duplicates=int((text.duplicated() & usable).sum()),
        customers=int(text.loc[usable, "Customer ID"].nunique()),
        revenue=float((numbers["Quantity"] * numbers["Price"]).sum()),
    )
    assert expected.duplicates > 0 and expected.usable < expected.rows  # the cut shows both
    return path, expected


def link_venv(folder: Path) -> None:
    """``folder/.venv``: this interpreter's environment, where the README's commands find retain."""
    venv = Path(sys.executable).parent.parent
    if not (venv / "bin" / "retain").exists():
        pytest.skip(f"no retain command in {venv}/bin")
    (folder / ".venv").symlink_to(venv, target_is_directory=True)


@dataclass(frozen=True)
class ReadmeRun:
    folder: Path
    expected: Expected
    output: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> ReadmeRun:
    folder = tmp_path_factory.mktemp("readme")
    _, expected = native_export(folder)
    link_venv(folder)
    output = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", native_block()],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    return ReadmeRun(folder, expected, output)


def test_the_readme_native_export_runs_from_line_items_to_scores(readme_run: ReadmeRun) -> None:
    run, expected, folder = readme_run.output, readme_run.expected, readme_run.folder
    assert run.returncode == 0, f"README block failed:\n{run.stdout}\n{run.stderr}"
    # validate: the amount is computed, the guests are set aside, the duplicates are whole rows.
    assert "amount = quantity x price ('Quantity' x 'Price')" in run.stdout
    assert f"{expected.usable:,} usable" in run.stdout
    columns = ", ".join(NATIVE_COLUMNS)
    assert f"in all 8 columns ({columns}): {expected.duplicates:,} rows (kept" in run.stdout
    quarantine = pd.read_csv(folder / "bad_rows.csv")
    assert len(quarantine) == expected.rows - expected.usable
    # The columns the mapping reads, under the file's names; not the description or country
    # (--quarantine-all-columns would add them).
    read = [c for c in NATIVE_COLUMNS if c not in ("Description", "Country")]
    assert quarantine.columns.tolist() == ["source_row", *read, "reason"]
    assert set(quarantine["reason"]) == {"missing customer_id"}

    assert (folder / "out" / "features.parquet").exists()
    assert (folder / "model" / "model" / "manifest.json").exists()
    scores = pd.read_parquet(folder / "scores" / "scores.parquet")
    manifest = json.loads((folder / "scores" / "manifest.json").read_text())
    tx = manifest["inputs"]["transactions"]
    assert (tx["rows_read"], tx["rows_valid"]) == (expected.rows, expected.usable)
    assert tx["duplicate_rows"] == expected.duplicates
    assert 0 < len(scores) == manifest["customers_scored"] <= expected.customers
    assert scores["clv"].notna().all() and scores["churn_probability"].between(0, 1).all()


def test_the_readme_notebook_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, expected = native_export(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(notebook_block(), "README.md (In a notebook)", "exec"), namespace)
    loaded = namespace["loaded"]
    tx = namespace["tx"]
    assert isinstance(tx, pd.DataFrame) and len(tx) == expected.usable
    assert tx["amount"].sum() == pytest.approx(expected.revenue)
    assert loaded.report.duplicate_rows == expected.duplicates  # type: ignore[attr-defined]
    features = namespace["features"]
    assert isinstance(features, pd.DataFrame) and 0 < len(features) <= expected.customers


def test_spark_counts_the_readme_export_as_the_local_engine(readme_run: ReadmeRun) -> None:
    """The Spark engine validates each customer partition on its own: rows identical in every
    column share a customer, hence a partition, so the duplicates add up to the local count, and
    the amount is computed from price and quantity there too."""
    pytest.importorskip("pyspark")
    folder = readme_run.folder
    assert readme_run.output.returncode == 0, readme_run.output.stderr
    command = native_block().split("\n\n")[0]  # the MAPPING line
    command += (
        '\n.venv/bin/retain score --transactions export.csv --columns "$MAPPING" '
        "--timezone Europe/London --as-of 2011-09-30 --model model/model --out spark/ "
        "--engine spark --master 'local[1]' --partitions 3 --no-actions"
    )
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    local = json.loads((folder / "scores" / "manifest.json").read_text())
    spark = json.loads((folder / "spark" / "manifest.json").read_text())
    keys = ("rows_read", "rows_valid", "rows_rejected", "duplicate_rows", "refund_rows")
    ours, theirs = local["inputs"]["transactions"], spark["inputs"]["transactions"]
    assert {k: theirs[k] for k in keys} == {k: ours[k] for k in keys}
    assert theirs["duplicate_rows"] == readme_run.expected.duplicates
    assert spark["customers_scored"] == local["customers_scored"]
    local_scores = pd.read_parquet(folder / "scores" / "scores.parquet").sort_values("customer_id")
    spark_scores = pd.read_parquet(folder / "spark" / "scores.parquet").sort_values("customer_id")
    np.testing.assert_allclose(spark_scores["clv"], local_scores["clv"], rtol=0, atol=1e-9)
