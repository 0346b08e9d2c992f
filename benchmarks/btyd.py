"""Pareto/NBD fit benchmark: retain's ``ParetoNBDModel`` beside lifetimes' ``ParetoNBDFitter``.

What it measures
----------------
For 100,000 and 1,000,000 customers (``--customers``), day-level RFM summaries drawn from the
Pareto/NBD itself (``retain.models.btyd.simulation.simulate_pareto_nbd(n, seed=--seed)``: CDNOW's
Pareto/NBD estimates in days, r = 0.55, alpha = 75, s = 0.6, beta = 80, customers 1 to 730 days
old), and the wall time of one maximum-likelihood fit on the same arrays, in the same time unit
(days):

1. ``retain``: ``ParetoNBDModel(time_unit="days").fit(frequency, recency, T)``. The clock includes
   everything the call does: input checks, compression to distinct ``(x, t_x, T)`` rows, the
   L-BFGS-B fit. Runs ``--repeat`` times (3), each in a fresh process; the median is reported.
2. ``lifetimes``: ``ParetoNBDFitter().fit(frequency, recency, T)``, as its documentation uses it
   (one row per customer, its default Nelder-Mead, tolerance and iteration limit), from a start
   drawn the way lifetimes draws it (normal around 1, sd 0.05) but seeded, so that runs repeat.
   Once per size. lifetimes takes about 30 s at 100,000 customers and about 6 minutes at a
   million on the 2-core machine, so by default it runs only up to ``--lifetimes-max`` customers
   (100,000) and larger sizes are extrapolated from that run (``--full-lifetimes`` runs them).
   Two extrapolations are printed: linear in the rows, and the 100,000-customer time scaled by how
   much longer one evaluation of lifetimes' likelihood takes at the larger size (measured). The
   smaller of the two is judged: it favours lifetimes.
3. For reference, not judged: lifetimes given the data compressed by hand to distinct rows with
   ``weights`` (what its ``weights`` argument is for), timed with the compression, at the sizes
   lifetimes runs at.

Then a separate process evaluates, on each size's data, both libraries' log-likelihood formulas
at both parameter sets: the two formulas must agree at the same parameters (to 1e-9), and the two
optima must agree to 1e-6 relative, ``retain``'s being at least as high. Where lifetimes was not
run, only the first check is possible (lifetimes' likelihood at retain's parameters) and the
output says so.

Every child runs alone (one after another): the machine has 2 cores and the measurements are
single-process. The CPU that other processes used meanwhile is printed (``others``); above 10 %
the times are inflated and the output warns. Peak memory is the child's ``ru_maxrss``.

Target (from the project's issue): retain's fit at least 20x faster than lifetimes' at every size.
Missing it prints FAIL but still exits 0: this is a report, not a test. A likelihood disagreement
exits with status 1, since the two would then not be fitting the same model.

How to run
----------
``.venv/bin/python benchmarks/btyd.py``: under 2 minutes on the 2-core machine, lifetimes' two
runs at 100,000 customers (40 s and 11 s) included. ``--customers 20000`` for a quick run,
``--full-lifetimes`` to run lifetimes at a million too (5 to 7 more minutes). Run nothing else
meanwhile. See ``--help`` and ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

# harness.py sits beside this file, and Python puts a script's own folder first on sys.path: run as
# `python benchmarks/btyd.py` (the children too), this script finds it with a plain import.
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

# Only the standard library at module level: the parent process stays small (a child's ru_maxrss
# can inherit its parent's peak on Linux) and each child imports what it needs, before its clock.

DEFAULT_SIZES: Final = (100_000, 1_000_000)
LIFETIMES_MAX: Final = 100_000
SEED: Final = 0
REPEAT: Final = 3
MAX_AGE_DAYS: Final = 730
TRUTH: Final = {"r": 0.55, "alpha": 75.0, "s": 0.6, "beta": 80.0}  # simulate_pareto_nbd's defaults
NAMES: Final = ("r", "alpha", "s", "beta")

MIN_SPEEDUP: Final = 20.0
SAME_FORMULA_RTOL: Final = 1e-9
SAME_OPTIMUM_RTOL: Final = 1e-6


# -- children: each runs in its own process and writes a JSON result --------------------------------


def _load(path: str) -> tuple[Any, Any, Any]:
    import numpy as np

    with np.load(path) as data:
        return data["frequency"], data["recency"], data["T"]


def _child_generate(spec: dict[str, Any]) -> dict[str, Any]:
    """Simulate the customers and save (frequency, recency, T) as float arrays."""
    import numpy as np

    from retain.models.btyd.simulation import simulate_pareto_nbd

    started = time.perf_counter()
    data = simulate_pareto_nbd(
        spec["customers"], **TRUTH, max_age_days=MAX_AGE_DAYS, seed=spec["seed"]
    )
    x, t_x, T = (data[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    np.savez(spec["path"], frequency=x, recency=t_x, T=T)
    distinct = np.unique(np.column_stack([x, t_x, T]), axis=0).shape[0]
    return {
        "customers": int(x.size),
        "distinct": int(distinct),
        "repeat_share": float((x > 0).mean()),
        "max_frequency": int(x.max()),
        "seconds": time.perf_counter() - started,
    }


def _child_retain(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit of retain's Pareto/NBD, from arrays in memory to a fitted model."""
    import warnings

    import numpy  # noqa: F401  (imported before the clock, as in the other children)
    import scipy.optimize  # noqa: F401

    from retain.models.btyd import ParetoNBDModel

    x, t_x, T = _load(spec["data"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        model = ParetoNBDModel(time_unit="days").fit(x, t_x, T)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "params": model.params_,
        "log_likelihood": model.log_likelihood_,
        "converged": model.converged_,
        "warnings": [str(w.message) for w in caught],
        "peak_bytes": max_rss_bytes(),
    }


def _child_lifetimes(spec: dict[str, Any]) -> dict[str, Any]:
    """One fit of lifetimes' Pareto/NBD; ``compressed``: on distinct rows with weights."""
    import warnings

    import numpy as np
    from lifetimes import ParetoNBDFitter

    x, t_x, T = _load(spec["data"])
    # lifetimes draws its start from np.random.normal(1.0, 0.05, 4); the same, seeded.
    start = np.random.default_rng(spec["seed"]).normal(1.0, 0.05, 4)
    evaluations = 0
    likelihood = ParetoNBDFitter._negative_log_likelihood

    def counted(*args: Any) -> Any:
        nonlocal evaluations
        evaluations += 1
        return likelihood(*args)

    ParetoNBDFitter._negative_log_likelihood = staticmethod(counted)  # type: ignore[method-assign]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' own deprecation and runtime warnings
        started = time.perf_counter()
        if spec["compressed"]:
            rows, weights = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
            fitter = ParetoNBDFitter().fit(
                rows[:, 0], rows[:, 1], rows[:, 2], weights=weights, initial_params=start
            )
        else:
            fitter = ParetoNBDFitter().fit(x, t_x, T, initial_params=start)
        seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "params": {name: float(fitter.params_[name]) for name in NAMES},
        "evaluations": evaluations,
        "rows": int(rows.shape[0]) if spec["compressed"] else int(x.size),
        "peak_bytes": max_rss_bytes(),
    }


def _child_evaluate(spec: dict[str, Any]) -> dict[str, Any]:
    """Both log-likelihood formulas at both parameter sets, and the time of one lifetimes
    likelihood evaluation at this size (for the extrapolation)."""
    import warnings

    import numpy as np
    from lifetimes import ParetoNBDFitter

    from retain.models.btyd import ParetoNBDModel

    x, t_x, T = _load(spec["data"])
    ones = np.ones_like(x)
    result: dict[str, Any] = {}
    for who, params in spec["params"].items():
        point = np.array([params[name] for name in NAMES])
        ours = ParetoNBDModel._log_likelihood_rows(point, x, t_x, T)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = np.asarray(ParetoNBDFitter._conditional_log_likelihood(point, x, t_x, T))
        finite = np.isfinite(theirs)  # lifetimes' hypergeometric function fails on a few rows
        result[who] = {
            "retain_formula": float(ours.sum()),
            "retain_formula_where_lifetimes_finite": float(ours[finite].sum()),
            "lifetimes_formula": float(theirs[finite].sum()),
            "lifetimes_nonfinite_rows": int((~finite).sum()),
        }
    point = np.array([spec["params"]["retain"][name] for name in NAMES])
    scaled = (point * np.array([1.0, 1.0 / T.max(), 1.0, 1.0 / T.max()])).tolist()
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):  # lifetimes evaluates on rescaled time, T.max() = 1
            started = time.perf_counter()
            ParetoNBDFitter._negative_log_likelihood(
                scaled, x, t_x / T.max(), T / T.max(), ones, 0.0
            )
            times.append(time.perf_counter() - started)
    result["lifetimes_evaluation_seconds"] = statistics.median(times)
    return result


CHILDREN: Final = {
    "generate": _child_generate,
    "retain": _child_retain,
    "lifetimes": _child_lifetimes,
    "evaluate": _child_evaluate,
}


# -- the parent: data, one child after another, the report -------------------------------------------


def _worst_others(outcomes: list[Outcome | None]) -> str:
    """The highest share of other processes' CPU (a median's is already its worst run's)."""
    shares = [o.others_share for o in outcomes if o is not None and o.others_share is not None]
    return f"{max(shares):.0%}" if shares else "?"


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


@dataclass
class Size:
    """Everything measured at one number of customers."""

    customers: int
    data: str
    meta: dict[str, Any]
    retain: Outcome | None = None
    lifetimes: Outcome | None = None  # run at this size, or None if extrapolated
    compressed: Outcome | None = None
    evaluation: Outcome | None = None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time retain's Pareto/NBD fit beside lifetimes' on the same simulated customers, "
            "each fit in its own process; print times, speed-ups, log-likelihoods and PASS/FAIL."
        )
    )
    parser.add_argument(
        "--customers",
        type=int,
        nargs="+",
        metavar="N",
        help="sizes to measure (default: 100000 1000000)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"simulation seed ({SEED})")
    parser.add_argument(
        "--full-lifetimes",
        action="store_true",
        help="run lifetimes at every size (about 6 minutes at a million customers)",
    )
    parser.add_argument(
        "--lifetimes-max",
        type=int,
        default=LIFETIMES_MAX,
        metavar="N",
        help=f"without --full-lifetimes, run lifetimes up to N customers and extrapolate above "
        f"from a run at N (default {LIFETIMES_MAX:,})",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=REPEAT,
        metavar="N",
        help=f"runs of retain per size, each in a fresh process; the median is reported "
        f"(default {REPEAT}; lifetimes runs once)",
    )
    args = parser.parse_args(argv)
    if args.customers is not None and min(args.customers) < 1:
        parser.error("--customers must be positive")
    if args.lifetimes_max < 1:
        parser.error("--lifetimes-max must be positive")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    sizes = sorted(set(args.customers or DEFAULT_SIZES))
    print(
        "Pareto/NBD fit: retain ParetoNBDModel vs lifetimes ParetoNBDFitter, same data, time in days"
    )
    print(machine())
    truth = ", ".join(f"{k}={v:g}" for k, v in TRUTH.items())
    print(f"data: simulate_pareto_nbd(N, {truth}, max_age_days={MAX_AGE_DAYS}, seed={args.seed})")
    with tempfile.TemporaryDirectory(prefix="retain-btyd-bench-") as workdir:
        runner = Runner(__file__, Path(workdir))
        measured = {n: _measure(n, args, runner) for n in sizes}
        reference = _reference(sizes, args, runner, measured)
        agree = _report(measured, reference, args)
    return 0 if agree else 1


def _generate(customers: int, seed: int, runner: Runner) -> Size:
    path = str(runner.workdir / f"data-{customers}.npz")
    outcome = runner.run("generate", role="generate", customers=customers, seed=seed, path=path)
    if outcome.error:
        sys.exit(f"data generation failed: {outcome.error}")
    meta = outcome.result
    print(
        f"  {customers:>9,} customers: {meta['distinct']:,} distinct (x, t_x, T), "
        f"{meta['repeat_share']:.0%} with a repeat purchase, frequency up to "
        f"{meta['max_frequency']:,}"
    )
    return Size(customers, path, meta)


def _lifetimes_runs(size: Size, args: argparse.Namespace, runner: Runner) -> None:
    spec = {"data": size.data, "seed": args.seed}
    size.lifetimes = runner.run("lifetimes", role="lifetimes", compressed=False, **spec)
    _print_run(size.customers, "lifetimes", size.lifetimes)
    size.compressed = runner.run("lifetimes+weights", role="lifetimes", compressed=True, **spec)
    _print_run(size.customers, "lifetimes, distinct rows + weights", size.compressed)


def _print_run(customers: int, label: str, outcome: Outcome) -> None:
    if outcome.error:
        status = "FAILED: " + outcome.error.splitlines()[0]
    else:
        status = f"{outcome.seconds:.2f} s"
        if "evaluations" in outcome.result:
            status += (
                f" ({outcome.result['evaluations']:,} likelihood evaluations on "
                f"{outcome.result['rows']:,} rows)"
            )
    others = "" if outcome.others_share is None else f"; others {outcome.others_share:.0%}"
    print(f"  {customers:>9,}  {label}: {status}{others}")


def _measure(customers: int, args: argparse.Namespace, runner: Runner) -> Size:
    size = _generate(customers, args.seed, runner)
    runs = []
    for round_no in range(1, args.repeat + 1):
        outcome = runner.run("retain", role="retain", data=size.data)
        runs.append(outcome)
        _print_run(customers, f"retain, run {round_no}", outcome)
    size.retain = median_of(runs, peak_keys=("peak_bytes",))
    if args.full_lifetimes or customers <= args.lifetimes_max:
        _lifetimes_runs(size, args, runner)
    else:
        print(
            f"  {customers:>9,}  lifetimes: not run (extrapolated from {args.lifetimes_max:,} "
            "customers; --full-lifetimes runs it)"
        )
    _evaluate(size, runner)
    return size


def _evaluate(size: Size, runner: Runner) -> None:
    params: dict[str, Any] = {}
    if size.retain is not None and not size.retain.error:
        params["retain"] = size.retain.result["params"]
    if size.lifetimes is not None and not size.lifetimes.error:
        params["lifetimes"] = size.lifetimes.result["params"]
    if "retain" in params:
        size.evaluation = runner.run("evaluate", role="evaluate", data=size.data, params=params)


def _reference(
    sizes: list[int], args: argparse.Namespace, runner: Runner, measured: dict[int, Size]
) -> Size | None:
    """The lifetimes run larger sizes are extrapolated from (at --lifetimes-max customers)."""
    if args.full_lifetimes or max(sizes) <= args.lifetimes_max:
        return None
    if args.lifetimes_max in measured:
        return measured[args.lifetimes_max]
    print(f"reference for the extrapolation: lifetimes at {args.lifetimes_max:,} customers")
    size = _generate(args.lifetimes_max, args.seed, runner)
    size.retain = runner.run("retain", role="retain", data=size.data)
    _lifetimes_runs(size, args, runner)
    _evaluate(size, runner)
    return size


def _lifetimes_seconds(
    size: Size, reference: Size | None, which: str = "lifetimes"
) -> tuple[float | None, str]:
    """lifetimes' time at this size: measured, or the smaller of two extrapolations."""
    own = size.lifetimes if which == "lifetimes" else size.compressed
    if own is not None:
        return (None, "failed") if own.error else (own.seconds, "measured")
    base = (
        None
        if reference is None
        else (reference.lifetimes if which == "lifetimes" else reference.compressed)
    )
    if reference is None or base is None or base.error:
        return None, "not run"
    ratio_rows = size.customers / reference.customers
    if which != "lifetimes":  # the compressed fit scales with the distinct rows
        ratio_rows = size.meta["distinct"] / reference.meta["distinct"]
    linear = base.seconds * ratio_rows
    estimates = {"linear in rows": linear}
    if (
        which == "lifetimes"
        and size.evaluation is not None
        and not size.evaluation.error
        and reference.evaluation is not None
        and not reference.evaluation.error
    ):
        per_eval = size.evaluation.result["lifetimes_evaluation_seconds"]
        per_eval_ref = reference.evaluation.result["lifetimes_evaluation_seconds"]
        estimates["by one evaluation's time"] = base.seconds * per_eval / per_eval_ref
    chosen = min(estimates, key=lambda k: estimates[k])
    detail = ", ".join(f"{k} {v:.0f} s" for k, v in estimates.items())
    return estimates[chosen], f"extrapolated ({detail}; the smaller judged)"


def _report(measured: dict[int, Size], reference: Size | None, args: argparse.Namespace) -> bool:
    print()
    print(
        f"{'customers':>10} {'retain s':>9} {'lifetimes s':>12} {'speed-up':>9} "
        f"{'target':>8} {'result':>6} {'others':>7}  lifetimes"
    )
    checks: list[bool] = []
    for customers, size in measured.items():
        retain = size.retain
        if retain is None or retain.error:
            error = "?" if retain is None else retain.error
            print(f"{customers:>10,} retain FAILED: {error}")
            checks.append(False)
            continue
        life, how = _lifetimes_seconds(size, reference)
        others = _worst_others([retain, size.lifetimes])
        if life is None:
            print(f"{customers:>10,} {retain.seconds:>9.2f} {'-':>12} {'-':>9}   lifetimes {how}")
            continue
        speedup = life / retain.seconds
        ok = speedup >= MIN_SPEEDUP
        checks.append(ok)
        print(
            f"{customers:>10,} {retain.seconds:>9.2f} {life:>12.1f} {speedup:>8.1f}x "
            f"{'>= ' + f'{MIN_SPEEDUP:g}x':>8} {verdict(ok):>6} {others:>7}  {how}"
        )
    print(
        "retain s: median of "
        f"{args.repeat} fits, each in a fresh process (every run above); lifetimes s: one fit; "
        "others: CPU used by other processes meanwhile, share of all cores (worst run)"
    )
    noisy = [
        f"{size.customers:,}"
        for size in measured.values()
        for outcome in (size.retain, size.lifetimes, size.compressed)
        if outcome is not None
        for run in (outcome.runs or [outcome])
        if (run.others_share or 0) > NOISY_SHARE
    ]
    if noisy:
        print(
            f"WARNING: other processes kept the machine busy (> {NOISY_SHARE:.0%}) during runs at "
            f"{', '.join(sorted(set(noisy)))} customers: the times are inflated; run again on a "
            "quiet machine"
        )

    print(
        "\nfor reference (not judged): lifetimes given distinct rows and weights, compression timed"
    )
    for customers, size in measured.items():
        life, how = _lifetimes_seconds(size, reference, which="compressed")
        if size.retain is None or size.retain.error or life is None:
            continue
        rows = size.meta["distinct"]
        print(
            f"{customers:>10,} {life:>9.1f} s on {rows:,} distinct rows: retain is "
            f"{life / size.retain.seconds:.1f}x faster ({how})"
        )

    same_function, optima = _report_likelihoods(measured, reference)
    print("\nparameters (days; truth " + ", ".join(f"{k} {v:g}" for k, v in TRUTH.items()) + "):")
    for customers, size in measured.items():
        for label, outcome in (("retain", size.retain), ("lifetimes", size.lifetimes)):
            if outcome is None or outcome.error:
                continue
            values = ", ".join(f"{k} {outcome.result['params'][k]:.4f}" for k in NAMES)
            extra = ""
            if label == "retain":
                extra = "" if outcome.result["converged"] else "  (did not converge)"
                peak = outcome.result["peak_bytes"] / GB
                extra += f"  peak memory {peak:.2f} GB"
            print(f"{customers:>10,} {label:<9} {values}{extra}")

    overall = "PASS" if checks and all(checks) and same_function and all(optima) else "FAIL"
    print(
        f"\nVERDICT: {overall}: speed-up target (>= {MIN_SPEEDUP:g}x) met at {sum(checks)} of "
        f"{len(checks)} sizes; the two likelihood formulas "
        f"{'agree' if same_function else 'DISAGREE'} at retain's parameters; the optima agree at "
        f"{sum(optima)} of {len(optima)} sizes where lifetimes ran"
    )
    return same_function


def _report_likelihoods(
    measured: dict[int, Size], reference: Size | None
) -> tuple[bool, list[bool]]:
    """Print the log-likelihood checks; return whether the two formulas agree at retain's
    parameters everywhere, and the optimum check of each size where lifetimes ran."""
    print("\nlog-likelihood (total over customers, time in days):")
    same_function = True
    optima: list[bool] = []
    for customers, size in measured.items():
        evaluation = size.evaluation
        if evaluation is None or evaluation.error:
            error = "not run" if evaluation is None else evaluation.error
            print(f"{customers:>10,} evaluation failed: {error}")
            same_function = False
            continue
        at_ours = evaluation.result["retain"]
        assert size.retain is not None
        fitted = size.retain.result["log_likelihood"]
        nan_rows = at_ours["lifetimes_nonfinite_rows"]
        same = _relative(
            at_ours["retain_formula_where_lifetimes_finite"], at_ours["lifetimes_formula"]
        )
        ok_formula = same <= SAME_FORMULA_RTOL and nan_rows <= 0.001 * customers
        same_function &= ok_formula
        where = f" (on the {customers - nan_rows:,} rows where it is finite)" if nan_rows else ""
        print(
            f"{customers:>10,} at retain's parameters: retain {fitted:,.4f}, lifetimes' formula "
            f"{at_ours['lifetimes_formula']:,.4f}{where}: relative difference {same:.1e} "
            f"({verdict(ok_formula)}: the same function, <= {SAME_FORMULA_RTOL:g})"
        )
        theirs = evaluation.result.get("lifetimes")
        if theirs is None:
            print(
                f"{'':>10} lifetimes' own optimum: none at this size (lifetimes not run), so "
                "lifetimes' likelihood is evaluated at retain's parameters (the line above)"
            )
            continue
        # Both optima measured with retain's formula, which is finite on every row.
        at_theirs = theirs["retain_formula"]
        gap = _relative(fitted, at_theirs)
        higher = fitted >= at_theirs - 1e-9 * abs(fitted)
        ok_optimum = gap <= SAME_OPTIMUM_RTOL and higher
        optima.append(ok_optimum)
        their_nan = theirs["lifetimes_nonfinite_rows"]
        their_own = (
            f"NaN on {their_nan:,} rows"
            if their_nan
            else f"{theirs['lifetimes_formula']:,.4f} by its own formula"
        )
        print(
            f"{'':>10} at lifetimes' optimum: {at_theirs:,.4f} ({their_own}): the optima "
            f"differ by {gap:.1e} relative, retain's {'higher or equal' if higher else 'LOWER'} "
            f"({verdict(ok_optimum)}: <= {SAME_OPTIMUM_RTOL:g})"
        )
        if their_nan:
            print(
                f"{'':>10} lifetimes stopped where its likelihood is NaN: its Nelder-Mead "
                "cannot compare NaN values and ends there, not at the maximum"
            )
    if reference is not None and reference.customers not in measured:
        print(f"(reference run at {reference.customers:,} customers: used for timing only)")
    return same_function, optima


if __name__ == "__main__":
    sys.exit(run_script(main, CHILDREN))
