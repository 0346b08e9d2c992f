"""Proof that a code change leaves the scores alone: the same data, trained and scored by two
revisions of retain, give the same scores to 1e-12.

What it proves
--------------
For each revision (``--before``, a git revision; ``--after``, a git revision or ``worktree``, the
files as they are now, uncommitted changes included), a fresh interpreter with that revision's
``src`` first on ``sys.path`` (the same ``.venv``) trains and scores two data sets:

- ``cdnow``: the model ``retain demo`` trains, without MLflow: CDNOW master
  (``retain.data.datasets.load_cdnow``), as of its last day (1998-06-30), a 181-day horizon and the
  demo's settings (``RetentionModel(181, n_cutoffs=4, random_state=0, penalizer_coef=0.001)``),
  scored as of the same day (``predict``, three reasons, as the demo's scoring job);
- ``orii``: UCI Online Retail II (``load_online_retail``: invoice lines, guests set aside, UK time
  to UTC), trained and scored as of 2011-06-09 with a 90-day horizon and the other settings at
  their defaults (``random_state=0``).

Each revision saves the fitted model with ``RetentionModel.save`` and scores with the model
``RetentionModel.load`` reads back, so the comparison covers the model file format (a pickle
before issue 16, a folder of JSON and LightGBM text after). It also scores with the model still
in memory, and checks that the reloaded model scores the same (the save/load round trip).

Then, for each data set: the same customer ids and columns; numeric columns within 1e-12
(absolute; NaN where the other has NaN), dates and text (segments, reasons) equal. It prints the
largest absolute difference per column and exits 1 on any difference, 0 when all are equal.

Determinism: LightGBM is trained with ``deterministic``, ``force_row_wise`` and a fixed thread
count (``n_jobs``, 2 here on both sides); the BLAS, OpenMP and Numba thread counts and
``PYTHONHASHSEED`` are fixed too. ``--before R --after R`` (one revision twice) must print equal:
for 0607c66 every column's largest difference was exactly 0, in both data sets.

Only the public API both revisions share is used: the two loaders, ``RetentionModel(...)``,
``fit(transactions, as_of)``, ``save``, ``load`` and ``predict(transactions, as_of)``.

How to run
----------
``.venv/bin/python benchmarks/scores_identical.py --before 0607c66`` (after: the working tree).
About 8 minutes per revision on the 2-core machine beside other busy processes (CDNOW: fit
340-400 s; Online Retail II: fit 90 s), so 15-20 minutes in all. The revisions run one after the
other, each in a ``git worktree`` in a temporary folder, removed at the end. ``--workdir DIR``
keeps the scores and models: ``DIR/<before|after>/<data set>[-in-memory].parquet``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = ["Difference", "compare_scores", "main"]

ROOT: Final = Path(__file__).resolve().parent.parent
TOLERANCE: Final = 1e-12
N_JOBS: Final = 2
DATASETS: Final = ("cdnow", "orii")
ORII_AS_OF: Final = "2011-06-09"
ORII_HORIZON_DAYS: Final = 90
DEMO_HORIZON_DAYS: Final = 181  # `retain demo`'s --horizon-days default
# Every library's thread count fixed, so a sum is added up in the same order on both sides.
THREAD_ENV: Final = {
    "OMP_NUM_THREADS": str(N_JOBS),
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": str(N_JOBS),
    "PYTHONHASHSEED": "0",
}


# -- the child: one revision trains and scores -----------------------------------------------------


def _child(out: Path, orii: Path) -> None:
    """Runs inside the revision's interpreter: trains, saves, reloads and scores both data sets,
    writing ``<data set>.parquet`` (reloaded model) and ``<data set>-in-memory.parquet``."""
    import retain
    from retain.data.datasets import load_cdnow, load_online_retail
    from retain.models.retention import RetentionModel

    print(f"  retain from {Path(retain.__file__).parent}", flush=True)
    for name in DATASETS:
        started = time.perf_counter()
        if name == "cdnow":
            tx = load_cdnow("master").transactions.frame
            as_of = tx["timestamp"].max().strftime("%Y-%m-%d")
            model = RetentionModel(
                DEMO_HORIZON_DAYS,
                n_cutoffs=4,
                step_days=None,
                min_history_days=None,
                random_state=0,
                penalizer_coef=0.001,
                n_jobs=N_JOBS,
            )
        else:
            tx = load_online_retail(orii).transactions.frame
            as_of = ORII_AS_OF
            model = RetentionModel(ORII_HORIZON_DAYS, random_state=0, n_jobs=N_JOBS)
        fingerprint = int(pd.util.hash_pandas_object(tx, index=False).sum() % 10**12)
        model.fit(tx, as_of)
        fitted = time.perf_counter() - started
        model.predict(tx, as_of).to_parquet(out / f"{name}-in-memory.parquet", index=False)
        saved = model.save(out / f"{name}-model") or out / f"{name}-model"
        reloaded = RetentionModel.load(saved)
        reloaded.predict(tx, as_of).to_parquet(out / f"{name}.parquet", index=False)
        print(
            f"  {name}: {len(tx):,} transactions (hash {fingerprint}), as of {as_of}; "
            f"fit {fitted:.0f} s, in all {time.perf_counter() - started:.0f} s",
            flush=True,
        )


# -- the comparison -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """One column's comparison: ``max_abs`` for numbers, ``mismatches`` (rows) for the rest."""

    column: str
    kind: str
    dtypes: str
    max_abs: float | None
    mismatches: int

    @property
    def equal(self) -> bool:
        within = self.max_abs is None or self.max_abs <= TOLERANCE
        return within and self.mismatches == 0


def _canonical(value: Any) -> str:
    """A cell as comparable text: lists (the reasons) as JSON, missing values as one token."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list):
        return json.dumps(value, default=str)
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "<missing>"
    return str(value)


def _compare_column(column: str, a: pd.Series, b: pd.Series) -> Difference:
    dtypes = str(a.dtype) if a.dtype == b.dtype else f"{a.dtype} / {b.dtype}"
    if pd.api.types.is_datetime64_any_dtype(a) or pd.api.types.is_datetime64_any_dtype(b):
        left, right = pd.to_datetime(a, utc=True), pd.to_datetime(b, utc=True)
        same = (left == right) | (left.isna() & right.isna())
        if getattr(a.dtype, "tz", None) != getattr(b.dtype, "tz", None):
            same[:] = False  # the same instants written in another time zone are another file
        return Difference(column, "date", dtypes, None, int((~same).sum()))
    numeric = pd.api.types.is_numeric_dtype
    if numeric(a) and numeric(b) and not pd.api.types.is_bool_dtype(a):
        x = a.to_numpy(dtype="float64", na_value=np.nan)
        y = b.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(x) | np.isnan(y)
        both_missing = np.isnan(x) & np.isnan(y)
        x, y = x[~missing], y[~missing]
        # Equal values differ by 0, equal infinities included (inf - inf is NaN).
        with np.errstate(invalid="ignore"):
            diff = np.where(x == y, 0.0, np.abs(x - y))
        max_abs = float(diff.max()) if diff.size else 0.0
        return Difference(column, "number", dtypes, max_abs, int((missing & ~both_missing).sum()))
    same = a.map(_canonical).to_numpy() == b.map(_canonical).to_numpy()
    return Difference(column, "text", dtypes, None, int((~same).sum()))


def compare_scores(before: pd.DataFrame, after: pd.DataFrame) -> tuple[list[Difference], list[str]]:
    """Per column differences between two scores tables aligned on ``customer_id``, and the
    problems that stop a row-by-row comparison or are worth saying (ids, columns, order)."""
    problems: list[str] = []
    for label, frame in (("before", before), ("after", after)):
        duplicated = int(frame["customer_id"].duplicated().sum())
        if duplicated:
            problems.append(f"{label}: {duplicated} duplicated customer ids")
    only_before = set(before["customer_id"]) - set(after["customer_id"])
    only_after = set(after["customer_id"]) - set(before["customer_id"])
    if only_before or only_after:
        problems.append(
            f"customer ids: {len(only_before)} only before, {len(only_after)} only after "
            f"(e.g. {sorted(only_before | only_after)[:5]})"
        )
    missing = [c for c in before.columns if c not in after.columns]
    extra = [c for c in after.columns if c not in before.columns]
    if missing or extra:
        problems.append(f"columns: only before {missing}, only after {extra}")
    if problems:
        return [], problems
    a = before.set_index("customer_id").sort_index()
    b = after.set_index("customer_id").sort_index()
    differences = [_compare_column(str(c), a[c], b[c]) for c in a.columns]
    return differences, []


def _table(differences: list[Difference]) -> str:
    rows = [
        {
            "column": d.column,
            "kind": d.kind,
            "dtype": d.dtypes,
            "max |diff|": "-" if d.max_abs is None else f"{d.max_abs:.3g}",
            "rows differing": d.mismatches,
            "equal": "yes" if d.equal else "NO",
        }
        for d in differences
    ]
    return pd.DataFrame(rows).to_string(index=False)


def _report(title: str, before: Path, after: Path) -> bool:
    """Prints one comparison; True when the two scores files are equal."""
    left, right = pd.read_parquet(before), pd.read_parquet(after)
    differences, problems = compare_scores(left, right)
    print(f"\n{title}: {len(left):,} / {len(right):,} customers")
    for problem in problems:
        print(f"  DIFFERENT: {problem}")
    if differences:
        print(_table(differences))
        if list(left.columns) != list(right.columns):
            print(f"  note: column order {list(left.columns)} / {list(right.columns)}")
    equal = not problems and all(d.equal for d in differences)
    print(f"  -> {'equal' if equal else 'DIFFERENT'}")
    return equal


# -- the driver -----------------------------------------------------------------------------------


@contextmanager
def _source(revision: str, folder: Path) -> Iterator[Path]:
    """The ``src`` folder of ``revision``: a detached git worktree in ``folder`` (removed after),
    or this checkout's own for ``worktree``."""
    if revision == "worktree":
        yield ROOT / "src"
        return
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(folder), revision],
        check=True,
    )
    try:
        yield folder / "src"
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], check=False
        )


def _run(side: str, revision: str, workdir: Path, orii: Path) -> None:
    out = workdir / side
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"[{side}] {revision}: training and scoring {', '.join(DATASETS)}", flush=True)
    with _source(revision, workdir / f"{side}-tree") as src:
        env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(src)}
        command = [sys.executable, str(Path(__file__).resolve()), "--child", str(out)]
        done = subprocess.run([*command, "--orii", str(orii)], env=env, cwd=out, check=False)
    if done.returncode != 0:
        raise SystemExit(f"[{side}] {revision}: training or scoring failed (see above)")
    print(f"[{side}] done in {time.perf_counter() - started:.0f} s", flush=True)


def _default_orii() -> Path:
    if env := os.environ.get("RETAIN_ONLINE_RETAIL"):
        return Path(env)
    return ROOT.parent / "shared" / "data" / "online_retail_ii.parquet"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="git revision before the change")
    parser.add_argument("--after", default="worktree", help="git revision, or worktree (default)")
    parser.add_argument(
        "--orii", type=Path, default=_default_orii(), help="online_retail_ii.parquet"
    )
    parser.add_argument("--workdir", type=Path, help="keep the scores here (default: a temp dir)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        _child(args.child, args.orii)
        return 0
    if args.before is None:
        parser.error("--before is required")
    if not args.orii.exists():
        parser.error(f"no Online Retail II file at {args.orii} (--orii or RETAIN_ONLINE_RETAIL)")
    temporary = None if args.workdir else tempfile.TemporaryDirectory(prefix="retain-scores-")
    workdir = args.workdir or Path(temporary.name)  # type: ignore[union-attr]
    try:
        _run("before", args.before, workdir, args.orii)
        _run("after", args.after, workdir, args.orii)
        equal = True
        for name in DATASETS:
            equal &= _report(
                f"{name}: save/load round trip ({args.after})",
                workdir / "after" / f"{name}-in-memory.parquet",
                workdir / "after" / f"{name}.parquet",
            )
            equal &= _report(
                f"{name}: {args.before} -> {args.after} (reloaded models)",
                workdir / "before" / f"{name}.parquet",
                workdir / "after" / f"{name}.parquet",
            )
    finally:
        if temporary is not None:
            temporary.cleanup()
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], check=False)
    print(f"\nscores {'identical' if equal else 'DIFFERENT'} (tolerance {TOLERANCE:g})")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
