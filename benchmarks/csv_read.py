"""CSV benchmark: retain's ``load_table`` on a CSV export beside pandas' own CSV reader.

What it measures
----------------
The cached synthetic transactions of ``features.py`` (``simulate`` with ``alpha=40``; about 10
million rows from 1.6 million customers at full size), written once as a CSV file the way shops
export them: naive timestamps (``2022-01-01 00:00:14.529073``), ids and names as text. Each
contender in its own fresh process, one after another:

1. ``retain``: ``load_table(csv, TRANSACTIONS)``: read (pyarrow's CSV reader, pandas' as a
   fallback) and full validation.
2. ``pandas + validation``: ``pd.read_csv`` (pandas' C reader, ids and names as text), then
   ``validate_table``: the same result the way retain read CSV files before pyarrow's reader.
3. ``pandas read only``: ``pd.read_csv`` alone, for scale: no validation at all.

Wall time runs inside the child from the start of the read to the validated frame (imports before
the clock); peak memory is the child's. A separate check compares the two validated tables (rows,
customers, amount total, first and last timestamp) and exits with status 1 if they differ. There
is no target in the project's issues: the script reports.

How to run
----------
    .venv/bin/python benchmarks/csv_read.py                     # full size: about 2 minutes
    .venv/bin/python benchmarks/csv_read.py --customers 100000  # quick run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

# harness.py sits beside this file, and Python puts a script's own folder first on sys.path.
from harness import (
    DATA_DIR,
    FULL_CUSTOMERS,
    NOISY_SHARE,
    Outcome,
    Runner,
    check_size_arguments,
    generate_transactions,
    machine,
    median_of,
    peak_gb,
    peak_memory,
    run_script,
    shown,
    transactions_file,
    warm_page_cache,
)

TEXT_COLUMNS = {"customer_id": "str", "order_id": "str", "product_id": "str", "category": "str"}


def _child_csv(spec: dict[str, Any]) -> dict[str, Any]:
    """Write the parquet transactions as a CSV export with naive timestamps."""
    import pandas as pd

    frame = pd.read_parquet(spec["parquet"])
    frame["timestamp"] = frame["timestamp"].dt.tz_localize(None)
    partial = Path(spec["path"] + ".partial")
    frame.to_csv(partial, index=False)
    partial.replace(spec["path"])
    return {"rows": len(frame)}


def _summary(frame: Any) -> dict[str, Any]:
    return {
        "rows": len(frame),
        "customers": int(frame["customer_id"].nunique()),
        "amount": round(float(frame["amount"].sum()), 2),
        "first": str(frame["timestamp"].min()),
        "last": str(frame["timestamp"].max()),
    }


def _child_read(spec: dict[str, Any]) -> dict[str, Any]:
    import time

    import pandas as pd
    import pyarrow.csv  # noqa: F401  (imported before the clock, as pandas would on the first read)

    from retain.data.contract import TRANSACTIONS
    from retain.data.io import load_table
    from retain.data.validation import validate_table

    started = time.perf_counter()
    summary: dict[str, Any] = {}
    if spec["how"] == "retain":
        summary = _summary(load_table(spec["path"], TRANSACTIONS).frame)
    elif spec["how"] == "pandas+validation":
        raw = pd.read_csv(spec["path"], dtype=TEXT_COLUMNS)
        summary = _summary(validate_table(raw, TRANSACTIONS).frame)
    else:
        pd.read_csv(spec["path"], dtype=TEXT_COLUMNS)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "summary": summary, **peak_memory()}


CHILDREN = {"generate": generate_transactions, "csv": _child_csv, "read": _child_read}


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--customers", type=int, help=f"default {FULL_CUSTOMERS:,}")
    size.add_argument("--scale", type=float, help="a fraction of the full size")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender (median)")
    parser.add_argument("--regenerate", action="store_true", help="simulate the data again")
    args = parser.parse_args(argv)
    check_size_arguments(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    customers = args.customers or max(1, round(FULL_CUSTOMERS * (args.scale or 1.0)))
    with tempfile.TemporaryDirectory(prefix="retain-bench-") as workdir:
        runner = Runner(__file__, Path(workdir))
        parquet, meta = transactions_file(customers, args.regenerate, runner)
        csv = DATA_DIR / parquet.with_suffix(".csv").name
        if args.regenerate or not csv.exists():
            print(f"writing {csv.name} ...")
            outcome = runner.run("csv", role="csv", parquet=str(parquet), path=str(csv))
            if outcome.error:
                sys.exit(f"writing the CSV failed: {outcome.error}")
        print(
            f"data: {shown(csv)} ({csv.stat().st_size / 1e9:.2f} GB): {meta['rows']:,} "
            f"transactions, {meta['customers']:,} customers"
        )
        print(machine())
        print(
            f"page cache warmed in {warm_page_cache(csv):.1f} s; each contender in its own process:"
        )
        names = ("retain", "pandas+validation", "pandas read only")
        runs: dict[str, list[Outcome]] = {name: [] for name in names}
        for round_ in range(1, args.repeat + 1):
            for name in names:
                outcome = runner.run(name, role="read", how=name, path=str(csv))
                runs[name].append(outcome)
                print(f"  round {round_}: {name}: {outcome.seconds:.2f} s")
        outcomes = {name: median_of(found, ("ru_maxrss", "vmhwm")) for name, found in runs.items()}
    return _report(outcomes)


def _report(outcomes: dict[str, Outcome]) -> int:
    failed = [o for o in outcomes.values() if o.error]
    if failed:
        print(f"FAILED: {failed[0].name}: {failed[0].error}")
        return 1
    print(f"\n{'contender':<22} {'wall s':>8} {'peak GB':>8} {'others':>7}")
    for name, outcome in outcomes.items():
        others = "?" if outcome.others_share is None else f"{outcome.others_share:.0%}"
        print(f"{name:<22} {outcome.seconds:>8.2f} {peak_gb(outcome):>8.2f} {others:>7}")
    if any((o.others_share or 0) > NOISY_SHARE for o in outcomes.values()):
        print("WARNING: other processes kept the machine busy: the times are inflated")
    ours, before = outcomes["retain"], outcomes["pandas+validation"]
    print(
        f"\npandas+validation / retain: {before.seconds / ours.seconds:.2f}x; "
        f"pandas read only / retain: {outcomes['pandas read only'].seconds / ours.seconds:.2f}x"
    )
    if ours.result["summary"] != before.result["summary"]:
        print(f"MISMATCH: retain {ours.result['summary']} != pandas {before.result['summary']}")
        return 1
    print(f"same validated table both ways: {ours.result['summary']}")
    return 0


if __name__ == "__main__":
    sys.exit(run_script(main, CHILDREN))
