"""Tracking overhead: ``train_tracked`` against the same work without MLflow.

What it measures
----------------
On CDNOW master (``load_cdnow("master")``: 23,570 customers, 1997-01-01 to 1998-06-30), as of
1998-06-30 with a 181-day horizon, the wall time of two contenders doing the same work:

1. ``tracked``: ``train_tracked(transactions, as_of, 181, settings=...)`` into a local sqlite store
   in a temporary folder (the working directory of the child, so ``./mlruns`` is there too): the
   server check, one MLflow run with its parameters and the dataset input (content hash), the
   holdout backtest with its metrics and the report logged as artefacts, the final fit, the model
   logged as a pyfunc (models from code, signature, input example, requirements) and registered
   as the champion. The store is created before the clock (an existing store is the usual case:
   MLflow creates its tables once per store); the creation time is printed, and a ratio with it.
2. ``plain``: what ``train_tracked`` does without MLflow:
   ``backtest(history, horizon_days=181, n_cutoffs=1, last_cutoff=as_of - 181 days)``,
   ``write_report`` to a temporary folder, ``RetentionModel(181).fit(history, as_of)`` and
   ``model.save``. This child never imports MLflow.

Each contender runs in its own fresh Python process, one after another, never two at once; the
data is loaded and validated before the clock and the imports are before it too (both are printed
in the child's total time). The contenders alternate in ``--repeat`` rounds (3) so that drift hits
both alike, and the median is reported with every run's time. The CPU that other processes used
meanwhile is printed (``others``); above 10 % the times are inflated and the output says so.
``tracked`` is split by its progress lines into setup (server check, run, parameters, data
input), holdout (backtest, metrics, report artefacts) and final (fit, model logging, registry);
``plain`` into backtest, report, fit and save.

The two must have done the same work: their holdout metrics are compared (to 1e-4 relative: spend
sums in DuckDB are not bit-identical between runs, which moves rank metrics on ties by about
1e-6); a disagreement, or a child that fails, exits with status 1.

Target (from the brief): ``tracked / plain`` at most 1.2. Missing it prints FAIL but still exits 0:
this is a report, not a test.

How to run
----------
``.venv/bin/python benchmarks/tracking.py`` (3 rounds, about 8-10 minutes on the 2-core machine);
``--repeat 1`` for one round; ``--dataset sample`` (CDNOW's 1/10 sample) for a quick check of the
script itself. Run nothing else meanwhile. See ``--help`` and
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

# harness.py sits beside this file, and Python puts a script's own folder first on sys.path: run as
# `python benchmarks/tracking.py` (the children too), this script finds it with a plain import.
from harness import (
    GB,
    NOISY_SHARE,
    Outcome,
    Runner,
    machine,
    max_rss_bytes,
    median_of,
    run_script,
    verdict,
)

# Only the standard library at module level: the parent process stays small and each child
# imports what it needs, before its clock.

AS_OF: Final = "1998-06-30"
HORIZON_DAYS: Final = 181
REPEAT: Final = 3
MAX_RATIO: Final = 1.2
METRICS_RTOL: Final = 1e-4


# -- children: each runs in its own process and writes a JSON result --------------------------------


def _load(spec: dict[str, Any]) -> tuple[Any, float]:
    """CDNOW (master or sample), validated, and the seconds it took (before the clock)."""
    from retain.data.datasets import load_cdnow

    started = time.perf_counter()
    transactions = load_cdnow(spec["dataset"]).transactions.frame
    return transactions, time.perf_counter() - started


def _child_plain(spec: dict[str, Any]) -> dict[str, Any]:
    """The holdout backtest, its report, the final fit and the saved model: no MLflow."""
    import pandas as pd

    from retain.evaluation.backtest import backtest
    from retain.evaluation.report import write_report
    from retain.features import to_cutoff
    from retain.models.retention import RetentionModel
    from retain.models.training import up_to

    transactions, load_seconds = _load(spec)
    out = Path(spec["workdir"])
    marks = [time.perf_counter()]
    day = to_cutoff(spec["as_of"])
    history = up_to(transactions, day)
    evaluation = backtest(
        history,
        horizon_days=spec["horizon_days"],
        n_cutoffs=1,
        last_cutoff=day - pd.Timedelta(days=spec["horizon_days"]),
        model_factory=RetentionModel,
    )
    marks.append(time.perf_counter())
    write_report(evaluation, out / "evaluation")
    marks.append(time.perf_counter())
    model = RetentionModel(spec["horizon_days"]).fit(history, day)
    marks.append(time.perf_counter())
    model.save(out / "model")
    marks.append(time.perf_counter())
    return {
        "seconds": marks[-1] - marks[0],
        "split": dict(
            zip(
                ("backtest", "report", "fit", "save"),
                (b - a for a, b in pairwise(marks)),
                strict=True,
            )
        ),
        "load_seconds": load_seconds,
        "metrics": _metrics(evaluation),
        "rows": len(history),
        "peak": max_rss_bytes(),
    }


def _metrics(evaluation: Any) -> dict[str, float]:
    """The holdout metrics as train_tracked logs them: ``<metric>/<contender>``, NaN left out."""
    return {
        f"{metric}/{contender}": float(value)
        for contender, values in evaluation.latest.metrics.items()
        for metric, value in values.items()
        if not math.isnan(value)
    }


def _child_tracked(spec: dict[str, Any]) -> dict[str, Any]:
    """train_tracked into a sqlite store in the child's own temporary working directory."""
    import mlflow  # noqa: F401  (imported before the clock, as retain's modules are)
    from mlflow import MlflowClient

    from retain.tracking import TrackingSettings, train_tracked

    transactions, load_seconds = _load(spec)
    folder = Path(spec["workdir"])
    os.chdir(folder)  # a sqlite store puts run artefacts in ./mlruns
    settings = TrackingSettings(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    started = time.perf_counter()
    MlflowClient(settings.resolved_uri()).search_experiments()  # creates the store's tables
    store_seconds = time.perf_counter() - started

    marks = [time.perf_counter()]
    result = train_tracked(
        transactions,
        spec["as_of"],
        spec["horizon_days"],
        settings=settings,
        progress=lambda _line: marks.append(time.perf_counter()),
    )
    marks.append(time.perf_counter())
    if len(marks) != 4:
        raise RuntimeError(f"expected two progress lines from train_tracked, got {len(marks) - 2}")
    logged = MlflowClient(settings.resolved_uri()).get_run(result.run_id).data.metrics
    registration = result.registration
    return {
        "seconds": marks[-1] - marks[0],
        "split": dict(
            zip(
                ("setup", "holdout", "final"),
                (b - a for a, b in pairwise(marks)),
                strict=True,
            )
        ),
        "store_seconds": store_seconds,
        "load_seconds": load_seconds,
        "metrics": logged,
        "registered": None if registration is None else f"version {registration.version}",
        "champion": None if registration is None else registration.champion,
        "store_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
        "peak": max_rss_bytes(),
    }


CHILDREN: Final = {"plain": _child_plain, "tracked": _child_tracked}


# -- the parent: one child after another, the report -------------------------------------------------


def _run(runner: Runner, name: str, **spec: Any) -> Outcome:
    """One contender in its own temporary folder, its working directory (a sqlite store puts run
    artefacts in ./mlruns), and without this shell's MLFLOW_* and RETAIN_* settings."""
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=runner.workdir))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RETAIN_"))}
    return runner.run(name, role=name, cwd=folder, env=env, workdir=str(folder), **spec)


def _status(outcome: Outcome) -> str:
    if outcome.error:
        return "FAILED: " + outcome.error.splitlines()[0]
    others = "" if outcome.others_share is None else f"; others {outcome.others_share:.0%}"
    return f"{outcome.seconds:.1f} s (child {outcome.total_seconds:.1f} s{others})"


def _compare_metrics(plain: dict[str, float], tracked: dict[str, float]) -> list[str]:
    """What differs between the two holdouts' metrics (empty when they agree)."""
    problems = []
    if plain.keys() != tracked.keys():
        problems.append(
            f"metric names differ: only plain {sorted(plain.keys() - tracked.keys())}, "
            f"only tracked {sorted(tracked.keys() - plain.keys())}"
        )
    for key in sorted(plain.keys() & tracked.keys()):
        a, b = plain[key], tracked[key]
        if abs(a - b) > METRICS_RTOL * max(abs(a), abs(b), 1e-12):
            problems.append(f"{key}: plain {a:.6f}, tracked {b:.6f}")
    return problems


def _report(plain: Outcome, tracked: Outcome, dataset: str) -> bool:
    """Print the table, the splits, the ratio and the verdict; return whether the work agreed."""
    print()
    print(f"{'contender':<44} {'wall s':>8} {'child s':>8} {'peak GB':>8} {'others':>7}")
    for outcome, label in (
        (plain, "plain: backtest + report + fit + save"),
        (tracked, "tracked: train_tracked (sqlite store)"),
    ):
        if outcome.error:
            print(f"{label:<44} FAILED: {outcome.error}")
            continue
        others = "?" if outcome.others_share is None else f"{outcome.others_share:.0%}"
        line = (
            f"{label:<44} {outcome.seconds:>8.1f} {outcome.total_seconds:>8.1f} "
            f"{outcome.result['peak'] / GB:>8.2f} {others:>7}"
        )
        if len(outcome.runs) > 1:
            line += f"  median of {len(outcome.runs)}: " + " / ".join(
                f"{o.seconds:.1f}" for o in outcome.runs
            )
        print(line)
    print(
        "wall s: inside the child, after the data is loaded (imports and loading excluded); "
        "child s: the whole process; others: CPU used by other processes meanwhile, as a share "
        "of all cores"
    )
    if plain.error or tracked.error:
        print("\nVERDICT: incomplete (a contender failed, see above)")
        return False
    noisy = [o.name for o in (plain, tracked) if (o.others_share or 0) > NOISY_SHARE]
    if noisy:
        print(
            f"WARNING: other processes kept the machine busy during {', '.join(noisy)}: the "
            "times are inflated; run again on a quiet machine"
        )

    p, t = plain.result, tracked.result
    ps, ts = p["split"], t["split"]
    print(
        f"\nplain split:   backtest {ps['backtest']:.1f} s + report {ps['report']:.1f} s + "
        f"fit {ps['fit']:.1f} s + save {ps['save']:.2f} s"
    )
    print(
        f"tracked split: setup {ts['setup']:.1f} s (server check, run, params, dataset input) + "
        f"holdout {ts['holdout']:.1f} s (backtest, metrics, report artefacts) + final "
        f"{ts['final']:.1f} s (fit, pyfunc logging, registry)"
    )
    print(
        f"overhead:      setup {ts['setup']:.1f} s, holdout "
        f"{ts['holdout'] - ps['backtest'] - ps['report']:+.1f} s, final "
        f"{ts['final'] - ps['fit'] - ps['save']:+.1f} s; in all {tracked.seconds - plain.seconds:+.1f} s"
    )
    print(
        f"tracked store: created in {t['store_seconds']:.1f} s before the clock (once per store); "
        f"{t['store_bytes'] / 1e6:.1f} MB after the run; registered {t['registered']} "
        f"(champion: {t['champion']})"
    )
    print(f"data: {p['rows']:,} transactions loaded and validated in {p['load_seconds']:.1f} s")

    problems = _compare_metrics(p["metrics"], t["metrics"])
    if problems:
        print("\nHOLDOUT METRICS DISAGREE (the two did not do the same work):")
        for problem in problems:
            print(f"  {problem}")
    else:
        print(
            f"\nholdout metrics agree: {len(p['metrics'])} metrics of retain, bgnbd and naive "
            f"(to {METRICS_RTOL:g} relative)"
        )

    ratio = tracked.seconds / plain.seconds
    cold = (tracked.seconds + t["store_seconds"]) / plain.seconds
    overall = verdict(ratio <= MAX_RATIO)
    print(f"\n{'ratio':<40} {'value':>6}  {'target':<8} result")
    print(f"{'tracked / plain':<40} {ratio:>6.3f}  {'<= ' + f'{MAX_RATIO:g}':<8} {overall}")
    print(f"{'(tracked + store creation) / plain':<40} {cold:>6.3f}  {'-':<8} for reference")
    print(
        f"\nVERDICT: {overall}: tracking adds {tracked.seconds - plain.seconds:+.1f} s "
        f"({ratio - 1:+.1%}) to {plain.seconds:.1f} s of training and evaluation on CDNOW {dataset}, "
        f"as of {AS_OF}, {HORIZON_DAYS}-day horizon"
    )
    return not problems


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time train_tracked (local sqlite store) against the same work without MLflow on "
            "CDNOW master, each run in its own process; print times, the ratio and PASS/FAIL."
        )
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=REPEAT,
        metavar="N",
        help=f"rounds of both contenders, each run in a fresh process; the median is reported "
        f"(default {REPEAT})",
    )
    parser.add_argument(
        "--dataset",
        choices=("master", "sample"),
        default="master",
        help="CDNOW master (23,570 customers; default) or its 1/10 sample for a quick run",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    print(
        f"tracking overhead: train_tracked vs the same work without MLflow; CDNOW {args.dataset} "
        f"as of {AS_OF}, {HORIZON_DAYS}-day horizon"
    )
    print(machine())
    spec = {"as_of": AS_OF, "horizon_days": HORIZON_DAYS, "dataset": args.dataset}
    with tempfile.TemporaryDirectory(prefix="retain-tracking-bench-") as workdir:
        runner = Runner(__file__, Path(workdir))
        runs: dict[str, list[Outcome]] = {"plain": [], "tracked": []}
        for round_no in range(1, args.repeat + 1):  # rounds, so that drift hits both alike
            for name, outcomes in runs.items():
                outcome = _run(runner, name, **spec)
                outcomes.append(outcome)
                print(f"  round {round_no}: {name}: {_status(outcome)}", flush=True)
        plain, tracked = median_of(runs["plain"]), median_of(runs["tracked"])
        agree = _report(plain, tracked, args.dataset)
        for each in (plain, tracked):
            if each.error:
                print(f"\n{each.name} failed: {each.error}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(run_script(main, CHILDREN))
